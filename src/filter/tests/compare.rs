//! The canary judged against its baseline (`rollback.compare`), on the
//! `FakeProxy`: a canary worse than its baseline is rolled back at the
//! response that shows it; a failure both arms share is not blamed on the
//! canary; without baseline traffic nothing is concluded; a gated step is
//! earned by a canary shown to be within its allowance; the gauges say
//! both arms' rates and the bound.

use std::cell::Cell;

use super::worker::Worker;
use canary_router_core::rollout::metrics::{self, tagged};

const B: [(&str, &str); 1] = [(":authority", "b.example.com")];

fn config(weights: &str, compare: &str, ramp: &str) -> String {
    format!(
        r#"{{"routes": [{{"name": "b", "default": "stable", "rules": [{{"split": {{
        "weights": {weights}{ramp},
        "rollback": {{"target": "canary", "minRequests": 20, "window": "60s", "compare": {compare}}}}}}}]}}]}}"#
    )
}

const TWENTY: &str = r#"[{"target": "canary", "weight": 20}, {"target": "stable", "weight": 80}]"#;
const ERRORS: &str = r#"{"maxErrorRateIncrease": 0.01}"#;

/// Each target fails one response in `every[target]` (0: never), in order.
struct Answers {
    canary_every: u64,
    stable_every: u64,
    seen: Cell<[u64; 2]>,
}

impl Answers {
    fn new(canary_every: u64, stable_every: u64) -> Answers {
        Answers { canary_every, stable_every, seen: Cell::new([0, 0]) }
    }

    fn answer(&self, target: &str) -> (String, u64) {
        let (i, every) = if target == "canary" { (0, self.canary_every) } else { (1, self.stable_every) };
        let mut seen = self.seen.get();
        seen[i] += 1;
        self.seen.set(seen);
        let failed = every > 0 && seen[i].is_multiple_of(every);
        (if failed { "503" } else { "200" }.to_string(), 10)
    }
}

fn compared(worker: &Worker, metric: &str, arm: &str) -> u64 {
    worker.metric_ending(&tagged(metric, &[("arm", arm)]))
}

#[test]
fn a_canary_worse_than_its_baseline_is_rolled_back_at_the_response_that_shows_it() {
    let worker = Worker::configured(&config(TWENTY, ERRORS, ""));
    // The canary fails one response in 5, the baseline one in 100.
    let answers = Answers::new(5, 100);
    let mut last = None;
    for i in 0..20_000 {
        if i % 100 == 99 {
            worker.tick_after(100);
        }
        last = worker.exchange_answered(&B, |t| answers.answer(t)).unwrap();
        if worker.rolled_back_for("compare:errors") {
            break;
        }
    }
    assert!(worker.rolled_back_for("compare:errors"), "never rolled back");
    let canary_seen = answers.seen.get()[0];
    assert_eq!(last.as_deref(), Some("canary"), "rolled back by a canary response");
    assert_eq!(canary_seen % 5, 0, "by a failing one, not a tick later");
    assert!(canary_seen < 600, "{canary_seen} canary responses before the rollback");
    // Rolled back: the canary gets nothing more.
    for _ in 0..200 {
        assert_eq!(worker.exchange(&B, "200").unwrap().as_deref(), Some("stable"));
    }
}

#[test]
fn a_failure_both_arms_share_is_not_blamed_on_the_canary() {
    // Both fail one response in 4: an absolute 5% bound would roll back.
    let worker = Worker::configured(&config(TWENTY, ERRORS, ""));
    let answers = Answers::new(4, 4);
    for i in 0..20_000 {
        if i % 100 == 99 {
            worker.tick_after(100);
        }
        worker.exchange_answered(&B, |t| answers.answer(t)).unwrap();
    }
    worker.tick_after(1_000);
    assert!(!worker.rolled_back_for("compare:errors"), "a shared failure blamed on the canary");
    for arm in ["canary", "baseline"] {
        let rate = compared(&worker, metrics::COMPARE_ERROR_RATE, arm);
        assert!(rate.abs_diff(250_000) < 1_000, "{arm}: {rate} millionths");
    }
    let responses = compared(&worker, metrics::COMPARE_RESPONSES, "canary");
    assert!((3_000..5_000).contains(&responses), "{responses}");
    // At most a few points worse, with 95% confidence, on thousands of
    // responses each (at 25% errors each response says little).
    let bound = worker.metric_ending(metrics::COMPARE_ERROR_BOUND);
    assert!((1..50_000).contains(&bound), "bound {bound} millionths");
    assert_eq!(worker.metric_ending(metrics::COMPARE_CONFIDENCE), 950_000);
}

#[test]
fn without_baseline_traffic_nothing_is_concluded() {
    // The named baseline gets no weight: the canary fails half its
    // responses, and the comparison has no evidence to judge it by.
    let weights = r#"[{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}, {"target": "old", "weight": 0}]"#;
    let worker =
        Worker::configured(&config(weights, r#"{"baseline": "old", "maxErrorRateIncrease": 0.01}"#, ""));
    let answers = Answers::new(2, 0);
    for i in 0..5_000 {
        if i % 100 == 99 {
            worker.tick_after(100);
        }
        worker.exchange_answered(&B, |t| answers.answer(t)).unwrap();
    }
    worker.tick_after(1_000);
    assert!(!worker.rolled_back_for("compare:errors"));
    assert_eq!(compared(&worker, metrics::COMPARE_RESPONSES, "baseline"), 0);
    assert!(compared(&worker, metrics::COMPARE_RESPONSES, "canary") > 2_000);
    assert_eq!(worker.metric_ending(metrics::COMPARE_WITHIN), 0);
}

#[test]
fn a_gated_step_is_earned_once_the_canary_is_shown_within_its_allowance() {
    let ramp = r#", "ramp": {"target": "canary", "start": "2026-01-01T00:00:00Z", "every": "10s",
        "steps": [20, 50, 100], "gate": {"minRequests": 20}}"#;
    let worker = Worker::configured(&config(TWENTY, r#"{"maxErrorRateIncrease": 0.05}"#, ramp));
    let answers = Answers::new(0, 0);
    let step = || worker.metric_ending(&tagged(metrics::RAMP_STEP, &[("target", "canary")]));
    worker.tick_after(1_000);
    assert_eq!(step(), 1);
    let mut earned_after = None;
    for i in 0..20_000u64 {
        if i % 100 == 99 {
            worker.tick_after(100);
            if step() == 2 {
                earned_after = Some(answers.seen.get()[0]);
                break;
            }
        }
        worker.exchange_answered(&B, |t| answers.answer(t)).unwrap();
    }
    let canary = earned_after.expect("the step was never earned");
    // Far more than minRequests: it takes that many to show, with 95%
    // confidence over three steps, that the canary is within 5 points.
    assert!((100..2_000).contains(&canary), "earned after {canary} canary responses");
}

const COMPARED_CHECK: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}],
    "rollback": {"target": "canary", "prometheus": {"cluster": "prometheus", "every": "10s", "threshold": 1,
        "checks": [{"name": "errors", "query": "errors{target=~\"{{target}}\"}", "compareTo": "baseline",
                    "maxIncrease": 0.01}]}}}}]}]}"#;

/// The query of a poll call, decoded.
fn query(call: &super::super::fake_proxy::Call) -> String {
    let path = String::from_utf8_lossy(call.header(":path").unwrap_or_default()).into_owned();
    let encoded = path.split_once("query=").map_or("", |(_, q)| q);
    String::from_utf8(canary_router_core::text::query::decode(encoded.as_bytes()).into_owned()).unwrap()
}

#[test]
fn a_compared_prometheus_check_asks_for_both_arms_and_judges_the_difference() {
    use super::worker::{vector, EMPTY};
    let worker = Worker::configured(COMPARED_CHECK);
    let calls = worker.proxy.take_calls();
    let queries: Vec<String> = calls.iter().map(query).collect();
    assert_eq!(queries[0], r#"errors{target=~"canary"}"#);
    assert_eq!(queries[1], r#"errors{target=~"stable"}"#, "the same query for the baseline");
    assert_eq!(calls.len(), 4, "both arms, the latch and the view: {queries:?}");
    // Both arms fail alike: a failure they share, not the canary's.
    worker.answer(calls[0].token, "200", &vector("0.30"));
    worker.answer(calls[1].token, "200", &vector("0.295"));
    worker.answer(calls[2].token, "200", EMPTY);
    worker.answer(calls[3].token, "200", &vector("1"));
    worker.tick_after(1_000);
    assert!(!worker.rolled_back_for("check:errors"));
    assert_eq!(worker.metric_ending(&tagged(metrics::CHECK_VALUE, &[("check", "errors")])), 5_000);
    // The canary 2 points worse than its baseline: rolled back.
    worker.tick_after(10_000);
    let calls = worker.proxy.take_calls();
    assert_eq!(calls.len(), 4);
    worker.answer(calls[0].token, "200", &vector("0.03"));
    worker.answer(calls[1].token, "200", &vector("0.01"));
    worker.answer(calls[2].token, "200", EMPTY);
    worker.answer(calls[3].token, "200", &vector("1"));
    worker.tick_after(1_000);
    assert!(worker.rolled_back_for("check:errors"));
}
