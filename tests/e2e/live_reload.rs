//! Operators change weights by editing config; Envoy must apply it live,
//! under load, without failing a request, and must keep the last good
//! config when a bad one is pushed (`envoy/live.yaml`, ECDS from a file).

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::envoy::{Envoy, EnvoyConfig};
use super::load::{self, Load, Sample};

const ECDS_FILE: &str = "envoy/live/canary-router.yaml";

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

    let traffic = Load::start(envoy.ingress_port(), 4, 100, load::get("a.example.com"));
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
    let (samples, rate) = traffic.stop();
    load::assert_all_ok("live reload", &samples);
    assert!(rate >= 200.0, "the load ran at {rate:.0} requests/s, below 200");

    let body = |s: &Sample| s.body().to_string();
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
