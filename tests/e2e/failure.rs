//! What Envoy does with the filter when its config is bad, under each
//! `failure_policy` (README, "Failure policy").

use super::envoy::{Envoy, EnvoyConfig};

const BAD_KEY: &str = r#"{"routes": [{"name": "a", "default": "service-a", "rules": [{"match": [{"header": "foo", "exact": "bar"}], "tagret": "service-a-canary"}]}]}"#;

#[test]
fn an_invalid_config_stops_envoy_with_our_error_naming_the_key() {
    for policy in ["FAIL_CLOSED", "FAIL_OPEN"] {
        let config = EnvoyConfig::from_repo("envoy/envoy.yaml")
            .with_filter_config(BAD_KEY)
            .replace("failure_policy: FAIL_CLOSED", &format!("failure_policy: {policy}"));
        let (status, log) = Envoy::run_to_exit(config);
        assert!(!status.success(), "{policy}: Envoy started with an invalid filter config");
        assert!(
            log.contains("canary-router: config rejected: routes[0].rules[0].tagret: unknown field `tagret`"),
            "{policy}: our error is not in Envoy's log:\n{log}"
        );
        assert!(log.contains("Unable to create Wasm plugin canary-router"), "{policy}:\n{log}");
    }
}
