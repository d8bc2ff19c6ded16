//! Automatic rollback and assignment cookies in the real Envoy.

use std::time::Duration;

use super::envoy::{Envoy, EnvoyConfig};
use super::http::Connection;

const ROLLBACK: &str = r#"{
  "routes": [
    {
      "name": "service-b",
      "hosts": ["b.example.com"],
      "default": "service-b",
      "rules": [
        { "split": {
            "weights": [ { "target": "broken-canary", "weight": 50 }, { "target": "service-b", "weight": 50 } ],
            "rollback": { "target": "broken-canary", "maxErrorRate": 0.1, "minRequests": 20, "window": "60s" } } }
      ]
    }
  ]
}"#;

#[test]
fn a_canary_answering_503_is_rolled_back_on_every_worker() {
    let envoy = Envoy::start(EnvoyConfig::from_repo("envoy/envoy.yaml").with_filter_config(ROLLBACK));
    let mut c = Connection::open(envoy.ingress_port()).unwrap();
    let broken = (0..100).filter(|_| c.get("b.example.com", "/", &[]).unwrap().status == 503).count();
    // The response that makes 20 errors in the window rolls the split back
    // at once: this connection's worker sends it no more requests.
    assert_eq!(broken, 20, "{broken} of 100 requests reached the broken canary");

    let labels = [("route", "service-b"), ("target", "broken-canary"), ("rule", "rules[0]")];
    envoy.wait_until("the rollback", || {
        envoy.log().contains("canary-router: rolled back route=service-b target=broken-canary")
            && envoy.sample_with("canary_router_rolled_back", &labels) == Some(1.0)
    });
    // The other worker learns it at its next tick (every second) or its
    // next canary error; then no more 503s, on connections to any worker.
    std::thread::sleep(Duration::from_millis(1_500));
    for _ in 0..100 {
        let response =
            Connection::open(envoy.ingress_port()).unwrap().get("b.example.com", "/", &[]).unwrap();
        assert_eq!((response.status, response.body_text().as_str()), (200, "service-b"));
    }
    let warned = envoy.log().lines().filter(|l| l.contains("canary-router: rolled back")).count();
    assert!((1..=3).contains(&warned), "each VM warns once: {warned}");
}

#[test]
fn the_assignment_cookie_reaches_the_client_and_keeps_it_on_its_target() {
    let config = r#"{"routes": [{"name": "service-b", "hosts": ["b.example.com"], "default": "service-b", "rules": [
        {"split": {"weights": [{"target": "service-b-canary", "weight": 20}, {"target": "service-b", "weight": 80}],
                   "assignCookie": {"name": "b-version", "maxAge": 86400, "path": "/", "httpOnly": true}}}]}]}"#;
    let envoy = Envoy::start(EnvoyConfig::from_repo("envoy/envoy.yaml").with_filter_config(config));
    let mut c = Connection::open(envoy.ingress_port()).unwrap();
    let first = c.get("b.example.com", "/", &[]).unwrap();
    let target = first.body_text();
    assert_eq!(
        first.header("set-cookie"),
        Some(format!("b-version={target}; Max-Age=86400; Path=/; HttpOnly"))
    );
    let cookie = format!("b-version={target}");
    for _ in 0..30 {
        let again = Connection::open(envoy.ingress_port())
            .unwrap()
            .get("b.example.com", "/", &[(b"cookie", cookie.as_bytes())])
            .unwrap();
        assert_eq!(again.body_text(), target);
        assert_eq!(again.header("set-cookie"), None);
    }
}
