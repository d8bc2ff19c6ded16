//! A fleet: three Envoy processes with the same config
//! (examples/fleet.json) and a real Prometheus scraping all three every
//! second. The canary answers 503. Traffic is spread unevenly, so that one
//! proxy sees too few canary answers for its own window: all three must
//! still roll back, through Prometheus. Then a restarted proxy must send
//! the canary nothing, `canary-router status` must tell the story, every
//! dashboard and documented query must return data, and with Prometheus
//! stopped every request must still be answered at once.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use super::envoy::{free_ports, repo, Envoy, EnvoyConfig};
use super::http::{get_host, Connection};
use super::prometheus::Prometheus;

const ROUTE: &str = "service-b";
const CANARY: &str = "broken-canary";

/// examples/fleet.json, plus a route whose gated ramp started a minute ago
/// (so that the ramp's and the gate's gauges, their dashboard panels and
/// `status` have one).
fn fleet_config() -> String {
    let mut config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join("examples/fleet.json")).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let start = canary_router_core::text::time::format_rfc3339(now - 60);
    config["routes"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "service-a", "hosts": ["a.example.com"], "default": "service-a",
        "rules": [{"split": {
            "weights": [{"target": "service-a-canary", "weight": 0}, {"target": "service-a", "weight": 100}],
            "ramp": {"target": "service-a-canary", "start": start, "every": "1h", "steps": [10, 50, 100],
                     "gate": {"maxWait": "2h"}},
            "rollback": {"target": "service-a-canary", "maxErrorRate": 0.1, "minRequests": 20, "window": "1m",
                         "compare": {"maxErrorRateIncrease": 0.05, "latency": {"percentile": 99, "maxRatio": 2}},
                         "prometheus": {"cluster": "prometheus", "every": "2s", "lookback": "1h"}}}}]
    }));
    serde_json::to_string_pretty(&config).unwrap()
}

fn rolled_back(envoy: &Envoy) -> bool {
    envoy.sample_with("canary_router_rolled_back", &[("route", ROUTE), ("target", CANARY)]) == Some(1.0)
}

/// Sends one request to a proxy; whether the canary answered it.
fn hit_canary(connection: &mut Connection) -> bool {
    let response = connection.get("b.example.com", "/", &[]).unwrap();
    let canary = response.body_text().trim() == CANARY;
    assert!(canary || response.status == 200, "{} from {}", response.status, response.body_text());
    canary
}

fn status(args: &[&str]) -> (i32, String) {
    let output = Command::new(crate::built::require_fresh_cli()).arg("status").args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn a_fleet_rolls_back_together_a_restarted_proxy_never_reaches_the_canary_and_prometheus_down_costs_nothing()
{
    fleet_rolls_back_together(|| EnvoyConfig::from_repo("envoy/envoy.yaml"));
}

#[test]
fn a_fleet_of_the_dynamic_module_rolls_back_together_and_a_restarted_proxy_never_reaches_the_canary() {
    fleet_rolls_back_together(EnvoyConfig::dynamic_module);
}

/// A host no route of the config has (so no split counts its requests):
/// what a look sends when the dynamic module must see a request to show
/// what it learnt (`Envoy::wait_until_requested`).
const ELSEWHERE: &str = "nowhere.example.com";

/// The same test in either home: `home` is the Envoy config that loads
/// the filter, before the fleet's JSON goes in.
fn fleet_rolls_back_together(home: impl Fn() -> EnvoyConfig) {
    let prometheus_port = free_ports(1)[0];
    let config = fleet_config();
    let envoy_config = || {
        home()
            .with_filter_config(&config)
            .with_concurrency(1)
            .replace("port_value: 9090 ", &format!("port_value: {prometheus_port} "))
    };
    let mut fleet: Vec<Envoy> = (0..3).map(|_| Envoy::start(envoy_config())).collect();
    let admin_ports: Vec<u16> = fleet.iter().map(Envoy::admin_port).collect();
    let mut prometheus = Prometheus::start(prometheus_port, &admin_ports);

    // Until Prometheus answers the latch, no proxy sends the canary anything.
    for envoy in &fleet {
        envoy.wait_until_requested("the latch's first answer", ELSEWHERE, || {
            envoy.sample_with("canary_router_waiting_for_fleet", &[("route", ROUTE)]) == Some(0.0)
        });
    }

    // Prometheus has each proxy's canary counters at 0 (a rate needs the
    // value before the errors as well as after).
    let canary_5xx = format!(r#"canary_router_responses_total{{target="{CANARY}",status_class="5xx"}}"#);
    let deadline = Instant::now() + Duration::from_secs(20);
    while prometheus.series(&canary_5xx) < 3 {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped all three proxies:\n{}",
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Errors start. Proxy 0 gets 40 requests for each one proxy 2 gets:
    // proxy 2 alone would need minutes to see minRequests canary answers.
    let errors_start = Instant::now();
    let mut connections: Vec<Connection> =
        fleet.iter().map(|e| Connection::open(e.ingress_port()).unwrap()).collect();
    let mut canary_hits = [0usize; 3];
    let mut rolled_back_after: [Option<Duration>; 3] = [None; 3];
    let mut round = 0u64;
    while rolled_back_after.iter().any(Option::is_none) {
        let elapsed = errors_start.elapsed();
        assert!(
            elapsed < Duration::from_secs(15),
            "not every proxy rolled back within 15 s: {rolled_back_after:?}, canary hits {canary_hits:?}; \
             proxy 2's log:\n{}",
            fleet[2].log()
        );
        for (i, connection) in connections.iter_mut().enumerate() {
            let every = [1, 4, 40][i];
            if round.is_multiple_of(every) {
                canary_hits[i] += usize::from(hit_canary(connection));
            }
        }
        if round.is_multiple_of(20) {
            for (i, envoy) in fleet.iter().enumerate() {
                if rolled_back_after[i].is_none() && rolled_back(envoy) {
                    rolled_back_after[i] = Some(elapsed);
                }
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(canary_hits[2] < 20, "proxy 2 saw {} canary answers: enough for its own window", canary_hits[2]);
    // Proxy 2 learnt it from the fleet (a check or the latch), not by itself.
    let window =
        fleet[2].sample_with("canary_router_rollback_reason", &[("route", ROUTE), ("reason", "window")]);
    assert_ne!(window, Some(1.0), "proxy 2 rolled back on its own window");
    // The gauge may have been set by the proxy's other VM (whichever
    // polled): the worker takes the rollback on at its next canary error,
    // if that comes before its tick. So at most one more canary answer.
    let mut after = [0usize; 3];
    for (i, connection) in connections.iter_mut().enumerate() {
        after[i] = (0..50).filter(|_| hit_canary(connection)).count();
        assert!(
            after[i] <= 1,
            "proxy {i} still sends requests to the canary after rolling back: {after:?} of 50"
        );
    }
    eprintln!(
        "rolled back after {rolled_back_after:?}; canary answers per proxy {canary_hits:?} before, {after:?} after"
    );

    // A restarted proxy (a new pod) sends the canary nothing, from its
    // first request: it waits for the latch, which says rolled back.
    drop(connections);
    fleet[2].restart();
    let mut connection = Connection::open(fleet[2].ingress_port()).unwrap();
    let mut hits = 0;
    let restarted = Instant::now();
    while !rolled_back(&fleet[2]) {
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "the restarted proxy never took the latch's answer"
        );
        hits += (0..20).filter(|_| hit_canary(&mut connection)).count();
    }
    hits += (0..100).filter(|_| hit_canary(&mut connection)).count();
    assert_eq!(hits, 0, "a restarted proxy sent requests to a canary the fleet had rolled back");
    assert_eq!(
        fleet[2].sample_with("canary_router_rollback_reason", &[("route", ROUTE), ("reason", "fleet")]),
        Some(1.0)
    );

    // Each proxy's poll records the checks' values: the canary's error
    // rate over the fleet is 1 (every answer a 503).
    let deadline = Instant::now() + Duration::from_secs(30);
    let error_rate = |e: &Envoy| {
        e.sample_with("canary_router_check_value_millionths", &[("route", ROUTE), ("check", "error-rate")])
    };
    // The latency check needs two scrapes of the canary's histogram; until
    // then a proxy says NO DATA for it, which the documented run does not show.
    let p99_unanswered = |e: &Envoy| {
        e.sample_with("canary_router_check_unanswered", &[("route", ROUTE), ("check", "p99-ms")]) != Some(0.0)
    };
    while error_rate(&fleet[0]) != Some(1e6) || fleet.iter().any(p99_unanswered) {
        for envoy in &fleet {
            get_host(envoy.ingress_port(), ELSEWHERE, "/", &[]);
        }
        let queries: Vec<String> = fleet[0]
            .prometheus()
            .lines()
            .filter(|l| l.starts_with("canary_router_prometheus_queries_total"))
            .map(String::from)
            .collect();
        assert!(
            Instant::now() < deadline,
            "the error-rate check reads {:?}, not 1 (p99-ms unanswered: {:?}); Prometheus answers {}; \
             the proxy's queries:\n{}",
            error_rate(&fleet[0]),
            fleet.iter().map(p99_unanswered).collect::<Vec<_>>(),
            prometheus.query(&format!(
                r#"sum(rate(canary_router_responses_total{{route="{ROUTE}",target="{CANARY}",status_class="5xx"}}[1m])) / sum(rate(canary_router_responses_total{{route="{ROUTE}",target="{CANARY}"}}[1m]))"#
            )),
            queries.join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    check_status(&fleet, &prometheus);
    check_dashboard_and_documented_queries(&prometheus);

    // Prometheus goes away: every request is still answered by a backend,
    // as fast as before, and the failed polls are counted.
    let errors_before: Vec<f64> = fleet.iter().map(query_errors).collect();
    let baseline = latencies(&fleet);
    prometheus.stop();
    let stopped = Instant::now();
    let mut during = Vec::new();
    while stopped.elapsed() < Duration::from_secs(5) {
        during.extend(latencies(&fleet));
    }
    let p99 = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() * 99 / 100]
    };
    let (before, after) = (p99(baseline), p99(during));
    eprintln!("p99 with Prometheus up {before:?}, down {after:?}");
    assert!(after < before * 3 + Duration::from_millis(20), "p99 went from {before:?} to {after:?}");
    for (i, envoy) in fleet.iter().enumerate() {
        envoy.wait_until_requested("failed polls to be counted", ELSEWHERE, || {
            query_errors(envoy) > errors_before[i]
        });
    }
}

/// Queries with no usable answer, as a proxy counts them.
fn query_errors(envoy: &Envoy) -> f64 {
    envoy
        .sample_with("canary_router_prometheus_queries_total", &[("query", "latch"), ("result", "error")])
        .unwrap_or(0.0)
}

/// How long each of 20 requests per proxy takes; each must be answered 200.
fn latencies(fleet: &[Envoy]) -> Vec<Duration> {
    let mut out = Vec::new();
    for envoy in fleet {
        let mut connection = Connection::open(envoy.ingress_port()).unwrap();
        for _ in 0..20 {
            let start = Instant::now();
            let response = connection.get("b.example.com", "/", &[]).unwrap();
            out.push(start.elapsed());
            assert_eq!(response.status, 200, "{}", response.body_text());
        }
    }
    out
}

fn check_status(fleet: &[Envoy], prometheus: &Prometheus) {
    let mut args: Vec<String> =
        fleet.iter().map(|e| format!("--admin=http://127.0.0.1:{}", e.admin_port())).collect();
    let unreachable = free_ports(1)[0];
    args.push(format!("--admin=http://127.0.0.1:{unreachable}"));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, text) = status(&argv);
    eprintln!("$ canary-router status {}\n{text}", argv.join(" "));
    assert_eq!(code, 4, "status should exit 4 (rolled back):\n{text}");
    for expected in [
        "3 of 4 proxies answered".to_string(),
        format!("127.0.0.1:{unreachable}  unreachable"),
        "route service-b  rule rules[0]  split ".to_string(),
        "ROLLED BACK since ".to_string(),
        "3 of 3 proxies agree".to_string(),
        "route service-a  rule rules[0]".to_string(),
        "ramp: gated, step 1 of 3 since ".to_string(),
        "waits for 0/20 responses, 0.0% errors; may advance in ".to_string(),
        "checks: error-rate 1, p99-ms ".to_string(),
        "overall: rolled back (exit 4)".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in the output of status:\n{text}");
    }
    the_documented_output_is_this_one(&format!("$ canary-router status {}\n{text}", argv.join(" ")));
    // The canary's row: configured 50%, live 0%, and its 5xx share.
    let canary_row = text.lines().find(|l| l.trim_start().starts_with(CANARY)).unwrap();
    let columns: Vec<&str> = canary_row.split_whitespace().collect();
    assert_eq!(&columns[1..3], &["50%", "0%"], "{canary_row}");

    // From Prometheus alone: the same three proxies, as JSON.
    let (code, json) = status(&["--prometheus", &format!("http://127.0.0.1:{}", prometheus.port), "--json"]);
    assert_eq!(code, 4, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["status"], "rolled_back");
    let split = json["splits"].as_array().unwrap().iter().find(|s| s["route"] == ROUTE).unwrap();
    assert_eq!(split["rollback"]["state"], "rolled_back", "{split}");
    assert_eq!(split["rollback"]["proxies"], 3, "{split}");
    assert_eq!(split["targets"][0]["target"], CANARY);
    assert_eq!(split["targets"][0]["live_percent"], 0.0);
    assert!(split["targets"][0]["share_5xx"].as_f64().is_some_and(|s| s > 0.9), "{split}");
}

/// docs/cli.md shows this run's output: line for line the same, but for
/// numbers, durations and split ids.
fn the_documented_output_is_this_one(output: &str) {
    let doc = fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let shown = doc
        .split("```\n")
        .find(|block| block.starts_with("$ canary-router status --admin"))
        .expect("docs/cli.md shows a status run");
    let shape = |text: &str| -> Vec<String> {
        let duration = regex_lite::Regex::new(r"\b(\d+h)?(\d+m)?\d+(\.\d+)?(s|ms)\b").unwrap();
        let id = regex_lite::Regex::new(r"\b[0-9a-f]{16}\b").unwrap();
        let number = regex_lite::Regex::new(r"\d+(\.\d+)?").unwrap();
        // A 5xx cell is `-` without responses in the interval.
        let share = regex_lite::Regex::new(r" (N%|-)$").unwrap();
        text.lines()
            .map(|line| {
                let line = duration.replace_all(line, "DURATION");
                let line = id.replace_all(&line, "ID");
                let line = number.replace_all(&line, "N");
                let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
                let line = share.replace(&line, " SHARE");
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect()
    };
    assert_eq!(shape(shown), shape(output), "docs/cli.md's status output is not what status prints now");
}

/// Every panel of dashboards/canary-router.json and every PromQL block of
/// docs/progressive-delivery.md and docs/metrics.md, against the fleet's
/// Prometheus. A query over Istio's metrics cannot have data here; it must
/// still be valid PromQL.
fn check_dashboard_and_documented_queries(prometheus: &Prometheus) {
    let dashboard: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join("dashboards/canary-router.json")).unwrap())
            .unwrap();
    let mut queries: Vec<(String, String)> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_string();
            panel["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().into()))
        })
        .collect();
    assert!(queries.len() >= 10, "{} panels", queries.len());
    let router = canary_router_core::config::parse(
        fs::read_to_string(repo().join("examples/fleet.json")).unwrap().as_bytes(),
    )
    .unwrap();
    let split = router.splits().next().unwrap().2.identity_hex();
    for page in ["docs/progressive-delivery.md", "docs/metrics.md"] {
        let text = fs::read_to_string(repo().join(page)).unwrap();
        for block in text.split("```promql\n").skip(1) {
            let query = block.split("```").next().unwrap().trim();
            let query = query
                .replace("{{target}}", CANARY)
                .replace("{{route}}", ROUTE)
                .replace("{{split}}", &split)
                .replace("{{lookback}}", "3600s")
                .replace("service-b-canary", CANARY);
            queries.push((page.to_string(), query));
        }
    }
    // Rates need two scrapes of the traffic above; give Prometheus a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (origin, query) in &queries {
        let needs_data = !query.contains("istio_");
        loop {
            let series = prometheus.series(query);
            if series > 0 || !needs_data {
                break;
            }
            assert!(Instant::now() < deadline, "{origin}: no series for\n{query}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
