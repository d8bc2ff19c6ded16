//! Scenario 4 as Gloo with Flagger describes it, inside the proxies: three
//! Envoys and a real Prometheus run examples/progressive.json (its times
//! shortened). The new version first gets shadow copies only, then gated
//! steps 1, 5, 25, 50, 100 %, each earned. Beside it, in the same config: a
//! canary whose latency regresses, one that gets no traffic and holds, and
//! one that gets none and rolls back past `maxWait`.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use super::envoy::{free_ports, repo, Envoy, EnvoyConfig};
use super::http::get_host;
use super::load::{self, Load};
use super::prometheus::Prometheus;

/// How long each step lasts at least, and what the gate needs.
const EVERY_MS: u64 = 3_000;
const MIN_REQUESTS: u64 = 5;
const START_IN_MS: u64 = 5_000;
/// The documented bound: `prometheus.every` (1 s), a scrape interval (1 s)
/// and a tick (1 s), plus half a second for the test's own polling of the
/// gauges.
const FOLLOWED_WITHIN: Duration = Duration::from_millis(1_000 + 1_000 + 1_000 + 500);

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A gated route beside the example's: `canary` ramped against `stable`.
fn side_route(
    name: &str,
    host: &str,
    canary: &str,
    stable: &str,
    gate: serde_json::Value,
    start: &str,
) -> serde_json::Value {
    serde_json::json!({
        "name": name, "hosts": [host], "default": stable,
        "rules": [{"split": {
            "weights": [{"target": canary, "weight": 0}, {"target": stable, "weight": 100}],
            "ramp": {"target": canary, "start": start, "every": "3s", "steps": [10, 50, 100], "gate": gate},
            "rollback": {"target": canary, "maxErrorRate": 0.1, "minRequests": MIN_REQUESTS, "window": "30s",
                         "latency": {"percentile": 90, "maxMs": 100},
                         "prometheus": {"cluster": "prometheus", "every": "1s", "lookback": "10m"}}}}]
    })
}

/// examples/progressive.json with its times shortened, starting at
/// `start_ms`, plus the side routes, started at `side_ms`. The same times
/// keep every split's identity across pushes.
fn config(start_ms: u64, side_ms: u64, hold: bool) -> String {
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("examples/progressive.json")).unwrap())
            .unwrap();
    let start = canary_router_core::text::time::format_rfc3339(start_ms / 1000);
    let split = &mut config["routes"][0]["rules"][0]["split"];
    split["ramp"]["start"] = start.clone().into();
    split["ramp"]["every"] = "3s".into();
    split["ramp"]["hold"] = hold.into();
    split["ramp"]["gate"] =
        serde_json::json!({"minRequests": MIN_REQUESTS, "maxWait": "2m", "onMaxWait": "hold"});
    split["rollback"]["minRequests"] = MIN_REQUESTS.into();
    split["rollback"]["window"] = "30s".into();
    split["rollback"]["prometheus"]["every"] = "1s".into();
    let now = canary_router_core::text::time::format_rfc3339(side_ms / 1000);
    let routes = config["routes"].as_array_mut().unwrap();
    routes.push(side_route(
        "slow",
        "slow.example.com",
        "slow-backend",
        "service-b",
        serde_json::json!({}),
        &now,
    ));
    let hold = serde_json::json!({"maxWait": "4s", "onMaxWait": "hold"});
    routes.push(side_route("idle-hold", "idle.example.com", "service-a-canary", "service-a", hold, &now));
    let rollback = serde_json::json!({"maxWait": "4s", "onMaxWait": "rollback"});
    routes.push(side_route(
        "idle-rollback",
        "idle2.example.com",
        "service-a-canary",
        "service-a",
        rollback,
        &now,
    ));
    serde_json::to_string_pretty(&config).unwrap()
}

fn gauge(envoy: &Envoy, name: &str, route: &str) -> Option<f64> {
    envoy.sample_with(name, &[("route", route)])
}

fn step(envoy: &Envoy, route: &str) -> u64 {
    gauge(envoy, "canary_router_ramp_step", route).unwrap_or(0.0) as u64
}

/// Pushes a config to every proxy and waits until each applied it.
fn push(fleet: &[Envoy], json: &str) {
    for envoy in fleet {
        envoy.push_filter_config(json);
    }
}

#[test]
fn a_gated_ramp_is_earned_step_by_step_by_a_whole_fleet() {
    earned_by_a_whole_fleet(EnvoyConfig::over_ecds);
}

#[test]
fn a_gated_ramp_of_the_dynamic_module_is_earned_step_by_step_by_a_whole_fleet() {
    earned_by_a_whole_fleet(EnvoyConfig::module_over_ecds);
}

/// The same test in either home: `home` makes the Envoy config that loads
/// the filter with this JSON, live by ECDS.
fn earned_by_a_whole_fleet(home: impl Fn(&str) -> EnvoyConfig) {
    let prometheus_port = free_ports(1)[0];
    let side_ms = now_ms();
    let start_ms = side_ms + START_IN_MS;
    let json = config(start_ms, side_ms, false);
    let envoy_config = || {
        home(&json)
            .with_concurrency(1)
            .replace("port_value: 9090 ", &format!("port_value: {prometheus_port} "))
            .replace("fixed_delay: 5s", "fixed_delay: 0.3s")
    };
    let mut fleet: Vec<Envoy> = (0..3).map(|_| Envoy::start(envoy_config())).collect();
    let admin_ports: Vec<u16> = fleet.iter().map(Envoy::admin_port).collect();
    let prometheus = Prometheus::start_with_rules(prometheus_port, &admin_ports, &["dashboards/alerts.yaml"]);

    // Shadow copies only, before the start: live answers from service-b.
    let b = |envoy: &Envoy| get_host(envoy.ingress_port(), "b.example.com", "/", &[]).body_text();
    assert!(fleet.iter().all(|e| (0..20).all(|_| b(e) == "service-b")), "before the start, live stays on B");
    for envoy in &fleet {
        envoy.wait_until("shadow copies to reach the canary", || {
            envoy.stat("http.backend_service_b_canary.downstream_rq_completed").unwrap_or(0) >= 20
        });
    }
    let loads: Vec<Load> = fleet
        .iter()
        .flat_map(|e| {
            [
                Load::start(e.ingress_port(), 2, 100, load::get("b.example.com")),
                Load::start(e.ingress_port(), 2, 20, load::get("slow.example.com")),
            ]
        })
        .collect();

    // Watch each proxy's step: when each was first seen at each step.
    let mut seen: Vec<BTreeMap<u64, Instant>> = vec![BTreeMap::new(); 3];
    let watch = |fleet: &[Envoy], seen: &mut Vec<BTreeMap<u64, Instant>>| {
        let steps: Vec<u64> = fleet.iter().map(|e| step(e, "service-b")).collect();
        for (i, s) in steps.iter().enumerate() {
            if let Some(previous) = seen[i].keys().next_back() {
                assert!(s >= previous, "proxy {i} went back from step {previous} to {s}");
            }
            seen[i].entry(*s).or_insert_with(Instant::now);
        }
        steps
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while watch(&fleet, &mut seen).iter().max() < Some(&2) {
        assert!(Instant::now() < deadline, "the fleet never reached step 2: {seen:?}");
        thread::sleep(Duration::from_millis(100));
    }

    // `hold` mid-ramp: all three stop at the fleet's step (a proxy behind
    // it still catches up, through the step latch) and stay there.
    push(&fleet, &config(start_ms, side_ms, true));
    let settling = Instant::now();
    let held: Vec<u64> = loop {
        let steps = watch(&fleet, &mut seen);
        if steps.iter().all(|s| *s == steps[0]) {
            break steps;
        }
        assert!(
            settling.elapsed() < Duration::from_secs(5),
            "the held fleet did not agree on a step: {steps:?}"
        );
        thread::sleep(Duration::from_millis(100));
    };
    let holding_from = Instant::now();
    while holding_from.elapsed() < Duration::from_millis(3 * EVERY_MS) {
        assert_eq!(watch(&fleet, &mut seen), held, "a proxy moved while the ramp was held");
        thread::sleep(Duration::from_millis(200));
    }
    assert!(held.iter().all(|s| *s == held[0]), "the fleet held on different steps: {held:?}");
    assert!(fleet
        .iter()
        .all(|e| e.sample_with("canary_router_ramp_holding", &[("route", "service-b"), ("reason", "hold")])
            == Some(1.0)));
    push(&fleet, &config(start_ms, side_ms, false));
    while watch(&fleet, &mut seen).iter().max() <= Some(&held[0]) {
        assert!(Instant::now() < deadline, "the ramp did not resume after hold was cleared");
        thread::sleep(Duration::from_millis(100));
    }

    // A restarted proxy resumes at the fleet's step: never 1, never past it.
    let fleet_step = fleet[..2].iter().map(|e| step(e, "service-b")).max().unwrap();
    fleet[2].restart();
    let restarted = Instant::now();
    let resumed = loop {
        let s = step(&fleet[2], "service-b");
        if s > 0 {
            break s;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "the restarted proxy never took the fleet's step"
        );
        thread::sleep(Duration::from_millis(100));
    };
    let furthest = fleet[..2].iter().map(|e| step(e, "service-b")).max().unwrap();
    assert!(
        (fleet_step..=furthest).contains(&resumed),
        "resumed at step {resumed}; the fleet was at {fleet_step}..{furthest}"
    );
    seen[2] = BTreeMap::from([(resumed, Instant::now())]);
    let load_after_restart = Load::start(fleet[2].ingress_port(), 2, 100, load::get("b.example.com"));

    while watch(&fleet, &mut seen).iter().any(|s| *s < 5) {
        assert!(Instant::now() < deadline, "the fleet did not reach 100%: {seen:?}");
        thread::sleep(Duration::from_millis(100));
    }
    let samples: Vec<load::Sample> =
        loads.into_iter().chain([load_after_restart]).flat_map(|l| l.stop().0).collect();
    // The gauge is the proxy's; each worker takes the step at its next
    // tick, within a second.
    thread::sleep(Duration::from_millis(1_500));
    for (i, envoy) in fleet.iter().enumerate() {
        let answers: Vec<String> = (0..20).map(|_| b(envoy)).collect();
        assert!(
            answers.iter().all(|a| a == "service-b-canary"),
            "at 100% every request goes to B'; proxy {i} answered {answers:?}; {}",
            envoy.prometheus().lines().filter(|l| l.contains("service-b\"")).collect::<Vec<_>>().join("\n")
        );
    }

    // The leader took every step, in order, each after `every` at least;
    // every proxy followed within the documented bound.
    let first_at = |k: u64| seen.iter().filter_map(|s| s.get(&k)).min().copied();
    let mut report = Vec::new();
    for k in 1..5u64 {
        let (Some(this), Some(next)) = (first_at(k), first_at(k + 1)) else {
            panic!("step {} was never seen: {seen:?}", k + 1)
        };
        let lasted = next.duration_since(this);
        // Seen through gauges refreshed each second: a tick of slack.
        assert!(lasted >= Duration::from_millis(EVERY_MS - 1_000), "step {k} lasted {lasted:?}, under every");
        let reached: Vec<Instant> = seen[..2].iter().filter_map(|s| s.get(&(k + 1)).copied()).collect();
        let spread = reached.iter().max().unwrap().duration_since(*reached.iter().min().unwrap());
        assert!(spread <= FOLLOWED_WITHIN, "step {}: proxies {spread:?} apart", k + 1);
        report.push(format!(
            "step {}: after {:.1} s, proxies {:.1} s apart",
            k + 1,
            lasted.as_secs_f64(),
            spread.as_secs_f64()
        ));
    }

    // The leader says each step it earned, and on what, in words.
    let earned: Vec<String> = fleet
        .iter()
        .flat_map(|e| {
            e.log().lines().filter(|l| l.contains("earned (")).map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    assert!(
        earned.iter().any(|l| l.contains("route=service-b") && l.contains("of 5 earned (")),
        "{earned:?}"
    );
    for line in &earned {
        assert!(
            ["Passed", "NotAsked", "Waiting", "Some(", "None"].iter().all(|debug| !line.contains(debug)),
            "a log line with a debug value: {line}"
        );
    }

    // The slow canary: rolled back at its first step by its latency, with
    // no more slow responses than each proxy's minRequests and its
    // connections in flight.
    let slow_served = samples.iter().filter(|s| s.body() == "slow-backend").count();
    assert!(slow_served as u64 <= 3 * (MIN_REQUESTS + 2 + 1), "{slow_served} slow responses served");
    assert!(fleet.iter().all(|e| step(e, "slow") <= 1), "the slow canary went past its first step");
    let latency = fleet
        .iter()
        .filter(|e| {
            e.sample_with("canary_router_rollback_reason", &[("route", "slow"), ("reason", "latency")])
                == Some(1.0)
        })
        .count();
    assert!(latency >= 1, "no proxy rolled the slow canary back for its latency");
    assert!(fleet.iter().all(|e| gauge(e, "canary_router_rolled_back", "slow") == Some(1.0)));

    // No traffic: `hold` holds at the first step (and the alert says so);
    // `rollback` rolls back past maxWait.
    for envoy in &fleet {
        assert_eq!(step(envoy, "idle-hold"), 1, "the idle canary left its first step");
        assert_eq!(
            envoy.sample_with("canary_router_ramp_holding", &[("route", "idle-hold"), ("reason", "maxWait")]),
            Some(1.0)
        );
        assert_eq!(
            envoy
                .sample_with(
                    "canary_router_rollback_reason",
                    &[("route", "idle-rollback"), ("reason", "maxWait")]
                )
                .or_else(|| envoy.sample_with(
                    "canary_router_rollback_reason",
                    &[("route", "idle-rollback"), ("reason", "fleet")]
                )),
            Some(1.0)
        );
    }
    let alert = r#"ALERTS{alertname="CanaryRouterRampHoldingPastMaxWait",route="idle-hold"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    while prometheus.series(alert) == 0 {
        assert!(Instant::now() < deadline, "the holding alert never fired in Prometheus");
        thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "gated ramp in a fleet of 3: {}; slow canary: {slow_served} slow responses served, rolled back for latency; \
         idle canaries held and rolled back at maxWait; the alert fired",
        report.join("; ")
    );
}
