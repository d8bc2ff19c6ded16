//! The filter as Envoy Gateway runs it, built from `envoy-gateway/` the way
//! its translator turns those objects into Envoy config (`envoy_gateway.rs`
//! says how), with real traffic: rules, a sticky split, shadowing, a live
//! weight change, a rollback edit, and a failing canary rolled back with
//! Prometheus reached through the HTTPRoute.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use canary_router_core::hashing::hash::sticky_bucket;
use serde_json::Value;

use super::envoy::Envoy;
use super::envoy_gateway::{Backend, Gateway};
use super::http::{get_host, Connection};
use super::istio::documents_under;
use super::prometheus::Prometheus;

const HOST: &str = "b.example.com";

fn document(file: &str, kind: &str) -> Value {
    documents_under("envoy-gateway")
        .into_iter()
        .find(|d| d.file == file && d.value["kind"] == kind)
        .unwrap_or_else(|| panic!("envoy-gateway/{file}: no {kind}"))
        .value
}

/// `envoy-gateway/` running: the proxy Envoy Gateway makes of it and the
/// real Prometheus behind the HTTPRoute's rule 2, scraping it.
struct ServiceB {
    gateway: Gateway,
    prometheus: Prometheus,
}

impl ServiceB {
    /// Starts the proxy with the policy in `policy_file`, its config
    /// replaced by `config`, each Service answering 200 unless `statuses`
    /// says otherwise; waits until the filter heard from Prometheus (until
    /// then a split sends the canary nothing: it may have been rolled back
    /// fleet-wide).
    fn start(policy_file: &str, config: &Value, statuses: &[(&str, u16)]) -> ServiceB {
        let status = |service: &str| statuses.iter().find(|(s, _)| *s == service).map_or(200, |(_, s)| *s);
        let backends = [
            Backend { service: "service-b-v1", port: 10101, status: Some(status("service-b-v1")) },
            Backend { service: "service-b-v2", port: 10102, status: Some(status("service-b-v2")) },
            Backend { service: "prometheus", port: 10103, status: None },
        ];
        // What the EnvoyProxy merges into Envoy Gateway's bootstrap.
        let merged = document("envoy-proxy.yaml", "EnvoyProxy")["spec"]["bootstrap"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        let gateway = Gateway::start(
            document(policy_file, "EnvoyExtensionPolicy"),
            vec![document("http-route.yaml", "HTTPRoute")],
            config,
            &backends,
            &merged,
        );
        let prometheus = Prometheus::start(gateway.envoy.port(10103), &[gateway.envoy.admin_port()]);
        let service_b = ServiceB { gateway, prometheus };
        service_b.wait_for_the_fleet(200_000);
        service_b
    }

    fn envoy(&self) -> &Envoy {
        &self.gateway.envoy
    }

    /// What a failed wait shows: Prometheus's log and the proxy's polls.
    fn polls(&self) -> String {
        let queries: Vec<String> = self
            .envoy()
            .prometheus()
            .lines()
            .filter(|l| l.contains("prometheus_queries"))
            .map(String::from)
            .collect();
        format!("Prometheus log:\n{}\nthe proxy's queries:\n{}", self.prometheus.log(), queries.join("\n"))
    }

    /// Until a user of the canary's first `ppm` (sticky by cookie uid)
    /// reaches B': the filter heard from Prometheus through rule 2 that no
    /// proxy of the fleet rolled this split back.
    fn wait_for_the_fleet(&self, ppm: u32) {
        let user = (0..).map(|i| format!("u{i}")).find(|u| sticky_bucket(b"service-b", u.as_bytes()) < ppm);
        let cookie = format!("uid={}", user.unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while get_host(self.envoy().ingress_port(), HOST, "/", &[("cookie", &cookie)]).body_text()
            != "service-b-v2"
        {
            assert!(Instant::now() < deadline, "the canary never got its users; {}", self.polls());
            std::thread::sleep(Duration::from_millis(100));
        }
        // Each worker's VM takes on the fleet's answer on its next
        // progress tick, a second at most.
        std::thread::sleep(Duration::from_millis(1_100));
    }

    /// Applies a changed policy `config` (Envoy Gateway pushes the
    /// listener anew) and, if the canary has users (`ppm` of them), waits
    /// until they reach it.
    fn push(&mut self, config: &Value, ppm: u32) {
        self.gateway.push(config);
        if ppm > 0 {
            self.wait_for_the_fleet(ppm);
        }
    }

    /// Share of `n` new users (no cookie) that reach `answer`.
    fn share(&self, n: usize, answer: &str) -> f64 {
        let mut connection = Connection::open(self.envoy().ingress_port()).unwrap();
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

/// The policy's config (the .wasm's or the dynamic module's), polling
/// Prometheus every second instead of 10.
fn config_of(policy_file: &str) -> Value {
    let spec = &document(policy_file, "EnvoyExtensionPolicy")["spec"];
    let mut config = spec["wasm"][0]["config"].clone();
    if config.is_null() {
        config = spec["dynamicModule"][0]["config"].clone();
    }
    let every = &mut config["routes"][0]["rules"][1]["split"]["rollback"]["prometheus"]["every"];
    assert_eq!(every, "10s");
    *every = "1s".into();
    config
}

/// The config of the dynamic module's policy.
const MODULE_POLICY: &str = "extension-policy-dynmod.yaml";

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
    let config = config_of("extension-policy.yaml");
    let mut service_b = ServiceB::start("extension-policy.yaml", &config, &[]);
    let fetches = service_b.gateway.server.fetches.load(Ordering::SeqCst);
    assert!(fetches >= 1, "the code was not fetched:\n{}", service_b.envoy().log());
    routes_service_b(&mut service_b, config);
}

/// The same through the dynamic module's policy: the module loaded by the
/// path the EnvoyProxy allows, with the same routing and shadow copies.
#[test]
fn the_envoy_gateway_translation_of_the_dynamic_module_routes_service_b() {
    let config = config_of(MODULE_POLICY);
    let mut service_b = ServiceB::start(MODULE_POLICY, &config, &[]);
    assert!(
        service_b.envoy().log().contains("dynamic_modules"),
        "Envoy did not load the module:\n{}",
        service_b.envoy().log()
    );
    routes_service_b(&mut service_b, config);
}

/// The config accepted; the rule, a client's own header ignored, the sticky
/// split, the shadow copies, a live weight change and a one-edit rollback.
fn routes_service_b(service_b: &mut ServiceB, mut config: Value) {
    assert!(
        service_b
            .envoy()
            .log()
            .contains("canary-router: config accepted: 1 route(s), target header `x-service-b-version`"),
        "{}",
        service_b.envoy().log()
    );

    // The rule: cookie canary=always goes to B'; a client's own header
    // never does.
    let port = service_b.envoy().ingress_port();
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
    let share = service_b.share(2_000, "service-b-v2");
    eprintln!("envoy gateway: B' got {share:.1}% of 2,000 new users at 20%");
    assert!(
        (share - 20.0).abs() <= 3.0,
        "B' got {share:.1}% (want 20 ± 3)\n{}",
        service_b
            .envoy()
            .log()
            .lines()
            .filter(|l| l.contains("canary-router:"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The shadow: copies of 5% go to rule 1's cluster and are answered.
    let sent = r#"canary_router_shadow_requests_total{route="service-b",cluster="httproute/default/service-b/rule/1"}"#;
    service_b.envoy().wait_until_requested("shadow copies", HOST, || service_b.envoy().sample(sent) >= 40);
    let failed: f64 = service_b
        .envoy()
        .prometheus()
        .lines()
        .filter(|l| l.starts_with("canary_router_shadow_failures_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(failed, 0.0, "shadow copies failed");

    // A live weight change: 20% → 50%, pushed as Envoy Gateway pushes it.
    set_weights(&mut config, 50);
    service_b.push(&config, 500_000);
    let share = service_b.share(2_000, "service-b-v2");
    eprintln!("envoy gateway: B' got {share:.1}% of 2,000 new users after the push to 50%");
    assert!((share - 50.0).abs() <= 4.0, "after the push B' got {share:.1}% (want 50 ± 4)");

    // Rollback is one edit: 0%, and every user is back on B.
    set_weights(&mut config, 0);
    service_b.push(&config, 0);
    assert_eq!(service_b.share(500, "service-b-v2"), 0.0, "after the rollback");
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
    let service_b = ServiceB::start("extension-policy-http.yaml", &config, &[("service-b-v2", 503)]);

    // 20% of users reach the failing B' until the window holds 100 of its
    // answers over 2% errors; then every user is on B.
    let mut connection = Connection::open(service_b.envoy().ingress_port()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failed = 0;
    let rolled_back =
        |e: &Envoy| e.sample_with("canary_router_rolled_back", &[("route", "service-b")]) == Some(1.0);
    while !rolled_back(service_b.envoy()) {
        assert!(Instant::now() < deadline, "never rolled back after {failed} failures");
        if connection.get(HOST, "/", &[]).unwrap().status == 503 {
            failed += 1;
        }
    }
    // minRequests is 100, one of them the request that waited for the fleet.
    assert!((99..=300).contains(&failed), "{failed} users saw B' fail before the rollback");
    eprintln!("envoy gateway: {failed} requests saw the failing B' before it was rolled back");
    // The other worker's VM takes the rollback on at its next tick.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(service_b.share(500, "service-b-v2"), 0.0, "after the rollback");

    // The Prometheus check is answered through rule 2's cluster.
    let check = |e: &Envoy| {
        e.sample_with(
            "canary_router_check_value_millionths",
            &[("route", "service-b"), ("check", "error-rate")],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while check(service_b.envoy()).is_none() {
        assert!(Instant::now() < deadline, "the check was never answered; {}", service_b.polls());
        std::thread::sleep(Duration::from_millis(200));
    }
}
