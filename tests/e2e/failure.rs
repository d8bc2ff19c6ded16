//! What Envoy does with the filter when its config is bad, under each
//! `failure_policy` (docs/envoy.md, "Failure policy").

use super::envoy::{Envoy, EnvoyConfig};
use super::http::get_host;

const BAD_KEY: &str = r#"{"routes": [{"name": "a", "default": "service-a", "rules": [{"match": [{"header": "foo", "exact": "bar"}], "tagret": "service-a-canary"}]}]}"#;

#[test]
fn an_invalid_config_stops_envoy_with_our_error_naming_the_key() {
    for policy in ["FAIL_RELOAD", "FAIL_CLOSED", "FAIL_OPEN"] {
        let config = EnvoyConfig::from_repo("envoy/envoy.yaml")
            .with_filter_config(BAD_KEY)
            .replace("failure_policy: FAIL_RELOAD", &format!("failure_policy: {policy}"));
        let (status, log) = Envoy::run_to_exit(config);
        assert!(!status.success(), "{policy}: Envoy started with an invalid filter config");
        assert!(
            log.contains("canary-router: config rejected: routes[0].rules[0].tagret: unknown field `tagret`"),
            "{policy}: our error is not in Envoy's log:\n{log}"
        );
        assert!(log.contains("Unable to create Wasm plugin canary-router"), "{policy}:\n{log}");
    }
}

/// Envoy with the crashing stand-in in place of the filter.
fn crashing_filter(policy: &str) -> Envoy {
    let envoy_config = EnvoyConfig::from_repo("envoy/envoy.yaml")
        .replace("failure_policy: FAIL_RELOAD", &format!("failure_policy: {policy}"));
    let module =
        std::env::temp_dir().join(format!("canary-router-crashing-{}-{policy}.wasm", std::process::id()));
    std::fs::write(&module, super::wasm_fixtures::crashing()).unwrap();
    Envoy::start(envoy_config.replace(
        "filename: target/wasm32-wasip1/release/canary_router.wasm",
        &format!("filename: {}", module.display()),
    ))
}

#[test]
fn fail_closed_answers_503_when_the_vm_crashes() {
    let envoy = crashing_filter("FAIL_CLOSED");
    for _ in 0..10 {
        let response =
            get_host(envoy.ingress_port(), "a.example.com", "/", &[("x-route-target", "service-a-canary")]);
        assert_eq!(response.status, 503, "body: {}", response.body_text());
    }
}

#[test]
fn fail_open_would_let_a_client_choose_its_upstream() {
    // Why the examples never use FAIL_OPEN: a request that skips the filter
    // keeps its client-sent target header, and cluster_header obeys it.
    let envoy = crashing_filter("FAIL_OPEN");
    let answers: Vec<(u16, String)> = (0..10)
        .map(|_| {
            let r = get_host(
                envoy.ingress_port(),
                "a.example.com",
                "/",
                &[("x-route-target", "service-a-canary")],
            );
            (r.status, r.body_text())
        })
        .collect();
    // The request that crashes each worker's VM fails; after that, requests
    // skip the dead filter and go wherever the client said.
    assert!(answers.iter().all(|a| a.0 == 503 || a.1 == "service-a-canary"), "{answers:?}");
    assert!(answers.iter().filter(|a| a.1 == "service-a-canary").count() >= 5, "{answers:?}");
}
