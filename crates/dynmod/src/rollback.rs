//! A rollback split's local window, judged on each response of its watched
//! target as the `.wasm` judges it (`judge::look_at_window`): the response
//! that takes the window over its threshold rolls the split back, for
//! every worker at once (they read one flag). The window counts one
//! process's traffic; with several proxies, each judges its own.

use canary_router_core::rollout::compare::Arms;
use canary_router_core::rollout::error_window::{self, Counts};
use canary_router_core::rollout::fleet_state::RolledBack;
use canary_router_core::rollout::judge;
use canary_router_core::rollout::log_lines;
use canary_router_core::routing::split::Split;

use crate::split_states::SplitShared;

/// One response of the watched target (or a request that waited past
/// `abandonedAfterMs` for none): an error or not, how long it took, and the
/// ramp step it was sent at (a gated step counts only its own).
pub struct Answered {
    pub error: bool,
    pub latency_ms: Option<u64>,
    pub step: u32,
}

/// Counts `answered` in the split's window; returns the rollback when this
/// response made it (`None` when it did not, or it was rolled back before).
pub fn record(split: &Split, shared: &SplitShared, answered: &Answered, now_ms: u64) -> Option<RolledBack> {
    let window = split.rollback()?.window.as_ref()?;
    let mut judged = shared.lock();
    if judged.rolled_back.is_some() {
        return None;
    }
    let shape = error_window::shape_of(window);
    if judged.window.shape != shape {
        judged.window = std::mem::take(&mut judged.window).of_shape(shape);
    }
    let bucket = error_window::bucket_of(now_ms, window.window_ms);
    let latency =
        window.latency.as_ref().zip(answered.latency_ms).map(|(l, ms)| error_window::latency_bucket(ms, l));
    judged.window.add(bucket, Counts::one(answered.error, latency), &Arms::default(), answered.step);
    let look = judge::look_at_window(window, &judged.window, bucket, split.ramp());
    let crossed = look.crossed?;
    let rolled = RolledBack {
        since_ms: now_ms,
        reason: crossed.reason().to_string(),
        detail: judge::crossing_detail(window, &look, crossed),
    };
    judged.window.rolled_back = true;
    judged.rolled_back = Some(rolled.clone());
    shared.withhold();
    Some(rolled)
}

/// Says a split rolled back, in the `.wasm`'s words.
pub fn log(route: &str, split: &Split, rolled: &RolledBack) {
    let target = split.rollback().map_or("-", |r| r.target.as_str());
    eprintln!("{}", log_lines::rolled_back(route, target, &split.identity_hex(), rolled));
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_router_core::config;

    fn split_of(json: &str) -> Split {
        let router = config::parse(json.as_bytes()).unwrap();
        let split = router.splits().next().unwrap().2.clone();
        split
    }

    const ROLLBACK: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
        "weights": [{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}],
        "rollback": {"target": "canary", "maxErrorRate": 0.1, "minRequests": 20, "window": "60s"}}}]}]}"#;

    #[test]
    fn the_response_that_takes_the_window_over_its_rate_rolls_back() {
        let split = split_of(ROLLBACK);
        let shared = SplitShared::default();
        let error = Answered { error: true, latency_ms: Some(3), step: 0 };
        let now = 1_700_000_000_000;
        for n in 1..20 {
            assert_eq!(record(&split, &shared, &error, now + n), None, "{n} responses are fewer than 20");
            assert!(!shared.withheld());
        }
        let rolled = record(&split, &shared, &error, now + 20).unwrap();
        assert_eq!(rolled.reason, "window");
        assert!(shared.withheld());
        assert_eq!(record(&split, &shared, &error, now + 21), None, "rolled back once");
    }

    #[test]
    fn answers_within_the_rate_keep_it_live() {
        let split = split_of(ROLLBACK);
        let shared = SplitShared::default();
        let now = 1_700_000_000_000;
        for n in 0..1_000 {
            let answered = Answered { error: n % 20 == 0, latency_ms: Some(3), step: 0 };
            assert_eq!(record(&split, &shared, &answered, now + n), None);
        }
        assert!(!shared.withheld(), "5% errors under a 10% bound");
    }
}
