//! Metric names. proxy-wasm metrics have no labels, so the labels travel in
//! the name in Istio's convention, `tag=.=value;.;`, which Envoy's
//! `stats_tags` (and Istio's `extraStatTags`) turn back into labels:
//! `route=.=service-b;.;target=.=service-b-canary;.;canary_router_requests_total`
//! is exported to Prometheus as
//! `canary_router_requests_total{route="service-b",target="service-b-canary"}`.

pub const REQUESTS: &str = "canary_router_requests_total";
pub const RESPONSES: &str = "canary_router_responses_total";
pub const RULE_HITS: &str = "canary_router_rule_hits_total";
pub const DEFAULT_ROUTED: &str = "canary_router_default_total";
pub const UNROUTED: &str = "canary_router_unrouted_total";
pub const SHADOW_SENT: &str = "canary_router_shadow_requests_total";
pub const SHADOW_FAILED: &str = "canary_router_shadow_failures_total";
pub const SHADOW_SKIPPED: &str = "canary_router_shadow_skipped_total";
pub const REGEX_SKIPPED: &str = "canary_router_regex_skipped_total";
pub const CONFIG_ACCEPTED: &str = "canary_router_config_accepted_total";
pub const CONFIG_REJECTED: &str = "canary_router_config_rejected_total";
/// Gauges of each split's state (docs/metrics.md, "Split state").
/// 1 while a split's rollback is in force; its `split` label is what the
/// fleet latch asks Prometheus about.
pub const ROLLED_BACK: &str = "canary_router_rolled_back";
/// 1 for the reason a split rolled back (`window`, `check:NAME`, `fleet`).
pub const ROLLBACK_REASON: &str = "canary_router_rollback_reason";
/// When the split rolled back, in seconds since the epoch (0: it did not).
pub const ROLLED_BACK_SINCE: &str = "canary_router_rolled_back_since_seconds";
/// 1 while a started proxy waits for the fleet latch's first answer.
pub const WAITING: &str = "canary_router_waiting_for_fleet";
/// Each target's share as configured, and as routed now (after the ramp
/// and any rollback), in parts per million.
pub const CONFIGURED_WEIGHT: &str = "canary_router_configured_weight_ppm";
pub const LIVE_WEIGHT: &str = "canary_router_live_weight_ppm";
/// The ramp's step in force (1 is the first; 0 before the start), how many
/// it has, and when the next one comes (seconds since the epoch; 0: none).
pub const RAMP_STEP: &str = "canary_router_ramp_step";
pub const RAMP_STEPS: &str = "canary_router_ramp_steps";
pub const RAMP_NEXT_STEP: &str = "canary_router_ramp_next_step_seconds";
/// Each Prometheus check's last value, times 1,000,000 (gauges are whole
/// and not negative: a negative value reads 0).
pub const CHECK_VALUE: &str = "canary_router_check_value_millionths";
/// Polls in a row in which a check failed.
pub const CHECK_FAILURES: &str = "canary_router_check_failures";
/// Prometheus queries by `query` (a check's name, `latch`, `view` or
/// `step_latch`) and `result`.
pub const PROMETHEUS_QUERIES: &str = "canary_router_prometheus_queries_total";
/// 1 while the check's last answer was no data or no usable answer: a
/// gated ramp waits, and nothing judges the canary by it.
pub const CHECK_UNANSWERED: &str = "canary_router_check_unanswered";
/// 1 when the rollback asks Prometheus (the fleet remembers it); 0 when it
/// is local only, forgotten when the proxy restarts.
pub const ROLLBACK_FLEET: &str = "canary_router_rollback_fleet";
/// With `rollback.prometheus`: the proxy's beacon, a random number the
/// fleet view looks for in Prometheus to know it sees this proxy.
pub const PROXY_BEACON: &str = "canary_router_proxy_beacon";
/// 1 while the fleet view has not shown this proxy's own series for
/// longer than `blindAfter`: the latches cannot see this proxy.
pub const FLEET_BLIND: &str = "canary_router_fleet_blind";
/// A gated ramp's step (1-based) times 10^9 plus the step's clock in
/// seconds: what the step latch reads (`gate::FleetProgress`).
pub const RAMP_PROGRESS: &str = "canary_router_ramp_progress";
/// A ramp's kind: 1 gated (each step earned), 0 by the clock.
pub const RAMP_GATED: &str = "canary_router_ramp_gated";
/// When the step in force began, seconds since the epoch.
pub const RAMP_STEP_SINCE: &str = "canary_router_ramp_step_since_seconds";
/// 1 while a ramp holds, by `reason`: `hold` (the config's), `maxWait`,
/// or `fleetView` (earned, but the fleet view is not confirmed).
pub const RAMP_HOLDING: &str = "canary_router_ramp_holding";
/// Since when a gated ramp holds (seconds since the epoch; 0: it does not).
pub const RAMP_HOLDING_SINCE: &str = "canary_router_ramp_holding_since_seconds";
/// A gated step's evidence: responses since it began, responses needed,
/// their error rate (millionths), the latency percentile (ms), and
/// whether it passed (1) or the gate still waits (0).
pub const GATE_RESPONSES: &str = "canary_router_gate_responses";
pub const GATE_NEEDED: &str = "canary_router_gate_min_responses";
pub const GATE_ERROR_RATE: &str = "canary_router_gate_error_rate_millionths";
pub const GATE_LATENCY: &str = "canary_router_gate_latency_ms";
pub const GATE_PASSED: &str = "canary_router_gate_passed";
/// Which percentile `GATE_LATENCY` is, times ten (990: p99).
pub const GATE_LATENCY_PERCENTILE: &str = "canary_router_gate_latency_percentile_tenths";

/// With `compare`, per split: each arm's (`arm`: `canary`, `baseline`)
/// responses since the step began, their error rate (millionths) and the
/// compared latency percentile (microseconds); the upper confidence bound
/// of the canary's error rate minus the baseline's (millionths; 0 when it
/// is below 0, 1,000,000 before there is any); the confidence
/// (millionths); which percentile is compared (tenths); and 1 while the
/// canary is within its allowances with that confidence.
pub const COMPARE_RESPONSES: &str = "canary_router_compare_responses";
pub const COMPARE_ERROR_RATE: &str = "canary_router_compare_error_rate_millionths";
pub const COMPARE_LATENCY: &str = "canary_router_compare_latency_microseconds";
pub const COMPARE_ERROR_BOUND: &str = "canary_router_compare_error_increase_bound_millionths";
pub const COMPARE_CONFIDENCE: &str = "canary_router_compare_confidence_millionths";
pub const COMPARE_PERCENTILE: &str = "canary_router_compare_latency_percentile_tenths";
pub const COMPARE_WITHIN: &str = "canary_router_compare_within";

/// The status classes responses are counted by, in index order.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The index of `5xx`: what rollbacks and shadows count as failures.
pub const SERVER_ERROR: usize = 4;

/// A fraction as a gauge holds it: times a million, rounded, 0 for none
/// or less, saturating.
pub fn millionths(value: f64) -> u64 {
    if value.is_nan() || value <= 0.0 {
        0
    } else {
        // `as` saturates at u64::MAX for huge values and infinity.
        (value * 1e6).round() as u64
    }
}

/// A metric name with its tags encoded.
pub fn tagged(name: &str, tags: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (tag, value) in tags {
        out.push_str(tag);
        out.push_str("=.=");
        // `;` and `=` would end the encoded value early.
        out.extend(value.chars().map(|c| if c == ';' || c == '=' { '_' } else { c }));
        out.push_str(";.;");
    }
    out.push_str(name);
    out
}

/// The index in `STATUS_CLASSES` of a `:status` value, if it is one.
pub fn status_class(status: &[u8]) -> Option<usize> {
    match status {
        [first @ b'1'..=b'5', b'0'..=b'9', b'0'..=b'9'] => Some(usize::from(first - b'1')),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_encoded_in_istios_convention() {
        assert_eq!(
            tagged(REQUESTS, &[("route", "service-b"), ("target", "service-b-canary")]),
            "route=.=service-b;.;target=.=service-b-canary;.;canary_router_requests_total"
        );
        assert_eq!(tagged(UNROUTED, &[]), "canary_router_unrouted_total");
        assert_eq!(tagged("m", &[("target", "a;b=c")]), "target=.=a_b_c;.;m");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(b"200"), Some(1));
        assert_eq!(status_class(b"503"), Some(4));
        assert_eq!(status_class(b"101"), Some(0));
        assert_eq!(status_class(b"600"), None);
        assert_eq!(status_class(b"20"), None);
        assert_eq!(status_class(b"abc"), None);
    }
}
