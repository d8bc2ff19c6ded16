//! Operators change weights by editing config; Envoy must apply it live,
//! under load, without failing a request, and must keep the last good
//! config when a bad one is pushed (`envoy/live.yaml`, ECDS from a file).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::envoy::{Envoy, EnvoyConfig};
use super::http::Connection;

const ECDS_FILE: &str = "envoy/live/canary-router.yaml";

/// One answered (or failed) request of the load.
#[derive(Clone, Debug)]
struct Sample {
    at: Instant,
    outcome: Result<(u16, String), String>,
}

/// Keeps `connections` keep-alive connections busy, each paced to `rps`
/// requests per second, until `stop` is set.
fn load(
    port: u16,
    connections: usize,
    rps: u32,
    stop: Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<Vec<Sample>>> {
    (0..connections)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut samples = Vec::new();
                let mut connection = Connection::open(port).ok();
                let period = Duration::from_secs(1) / rps;
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let outcome = match connection.as_mut() {
                        Some(c) => c
                            .get("a.example.com", "/", &[])
                            .map(|r| (r.status, r.body_text()))
                            .map_err(|e| e.to_string()),
                        None => Err("connect failed".to_string()),
                    };
                    if outcome.is_err() {
                        connection = Connection::open(port).ok();
                    }
                    samples.push(Sample { at: Instant::now(), outcome });
                    next += period;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
                samples
            })
        })
        .collect()
}

fn weights(config: &str, service_a: &str, canary: &str) -> String {
    config
        .replace(
            r#""target": "service-a", "weight": 100 }"#,
            &format!(r#""target": "service-a", "weight": {service_a} }}"#),
        )
        .replace(
            r#""target": "service-a-canary", "weight": 0 }"#,
            &format!(r#""target": "service-a-canary", "weight": {canary} }}"#),
        )
}

#[test]
fn weights_change_live_under_load_without_a_failed_request() {
    let envoy = Envoy::start(EnvoyConfig::from_repo("envoy/live.yaml").with_file(ECDS_FILE));
    let original = std::fs::read_to_string(envoy.dir.join(ECDS_FILE)).unwrap();
    assert!(weights(&original, "0", "100") != original, "the ECDS file's weights moved; update this test");

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers = load(envoy.ingress_port(), 4, 100, stop.clone());
    let marks = Mutex::new(Vec::new());

    thread::sleep(Duration::from_secs(2));
    marks.lock().unwrap().push(Instant::now());
    envoy.replace_file(ECDS_FILE, &weights(&original, "0", "100"));
    // Wait until Envoy accepted the update, then let traffic run on it.
    envoy.wait_until("Envoy to apply the new config", || {
        envoy.stat("extension_config_discovery.http_filter.canary-router.update_success") == Some(2)
    });
    let switched = Instant::now();
    thread::sleep(Duration::from_secs(2));

    envoy.replace_file(ECDS_FILE, &weights(&original, "-1", "100"));
    envoy.wait_until("Envoy to reject the bad config", || {
        envoy.stat("extension_config_discovery.http_filter.canary-router.update_rejected") == Some(1)
    });
    let rejected = Instant::now();
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let samples: Vec<Sample> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();

    let failed: Vec<&Sample> = samples.iter().filter(|s| !matches!(s.outcome, Ok((200, _)))).collect();
    assert!(failed.is_empty(), "{} of {} requests failed, e.g. {:?}", failed.len(), samples.len(), failed[0]);
    let rate = samples.len() as f64 / elapsed;
    assert!(rate >= 200.0, "the load ran at {rate:.0} requests/s, below 200");

    let body = |s: &Sample| s.outcome.as_ref().unwrap().1.clone();
    let change = marks.lock().unwrap()[0];
    assert!(
        samples.iter().filter(|s| s.at < change).all(|s| body(s) == "service-a"),
        "traffic left A before the edit"
    );
    let after: Vec<&Sample> =
        samples.iter().filter(|s| s.at > switched + Duration::from_millis(500)).collect();
    assert!(
        !after.is_empty() && after.iter().all(|s| body(s) == "service-a-canary"),
        "traffic did not move to A'"
    );
    assert!(
        samples.iter().filter(|s| s.at > rejected).all(|s| body(s) == "service-a-canary"),
        "the rejected config changed routing"
    );
    let log = envoy.log();
    assert!(log.contains("config rejected: routes[0].rules[0].split.weights[0].weight: must be a non-negative number, got -1"), "{log}");
    eprintln!("live reload: {} requests at {rate:.0}/s, 0 failed", samples.len());
}
