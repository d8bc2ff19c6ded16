//! The filter as Istio runs it: istiod turns a WasmPlugin into an Envoy
//! `Wasm` filter with `root_id` = `pluginName`, the V8 runtime, no `vm_id`,
//! and `pluginConfig` as protojson in a `StringValue`; the VirtualService
//! becomes header-matching routes to `outbound|PORT|SUBSET|HOST` clusters.
//! This builds exactly that from `istio/service-b/` and sends real traffic.

use canary_router_core::hashing::hash::sticky_bucket;
use serde_json::Value;

use super::backends;
use super::envoy::{Envoy, EnvoyConfig};
use super::http::{get_host, Connection};
use super::istio::{all_documents, plugin_config_json, NumberStyle};

fn document(file: &str) -> Value {
    all_documents()
        .into_iter()
        .find(|d| d.file == file)
        .unwrap_or_else(|| panic!("istio/{file} missing"))
        .value
}

/// A route of the generated gateway: the header it matches (none: any
/// request), its cluster, and what the backend behind it answers.
pub struct GeneratedRoute {
    header: Option<(String, String)>,
    cluster: String,
    answer: String,
}

/// What istiod makes of a VirtualService: header-matching routes to
/// `outbound|PORT|SUBSET|HOST`, each backend answering its subset's name
/// (or, without subsets, its Service's). Every path here is `/`.
pub fn from_virtual_service(virtual_service: &Value) -> (Vec<String>, Vec<GeneratedRoute>) {
    let spec = &virtual_service["spec"];
    let routes = spec["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|http| {
            let destination = &http["route"][0]["destination"];
            let host = destination["host"].as_str().unwrap();
            let port = destination["port"]["number"].as_u64().unwrap_or(80);
            let subset = destination["subset"].as_str().unwrap_or("");
            let header = http["match"][0]["headers"].as_object().map(|headers| {
                let (name, test) = headers.iter().next().unwrap();
                (name.clone(), test["exact"].as_str().unwrap().to_string())
            });
            let answer = if subset.is_empty() { host.split('.').next().unwrap() } else { subset };
            GeneratedRoute {
                header,
                cluster: format!("outbound|{port}|{subset}|{host}"),
                answer: answer.to_string(),
            }
        })
        .collect();
    (hosts(&spec["hosts"]), routes)
}

/// What istiod makes of an HTTPRoute on a Gateway API gateway: a route per
/// rule to `outbound|PORT||SERVICE.NAMESPACE.svc.cluster.local`, each
/// backend answering its Service's name.
pub fn from_http_route(http_route: &Value) -> (Vec<String>, Vec<GeneratedRoute>) {
    let namespace = http_route["metadata"]["namespace"].as_str().unwrap();
    let spec = &http_route["spec"];
    let routes = spec["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let backend = &rule["backendRefs"][0];
            let (service, port) = (backend["name"].as_str().unwrap(), backend["port"].as_u64().unwrap());
            let header = rule["matches"][0]["headers"][0]
                .as_object()
                .map(|h| (h["name"].as_str().unwrap().to_string(), h["value"].as_str().unwrap().to_string()));
            let cluster = format!("outbound|{port}||{service}.{namespace}.svc.cluster.local");
            GeneratedRoute { header, cluster, answer: service.to_string() }
        })
        .collect();
    (hosts(&spec["hostnames"]), routes)
}

fn hosts(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect()
}

/// Envoy config shaped as istiod generates it for a gateway.
pub fn istio_generated_config(
    plugin: &Value,
    (domains, generated): (Vec<String>, Vec<GeneratedRoute>),
) -> String {
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"].as_str().unwrap(),
        plugin["metadata"]["name"].as_str().unwrap()
    );
    let json = plugin_config_json(plugin, NumberStyle::Protojson);
    let mut routes = String::new();
    let mut subsets = Vec::new();
    for route in generated {
        let headers = match &route.header {
            Some((header, value)) => {
                format!(r#", headers: [{{ name: {header}, string_match: {{ exact: {value} }} }}]"#)
            }
            None => String::new(),
        };
        routes += &format!(
            "              - match: {{ prefix: \"/\"{headers} }}\n                route: {{ cluster: \"{}\" }}\n",
            route.cluster
        );
        subsets.push((route.answer, route.cluster));
    }
    let domains = domains.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ");
    let mut listeners = String::new();
    let mut clusters = String::new();
    for (i, (subset, cluster)) in subsets.iter().enumerate() {
        let port = 10101 + i;
        listeners += &backends::listener(subset, port as u16, 200);
        clusters += &backends::cluster(cluster, port as u16);
    }
    format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 9901 }} }}
static_resources:
  listeners:
  - name: gateway
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 10000 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: gateway
          http_filters:
          - name: {name}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                root_id: {root_id}
                failure_policy: FAIL_RELOAD
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: target/wasm32-wasip1/release/canary_router.wasm }} }}
                  environment_variables: {{ key_values: {{ ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION: "1" }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{json}'
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
          route_config:
            virtual_hosts:
            - name: gateway
              domains: [{domains}]
              routes:
{routes}{listeners}  clusters:
{clusters}"#,
        root_id = plugin["spec"]["pluginName"].as_str().unwrap(),
        json = json.replace('\'', "''"),
    )
}

/// Of 2,000 requests to b.example.com, each answered by `canary` or
/// `stable`, 20 ± 3 % reach `canary`.
fn assert_twenty_percent_reach(envoy: &Envoy, canary: &str, stable: &str) {
    let mut connection = Connection::open(envoy.ingress_port()).unwrap();
    let n = 2_000;
    let reached = (0..n)
        .filter(|_| {
            let body = connection.get("b.example.com", "/", &[]).unwrap().body_text();
            assert!(body == canary || body == stable, "{body}");
            body == canary
        })
        .count();
    let share = reached as f64 * 100.0 / n as f64;
    assert!((share - 20.0).abs() <= 3.0, "B' got {share:.1}% (want 20 ± 3)");
}

#[test]
fn the_istio_generated_filter_config_routes_service_b() {
    let plugin = document("service-b/wasm-plugin-20.yaml");
    let virtual_service = document("service-b/virtual-service.yaml");
    let envoy = Envoy::start(EnvoyConfig::from_text(istio_generated_config(
        &plugin,
        from_virtual_service(&virtual_service),
    )));
    assert!(envoy
        .log()
        .contains("canary-router: config accepted: 1 route(s), target header `x-service-b-version`"));

    assert_twenty_percent_reach(&envoy, "fixed", "stable");

    // Sticky by cookie uid, salted with the route name, and not spoofable.
    let fixed_user = (0..)
        .map(|i| format!("u{i}"))
        .find(|id| sticky_bucket(b"service-b", id.as_bytes()) < 200_000)
        .unwrap();
    let port = envoy.ingress_port();
    for _ in 0..10 {
        let spoofed = [("cookie", "uid=alice"), ("x-service-b-version", "fixed")];
        assert_eq!(get_host(port, "b.example.com", "/", &spoofed).body_text(), "stable");
        let cookie = format!("uid={fixed_user}");
        assert_eq!(get_host(port, "b.example.com", "/", &[("cookie", &cookie)]).body_text(), "fixed");
    }
    // The header-matching routes follow the header the filter wrote, and
    // Envoy 1.40 has the foreign function that asks it to (the filter
    // logs, once, when a host lacks it).
    assert!(envoy.log().contains("config accepted"), "info lines are in the log");
    assert!(!envoy.log().contains("has no clear_route_cache"), "{}", envoy.log());
}

/// Envoy 1.40 selects the route again by itself after the filter wrote the
/// header: with `clearRouteCache: false` the header-matching routes still
/// follow it (what docs/performance.md's saving relies on).
#[test]
fn envoy_1_40_reselects_the_route_without_being_asked() {
    let mut plugin = document("service-b/wasm-plugin-20.yaml");
    plugin["spec"]["pluginConfig"]["clearRouteCache"] = Value::Bool(false);
    let virtual_service = document("service-b/virtual-service.yaml");
    let envoy = Envoy::start(EnvoyConfig::from_text(istio_generated_config(
        &plugin,
        from_virtual_service(&virtual_service),
    )));
    let mut connection = Connection::open(envoy.ingress_port()).unwrap();
    let fixed = (0..1_000)
        .filter(|_| connection.get("b.example.com", "/", &[]).unwrap().body_text() == "fixed")
        .count();
    assert!((150..250).contains(&fixed), "{fixed} of 1000 reached B' by its header-matching route");
}

/// The Gateway API home: istiod's routes for `istio/gateway-api/`'s
/// HTTPRoute, the WasmPlugin it attaches by `targetRefs`: 20% of users to
/// B' by the header rule, sticky, and a client's own header never reaches it.
#[test]
fn the_istio_generated_config_for_an_http_route_routes_service_b() {
    let plugin = document("gateway-api/wasm-plugin.yaml");
    let http_route = document("gateway-api/http-route.yaml");
    let envoy =
        Envoy::start(EnvoyConfig::from_text(istio_generated_config(&plugin, from_http_route(&http_route))));
    assert_twenty_percent_reach(&envoy, "service-b-v2", "service-b-v1");
    let port = envoy.ingress_port();
    let spoofed = [("cookie", "uid=alice"), ("x-service-b-version", "fixed")];
    assert!(sticky_bucket(b"service-b", b"alice") >= 200_000, "alice is a stable user");
    for _ in 0..10 {
        let body = get_host(port, "b.example.com", "/", &spoofed).body_text();
        assert_eq!(body, "service-b-v1", "sticky, and her own header does not move her");
    }
    assert!(!envoy.log().contains("has no clear_route_cache"));
}
