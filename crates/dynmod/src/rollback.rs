//! A rollback split's local window, judged on each response of its watched
//! target as the `.wasm` judges it (`judge::look_at_window`): the response
//! that takes the window over its threshold rolls the split back, for
//! every worker at once (they read one flag). With `compare`, the
//! baseline's responses are counted beside the canary's, and the canary is
//! judged against them. The window counts one process's traffic; with
//! several proxies, each judges its own.

pub use canary_router_core::rollout::compare::Answered;
use canary_router_core::rollout::compare::{self, Arms, WatchedArm};
use canary_router_core::rollout::error_window::{self, Counts};
use canary_router_core::rollout::fleet_state::RolledBack;
use canary_router_core::rollout::judge;
use canary_router_core::rollout::log_lines;
use canary_router_core::rollout::settings::LocalWindow;
use canary_router_core::routing::split::Split;

use crate::split_states::{Judged, SplitShared};

/// Counts `answered` in the split's window; returns the rollback when this
/// response made it (`None` when it did not, or it was rolled back before).
/// A baseline's response only makes the canary look better: it is judged
/// on the tick (`judge_now`).
pub fn record(split: &Split, shared: &SplitShared, answered: &Answered, now_ms: u64) -> Option<RolledBack> {
    let window = split.rollback()?.window.as_ref()?;
    let mut judged = shared.lock();
    if judged.rolled_back.is_some() {
        return None;
    }
    fit(&mut judged, window);
    let bucket = error_window::bucket_of(now_ms, window.window_ms);
    let canary = answered.arm == WatchedArm::Canary;
    let counts = if canary {
        let latency = window.latency.as_ref().zip(answered.latency_ms);
        Counts::one(answered.error, latency.map(|(l, ms)| error_window::latency_bucket(ms, l)))
    } else {
        Counts::default()
    };
    judged.window.add(bucket, counts, &Arms::default(), answered.step);
    if let (Some(compare), true) = (&window.compare, judged.window.step == answered.step) {
        // Counted in place: an arm's histogram is not copied per response.
        let timed = compare.latency.as_ref().and(answered.latency_ms);
        let arms = &mut judged.window.arms;
        match answered.arm {
            WatchedArm::Canary => {
                let forecast = compare::forecast_rate(&arms.baseline);
                arms.canary.count(answered.error, timed, Some(forecast));
            }
            WatchedArm::Baseline => arms.baseline.count(answered.error, timed, None),
        }
    }
    if !canary {
        return None;
    }
    judge_window(split, window, &mut judged, shared, now_ms)
}

/// Judges the split's window as it is at `now_ms` (from the tick): the
/// rollback, if it makes one; what the comparison says is kept for the
/// gauges.
pub fn judge_now(split: &Split, shared: &SplitShared, now_ms: u64) -> Option<RolledBack> {
    let window = split.rollback()?.window.as_ref()?;
    let mut judged = shared.lock();
    if judged.rolled_back.is_some() {
        return None;
    }
    fit(&mut judged, window);
    judge_window(split, window, &mut judged, shared, now_ms)
}

/// The window in this config's shape (a new one has none yet).
fn fit(judged: &mut Judged, window: &LocalWindow) {
    let shape = error_window::shape_of(window);
    if judged.window.shape != shape {
        judged.window = std::mem::take(&mut judged.window).of_shape(shape);
    }
}

fn judge_window(
    split: &Split,
    window: &LocalWindow,
    judged: &mut Judged,
    shared: &SplitShared,
    now_ms: u64,
) -> Option<RolledBack> {
    let bucket = error_window::bucket_of(now_ms, window.window_ms);
    let look = judge::look_at_window(window, &judged.window, bucket, split.ramp());
    judged.compared = look.compared.map(|c| (look.arms, c));
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
        let error = Answered { arm: WatchedArm::Canary, error: true, latency_ms: Some(3), step: 0 };
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

    const COMPARED: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
        "weights": [{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}],
        "rollback": {"target": "canary", "minRequests": 20, "window": "60s",
                     "compare": {"maxErrorRateIncrease": 0.05}}}}]}]}"#;

    /// `n` responses of each arm, every `canary_every`-th of the canary's
    /// and every `baseline_every`-th of the baseline's an error; the first
    /// rollback, if any, after how many canary responses.
    fn compared(n: u64, canary_every: u64, baseline_every: u64) -> Option<(u64, RolledBack)> {
        let split = split_of(COMPARED);
        let shared = SplitShared::default();
        let now = 1_700_000_000_000;
        for i in 0..n {
            let answer =
                |arm, every: u64| Answered { arm, error: i % every == 0, latency_ms: Some(3), step: 0 };
            assert_eq!(record(&split, &shared, &answer(WatchedArm::Baseline, baseline_every), now + i), None);
            if let Some(rolled) = record(&split, &shared, &answer(WatchedArm::Canary, canary_every), now + i)
            {
                return Some((i + 1, rolled));
            }
        }
        assert!(shared.lock().compared.is_some_and(|(arms, _)| arms.baseline.requests == n));
        None
    }

    #[test]
    fn a_canary_failing_where_its_baseline_does_not_is_rolled_back_by_the_comparison() {
        let (after, rolled) = compared(2_000, 3, 1_000).expect("never rolled back");
        assert_eq!(rolled.reason, "compare:errors");
        assert!(after < 200, "rolled back after {after} canary responses");
        assert!(rolled.detail.contains("vs baseline"), "{}", rolled.detail);
    }

    #[test]
    fn a_failure_both_arms_share_is_not_blamed_on_the_canary() {
        assert_eq!(compared(2_000, 3, 3), None);
    }

    #[test]
    fn answers_within_the_rate_keep_it_live() {
        let split = split_of(ROLLBACK);
        let shared = SplitShared::default();
        let now = 1_700_000_000_000;
        for n in 0..1_000 {
            let answered =
                Answered { arm: WatchedArm::Canary, error: n % 20 == 0, latency_ms: Some(3), step: 0 };
            assert_eq!(record(&split, &shared, &answered, now + n), None);
        }
        assert!(!shared.withheld(), "5% errors under a 10% bound");
    }
}
