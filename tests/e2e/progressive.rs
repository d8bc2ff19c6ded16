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
    rolled_back_on_every_worker(&Envoy::start(
        EnvoyConfig::from_repo("envoy/envoy.yaml").with_filter_config(ROLLBACK),
    ));
}

#[test]
fn the_dynamic_module_rolls_a_canary_answering_503_back_on_every_worker() {
    rolled_back_on_every_worker(&Envoy::start(EnvoyConfig::dynamic_module().with_filter_config(ROLLBACK)));
}

/// The 20th error in the window rolls the canary back; no request reaches
/// it after that on any worker, and the rollback is logged and shown.
fn rolled_back_on_every_worker(envoy: &Envoy) {
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
fn a_rollback_survives_a_push_that_keeps_its_split_and_ends_with_one_that_changes_it() {
    rollback_lasts_as_long_as_its_split(&Envoy::start(EnvoyConfig::over_ecds(ROLLBACK)));
}

#[test]
fn the_dynamic_module_keeps_a_rollback_as_long_as_its_split() {
    rollback_lasts_as_long_as_its_split(&Envoy::start(
        EnvoyConfig::over_ecds(ROLLBACK).with_module_over_ecds(),
    ));
}

/// Rolled back, the canary stays so through a push that edits another
/// route (the split keeps its identity), and gets traffic again from a
/// push that changes the split's weights (a new split).
fn rollback_lasts_as_long_as_its_split(envoy: &Envoy) {
    let answers = |n: usize| -> Vec<u16> {
        (0..n)
            .map(|_| {
                Connection::open(envoy.ingress_port()).unwrap().get("b.example.com", "/", &[]).unwrap().status
            })
            .collect()
    };
    let broken = answers(100).iter().filter(|s| **s == 503).count();
    assert!((20..=25).contains(&broken), "{broken} of 100 reached the broken canary");
    let labels = [("route", "service-b"), ("target", "broken-canary")];
    envoy.wait_until("the rollback", || envoy.sample_with("canary_router_rolled_back", &labels) == Some(1.0));
    std::thread::sleep(Duration::from_millis(1_500));

    let another_route = r#"{ "name": "service-a", "hosts": ["a.example.com"], "default": "service-a" },
    {
      "name": "service-b","#;
    let edited = ROLLBACK.replacen(
        r#"{
      "name": "service-b","#,
        another_route,
        1,
    );
    assert_ne!(edited, ROLLBACK);
    envoy.push_filter_config(&edited);
    assert!(answers(100).iter().all(|s| *s == 200), "the push that kept the split undid its rollback");
    envoy.wait_until("the rollback shown after the push", || {
        envoy.sample_with("canary_router_rolled_back", &labels) == Some(1.0)
    });

    let new_weights = edited.replace(
        r#""weight": 50 }, { "target": "service-b", "weight": 50 }"#,
        r#""weight": 40 }, { "target": "service-b", "weight": 60 }"#,
    );
    assert_ne!(new_weights, edited);
    envoy.push_filter_config(&new_weights);
    let broken = answers(100).iter().filter(|s| **s == 503).count();
    assert!(broken > 0, "a new split starts fresh: its canary gets traffic again");
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
