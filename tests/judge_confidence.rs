//! The confidence `rollback.compare` states, measured: seeded rollouts
//! through the judge the proxies run (`canary_router_core::rehearsal`, which
//! calls `judge::look_at_window` and `look_at_gate`), counting how often a
//! healthy canary is rolled back over a whole ramp, and how many requests
//! a bad one serves before it is. Beside it, the fixed-sample test a
//! dashboard rule would run: a two-proportion z-test checked every second.
//! Each rate is stated with its 95% Wilson interval; docs/progressive-
//! delivery.md quotes the numbers this test prints
//! (`cargo test --test judge_confidence -- --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use canary_router_core::config;
use canary_router_core::hashing::rng::Rng;
use canary_router_core::rehearsal::{self, ArmChange, ArmTraffic, Change, Happened, Rehearsal, Traffic};

/// The ramp of examples/compare.json: 10, 25, 50, 100%, each step at
/// least 2 minutes and earned; errors within 1 point and p99 within 1.5x
/// of the baseline, at 95%.
fn config() -> canary_router_core::routing::router::Router {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/compare.json")).unwrap();
    config::parse(text.as_bytes()).unwrap()
}

const HEALTHY: ArmTraffic = ArmTraffic { error_rate: 0.01, median_ms: 60.0, p99_ms: 250.0 };

fn traffic(canary: ArmTraffic, changes: Vec<Change>) -> Traffic {
    Traffic { duration_ms: 40 * 60_000, rate: 100.0, canary, baseline: HEALTHY, changes }
}

/// Runs `seeds` rehearsals on both cores.
fn rehearse_all(traffic: &Traffic, seeds: u64) -> Vec<Rehearsal> {
    let router = config();
    std::thread::scope(|scope| {
        let halves: Vec<_> = (0..2u64)
            .map(|half| {
                let (router, traffic) = (&router, traffic);
                scope.spawn(move || {
                    (0..seeds)
                        .filter(|seed| seed % 2 == half)
                        .map(|seed| rehearsal::rehearse_until(router, traffic, 1_000 + seed, true).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// A share with its 95% Wilson interval, in percent.
fn wilson(hits: usize, n: usize) -> (f64, f64, f64) {
    let (p, n) = (hits as f64 / n as f64, n as f64);
    let z = 1.96f64;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (p * 100.0, (centre - half).max(0.0) * 100.0, (centre + half) * 100.0)
}

fn rolled_back(r: &Rehearsal) -> Option<&str> {
    r.events.iter().find_map(|e| match &e.what {
        Happened::RolledBack { reason, .. } => Some(reason.as_str()),
        _ => None,
    })
}

fn quantile(values: &mut [u64], q: f64) -> u64 {
    values.sort_unstable();
    values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0)
}

#[test]
fn a_healthy_canary_is_rolled_back_at_most_one_time_in_twenty_over_a_whole_ramp() {
    let runs = 1_000;
    let results = rehearse_all(&traffic(HEALTHY, Vec::new()), runs);
    let false_rollbacks = results.iter().filter(|r| rolled_back(r).is_some()).count();
    let mut finished: Vec<u64> =
        results.iter().filter_map(|r| r.last_step_at_ms.map(|ms| ms / 1_000)).collect();
    let (rate, low, high) = wilson(false_rollbacks, runs as usize);
    let done = finished.len();
    eprintln!(
        "healthy canary, {runs} ramps at 100 requests/s: {false_rollbacks} rolled back ({rate:.1}%, 95% CI \
         {low:.1}-{high:.1}%); {done} reached 100%, median {} s, 90th percentile {} s",
        quantile(&mut finished, 0.5),
        quantile(&mut finished, 0.9)
    );
    assert!(high <= 5.0, "false rollbacks {rate:.1}% (CI up to {high:.1}%) at 95% confidence");
    assert!(done as f64 >= 0.95 * runs as f64, "only {done} of {runs} healthy ramps finished in 40 minutes");
}

#[test]
fn a_shared_failure_rolls_back_no_healthy_canary_in_hundreds_of_ramps() {
    let runs = 500;
    let shared = |at_ms, error_rate, says: &str| Change {
        at_ms,
        canary: ArmChange { error_rate: Some(error_rate), ..ArmChange::default() },
        baseline: ArmChange { error_rate: Some(error_rate), ..ArmChange::default() },
        says: says.into(),
        ..Change::default()
    };
    let blip = vec![shared(60_000, 0.3, "both fail"), shared(120_000, 0.01, "both recover")];
    let results = rehearse_all(&traffic(HEALTHY, blip), runs);
    let false_rollbacks = results.iter().filter(|r| rolled_back(r).is_some()).count();
    let (rate, low, high) = wilson(false_rollbacks, runs as usize);
    eprintln!(
        "a shared failure (both arms 30% errors for a minute), {runs} ramps: {false_rollbacks} rolled back \
         ({rate:.1}%, 95% CI {low:.1}-{high:.1}%)"
    );
    assert!(high <= 5.0, "a shared failure rolled back {rate:.1}% of healthy canaries");
}

#[test]
fn bad_canaries_are_rolled_back_and_what_they_served_before_is_counted() {
    let runs = 200;
    let worse = |points: f64| ArmTraffic { error_rate: 0.01 + points, ..HEALTHY };
    let slower = ArmTraffic { median_ms: 120.0, p99_ms: 500.0, ..HEALTHY };
    for (what, canary, at_least) in [
        ("errors +20 points", worse(0.20), 99.0),
        ("errors +5 points", worse(0.05), 95.0),
        ("errors +2 points", worse(0.02), 50.0),
        ("latency x2", slower, 0.0),
    ] {
        let results = rehearse_all(&traffic(canary, Vec::new()), runs);
        let caught: Vec<&Rehearsal> = results.iter().filter(|r| rolled_back(r).is_some()).collect();
        let mut served: Vec<u64> = caught.iter().map(|r| r.canary_requests).collect();
        let mut errors: Vec<u64> = caught.iter().map(|r| r.canary_errors).collect();
        let promoted = results.iter().filter(|r| r.last_step_at_ms.is_some()).count();
        let (rate, low, high) = wilson(caught.len(), runs as usize);
        eprintln!(
            "{what}, {runs} ramps: rolled back in {rate:.1}% (95% CI {low:.1}-{high:.1}%), after a median of \
             {} canary requests ({} errors; 90th percentile {} requests); {promoted} reached 100%",
            quantile(&mut served, 0.5),
            quantile(&mut errors, 0.5),
            quantile(&mut served, 0.9),
        );
        assert!(rate >= at_least, "{what}: rolled back in only {rate:.1}% of runs");
        if what.starts_with("errors") {
            assert!(caught.iter().all(|r| rolled_back(r) == Some("compare:errors")));
        }
    }
}

/// The fixed-sample test a dashboard rule would run, checked every second
/// on the same ramp by the clock (10, 25, 50%, 2 minutes each, at 100
/// requests/s): the canary rolled back when its error rate is more than
/// `delta` above the baseline's by Wald's z > 1.645 (one-sided 95%).
/// Returns the canary requests served when it rolled back, if it did.
fn z_test_ramp(seed: u64, canary_rate: f64, delta: f64) -> Option<u64> {
    let mut rng = Rng::new(7_000 + seed);
    let mut uniform = || rng.unit();
    let mut served = 0;
    for share in [0.10, 0.25, 0.50] {
        let (mut canary, mut baseline) = ((0u64, 0u64), (0u64, 0u64));
        for _second in 0..120 {
            for _ in 0..100 {
                let (arm, rate) =
                    if uniform() < share { (&mut canary, canary_rate) } else { (&mut baseline, 0.01) };
                arm.0 += 1;
                arm.1 += u64::from(uniform() < rate);
            }
            if canary.0 >= 20 && baseline.0 >= 20 {
                let (pc, pb) = (canary.1 as f64 / canary.0 as f64, baseline.1 as f64 / baseline.0 as f64);
                let se = (pc * (1.0 - pc) / canary.0 as f64 + pb * (1.0 - pb) / baseline.0 as f64).sqrt();
                if se > 0.0 && (pc - pb - delta) / se > 1.645 {
                    return Some(served + canary.0);
                }
            }
        }
        served += canary.0;
    }
    None
}

/// Run once at the end of a step, that test would keep its 5%; looked at
/// every second, it does not; and with the same 1-point allowance, what it
/// catches and when, beside the sequential judge's figures above.
#[test]
fn the_fixed_sample_test_looked_at_every_second_breaks_its_level() {
    let runs = 1_000;
    let rate = |delta: f64| {
        let hits = (0..runs).filter(|&seed| z_test_ramp(seed, 0.01, delta).is_some()).count();
        (hits, wilson(hits, runs as usize))
    };
    let (any, (any_rate, any_low, any_high)) = rate(0.0);
    let (point, (point_rate, point_low, point_high)) = rate(0.01);
    let mut caught: Vec<u64> = (0..200).filter_map(|seed| z_test_ramp(seed, 0.06, 0.01)).collect();
    let caught_count = caught.len();
    eprintln!(
        "fixed-sample z-test looked at every second, {runs} healthy clock ramps: worse at all, {any} rolled back \
         ({any_rate:.1}%, 95% CI {any_low:.1}-{any_high:.1}%); more than 1 point worse, {point} ({point_rate:.1}%, \
         95% CI {point_low:.1}-{point_high:.1}%); errors +5 points: caught in {caught_count} of 200, after a \
         median of {} canary requests",
        quantile(&mut caught, 0.5)
    );
    assert!(any_low > 5.0, "the fixed-sample test kept its level: {any_rate:.1}%");
}
