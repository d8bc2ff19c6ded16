//! The filter as Envoy Gateway runs it, built from `envoy-gateway/` the way
//! its translator turns those objects into Envoy config:
//! - the policy's wasm entry becomes an HCM filter named
//!   `envoy.filters.http.wasm/envoyextensionpolicy/NS/NAME/wasm/0`,
//!   disabled, and enabled on each route of the Gateway by a per-route
//!   `FilterConfig`; its VM has that name as `vm_id` (no VM shared with
//!   another policy), the V8 runtime, `root_id` = `rootID`, `fail_open` =
//!   `failOpen`, and `config` as a `StringValue` of the JSON stored;
//! - the code is fetched over HTTP from Envoy Gateway's own wasm server
//!   (the `wasm_cluster`), checked against its sha256;
//! - each HTTPRoute rule becomes a route per match and a cluster named
//!   `httproute/NS/NAME/rule/R`;
//! - a policy change reaches the proxies as a new listener (LDS).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_router::hash::sticky_bucket;
use serde_json::Value;

use super::backends;
use super::envoy::{wasm, Envoy, EnvoyConfig};
use super::http::{get_host, Connection};
use super::istio::documents_under;
use super::prometheus::Prometheus;

const LDS_FILE: &str = "envoy-gateway/lds.yaml";
const HOST: &str = "b.example.com";

fn document(file: &str, kind: &str) -> Value {
    documents_under("envoy-gateway")
        .into_iter()
        .find(|d| d.file == file && d.value["kind"] == kind)
        .unwrap_or_else(|| panic!("envoy-gateway/{file}: no {kind}"))
        .value
}

/// Envoy Gateway's wasm HTTP server: serves the built .wasm to whoever
/// asks, counting the fetches.
struct WasmServer {
    port: u16,
    fetches: Arc<AtomicUsize>,
}

impl WasmServer {
    fn start() -> WasmServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let module = std::fs::read(wasm()).unwrap();
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    module.len()
                );
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&module));
            }
        });
        WasmServer { port, fetches }
    }
}

fn sha256_of_wasm() -> String {
    let output = std::process::Command::new("sha256sum").arg(wasm()).output().unwrap();
    String::from_utf8(output.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// The Gateway's listener as Envoy Gateway pushes it (LDS), with the
/// policy's `config` replaced by `config` (the JSON a user would apply).
fn gateway_listener(policy: &Value, route: &Value, config: &Value, wasm_port: u16, sha256: &str) -> String {
    let meta = &policy["metadata"];
    let policy_name = format!(
        "envoyextensionpolicy/{}/{}/wasm/0",
        meta["namespace"].as_str().unwrap(),
        meta["name"].as_str().unwrap()
    );
    let filter = format!("envoy.filters.http.wasm/{policy_name}");
    let wasm = &policy["spec"]["wasm"][0];
    let json = serde_json::to_string(config).unwrap().replace('\'', "''");
    let (namespace, name) =
        (route["metadata"]["namespace"].as_str().unwrap(), route["metadata"]["name"].as_str().unwrap());
    let mut routes = String::new();
    // Envoy Gateway orders a host's routes by how much they match: the
    // header rules before the catch-all.
    let rules = route["spec"]["rules"].as_array().unwrap();
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|r| rules[*r].get("matches").is_none());
    for r in order {
        let headers = match rules[r]["matches"][0]["headers"][0].as_object() {
            Some(h) => format!(
                r#", headers: [{{ name: "{}", string_match: {{ exact: "{}" }} }}]"#,
                h["name"].as_str().unwrap(),
                h["value"].as_str().unwrap()
            ),
            None => String::new(),
        };
        routes += &format!(
            r#"            - name: "httproute/{namespace}/{name}/rule/{r}/match/0/{host}"
              match: {{ prefix: "/"{headers} }}
              route: {{ cluster: "httproute/{namespace}/{name}/rule/{r}" }}
              typed_per_filter_config:
                "{filter}": {{ "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: {{}} }}
"#,
            host = HOST.replace('.', "_"),
        );
    }
    format!(
        r#"resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: default/canary-gateway/http
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 10000 }} }}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: http-10000
        http_filters:
        - name: "{filter}"
          disabled: true
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
            config:
              name: {wasm_name}
              root_id: {root_id}
              fail_open: {fail_open}
              vm_config:
                vm_id: "{policy_name}"
                runtime: envoy.wasm.runtime.v8
                code:
                  remote:
                    http_uri: {{ uri: "http://127.0.0.1:{wasm_port}/{sha256}.wasm", cluster: wasm_cluster, timeout: 10s }}
                    sha256: "{sha256}"
              configuration:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{json}'
        - name: envoy.filters.http.router
          typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
        route_config:
          name: default/canary-gateway/http
          virtual_hosts:
          - name: default/canary-gateway/http/{host_name}
            domains: ["{HOST}", "{HOST}:*"]
            routes:
{routes}"#,
        wasm_name = wasm["name"].as_str().unwrap(),
        root_id = wasm["rootID"].as_str().unwrap(),
        fail_open = wasm["failOpen"].as_bool().unwrap(),
        host_name = HOST.replace('.', "_"),
    )
}

/// The bootstrap: the EnvoyProxy's stats tags, the Gateway's listener from
/// LDS, a cluster per rule of the HTTPRoute to its Service's backend, and
/// the wasm server's cluster.
/// `statuses` gives each Service's answer (200 unless named).
fn bootstrap(route: &Value, wasm_port: u16, statuses: &[(&str, u16)]) -> String {
    // Each Service a rule sends to, on a port of the test's own.
    let services = [("service-b-v1", 10101), ("service-b-v2", 10102), ("prometheus", 10103)];
    let port_of = |service: &str| {
        services.iter().find(|(s, _)| *s == service).unwrap_or_else(|| panic!("no backend for {service}")).1
    };
    let (namespace, name) =
        (route["metadata"]["namespace"].as_str().unwrap(), route["metadata"]["name"].as_str().unwrap());
    let mut clusters = String::new();
    for (r, rule) in route["spec"]["rules"].as_array().unwrap().iter().enumerate() {
        let service = rule["backendRefs"][0]["name"].as_str().unwrap();
        clusters += &backends::cluster(&format!("httproute/{namespace}/{name}/rule/{r}"), port_of(service));
    }
    let mut listeners = String::new();
    // Prometheus's port is the real Prometheus a test may start there.
    for (service, port) in &services[..2] {
        let status = statuses.iter().find(|(s, _)| s == service).map_or(200, |(_, status)| *status);
        listeners += &backends::listener(service, *port, status);
    }
    // What the EnvoyProxy merges into Envoy Gateway's bootstrap.
    let merged = document("envoy-proxy.yaml", "EnvoyProxy")["spec"]["bootstrap"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    format!(
        r#"{merged}node: {{ id: envoy-gateway-test, cluster: envoy-gateway-test }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 9901 }} }}
dynamic_resources:
  lds_config: {{ path_config_source: {{ path: {LDS_FILE} }}, resource_api_version: V3 }}
static_resources:
  listeners:
{listeners}  clusters:
{clusters}  - name: wasm_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: wasm_cluster
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {wasm_port} }} }} }} }}] }}]
"#
    )
}

/// Envoy Gateway's proxy for `envoy-gateway/`, with the policy in
/// `policy_file` and its config replaced by `config`.
struct Gateway {
    envoy: Envoy,
    /// The real Prometheus behind rule 2, scraping this Envoy.
    prometheus: Prometheus,
    policy: Value,
    route: Value,
    wasm_port: u16,
    sha256: String,
    pushes: u64,
}

impl Gateway {
    /// Starts the proxy and the Prometheus its rollback asks, and waits
    /// until the filter heard from Prometheus (until then a split sends
    /// the canary nothing: it may have been rolled back fleet-wide).
    fn start(policy_file: &str, config: &Value, statuses: &[(&str, u16)]) -> (Gateway, WasmServer) {
        let policy = document(policy_file, "EnvoyExtensionPolicy");
        let route = document("http-route.yaml", "HTTPRoute");
        let server = WasmServer::start();
        let sha256 = sha256_of_wasm();
        let mut envoy_config = EnvoyConfig::from_text(bootstrap(&route, server.port, statuses));
        envoy_config
            .files
            .push((LDS_FILE.to_string(), gateway_listener(&policy, &route, config, server.port, &sha256)));
        let envoy = Envoy::start(envoy_config);
        let prometheus = Prometheus::start(envoy.port(10103), &[envoy.admin_port()]);
        let wasm_port = server.port;
        let gateway = Gateway { envoy, prometheus, policy, route, wasm_port, sha256, pushes: 1 };
        gateway.wait_for_the_fleet(200_000);
        (gateway, server)
    }

    /// Until a user of the canary's first `ppm` (sticky by cookie uid)
    /// reaches B': the filter heard from Prometheus through rule 2 that no
    /// proxy of the fleet rolled this split back.
    fn wait_for_the_fleet(&self, ppm: u32) {
        let user = (0..).map(|i| format!("u{i}")).find(|u| sticky_bucket(b"service-b", u.as_bytes()) < ppm);
        let cookie = format!("uid={}", user.unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while get_host(self.envoy.ingress_port(), HOST, "/", &[("cookie", &cookie)]).body_text()
            != "service-b-v2"
        {
            assert!(
                Instant::now() < deadline,
                "the canary never got its users; Prometheus log:\n{}\nthe proxy's queries:\n{}",
                self.prometheus.log(),
                self.envoy
                    .prometheus()
                    .lines()
                    .filter(|l| l.contains("prometheus_queries"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Each worker's VM takes on the fleet's answer on its next
        // progress tick, a second at most.
        std::thread::sleep(Duration::from_millis(1_100));
    }

    /// Applies a changed policy `config`: Envoy Gateway pushes the
    /// listener anew; returns once Envoy took it and, if the canary has
    /// users (`ppm` of them), once they reach it.
    fn push(&mut self, config: &Value, ppm: u32) {
        let listener = gateway_listener(&self.policy, &self.route, config, self.wasm_port, &self.sha256);
        self.envoy.replace_file(LDS_FILE, &listener);
        self.pushes += 1;
        let want = self.pushes;
        self.envoy.wait_until("the new listener", || {
            self.envoy.stat("listener_manager.lds.update_success") == Some(want)
        });
        // The new listener serves once its filter's VM is up.
        self.envoy.wait_until("the new listener to warm", || {
            self.envoy.stat("listener_manager.total_listeners_warming") == Some(0)
        });
        if ppm > 0 {
            self.wait_for_the_fleet(ppm);
        }
    }

    /// Share of `n` new users (no cookie) that reach `answer`.
    fn share(&self, n: usize, answer: &str) -> f64 {
        let mut connection = Connection::open(self.envoy.ingress_port()).unwrap();
        let reached = (0..n)
            .filter(|_| {
                let response = connection.get(HOST, "/", &[]).unwrap();
                assert_eq!(response.status, 200, "{}", response.body_text());
                response.body_text() == answer
            })
            .count();
        reached as f64 * 100.0 / n as f64
    }
}

/// The policy's config, polling Prometheus every second instead of 10.
fn config_of(policy_file: &str) -> Value {
    let mut config = document(policy_file, "EnvoyExtensionPolicy")["spec"]["wasm"][0]["config"].clone();
    let every = &mut config["routes"][0]["rules"][1]["split"]["rollback"]["prometheus"]["every"];
    assert_eq!(every, "10s");
    *every = "1s".into();
    config
}

fn set_weights(config: &mut Value, fixed: u32) {
    let weights = &mut config["routes"][0]["rules"][1]["split"]["weights"];
    assert_eq!(weights[0]["target"], "fixed");
    weights[0]["weight"] = fixed.into();
    weights[1]["weight"] = (100 - fixed).into();
}

/// Rules, a sticky split, a live weight change and a one-edit rollback,
/// through the config Envoy Gateway builds from the image policy; the
/// filter code fetched over HTTP and checked against its sha256.
#[test]
fn the_envoy_gateway_translation_routes_service_b() {
    let mut config = config_of("extension-policy.yaml");
    let (mut gateway, server) = Gateway::start("extension-policy.yaml", &config, &[]);
    assert!(server.fetches.load(Ordering::SeqCst) >= 1, "the code was not fetched:\n{}", gateway.envoy.log());
    assert!(
        gateway
            .envoy
            .log()
            .contains("canary-router: config accepted: 1 route(s), target header `x-service-b-version`"),
        "{}",
        gateway.envoy.log()
    );

    // The rule: cookie canary=always goes to B'; a client's own header
    // never does.
    let port = gateway.envoy.ingress_port();
    let stable_user =
        (0..).map(|i| format!("u{i}")).find(|u| sticky_bucket(b"service-b", u.as_bytes()) >= 200_000);
    let stable_user = format!("uid={}", stable_user.unwrap());
    let forced = format!("{stable_user}; canary=always");
    for _ in 0..10 {
        assert_eq!(get_host(port, HOST, "/", &[("cookie", &forced)]).body_text(), "service-b-v2");
        let spoofed = [("cookie", stable_user.as_str()), ("x-service-b-version", "fixed")];
        assert_eq!(get_host(port, HOST, "/", &spoofed).body_text(), "service-b-v1");
        let internal =
            [("cookie", stable_user.as_str()), ("x-service-b-version", "canary-router-prometheus")];
        assert_eq!(
            get_host(port, HOST, "/", &internal).body_text(),
            "service-b-v1",
            "no client reaches rule 2"
        );
    }

    // The sticky split: 20 ± 3 % of users.
    let share = gateway.share(2_000, "service-b-v2");
    assert!(
        (share - 20.0).abs() <= 3.0,
        "B' got {share:.1}% (want 20 ± 3)\n{}",
        gateway.envoy.log().lines().filter(|l| l.contains("canary-router:")).collect::<Vec<_>>().join("\n")
    );

    // The shadow: copies of 5% go to rule 1's cluster and are answered.
    let sent = r#"canary_router_shadow_requests_total{route="service-b",cluster="httproute/default/service-b/rule/1"}"#;
    gateway.envoy.wait_until("shadow copies", || gateway.envoy.sample(sent) >= 40);
    let failed: f64 = gateway
        .envoy
        .prometheus()
        .lines()
        .filter(|l| l.starts_with("canary_router_shadow_failures_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(failed, 0.0, "shadow copies failed");

    // A live weight change: 20% → 50%, pushed as Envoy Gateway pushes it.
    set_weights(&mut config, 50);
    gateway.push(&config, 500_000);
    let share = gateway.share(2_000, "service-b-v2");
    assert!((share - 50.0).abs() <= 4.0, "after the push B' got {share:.1}% (want 50 ± 4)");

    // Rollback is one edit: 0%, and every user is back on B.
    set_weights(&mut config, 0);
    gateway.push(&config, 0);
    assert_eq!(gateway.share(500, "service-b-v2"), 0.0, "after the rollback");
    assert_eq!(
        get_host(port, HOST, "/", &[("cookie", &forced)]).body_text(),
        "service-b-v2",
        "the rule stays"
    );
}

/// The policy that fetches the filter over HTTP carries the same config;
/// a B' answering 503s is rolled back by the filter itself, and its
/// error-rate check is answered by Prometheus through rule 2's cluster.
#[test]
fn the_envoy_gateway_translation_rolls_a_failing_canary_back() {
    let config = config_of("extension-policy-http.yaml");
    let (gateway, _server) = Gateway::start("extension-policy-http.yaml", &config, &[("service-b-v2", 503)]);

    // 20% of users reach the failing B' until the window holds 100 of its
    // answers over 2% errors; then every user is on B.
    let mut connection = Connection::open(gateway.envoy.ingress_port()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failed = 0;
    let rolled_back =
        |e: &Envoy| e.sample_with("canary_router_rolled_back", &[("route", "service-b")]) == Some(1.0);
    while !rolled_back(&gateway.envoy) {
        assert!(Instant::now() < deadline, "never rolled back after {failed} failures");
        if connection.get(HOST, "/", &[]).unwrap().status == 503 {
            failed += 1;
        }
    }
    // minRequests is 100, one of them the request that waited for the fleet.
    assert!((99..=300).contains(&failed), "{failed} users saw B' fail before the rollback");
    // The other worker's VM takes the rollback on at its next tick.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(gateway.share(500, "service-b-v2"), 0.0, "after the rollback");

    // The Prometheus check is answered through rule 2's cluster.
    let check = |e: &Envoy| {
        e.sample_with(
            "canary_router_check_value_millionths",
            &[("route", "service-b"), ("check", "error-rate")],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while check(&gateway.envoy).is_none() {
        assert!(
            Instant::now() < deadline,
            "the check was never answered; Prometheus log:\n{}\nqueries:\n{}",
            gateway.prometheus.log(),
            gateway
                .envoy
                .prometheus()
                .lines()
                .filter(|l| l.contains("prometheus_queries"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
