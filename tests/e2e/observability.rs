//! Counters as Prometheus scrapes them from the real Envoy, and shadow
//! copies reaching a real shadow listener.

use std::time::{Duration, Instant};

use super::envoy::{free_ports, Envoy, EnvoyConfig};
use super::http::Connection;
use super::prometheus::Prometheus;

/// The example's service-a route, plus a target with no cluster (Envoy
/// answers 503) and, given a cluster and a percentage, a mirror.
fn config(mirror: Option<(&str, u32)>) -> String {
    let mirror = mirror.map_or(String::new(), |(cluster, percent)| {
        format!(
            r#",
      "mirror": {{ "cluster": "{cluster}", "percent": {percent} }}"#
        )
    });
    format!(
        r#"{{
  "countResponses": true,
  "routes": [
    {{
      "name": "service-a",
      "hosts": ["a.example.com"],
      "default": "service-a",
      "rules": [
        {{ "name": "beta", "match": [{{ "header": "foo", "exact": "bar" }}], "target": "service-a-canary" }},
        {{ "name": "broken", "match": [{{ "header": "x-broken", "present": true }}], "target": "no-such-cluster" }}
      ]{mirror}
    }},
    {{ "name": "elsewhere", "hosts": ["elsewhere.example.com"], "default": "service-a" }}
  ]
}}"#
    )
}

/// envoy/envoy.yaml's Envoy (or the dynamic module's, `module`) with the
/// example's route mirrored to `mirror_cluster`.
fn start(module: bool, mirror_cluster: &str, percent: u32) -> Envoy {
    let home =
        if module { EnvoyConfig::dynamic_module() } else { EnvoyConfig::from_repo("envoy/envoy.yaml") };
    Envoy::start(home.with_filter_config(&config(Some((mirror_cluster, percent)))))
}

#[test]
fn prometheus_counts_requests_responses_and_rules_per_target_exactly() {
    let envoy = Envoy::start(EnvoyConfig::inline(&config(None)));
    counts_per_target_exactly(&envoy);
    // Every VM loads the config: the main thread's (Envoy loads it there
    // more than once) and each of the 2 workers'.
    assert!(envoy.sample("canary_router_config_accepted_total{}") >= 3);
    assert_eq!(envoy.sample("canary_router_config_rejected_total{}"), 0);
}

#[test]
fn the_dynamic_module_counts_the_same_series_as_prometheus_reads_them() {
    let envoy = Envoy::start(EnvoyConfig::inline_module(&config(None)));
    counts_per_target_exactly(&envoy);
}

/// The counters a user reads through Prometheus (scraping with the shipped
/// job, `dashboards/prometheus-scrape.yaml`), after 7 requests matched by a
/// rule, 5 by the default, 3 to a target with no cluster and 2 to no route.
fn counts_per_target_exactly(envoy: &Envoy) {
    let port = free_ports(1)[0];
    let prometheus = Prometheus::start(port, &[envoy.admin_port()]);
    let mut c = Connection::open(envoy.ingress_port()).unwrap();
    for _ in 0..7 {
        assert_eq!(c.get("a.example.com", "/", &[(b"foo", b"bar")]).unwrap().status, 200);
    }
    for _ in 0..5 {
        assert_eq!(c.get("a.example.com", "/", &[]).unwrap().status, 200);
    }
    for _ in 0..3 {
        assert_eq!(c.get("a.example.com", "/", &[(b"x-broken", b"1")]).unwrap().status, 503);
    }
    for _ in 0..2 {
        assert_eq!(c.get("nowhere.test", "/", &[]).unwrap().status, 404);
    }
    let r = r#"route="service-a""#;
    let canary = format!(r#"{r},target="service-a-canary""#);
    let stable = format!(r#"{r},target="service-a""#);
    let broken = format!(r#"{r},target="no-such-cluster""#);
    let value = |promql: &str| -> Option<f64> {
        let answer = prometheus.query(promql);
        let result = answer["data"]["result"].as_array()?;
        (result.len() == 1).then(|| result[0]["value"][1].as_str()?.parse().ok())?
    };
    // The .wasm adds its counts to Envoy's within a second; the module
    // within a tenth of one while requests come (to another route here);
    // Prometheus scrapes every second.
    envoy.wait_until_requested("Prometheus to scrape every count", "elsewhere.example.com", || {
        value("canary_router_unrouted_total") == Some(2.0)
            && value(&format!(r#"canary_router_responses_total{{{broken},status_class="5xx"}}"#)) == Some(3.0)
            && value(&format!("canary_router_default_total{{{r}}}")) == Some(5.0)
    });
    let expected = [
        (format!("canary_router_requests_total{{{canary}}}"), 7.0),
        (format!("canary_router_requests_total{{{stable}}}"), 5.0),
        (format!("canary_router_requests_total{{{broken}}}"), 3.0),
        (format!(r#"canary_router_responses_total{{{canary},status_class="2xx"}}"#), 7.0),
        (format!(r#"canary_router_responses_total{{{stable},status_class="2xx"}}"#), 5.0),
        (format!(r#"canary_router_responses_total{{{broken},status_class="5xx"}}"#), 3.0),
        // Shown at zero before the first of them, for a ratio's sake.
        (format!(r#"canary_router_responses_total{{{canary},status_class="5xx"}}"#), 0.0),
        (format!(r#"canary_router_rule_hits_total{{{r},rule="beta"}}"#), 7.0),
        (format!(r#"canary_router_rule_hits_total{{{r},rule="broken"}}"#), 3.0),
    ];
    for (promql, count) in expected {
        assert_eq!(value(&promql), Some(count), "{promql}; Envoy's answer:\n{}", envoy.prometheus());
    }
}

#[test]
fn shadow_copies_reach_the_shadow_and_client_answers_are_unchanged() {
    copies_reach_the_shadow(&start(false, "service-a-shadow", 50));
}

#[test]
fn the_dynamic_module_s_shadow_copies_reach_the_shadow_and_client_answers_are_unchanged() {
    copies_reach_the_shadow(&start(true, "service-a-shadow", 50));
}

/// Half of 400 requests copied to the shadow listener, every copy received
/// and answered, and every client answered by its own version.
fn copies_reach_the_shadow(envoy: &Envoy) {
    let mut c = Connection::open(envoy.ingress_port()).unwrap();
    let n = 400;
    for i in 0..n {
        let response = if i % 2 == 0 {
            c.get("a.example.com", "/", &[]).unwrap()
        } else {
            c.get("a.example.com", "/", &[(b"foo", b"bar")]).unwrap()
        };
        assert_eq!(response.status, 200);
        let want = if i % 2 == 0 { "service-a" } else { "service-a-canary" };
        assert_eq!(response.body_text(), want, "a client saw the shadow's answer");
    }
    let sent_series = r#"canary_router_shadow_requests_total{route="service-a",cluster="service-a-shadow"}"#;
    let received = "http.backend_service_a_shadow.downstream_rq_completed";
    envoy.wait_until_requested("the shadow listener to receive every copy", "nowhere.test", || {
        envoy.sample(sent_series) > 0 && envoy.stat(received) == Some(envoy.sample(sent_series))
    });
    let sent = envoy.sample(sent_series);
    let share = sent as f64 * 100.0 / n as f64;
    assert!((share - 50.0).abs() <= 8.0, "{sent} copies of {n} requests ({share:.1}%)");
    assert_eq!(
        envoy.sample(r#"canary_router_shadow_failures_total{route="service-a",cluster="service-a-shadow"}"#),
        0
    );
}

#[test]
fn a_copy_carries_the_request_body() {
    copies_carry_the_body(&start(false, "service-a-shadow", 100));
}

#[test]
fn the_dynamic_module_s_copy_carries_the_request_body() {
    copies_carry_the_body(&start(true, "service-a-shadow", 100));
}

/// Five POSTs of 10,000 bytes, each copied whole: the shadow listener
/// receives five requests and at least their bodies' bytes.
fn copies_carry_the_body(envoy: &Envoy) {
    let mut c = Connection::open(envoy.ingress_port()).unwrap();
    let body: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for _ in 0..5 {
        let response = c.post("a.example.com", "/upload", &body).unwrap();
        assert_eq!((response.status, response.body_text().as_str()), (200, "service-a"));
    }
    let received = "http.backend_service_a_shadow.downstream_rq_completed";
    envoy.wait_until_requested("the shadow listener to receive every copy", "nowhere.test", || {
        envoy.stat(received) == Some(5)
    });
    let bytes = envoy.stat("http.backend_service_a_shadow.downstream_cx_rx_bytes_total").unwrap_or(0);
    assert!(bytes >= 5 * 10_000, "the shadow received {bytes} bytes for five 10,000-byte bodies");
    let sent = r#"canary_router_shadow_requests_total{route="service-a",cluster="service-a-shadow"}"#;
    envoy.wait_until_requested("every copy to be counted", "nowhere.test", || envoy.sample(sent) == 5);
}

#[test]
fn a_failing_shadow_never_fails_or_delays_the_live_request() {
    a_failing_shadow_costs_nothing(&start(false, "unreachable-shadow", 100));
}

#[test]
fn the_dynamic_module_s_failing_shadow_never_fails_or_delays_the_live_request() {
    a_failing_shadow_costs_nothing(&start(true, "unreachable-shadow", 100));
}

fn a_failing_shadow_costs_nothing(envoy: &Envoy) {
    let mut c = Connection::open(envoy.ingress_port()).unwrap();
    let started = Instant::now();
    for _ in 0..50 {
        let response = c.get("a.example.com", "/", &[]).unwrap();
        assert_eq!((response.status, response.body_text().as_str()), (200, "service-a"));
    }
    // 50 requests to a local direct_response take milliseconds; a shadow
    // that waited for its unreachable cluster would add 250 ms each.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "live requests waited for the shadow: {:?}",
        started.elapsed()
    );
    let failed = r#"canary_router_shadow_failures_total{route="service-a",cluster="unreachable-shadow"}"#;
    envoy.wait_until_requested("every copy to be counted as failed", "nowhere.test", || {
        envoy.sample(failed) == 50
    });
}
