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
    rolled_back_on_every_worker(&Envoy::start(EnvoyConfig::inline(ROLLBACK)));
}

#[test]
fn the_dynamic_module_rolls_a_canary_answering_503_back_on_every_worker() {
    rolled_back_on_every_worker(&Envoy::start(EnvoyConfig::inline_module(ROLLBACK)));
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
    rollback_lasts_as_long_as_its_split(&Envoy::start(EnvoyConfig::module_over_ecds(ROLLBACK)));
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
fn a_clock_ramp_takes_its_steps_on_time_and_says_so() {
    ramp_by_the_clock(EnvoyConfig::inline);
}

#[test]
fn the_dynamic_module_takes_a_clock_ramp_s_steps_on_time_and_says_so() {
    ramp_by_the_clock(EnvoyConfig::inline_module);
}

/// A ramp of the canary from 0% to 50% then 100%, its start two seconds
/// after Envoy applies it and two seconds a step: nothing reaches the
/// canary before the start, about half after it, all of it from the second
/// step on; each step is logged once and shown in the gauges.
fn ramp_by_the_clock(home: impl Fn(&str) -> EnvoyConfig) {
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let start_s = now_s + 4;
    let json = format!(
        r#"{{"routes": [{{"name": "service-b", "hosts": ["b.example.com"], "default": "service-b", "rules": [
        {{"split": {{"weights": [{{"target": "service-b-canary", "weight": 0}}, {{"target": "service-b", "weight": 100}}],
                    "ramp": {{"target": "service-b-canary", "start": "{}", "every": "2s", "steps": [50, 100]}}}}}}]}}]}}"#,
        canary_router_core::text::time::format_rfc3339(start_s)
    );
    let envoy = Envoy::start(home(&json));
    let since_start = || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        now.as_secs_f64() - start_s as f64
    };
    let canary_share = |n: usize| {
        let mut c = Connection::open(envoy.ingress_port()).unwrap();
        let canary =
            (0..n).filter(|_| c.get("b.example.com", "/", &[]).unwrap().body_text() == "service-b-canary");
        canary.count() as f64 / n as f64
    };
    assert!(since_start() < -0.5, "Envoy took too long to start for this test's clock");
    assert_eq!(canary_share(50), 0.0, "the canary got traffic before the ramp's start");
    while since_start() < 0.3 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let half = canary_share(400);
    assert!((0.4..=0.6).contains(&half), "step 1 sent {:.0}% to the canary, not about 50%", half * 100.0);
    while since_start() < 2.3 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(canary_share(50), 1.0, "step 2 is 100%");
    let labels = [("route", "service-b"), ("target", "service-b-canary")];
    envoy.wait_until_requested("the ramp gauge at step 2", "b.example.com", || {
        envoy.sample_with("canary_router_ramp_step", &labels) == Some(2.0)
    });
    envoy.wait_until("each step logged", || {
        envoy.log().contains("ramp: service-b-canary now at 100% (step 2 of 2)")
    });
    let log = envoy.log();
    let step_one =
        log.lines().filter(|l| l.contains("ramp: service-b-canary now at 50% (step 1 of 2)")).count();
    assert!(step_one >= 1, "step 1 was not logged:\n{log}");
}

#[test]
fn a_locally_gated_step_is_taken_once_the_canary_served_enough_healthy_responses() {
    gated_by_the_window(EnvoyConfig::inline);
}

#[test]
fn the_dynamic_module_takes_a_gated_step_once_the_canary_served_enough_healthy_responses() {
    gated_by_the_window(EnvoyConfig::inline_module);
}

/// A ramp of the canary to 20% then 100%, each step earned by 20 healthy
/// canary responses and two seconds: at 20% the canary gets about a fifth
/// of the traffic; once it answered 20 times without an error and the step
/// lasted two seconds, all of it; the step is logged as earned and shown.
fn gated_by_the_window(home: impl Fn(&str) -> EnvoyConfig) {
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let json = format!(
        r#"{{"routes": [{{"name": "service-b", "hosts": ["b.example.com"], "default": "service-b", "rules": [
        {{"split": {{"weights": [{{"target": "service-b-canary", "weight": 0}}, {{"target": "service-b", "weight": 100}}],
           "ramp": {{"target": "service-b-canary", "start": "{}", "every": "2s", "steps": [20, 100],
                    "gate": {{"minRequests": 20, "maxWait": "60s", "onMaxWait": "hold"}}}},
           "rollback": {{"target": "service-b-canary", "maxErrorRate": 0.5, "minRequests": 20, "window": "60s"}}}}}}]}}]}}"#,
        canary_router_core::text::time::format_rfc3339(now_s - 60)
    );
    let envoy = Envoy::start(home(&json));
    let mut c = Connection::open(envoy.ingress_port()).unwrap();
    let mut get = || c.get("b.example.com", "/", &[]).unwrap().body_text();
    // Step 1 begins at the first look after the start, within a second.
    envoy.wait_until("step 1", || (0..20).any(|_| get() == "service-b-canary"));
    let at_step_one = (0..200).filter(|_| get() == "service-b-canary").count();
    assert!((20..=60).contains(&at_step_one), "step 1 sent {at_step_one} of 200 to the canary, not about 40");
    envoy.wait_until("step 2, earned", || (0..20).all(|_| get() == "service-b-canary"));
    let labels = [("route", "service-b"), ("target", "service-b-canary")];
    envoy.wait_until_requested("the ramp gauge at step 2", "b.example.com", || {
        envoy.sample_with("canary_router_ramp_step", &labels) == Some(2.0)
    });
    assert_eq!(envoy.sample_with("canary_router_ramp_gated", &[("route", "service-b")]), Some(1.0));
    let log = envoy.log();
    assert!(log.contains("ramp: step 2 of 2 earned"), "the earned step was not logged:\n{log}");
    assert!(!log.contains("rolled back"), "a healthy canary was rolled back:\n{log}");
}

#[test]
fn the_assignment_cookie_reaches_the_client_and_keeps_it_on_its_target() {
    let config = r#"{"routes": [{"name": "service-b", "hosts": ["b.example.com"], "default": "service-b", "rules": [
        {"split": {"weights": [{"target": "service-b-canary", "weight": 20}, {"target": "service-b", "weight": 80}],
                   "assignCookie": {"name": "b-version", "maxAge": 86400, "path": "/", "httpOnly": true}}}]}]}"#;
    let envoy = Envoy::start(EnvoyConfig::inline(config));
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
