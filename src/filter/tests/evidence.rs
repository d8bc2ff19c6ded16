//! The judge acts only on evidence it saw (issue #26), on the `FakeProxy`:
//! a step's clock starts where the split was first live and stops while
//! held; an edit to how the canary is judged keeps the step and a
//! rollback; counts stay with their step; every series must pass; a fleet
//! view that does not show this proxy holds gated steps and says so; a
//! canary that hangs is seen; polls are claimed once and survive a clock
//! that steps back; first writes of a shared key are never lost.

use std::rc::Rc;

use super::super::fake_proxy::SharedStore;
use super::super::tick;
use super::worker::{vector, vectors, Worker, EMPTY, START_MS};
use canary_router_core::rollout::error_window::{self, Window};
use canary_router_core::rollout::metrics::{self, tagged};

const B: [(&str, &str); 1] = [(":authority", "b.example.com")];

/// A gated ramp judged by this proxy's window: `start`, then steps of at
/// least 10 s, each earned by 5 healthy responses; 30 s without a verdict
/// rolls back.
fn gated(start: &str, steps: &str, max_error_rate: &str, hold: bool) -> String {
    format!(
        r#"{{"routes": [{{"name": "b", "default": "stable", "rules": [{{"split": {{
        "weights": [{{"target": "canary", "weight": 1}}, {{"target": "stable", "weight": 99}}],
        "ramp": {{"target": "canary", "start": "{start}", "every": "10s", "steps": {steps}, "hold": {hold},
                 "gate": {{"minRequests": 5, "maxWait": "30s", "onMaxWait": "rollback"}}}},
        "rollback": {{"target": "canary", "maxErrorRate": {max_error_rate}, "minRequests": 5, "window": "60s"}}}}}}]}}]}}"#
    )
}

/// A year before the fake clock's start.
const LONG_AGO: &str = "2025-01-01T00:00:00Z";

/// Requests until the canary answered `n` of them with `status`.
fn canary_answers(worker: &Worker, n: usize, status: &str) {
    let mut answered = 0;
    for _ in 0..100_000 {
        if answered == n {
            return;
        }
        answered += usize::from(worker.exchange(&B, status).unwrap().as_deref() == Some("canary"));
    }
    panic!("the canary got {answered} of {n} requests");
}

/// The ramp's step as its gauge says (1 is the first).
fn step(worker: &Worker) -> u64 {
    worker.metric_ending(&tagged(metrics::RAMP_STEP, &[("target", "canary")]))
}

/// Ticks once a second for `ms`.
fn ticks(worker: &Worker, ms: u64) {
    for _ in 0..ms / 1_000 {
        worker.tick_after(1_000);
    }
}

#[test]
fn a_ramp_applied_long_after_its_start_is_judged_from_when_it_was_applied() {
    let worker = Worker::configured(&gated(LONG_AGO, "[20, 50, 100]", "0.2", false));
    worker.tick_after(1_000);
    assert!(!worker.rolled_back_for("maxWait"), "judged on a year it never saw");
    assert_eq!(step(&worker), 1);
    ticks(&worker, 28_000);
    assert!(!worker.rolled_back_for("maxWait"), "29 s of the 30 it may wait");
    ticks(&worker, 2_000);
    assert!(worker.rolled_back_for("maxWait"), "30 s judged without a verdict");
}

#[test]
fn an_edit_to_how_the_canary_is_judged_keeps_the_step_and_a_rollback() {
    let steps = "[20, 50, 80, 100]";
    let worker = Worker::configured(&gated(LONG_AGO, steps, "0.2", false));
    for earned in [2, 3] {
        canary_answers(&worker, 5, "200");
        ticks(&worker, 11_000);
        assert_eq!(step(&worker), earned);
    }
    // Step 3, a looser threshold: the same split, at the same step.
    assert!(worker.configure(&gated(LONG_AGO, steps, "0.25", false)));
    ticks(&worker, 2_000);
    assert!(!worker.rolled_back_for("maxWait"), "the edit rolled a healthy canary back");
    assert_eq!(step(&worker), 3);
    canary_answers(&worker, 5, "200");
    ticks(&worker, 11_000);
    assert_eq!(step(&worker), 4, "and it goes on earning");

    // A rolled-back split stays rolled back through a looser threshold.
    let worker = Worker::configured(&gated(LONG_AGO, steps, "0.2", false));
    canary_answers(&worker, 5, "503");
    assert!(worker.rolled_back_for("window"));
    assert!(worker.configure(&gated(LONG_AGO, steps, "0.9", false)));
    worker.tick_after(1_000);
    assert!((0..200).all(|_| worker.get("b.example.com").as_deref() == Some("stable")));
    // A new version of the split (new steps) starts fresh.
    assert!(worker.configure(&gated(LONG_AGO, "[30, 100]", "0.9", false)));
    worker.tick_after(1_000);
    assert!((0..200).any(|_| worker.get("b.example.com").as_deref() == Some("canary")));
}

#[test]
fn a_held_ramp_runs_no_clock_and_resumes_where_it_stopped() {
    let worker = Worker::configured(&gated(LONG_AGO, "[20, 50, 100]", "0.2", true));
    ticks(&worker, 120_000);
    assert!(!worker.rolled_back_for("maxWait"));
    assert!(worker.configure(&gated(LONG_AGO, "[20, 50, 100]", "0.2", false)));
    worker.tick_after(1_000);
    assert!(!worker.rolled_back_for("maxWait"), "held four times maxWait, rolled back when cleared");
    ticks(&worker, 27_000);
    assert!(!worker.rolled_back_for("maxWait"));
    ticks(&worker, 3_000);
    assert!(worker.rolled_back_for("maxWait"), "30 s judged once cleared");
}

#[test]
fn a_gated_step_at_zero_percent_is_refused() {
    let worker = Worker::new(&SharedStore::default());
    assert!(!worker.configure(&gated(LONG_AGO, "[0, 50, 100]", "0.2", false)));
    assert!(worker.configure(&gated(LONG_AGO, "[1, 50, 100]", "0.2", false)));
}

#[test]
fn a_lagging_workers_counts_never_wipe_the_step_it_has_not_taken_yet() {
    let shared = SharedStore::default();
    let (one, two) = (Worker::new(&shared), Worker::new(&shared));
    let config = gated(LONG_AGO, "[20, 50, 100]", "0.2", false);
    assert!(one.configure(&config) && two.configure(&config));
    canary_answers(&one, 5, "200");
    ticks(&one, 11_000);
    assert_eq!(step(&one), 2);
    canary_answers(&one, 4, "200");
    one.tick_after(1_000);
    // Worker two has not ticked since its configure: it serves at the
    // listed weights, merges at its tick, and only then takes step 2.
    canary_answers(&two, 1, "200");
    two.tick_after(1_000);
    canary_answers(&one, 1, "200");
    one.tick_after(1_000);
    assert_eq!(step(&one), 3, "five healthy responses at step 2, whatever worker two merged");
}

const CHECKED: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}],
    "rollback": {"target": "canary", "prometheus": {"cluster": "prometheus", "every": "10s", "threshold": 1,
        "checks": [{"name": "success", "query": "success{target=\"{{target}}\"}", "min": 0.99}]}}}}]}]}"#;

/// Answers every call of a poll round by what it asks: the latch and the
/// step latch with `latch`, the view with `view`, a check with `check`.
fn answer_round(worker: &Worker, check: &str, latch: &str, view: &str) -> usize {
    let calls = worker.proxy.take_calls();
    for call in &calls {
        let path = String::from_utf8_lossy(call.header(":path").unwrap_or_default()).into_owned();
        let body = if path.contains("canary_router_proxy_beacon") {
            view
        } else if path.contains("canary_router_rolled_back") || path.contains("canary_router_ramp_progress") {
            latch
        } else {
            check
        };
        worker.answer(call.token, "200", body);
    }
    calls.len()
}

#[test]
fn every_series_of_a_check_must_pass_its_bound() {
    let worker = Worker::configured(CHECKED);
    // Two pods of the canary: one answers 50% of requests, the other all.
    assert_eq!(answer_round(&worker, &vectors(&["0.5", "1"]), EMPTY, &vector("1")), 3);
    worker.tick_after(1_000);
    assert!(worker.rolled_back_for("check:success"), "the worst series judges a min check");
    let value = tagged(metrics::CHECK_VALUE, &[("check", "success")]);
    assert_eq!(worker.metric_ending(&value), 500_000, "and is the value shown");
}

const GATED_FLEET: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 1}, {"target": "stable", "weight": 99}],
    "ramp": {"target": "canary", "start": "2025-01-01T00:00:00Z", "every": "10s", "steps": [20, 50, 100],
             "gate": {"minRequests": 5}},
    "rollback": {"target": "canary", "maxErrorRate": 0.2, "minRequests": 5, "window": "60s",
                 "prometheus": {"cluster": "prometheus", "every": "5s", "blindAfter": "30s"}}}}]}]}"#;

#[test]
fn a_fleet_view_without_this_proxy_holds_an_earned_step_and_is_reported_blind_after_its_grace() {
    let worker = Worker::configured(GATED_FLEET);
    assert_eq!(answer_round(&worker, EMPTY, EMPTY, EMPTY), 3, "the latch, the view and the step latch");
    worker.tick_after(1_000);
    canary_answers(&worker, 5, "200");
    let holding = tagged(metrics::RAMP_HOLDING, &[("reason", "fleetView")]);
    let blind = |w: &Worker| w.metric_ending(metrics::FLEET_BLIND);
    for _ in 0..5 {
        // Polls every 5 s that never find this proxy's beacon.
        ticks(&worker, 5_000);
        answer_round(&worker, EMPTY, EMPTY, EMPTY);
    }
    worker.tick_after(1_000);
    assert_eq!(step(&worker), 1, "earned, but taken on a blind view");
    assert_eq!(worker.metric_ending(&holding), 1, "holding, and saying why");
    assert_eq!(blind(&worker), 0, "within the grace");
    for _ in 0..2 {
        ticks(&worker, 5_000);
        answer_round(&worker, EMPTY, EMPTY, EMPTY);
    }
    worker.tick_after(1_000);
    assert_eq!(blind(&worker), 1, "past blindAfter: blind");
    let beacon = worker.metric_ending(metrics::PROXY_BEACON);
    assert!(beacon > 0);
    // Prometheus finds the beacon: the step is taken, the view no longer blind.
    ticks(&worker, 5_000);
    let calls = worker.proxy.calls.borrow().clone();
    let view = calls.iter().find(|c| String::from_utf8_lossy(c.header(":path").unwrap()).contains("beacon"));
    let asked = String::from_utf8_lossy(view.unwrap().header(":path").unwrap()).into_owned();
    assert!(
        asked.contains(&format!("%3D%3D%20{beacon}%29")),
        "the view asks for this proxy's beacon: {asked}"
    );
    answer_round(&worker, EMPTY, EMPTY, &vector("1"));
    worker.tick_after(1_000);
    assert_eq!((step(&worker), worker.metric_ending(&holding), blind(&worker)), (2, 0, 0));
}

const HANGING: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 100}, {"target": "stable", "weight": 0.0001}],
    "rollback": {"target": "canary", "maxErrorRate": 0.5, "minRequests": 3, "window": "60s",
                 "latency": {"percentile": 90, "maxMs": 100}}}}]}]}"#;

#[test]
fn a_canary_that_never_answers_is_a_failing_canary() {
    let worker = Worker::configured(HANGING);
    for _ in 0..10 {
        assert_eq!(worker.abandon(&B, 200).as_deref(), Some("canary"));
    }
    worker.tick_after(1_000);
    assert!(!worker.rolled_back_for("window"), "clients that gave up within 500 ms are no evidence");
    for _ in 0..3 {
        assert_eq!(worker.abandon(&B, 1_000).as_deref(), Some("canary"));
    }
    assert!(worker.rolled_back_for("window"), "three requests that waited a second for nothing");
    assert!((0..100).all(|_| worker.get("b.example.com").as_deref() == Some("stable")));
}

#[test]
fn latency_is_timed_from_the_end_of_the_request() {
    let worker = Worker::configured(HANGING);
    for _ in 0..20 {
        assert_eq!(worker.upload(&B, 300, 10, "200").as_deref(), Some("canary"));
    }
    worker.tick_after(1_000);
    assert!(!worker.rolled_back_for("latency"), "a 300 ms upload is the client's, not the canary's");
    for _ in 0..3 {
        worker.upload(&B, 0, 250, "200");
    }
    assert!(worker.rolled_back_for("latency"), "answers 250 ms after the request ended are slow");
}

const POLLED: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}],
    "rollback": {"target": "canary", "prometheus": {"cluster": "prometheus", "every": "10s", "threshold": 2}}}}]}]}"#;

#[test]
fn two_workers_with_the_same_clock_and_jitter_poll_once_per_period() {
    let shared = SharedStore::default();
    // The same seed: the same jitter for both.
    let (one, two) = (Rc::new(Worker::new(&shared)), Worker::new(&shared));
    assert!(one.configure(POLLED) && two.configure(POLLED));
    assert_eq!(answer_round(&one, EMPTY, EMPTY, &vector("1")), 2);
    one.proxy.advance(11_000);
    two.proxy.advance(11_000);
    // Worker one claims the poll between worker two's read and its write.
    let first = one.clone();
    two.proxy.before_write.replace(Some(Box::new(move |_: &SharedStore| tick(&first.root))));
    tick(&two.root);
    let (a, b) = (one.proxy.take_calls().len(), two.proxy.take_calls().len());
    assert_eq!((a, b), (2, 0), "one round per proxy per period");
}

#[test]
fn polls_go_on_when_the_clock_steps_back() {
    let worker = Worker::configured(POLLED);
    assert_eq!(answer_round(&worker, EMPTY, EMPTY, &vector("1")), 2);
    worker.tick_after(11_000);
    assert_eq!(answer_round(&worker, EMPTY, EMPTY, &vector("1")), 2);
    worker.proxy.now_ms.set(worker.proxy.now_ms.get() - 3_600_000);
    worker.tick_after(11_000);
    assert_eq!(answer_round(&worker, EMPTY, EMPTY, &vector("1")), 2, "not an hour later");
    worker.tick_after(11_000);
    assert_eq!(answer_round(&worker, EMPTY, EMPTY, &vector("1")), 2, "and every period since");
}

#[test]
fn two_workers_creating_a_shared_key_at_once_both_count() {
    let shared = SharedStore::default();
    let (one, two) = (Worker::new(&shared), Rc::new(Worker::new(&shared)));
    assert!(one.configure(super::WINDOWED) && two.configure(super::WINDOWED));
    // Worker two creates the window between worker one's read and write.
    let second = two.clone();
    one.proxy.before_write.replace(Some(Box::new(move |_: &SharedStore| {
        second.exchange(&B, "503").unwrap();
    })));
    one.exchange(&B, "503").unwrap();
    let key = shared.borrow().keys().find(|k| k.ends_with("/window")).cloned().unwrap();
    let window = Window::decode(&shared.borrow()[&key].0).unwrap();
    let bucket = error_window::bucket_of(START_MS, 60_000);
    assert_eq!(window.totals(bucket).errors, 2, "both first errors are in the window");
}
