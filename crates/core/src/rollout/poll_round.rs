//! One Prometheus poll of a rollback split (`rollback.prometheus`): the
//! queries it asks (each check, a compared check again for its baseline,
//! the fleet latch, the fleet view and, for a gated ramp, the step latch),
//! the answers as they come, and, once all came, the poll the fleet state
//! judges (`FleetState::record_poll`). Either home sends the queries its
//! own way and hands the answers here.
//!
//! Pure.

use crate::rollout::fleet_state::Poll;
use crate::rollout::prometheus::{self, Sample, Span};
use crate::rollout::settings::{PrometheusChecks, Rollback};

/// What a poll's query asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asks {
    Check(usize),
    /// A compared check's query, run for the baseline.
    Baseline(usize),
    Latch,
    /// Whether Prometheus shows this proxy's beacon.
    View,
    /// A gated ramp's: the fleet's furthest step.
    StepLatch,
}

/// The names of a split's query rows after its checks, in row order.
pub fn latch_rows(gated: bool) -> &'static [&'static str] {
    if gated {
        &["latch", "view", "step_latch"]
    } else {
        &["latch", "view"]
    }
}

/// What a Prometheus answer counted as, in the order of its counters.
pub const QUERY_RESULTS: [&str; 4] = ["pass", "fail", "no_data", "error"];

impl Asks {
    /// Where an answer to this query is counted: its row among the split's
    /// query counters (each check, then `latch_rows`) and its result's
    /// index in `QUERY_RESULTS`.
    pub fn counted_as(self, sample: &Sample, config: &PrometheusChecks) -> (usize, usize) {
        let checks = &config.checks;
        let row = match self {
            Asks::Check(i) | Asks::Baseline(i) => i,
            Asks::Latch => checks.len(),
            Asks::View => checks.len() + 1,
            Asks::StepLatch => checks.len() + 2,
        };
        // A compared check's answers are judged together, at the round's
        // end: each one alone only passes (it answered) or not.
        let fails = |span: Span| match self {
            Asks::Check(i) => checks.get(i).is_some_and(|c| c.compare_to.is_none() && c.fails(span)),
            Asks::Latch => span.high > 0.0,
            Asks::Baseline(_) | Asks::View | Asks::StepLatch => false,
        };
        let result = match sample {
            Sample::Value(v) if fails(*v) => 1,
            Sample::Value(_) => 0,
            Sample::NoData => 2,
            Sample::Error(_) => 3,
        };
        (row, result)
    }
}

/// The queries of one poll, with what each asks: `route` and `split` (the
/// split's identity in hex) fill the placeholders, `beacon` is this
/// proxy's.
pub fn queries(
    rollback: &Rollback,
    route: &str,
    split: &str,
    beacon: u64,
    gated: bool,
) -> Vec<(Asks, String)> {
    let Some(config) = &rollback.prometheus else { return Vec::new() };
    let fill = prometheus::Fill {
        target: &rollback.target,
        baseline: &config.baseline,
        route,
        split,
        lookback: &config.lookback,
        beacon,
    };
    let expand = |template: &str| prometheus::expand(template, &fill);
    let mut queries: Vec<(Asks, String)> =
        config.checks.iter().enumerate().map(|(i, check)| (Asks::Check(i), expand(&check.query))).collect();
    // A compared check again, for the baseline: its `{{target}}` is the
    // baseline's.
    let for_baseline = prometheus::Fill { target: &config.baseline, ..fill };
    for (i, check) in config.checks.iter().enumerate().filter(|(_, c)| c.compare_to.is_some()) {
        queries.push((Asks::Baseline(i), prometheus::expand(&check.query, &for_baseline)));
    }
    queries.push((Asks::Latch, expand(&config.latch_query)));
    queries.push((Asks::View, expand(&config.view_query)));
    if gated {
        queries.push((Asks::StepLatch, expand(prometheus::STEP_LATCH_QUERY)));
    }
    queries
}

/// The answers of one poll so far.
#[derive(Debug, Clone)]
pub struct Round {
    pub started_ms: u64,
    outstanding: usize,
    checks: Vec<Option<Sample>>,
    /// Compared checks' baseline answers, by check.
    baselines: Vec<Option<Sample>>,
    latch: Option<Sample>,
    view: Option<Sample>,
    /// `Some` for a gated ramp: its answer, once it came.
    step_latch: Option<Option<Sample>>,
}

impl Round {
    /// A round waiting for `outstanding` answers.
    pub fn new(config: &PrometheusChecks, gated: bool, outstanding: usize, started_ms: u64) -> Round {
        Round {
            started_ms,
            outstanding,
            checks: vec![None; config.checks.len()],
            baselines: vec![None; config.checks.len()],
            latch: None,
            view: None,
            step_latch: gated.then_some(None),
        }
    }

    /// Takes one answer; returns whether it was the last.
    pub fn answer(&mut self, asks: Asks, sample: Sample) -> bool {
        match asks {
            Asks::Check(i) => {
                if let Some(slot) = self.checks.get_mut(i) {
                    *slot = Some(sample);
                }
            }
            Asks::Baseline(i) => {
                if let Some(slot) = self.baselines.get_mut(i) {
                    *slot = Some(sample);
                }
            }
            Asks::Latch => self.latch = Some(sample),
            Asks::View => self.view = Some(sample),
            Asks::StepLatch => self.step_latch = Some(Some(sample)),
        }
        self.outstanding = self.outstanding.saturating_sub(1);
        self.outstanding == 0
    }

    /// Each check's answer as the fleet state judges it: a compared
    /// check's two answers as one.
    pub fn checks(&self, config: &PrometheusChecks) -> Vec<Option<Sample>> {
        config
            .checks
            .iter()
            .zip(self.checks.iter().zip(&self.baselines))
            .map(|(check, (target, baseline))| match (check.compare_to, target, baseline) {
                (Some(relation), Some(target), Some(baseline)) => {
                    Some(prometheus::compared(target, baseline, relation))
                }
                (Some(_), _, _) => None,
                (None, target, _) => target.clone(),
            })
            .collect()
    }

    /// The finished poll, with `checks` from `Round::checks`.
    pub fn poll<'a>(&'a self, checks: &'a [Option<Sample>], now_ms: u64) -> Poll<'a> {
        Poll {
            checks,
            latch: self.latch.as_ref(),
            view: self.view.as_ref(),
            step_latch: self.step_latch.as_ref().map(Option::as_ref),
            now_ms,
        }
    }
}

/// Whether a poll due at `next_ms` is due at `now_ms`. A due time further
/// ahead than one period and its jitter was set by a clock that has since
/// stepped back: due now, or polls would stall until the clock caught up.
pub fn due(next_ms: u64, every_ms: u64, now_ms: u64) -> bool {
    now_ms >= next_ms || next_ms > now_ms.saturating_add(every_ms + every_ms / 10)
}

/// The next poll's time: `every` ± 10% from `now_ms`, by `jitter` (a
/// random number), so a fleet does not poll in lockstep.
pub fn next_poll_ms(every_ms: u64, now_ms: u64, jitter: u32) -> u64 {
    now_ms + every_ms - every_ms / 10 + u64::from(jitter) % (every_ms / 5).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn rollback(checks: &str, gated: bool) -> Rollback {
        let ramp = if gated {
            r#", "ramp": {"target": "c", "start": "2030-01-07T10:00:00Z", "every": "1m", "steps": [10, 100],
                 "gate": {}}"#
        } else {
            ""
        };
        let json = format!(
            r#"{{"routes": [{{"name": "r", "default": "s", "rules": [{{"split": {{
            "weights": [{{"target": "c", "weight": 10}}, {{"target": "s", "weight": 90}}]{ramp},
            "rollback": {{"target": "c", "prometheus": {{"cluster": "p", "checks": [{checks}]}}}}}}}}]}}]}}"#
        );
        let router = config::parse(json.as_bytes()).unwrap();
        let split = router.splits().next().unwrap().2;
        split.rollback().unwrap().clone()
    }

    #[test]
    fn a_poll_asks_each_check_the_latches_and_a_compared_check_for_both_arms() {
        let checks = r#"{"name": "e", "query": "errors{t=\"{{target}}\"}", "max": 0.1},
            {"name": "l", "query": "p99{t=\"{{target}}\"}", "compareTo": "baseline", "maxRatio": 1.5}"#;
        let plain = queries(&rollback(checks, false), "r", "0d11", 7, false);
        let asks: Vec<Asks> = plain.iter().map(|(a, _)| *a).collect();
        assert_eq!(asks, [Asks::Check(0), Asks::Check(1), Asks::Baseline(1), Asks::Latch, Asks::View]);
        assert_eq!(plain[0].1, r#"errors{t="c"}"#);
        assert_eq!(plain[2].1, r#"p99{t="s"}"#, "the baseline's query names the baseline");
        assert!(plain[4].1.contains("== 7"), "{}", plain[4].1);
        let gated = queries(&rollback(checks, true), "r", "0d11", 7, true);
        assert_eq!(gated.last().map(|(a, _)| *a), Some(Asks::StepLatch));
    }

    #[test]
    fn a_round_is_done_at_its_last_answer_and_judges_a_compared_check_on_both() {
        let checks =
            r#"{"name": "l", "query": "p99{t=\"{{target}}\"}", "compareTo": "baseline", "maxRatio": 1.5}"#;
        let rollback = rollback(checks, false);
        let config = rollback.prometheus.as_ref().unwrap();
        let asked = queries(&rollback, "r", "0d11", 7, false);
        let mut round = Round::new(config, false, asked.len(), 0);
        let value = |v: f64| Sample::Value(Span { low: v, high: v });
        assert!(!round.answer(Asks::Check(0), value(300.0)));
        assert!(!round.answer(Asks::Baseline(0), value(100.0)));
        assert!(!round.answer(Asks::Latch, Sample::NoData));
        assert!(round.answer(Asks::View, value(1.0)));
        let checks = round.checks(config);
        assert_eq!(checks.len(), 1);
        assert!(matches!(checks[0], Some(Sample::Value(span)) if span.high > 1.5), "{checks:?}");
        assert_eq!(Asks::Latch.counted_as(&value(1.0), config), (1, 1), "a latch above 0 fails");
        assert_eq!(Asks::View.counted_as(&Sample::NoData, config), (2, 2));
    }

    #[test]
    fn polls_come_every_period_within_a_tenth_and_a_clock_stepped_back_does_not_stall_them() {
        for jitter in [0, 1, 999, u32::MAX] {
            let next = next_poll_ms(10_000, 1_000_000, jitter);
            assert!((1_009_000..=1_011_000).contains(&next), "{next}");
        }
        assert!(!due(1_010_000, 10_000, 1_005_000));
        assert!(due(1_010_000, 10_000, 1_010_000));
        assert!(due(1_100_000, 10_000, 1_005_000), "a due time far ahead came from a clock stepped back");
    }
}
