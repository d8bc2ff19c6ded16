//! The canary judged against its baseline (`rollback.compare`), in Envoy
//! 1.40: a failure both versions share (both backends answer 30% 503s, by
//! Envoy's fault filter) is not blamed on the canary, where an absolute
//! `maxErrorRate` rolls the same canary back; a canary that fails where
//! its baseline does not is rolled back (reason `compare:errors`); and
//! `canary-router status` shows both arms and the bound.

use std::process::Command;

use super::envoy::{Envoy, EnvoyConfig};
use super::http::get_host;

/// The backend listener `stat_prefix` answering `percent`% of requests
/// with 503 (Envoy's fault filter, before its direct response).
fn failing(config: EnvoyConfig, stat_prefix: &str, percent: u32) -> EnvoyConfig {
    config.replace(
        &format!("stat_prefix: {stat_prefix}\n          http_filters:\n"),
        &format!(
            "stat_prefix: {stat_prefix}\n          http_filters:\n          - name: envoy.filters.http.fault\n            \
             typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n              \
             abort: {{ http_status: 503, percentage: {{ numerator: {percent}, denominator: HUNDRED }} }}\n"
        ),
    )
}

fn route(name: &str, canary: &str, stable: &str, rollback: serde_json::Value) -> serde_json::Value {
    let mut rollback = rollback;
    rollback["target"] = canary.into();
    rollback["minRequests"] = 20.into();
    rollback["window"] = "60s".into();
    serde_json::json!({
        "name": name, "hosts": [format!("{name}.example.com")], "default": stable,
        "rules": [{"split": {
            "weights": [{"target": canary, "weight": 50}, {"target": stable, "weight": 50}],
            "rollback": rollback}}]
    })
}

fn rolled_back_for(envoy: &Envoy, route: &str, reason: &str) -> bool {
    envoy.sample_with("canary_router_rollback_reason", &[("route", route), ("reason", reason)]) == Some(1.0)
}

#[test]
fn a_shared_failure_is_not_blamed_on_the_canary_and_a_canary_s_own_is() {
    shared_and_own_failures(EnvoyConfig::over_ecds);
}

#[test]
fn the_dynamic_module_compares_the_canary_with_its_baseline() {
    shared_and_own_failures(EnvoyConfig::module_over_ecds);
}

/// The same test in either home: `home` makes the Envoy config that loads
/// the filter with this JSON.
fn shared_and_own_failures(home: impl Fn(&str) -> EnvoyConfig) {
    let compare = serde_json::json!({"compare": {"maxErrorRateIncrease": 0.05}});
    let config = serde_json::json!({"routes": [
        // Both versions fail 30%: the database, say.
        route("shared", "service-b-canary", "service-b", compare.clone()),
        route("absolute", "service-b-canary", "service-b", serde_json::json!({"maxErrorRate": 0.2})),
        // Only the canary fails.
        route("regressed", "service-a-canary", "service-a", compare),
    ]})
    .to_string();
    let mut envoy_config = home(&config).with_concurrency(1);
    for backend in ["backend_service_b", "backend_service_b_canary", "backend_service_a_canary"] {
        envoy_config = failing(envoy_config, backend, 30);
    }
    let envoy = Envoy::start(envoy_config);
    let port = envoy.ingress_port();

    let mut regressed_canary = 0;
    let mut regressed_after = None;
    for i in 0..1_500 {
        for host in ["shared.example.com", "absolute.example.com"] {
            get_host(port, host, "/", &[]);
        }
        if regressed_after.is_none() {
            let answer = get_host(port, "regressed.example.com", "/", &[]);
            regressed_canary +=
                usize::from(answer.body_text().trim() == "service-a-canary" || answer.status == 503);
            if i % 10 == 0 && rolled_back_for(&envoy, "regressed", "compare:errors") {
                regressed_after = Some(regressed_canary);
            }
        }
    }
    // The gauges are refreshed on the tick (the dynamic module's shown by
    // the next request: one to a host no route has, which no arm counts).
    envoy.wait_until_requested("the tick's gauges", "nowhere.example.com", || {
        envoy.sample_with("canary_router_compare_responses", &[("route", "shared"), ("arm", "baseline")])
            > Some(500.0)
    });
    assert!(rolled_back_for(&envoy, "absolute", "window"), "the absolute bound blames the canary");
    assert_eq!(
        envoy.sample_with("canary_router_rolled_back", &[("route", "shared")]),
        Some(0.0),
        "the comparison blamed the canary for a failure both versions share"
    );
    for arm in ["canary", "baseline"] {
        let rate = envoy
            .sample_with("canary_router_compare_error_rate_millionths", &[("route", "shared"), ("arm", arm)])
            .unwrap();
        assert!((200_000.0..400_000.0).contains(&rate), "{arm}: {rate} millionths");
    }
    let regressed_after = regressed_after.expect("the canary failing alone was never rolled back");
    assert!(regressed_after < 600, "rolled back after {regressed_after} canary requests");

    // `status` shows both arms and the bound.
    let output = Command::new(crate::built::require_fresh_cli())
        .args(["status", "--admin", &format!("127.0.0.1:{}", envoy.admin_port())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let shared = text.split("route shared").nth(1).unwrap_or_default();
    assert!(shared.contains("  compare: errors canary ") && shared.contains(" vs baseline "), "{text}");
    assert!(shared.contains("responses since the step began"), "{text}");
    let regressed = text.split("route regressed").nth(1).unwrap_or_default();
    assert!(regressed.contains("ROLLED BACK") && regressed.contains("reason compare:errors"), "{text}");
    eprintln!(
        "shared 30% failure: not rolled back by compare, rolled back by maxErrorRate 0.2; the canary failing \
         alone (30% vs 0%): rolled back after {regressed_after} of its requests"
    );
}
