//! `canary-router from-nginx --to HOME` on `examples/nginx/ingress.yaml`,
//! its output run as the home runs it: the Envoy bootstrap as it is, the
//! Envoy Gateway objects through the config Envoy Gateway makes of them.
//! Either way the converted canary routes as ingress-nginx did: header
//! `x-canary` and cookie `canary` (`always`/`never`), and 20% of the rest.

use std::process::Command;

use serde_json::{json, Value};

use super::backends;
use super::envoy::{repo, Envoy, EnvoyConfig};
use super::envoy_gateway::{Backend, Gateway};
use super::http::{get_host, Connection};
use super::istio::yaml_documents;
use super::istio_shape;

const HOST: &str = "a.example.com";

/// What `from-nginx --to HOME examples/nginx/ingress.yaml` prints.
fn from_nginx(home: &str) -> String {
    from_nginx_of(home, "examples/nginx/ingress.yaml")
}

fn from_nginx_of(home: &str, file: &str) -> String {
    let output = Command::new(crate::built::require_fresh_cli())
        .args(["from-nginx", "--to", home, file])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The canary pair's behaviour, through the proxy on `port`.
fn assert_routes_as_ingress_nginx_did(port: u16) {
    let answer = |headers: &[(&str, &str)]| get_host(port, HOST, "/cart", headers).body_text();
    for _ in 0..5 {
        assert_eq!(answer(&[("x-canary", "always")]), "service-a-canary");
        assert_eq!(answer(&[("cookie", "canary=always")]), "service-a-canary");
        assert_eq!(answer(&[("x-canary", "never"), ("cookie", "canary=always")]), "service-a");
        // A client's own target header changes nothing.
        assert_eq!(answer(&[("x-canary", "never"), ("x-route-target", "service-a-canary")]), "service-a");
    }
    let mut connection = Connection::open(port).unwrap();
    let n = 2_000;
    let canary = (0..n)
        .filter(|_| {
            let response = connection.get(HOST, "/", &[]).unwrap();
            assert_eq!(response.status, 200, "{}", response.body_text());
            response.body_text() == "service-a-canary"
        })
        .count();
    let share = canary as f64 * 100.0 / n as f64;
    eprintln!("migrated canary pair: {share:.1}% of {n} requests to the canary");
    assert!((share - 20.0).abs() <= 3.0, "the canary got {share:.1}% (want 20 ± 3)");
}

/// The bootstrap `from-nginx --to envoy` wrote for `file`, as written but
/// for its clusters' Service DNS names, pointed at local backends that
/// answer with their Service's name, and its listener on loopback.
fn local_bootstrap(file: &str) -> Envoy {
    let mut bootstrap = yaml_documents(&from_nginx_of("envoy", file)).remove(0);
    let resources = &mut bootstrap["static_resources"];
    resources["listeners"][0]["address"]["socket_address"] =
        json!({ "address": "127.0.0.1", "port_value": 10000 });
    let mut ports = Vec::new();
    for (i, cluster) in resources["clusters"].as_array_mut().unwrap().iter_mut().enumerate() {
        let name = cluster["name"].as_str().unwrap().to_string();
        let socket = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"];
        let address = socket["address"].as_str().unwrap();
        assert!(
            address.starts_with(&format!("{name}.")) && address.ends_with(".svc.cluster.local"),
            "{address}"
        );
        assert_eq!(socket["port_value"], 80);
        let port = 10101 + i as u16;
        *socket = json!({ "address": "127.0.0.1", "port_value": port });
        cluster["type"] = json!("STATIC");
        ports.push((name, port));
    }
    for (name, port) in &ports {
        let listener: Value =
            serde_norway::from_str(&format!("l:\n{}", backends::listener(name, *port, 200))).unwrap();
        resources["listeners"].as_array_mut().unwrap().push(listener["l"][0].clone());
    }
    // The module where the test run has it.
    let filter =
        &mut resources["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0];
    filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] =
        json!("target/wasm32-wasip1/release/canary_router.wasm");
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = json!(9901);
    // The harness moves `port_value: N ` (with its space) to free ports.
    let mut yaml = serde_norway::to_string(&bootstrap).unwrap();
    for port in [9901, 10000].into_iter().chain(ports.iter().map(|(_, p)| *p)) {
        yaml = yaml.replace(&format!("port_value: {port}\n"), &format!("port_value: {port} \n"));
    }
    Envoy::start(EnvoyConfig::from_text(yaml))
}

/// `--to envoy`: the bootstrap runs as written, its clusters' Service DNS
/// names pointed at local backends (the only change), its listener on
/// loopback.
#[test]
fn from_nginx_s_envoy_bootstrap_routes_the_canary_pair() {
    let envoy = local_bootstrap("examples/nginx/ingress.yaml");
    assert_routes_as_ingress_nginx_did(envoy.ingress_port());
}

/// One host, paths in an order nginx does not use (an exact path beside
/// prefixes, a nested prefix): each request reaches the Service whose
/// location nginx would pick, and its canary version with the header.
#[test]
fn from_nginx_s_envoy_bootstrap_routes_every_path_where_ingress_nginx_would() {
    let envoy = local_bootstrap("examples/nginx/paths.yaml");
    let table = [
        ("/", "web"),
        ("/status", "status"),
        ("/status/x", "web"),
        ("/api", "api"),
        ("/api/x", "api"),
        ("/apix", "web"),
        ("/api/v2/x", "api-v2"),
        ("/api/v20", "api"),
    ];
    for (path, service) in table {
        let answer = |headers: &[(&str, &str)]| {
            get_host(envoy.ingress_port(), "shop.example.com", path, headers).body_text()
        };
        assert_eq!(answer(&[]), service, "{path}");
        assert_eq!(answer(&[("x-canary", "always")]), format!("{service}-canary"), "{path}");
        assert_eq!(answer(&[("x-canary", "never"), ("x-route-target", "web-canary")]), service, "{path}");
    }
    eprintln!(
        "from-nginx --to envoy on examples/nginx/paths.yaml: {} paths, each to its Service and canary",
        table.len()
    );
}

/// `--to envoy-gateway`: the Gateway, HTTPRoute and EnvoyExtensionPolicy
/// it writes, as Envoy Gateway turns them into Envoy config.
#[test]
fn from_nginx_s_envoy_gateway_objects_route_the_canary_pair() {
    let documents = yaml_documents(&from_nginx("envoy-gateway"));
    let of = |kind: &str| documents.iter().filter(|d| d["kind"] == kind).cloned().collect::<Vec<_>>();
    let [policy] = &of("EnvoyExtensionPolicy")[..] else { panic!("want one policy") };
    let config = policy["spec"]["wasm"][0]["config"].clone();
    let backends = [
        Backend { service: "service-a", port: 10101, status: Some(200) },
        Backend { service: "service-a-canary", port: 10102, status: Some(200) },
    ];
    let gateway = Gateway::start(policy.clone(), of("HTTPRoute"), &config, &backends, "");
    assert_routes_as_ingress_nginx_did(gateway.envoy.ingress_port());
}

/// `--to istio` and `--to istio-gateway-api`: the VirtualService or
/// HTTPRoute and the WasmPlugin it writes, as istiod turns them into the
/// gateway's Envoy config.
#[test]
fn from_nginx_s_istio_objects_route_the_canary_pair() {
    for home in ["istio", "istio-gateway-api"] {
        let documents = yaml_documents(&from_nginx(home));
        let find = |kind: &str| documents.iter().find(|d| d["kind"] == kind).unwrap().clone();
        let plugin = find("WasmPlugin");
        let generated = match home {
            "istio" => istio_shape::from_virtual_service(&find("VirtualService")),
            _ => istio_shape::from_http_route(&find("HTTPRoute")),
        };
        let envoy =
            Envoy::start(EnvoyConfig::from_text(istio_shape::istio_generated_config(&plugin, generated)));
        assert_routes_as_ingress_nginx_did(envoy.ingress_port());
    }
}
