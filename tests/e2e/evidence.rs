//! The judge acts only on evidence, in Envoy 1.40 (issue #26): a gated
//! ramp whose `start` is a year old is judged from when it was applied; a
//! ramp held for longer than `maxWait` resumes without a rollback; a
//! canary that never answers is rolled back when clients give up, on a
//! route without a timeout; and a fleet whose Prometheus cannot see the
//! proxy's own series (no stats tags) holds its gated steps and says it is
//! blind, down to the alert firing in a real Prometheus.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::envoy::{free_ports, Envoy, EnvoyConfig};
use super::http::get_host;
use super::load::{self, Load};
use super::prometheus::Prometheus;

/// A year before now, as a ramp's `start`.
fn a_year_ago() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    canary_router_core::text::time::format_rfc3339(now - 365 * 86_400)
}

/// A route whose split ramps `canary` against `stable`, gated.
fn gated_route(name: &str, canary: &str, stable: &str, ramp: serde_json::Value) -> serde_json::Value {
    let mut ramp = ramp;
    ramp["target"] = canary.into();
    serde_json::json!({
        "name": name, "hosts": [format!("{name}.example.com")], "default": stable,
        "rules": [{"split": {
            "weights": [{"target": canary, "weight": 0}, {"target": stable, "weight": 100}],
            "ramp": ramp,
            "rollback": {"target": canary, "maxErrorRate": 0.5, "minRequests": 5, "window": "30s"}}}]
    })
}

fn config(routes: Vec<serde_json::Value>) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "routes": routes })).unwrap()
}

fn gauge(envoy: &Envoy, name: &str, route: &str) -> f64 {
    envoy.sample_with(name, &[("route", route)]).unwrap_or(0.0)
}

/// Waits up to `limit` for `done`; returns how long it took.
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} did not happen within {limit:?}");
        thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

#[test]
fn a_ramp_applied_long_after_its_start_is_judged_from_when_it_was_applied_in_envoy() {
    let ramp = |gate: serde_json::Value| serde_json::json!({"start": a_year_ago(), "every": "2s", "steps": [20, 100], "gate": gate});
    let gate = serde_json::json!({"minRequests": 5, "maxWait": "4s", "onMaxWait": "rollback"});
    let json = config(vec![
        gated_route("busy", "service-b-canary", "service-b", ramp(gate.clone())),
        gated_route("idle", "service-a-canary", "service-a", ramp(gate)),
    ]);
    let envoy = Envoy::start(EnvoyConfig::over_ecds(&json));
    let applied = Instant::now();
    let busy = Load::start(envoy.ingress_port(), 1, 50, load::get("busy.example.com"));
    thread::sleep(Duration::from_millis(2_500));
    for route in ["busy", "idle"] {
        assert_eq!(
            gauge(&envoy, "canary_router_rolled_back", route),
            0.0,
            "{route} judged on a year it never saw"
        );
    }
    // The busy canary earns its step; the idle one is rolled back once it
    // was judgeable for maxWait, counted from when it was applied.
    within(Duration::from_secs(10), "the busy canary's step", || {
        gauge(&envoy, "canary_router_ramp_step", "busy") == 2.0
    });
    within(Duration::from_secs(10), "the idle canary's rollback", || {
        gauge(&envoy, "canary_router_rolled_back", "idle") == 1.0
    });
    let after = applied.elapsed();
    busy.stop();
    assert!(after >= Duration::from_millis(3_500), "rolled back {after:?} after it was applied, maxWait 4s");
    assert_eq!(
        envoy.sample_with("canary_router_rollback_reason", &[("route", "idle"), ("reason", "maxWait")]),
        Some(1.0)
    );
    let log = envoy.log();
    let line = log.lines().find(|l| l.contains("reason=maxWait")).expect("the rollback is logged");
    let judged: u64 = line.split("(judged for ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((4_000..8_000).contains(&judged), "judged for {judged} ms: {line}");
    eprintln!(
        "a year-old start: the busy canary earned its step, the idle one rolled back {:.1} s after it was \
         applied, judged for {judged} ms",
        after.as_secs_f64()
    );
}

#[test]
fn a_ramp_held_past_max_wait_resumes_without_a_rollback() {
    // One `start` for both configs: it names the split, `hold` does not.
    let start = a_year_ago();
    let json = |hold: bool| {
        let gate = serde_json::json!({"minRequests": 5, "maxWait": "3s", "onMaxWait": "rollback"});
        let ramp = serde_json::json!({"start": start, "every": "1s", "steps": [20, 100], "gate": gate, "hold": hold});
        config(vec![gated_route("idle", "service-a-canary", "service-a", ramp)])
    };
    let envoy = Envoy::start(EnvoyConfig::over_ecds(&json(true)));
    thread::sleep(Duration::from_secs(6));
    assert_eq!(gauge(&envoy, "canary_router_rolled_back", "idle"), 0.0, "held, and rolled back");
    assert_eq!(
        envoy.sample_with("canary_router_ramp_holding", &[("route", "idle"), ("reason", "hold")]),
        Some(1.0)
    );
    envoy.push_filter_config(&json(false));
    let cleared = Instant::now();
    thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        gauge(&envoy, "canary_router_rolled_back", "idle"),
        0.0,
        "held for twice maxWait, rolled back when cleared"
    );
    within(Duration::from_secs(10), "the rollback after maxWait of judging", || {
        gauge(&envoy, "canary_router_rolled_back", "idle") == 1.0
    });
    let after = cleared.elapsed();
    let splits = envoy.prometheus().lines().filter(|l| l.starts_with("canary_router_ramp_steps{")).count();
    assert_eq!(splits, 1, "clearing hold made another split: the ramp started over");
    assert!(
        after >= Duration::from_millis(2_500),
        "rolled back {after:?} after hold was cleared, maxWait 3s"
    );
    eprintln!("held 6 s with maxWait 3s: rolled back {:.1} s after hold was cleared", after.as_secs_f64());
}

/// One request whose client gives up after a second without an answer:
/// `Some(body)` if it was answered in time.
fn impatient_get(port: u16, host: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    write!(stream, "GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => Some(String::from_utf8_lossy(&answer).lines().last().unwrap_or_default().to_string()),
        // Gave up: the connection closes unanswered.
        Err(_) if answer.is_empty() => None,
        Err(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
    }
}

fn hanging_canary() -> String {
    config(vec![serde_json::json!({
        "name": "hang", "hosts": ["hang.example.com"], "default": "service-b",
        "rules": [{"split": {
            "weights": [{"target": "slow-backend", "weight": 50}, {"target": "service-b", "weight": 50}],
            "rollback": {"target": "slow-backend", "maxErrorRate": 0.5, "minRequests": 5, "window": "60s"}}}]
    })])
}

/// The canary answers after an hour; the route has no timeout, as Istio's
/// routes have none by default.
fn never_answering(config: EnvoyConfig) -> EnvoyConfig {
    config.replace("fixed_delay: 5s", "fixed_delay: 3600s").replace(
        "route: { cluster_header: x-route-target, cluster_not_found_response_code: SERVICE_UNAVAILABLE }",
        "route: { cluster_header: x-route-target, cluster_not_found_response_code: SERVICE_UNAVAILABLE, timeout: 0s }",
    )
}

#[test]
fn a_canary_that_never_answers_is_rolled_back_when_clients_give_up() {
    rolled_back_when_clients_give_up(&Envoy::start(never_answering(EnvoyConfig::over_ecds(
        &hanging_canary(),
    ))));
}

#[test]
fn the_dynamic_module_rolls_back_a_canary_that_never_answers() {
    let config = EnvoyConfig::inline_module(&hanging_canary());
    rolled_back_when_clients_give_up(&Envoy::start(never_answering(config)));
}

/// Four impatient clients (a second each) against a canary that never
/// answers: the 5th request that ended unanswered rolls it back.
fn rolled_back_when_clients_give_up(envoy: &Envoy) {
    let port = envoy.ingress_port();
    let (abandoned, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (abandoned, answered) = (abandoned.clone(), answered.clone());
            thread::spawn(move || {
                while started.elapsed() < Duration::from_secs(6) {
                    match impatient_get(port, "hang.example.com") {
                        None => abandoned.fetch_add(1, Ordering::Relaxed),
                        Some(_) => answered.fetch_add(1, Ordering::Relaxed),
                    };
                    thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    within(Duration::from_secs(20), "the hanging canary's rollback", || {
        gauge(envoy, "canary_router_rolled_back", "hang") == 1.0
    });
    let rolled_back_after = started.elapsed();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(
        envoy.sample_with("canary_router_rollback_reason", &[("route", "hang"), ("reason", "window")]),
        Some(1.0)
    );
    // The filter's own account: the 5th request that ended unanswered
    // rolled the canary back (minRequests; another worker may log one of
    // its own in between), and after that only those already on their way
    // to it (one per client) hung, and those another worker sent before
    // its next tick (within a second) took the rollback on: each hangs for
    // the client's second, so at most one more per client.
    let log = envoy.log();
    let events: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ended unanswered") || l.contains("rolled back route=hang"))
        .collect();
    let before = events.iter().position(|l| l.contains("rolled back")).expect("the rollback is logged");
    let unanswered = events.iter().filter(|l| l.contains("ended unanswered")).count();
    assert!((5..=8).contains(&before), "the rollback came with the 5th unanswered request: {events:#?}");
    assert!(unanswered <= 5 + 2 * 4, "{unanswered} unanswered requests: {events:#?}");
    let answers: Vec<String> =
        (0..20).map(|_| get_host(port, "hang.example.com", "/", &[]).body_text()).collect();
    assert!(answers.iter().all(|a| a == "service-b"), "after the rollback: {answers:?}");
    eprintln!(
        "a canary that never answers: rolled back {:.1} s in, at its 5th unanswered request; {unanswered} in all \
         ended unanswered ({} client requests given up, {} answered by the stable version)",
        rolled_back_after.as_secs_f64(),
        abandoned.load(Ordering::Relaxed),
        answered.load(Ordering::Relaxed)
    );
}

/// A filter metric from the admin `/stats`, labels in its name as Envoy
/// keeps it without the stats tags.
fn untagged(envoy: &Envoy, split: &str, metric: &str) -> Option<u64> {
    let stats = super::http::get(envoy.admin_port(), "/stats", &[]).ok()?;
    let text = String::from_utf8_lossy(&stats.body).into_owned();
    let prefix = format!("wasmcustom.route=.=b;.;rule=.=rules[0];.;split=.={split};.;{metric}: ");
    text.lines().find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn a_fleet_without_stats_tags_holds_its_gated_steps_and_says_it_is_blind() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let json = config(vec![serde_json::json!({
        "name": "b", "hosts": ["b.example.com"], "default": "service-b",
        "rules": [{"split": {
            "weights": [{"target": "service-b-canary", "weight": 0}, {"target": "service-b", "weight": 100}],
            "ramp": {"target": "service-b-canary", "start": canary_router_core::text::time::format_rfc3339(now),
                     "every": "2s", "steps": [20, 100], "gate": {"minRequests": 5}},
            "rollback": {"target": "service-b-canary", "maxErrorRate": 0.5, "minRequests": 5, "window": "30s",
                         "prometheus": {"cluster": "prometheus", "every": "1s", "blindAfter": "3s"}}}}]
    })]);
    let router = canary_router_core::config::parse(json.as_bytes()).unwrap();
    let split = router.splits().next().unwrap().2.identity_hex();
    let prometheus_port = free_ports(1)[0];
    let envoy = Envoy::start(
        EnvoyConfig::over_ecds(&json)
            .without_stats_tags()
            .with_concurrency(1)
            .replace("port_value: 9090 ", &format!("port_value: {prometheus_port} ")),
    );
    let prometheus =
        Prometheus::start_with_rules(prometheus_port, &[envoy.admin_port()], &["dashboards/alerts.yaml"]);
    let load = Load::start(envoy.ingress_port(), 1, 50, load::get("b.example.com"));
    // The canary gets its first step's share and passes its gate...
    within(Duration::from_secs(15), "an earned step held for the fleet view", || {
        untagged(&envoy, &split, "reason=.=fleetView;.;canary_router_ramp_holding") == Some(1)
    });
    assert_eq!(untagged(&envoy, &split, "canary_router_gate_passed"), Some(1));
    // ...but Prometheus never shows this proxy's series: it stays there.
    within(Duration::from_secs(10), "the blind gauge", || {
        untagged(&envoy, &split, "canary_router_fleet_blind") == Some(1)
    });
    let held_from = Instant::now();
    while held_from.elapsed() < Duration::from_secs(4) {
        let step = untagged(&envoy, &split, "target=.=service-b-canary;.;canary_router_ramp_step");
        assert_eq!(step, Some(1), "a step taken on a blind view");
        thread::sleep(Duration::from_millis(200));
    }
    let samples = load.stop().0;
    let canary = samples.iter().filter(|s| s.body() == "service-b-canary").count();
    assert!(canary > 0, "the canary keeps its first step's share");
    // The alert fires from the untagged gauge Prometheus scraped.
    let alert = r#"ALERTS{alertname="CanaryRouterFleetBlind",alertstate="firing"}"#;
    within(Duration::from_secs(15), "the CanaryRouterFleetBlind alert", || prometheus.series(alert) == 1);
    let labels = &prometheus.query(alert)["data"]["result"][0]["metric"];
    assert_eq!(labels["split"], split.as_str(), "{labels}");
    let log = envoy.log();
    assert!(
        log.contains("the next step is earned but held: Prometheus does not show this proxy's own series")
    );
    eprintln!(
        "no stats tags: the earned step held {:.0} s and more at 20% ({canary} of {} requests to the canary), \
         blind after 3 s, the alert fired for split {split}",
        held_from.elapsed().as_secs_f64(),
        samples.len()
    );
}
