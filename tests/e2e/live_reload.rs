//! Operators change weights by editing config; Envoy must apply it live,
//! under load, without failing a request, and must keep the last good
//! config when a bad one is pushed (`envoy/live.yaml`, ECDS from a file).

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::envoy::{Envoy, EnvoyConfig, ECDS_FILE};
use super::load::{self, Load, Sample};

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
    weights_change_live(&Envoy::start(EnvoyConfig::from_repo("envoy/live.yaml").with_file(ECDS_FILE)));
}

#[test]
fn the_dynamic_module_takes_weights_live_under_load_and_keeps_the_last_good_config() {
    weights_change_live(&Envoy::start(EnvoyConfig::live_module()));
}

/// Under load, the ECDS file's weights move all traffic to A', then a bad
/// config is pushed and refused, naming its key, and routing stays.
fn weights_change_live(envoy: &Envoy) {
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

/// The shell block of `page` that contains `marker`, as lines.
fn shell_block(page: &str, marker: &str) -> Vec<String> {
    let text = std::fs::read_to_string(super::envoy::repo().join(page)).unwrap();
    let block = text
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains(marker))
        .unwrap_or_else(|| panic!("{page} has no sh block with {marker:?}"));
    block.lines().map(str::to_string).collect()
}

fn accepted_lines(envoy: &Envoy) -> usize {
    envoy.log().matches("canary-router: config accepted").count()
}

#[test]
fn the_documented_live_edit_moves_all_traffic_and_is_logged_as_documented() {
    let envoy = Envoy::start(EnvoyConfig::from_repo("envoy/live.yaml").with_file(ECDS_FILE));
    let get = || super::http::get_host(envoy.ingress_port(), "a.example.com", "/", &[]).body_text();
    assert_eq!(get(), "service-a");
    let before = accepted_lines(&envoy);
    // docs/envoy.md's commands as written, but the `make run-live &` that
    // this test's Envoy stands for, run where that Envoy runs.
    for command in shell_block("docs/envoy.md", "make run-live &").iter().filter(|l| !l.starts_with("make "))
    {
        let command = command.split(" # ").next().unwrap();
        let status =
            std::process::Command::new("sh").arg("-c").arg(command).current_dir(&envoy.dir).status().unwrap();
        assert!(status.success(), "`{command}` failed");
    }
    envoy.wait_until("all traffic to move to service-a-canary", || {
        (0..10).all(|_| get() == "service-a-canary")
    });
    // "twice on the main thread and once per worker: 4 lines with 2 workers"
    envoy.wait_until("the new config to be logged", || accepted_lines(&envoy) > before);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(accepted_lines(&envoy) - before, 4, "docs/envoy.md says 4 lines per push with 2 workers");
}

#[test]
fn the_readme_s_first_canary_answers_as_it_says() {
    // `make run`: envoy/envoy.yaml with 2 workers.
    let envoy = Envoy::start(EnvoyConfig::from_repo("envoy/envoy.yaml"));
    assert_eq!(accepted_lines(&envoy), 4, "docs/envoy.md says make run logs 4 lines at start-up");
    the_readme_s_requests_answer_as_it_says(&envoy);
}

#[test]
fn the_dynamic_module_answers_the_readme_s_requests_as_the_wasm_filter_does() {
    // `make run-dynmod`: envoy/dynmod.yaml, the same config, the native home.
    the_readme_s_requests_answer_as_it_says(&Envoy::start(EnvoyConfig::dynamic_module()));
}

/// The README's first canary, each `curl` line's answer as it says, from
/// either home of the filter.
fn the_readme_s_requests_answer_as_it_says(envoy: &Envoy) {
    let mut checked = 0;
    for line in shell_block("README.md", "make run &").iter().filter(|l| l.starts_with("curl -H 'host: ")) {
        let (command, want) = line.split_once('#').unwrap();
        let words: Vec<&str> = command.split('\'').collect();
        // curl -H 'host: H' [-H 'k: v' | --cookie 'c'] URL
        let mut headers: Vec<(String, String)> = Vec::new();
        for (i, word) in words.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            let flag = words[i - 1].trim();
            if flag.ends_with("-H") {
                let (k, v) = word.split_once(": ").unwrap();
                headers.push((k.to_string(), v.to_string()));
            } else if flag.ends_with("--cookie") {
                headers.push(("cookie".into(), word.to_string()));
            }
        }
        let url = command.split_whitespace().find(|w| w.trim_matches('\'').starts_with("http://")).unwrap();
        let path = url.trim_matches('\'').trim_start_matches("http://127.0.0.1:10000");
        let host = headers.iter().find(|(k, _)| k == "host").unwrap().1.clone();
        let others: Vec<(&str, &str)> =
            headers.iter().filter(|(k, _)| k != "host").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let response = super::http::get_host(envoy.ingress_port(), &host, path, &others);
        assert_eq!(response.body_text(), want.trim(), "README: {line}");
        checked += 1;
    }
    assert_eq!(checked, 4, "the README's curl lines");
}

/// docs/envoy.md's advice for a big config: the ECDS resource of
/// `ECDS_FILE` written as JSON, the filter's config the string under
/// `configuration.value`.
fn json_resource(template: &str, config: &str) -> String {
    let mut resource: serde_json::Value = serde_norway::from_str(template).unwrap();
    let filter = &mut resource["resources"][0]["typed_config"]["config"];
    filter["configuration"]["value"] = config.into();
    // As the harness's Envoy reads every file: the built filter's own path.
    filter["vm_config"]["code"]["local"]["filename"] = super::envoy::wasm().display().to_string().into();
    serde_json::to_string(&resource).unwrap()
}

/// bench/big_config.py's config at the documented limits, its first route
/// sending probe.example.com to `target`.
fn config_at_the_limits(target: &str) -> String {
    let mut config: serde_json::Value =
        serde_json::from_slice(&super::bench_config::big_config("1")).unwrap();
    config["routes"][0] =
        serde_json::json!({"name": "probe", "hosts": ["probe.example.com"], "default": target});
    serde_json::to_string(&config).unwrap()
}

#[test]
fn a_config_at_the_limits_applies_from_a_json_ecds_file_read_in_parts() {
    let json_file = "envoy/live/canary-router.json";
    let template = std::fs::read_to_string(super::envoy::repo().join(ECDS_FILE)).unwrap();
    let small = r#"{"routes": [{"name": "probe", "hosts": ["probe.example.com"], "default": "service-a"}]}"#;
    let mut config = EnvoyConfig::from_repo("envoy/live.yaml").replace(ECDS_FILE, json_file);
    config.files.push((json_file.to_string(), json_resource(&template, small)));
    let envoy = Envoy::start(config);
    let probe = || super::http::get_host(envoy.ingress_port(), "probe.example.com", "/", &[]).body_text();
    envoy.wait_until("the first config to route the probe", || probe() == "service-a");
    let big = config_at_the_limits("service-a-canary");
    assert!(big.len() > 4_000_000, "{} bytes", big.len());
    let start = Instant::now();
    envoy.replace_file(json_file, &json_resource(&template, &big));
    envoy.wait_until("the config at the limits to route the probe", || probe() == "service-a-canary");
    eprintln!("{} bytes of config applied from a JSON ECDS file in {:?}", big.len(), start.elapsed());
    let rejected = envoy.stat("extension_config_discovery.http_filter.canary-router.update_rejected");
    // The probe answers by the new config only if all of it compiled: a
    // config with an error anywhere is refused whole.
    assert_eq!(rejected.unwrap_or(0), 0, "Envoy's log:\n{}", envoy.log());
}
