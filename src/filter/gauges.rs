//! Gauges of each split's state, for people, dashboards, `canary-router
//! status` and the fleet latch: live and configured weights, the ramp's
//! step, rolled back or waiting and why, and the Prometheus checks. Every
//! worker VM records the same values (they come from the clock and the
//! shared state), each only when it changes.

use std::cell::{Cell, RefCell};

use super::fleet::Asks;
use super::proxy::{MetricKind, Proxy};
use super::rollback::Verdict;
use super::split_state::Splits;
use super::Vm;
use crate::fleet_state::FleetState;
use crate::metrics::{self, tagged};
use crate::prometheus::Sample;
use crate::router::Router;
use crate::split::{Moment, Split, SplitId};

/// One gauge and the value this VM last gave it.
struct Gauge {
    id: Option<u32>,
    last: Cell<Option<u64>>,
}

impl Gauge {
    fn set(&self, proxy: &dyn Proxy, value: u64) {
        if let (Some(id), false) = (self.id, self.last.get() == Some(value)) {
            proxy.record_metric(id, value);
            self.last.set(Some(value));
        }
    }
}

/// A check's gauge value: times a million, within what a gauge holds.
fn millionths(value: f64) -> u64 {
    if value.is_nan() || value <= 0.0 {
        0
    } else {
        // `as` saturates at u64::MAX for huge values and infinity.
        (value * 1e6).round() as u64
    }
}

const RESULTS: [&str; 4] = ["pass", "fail", "no_data", "error"];

struct SplitGauges {
    /// The labels every gauge here carries (route, rule, split identity),
    /// encoded as the start of a metric name.
    prefix: String,
    live: Vec<Gauge>,
    configured: Vec<Gauge>,
    /// The step in force, the next step's time, the number of steps.
    ramp: Option<(Gauge, Gauge, Gauge)>,
    /// Rollback splits only.
    rollback: Option<RollbackGauges>,
}

struct RollbackGauges {
    rolled_back: Gauge,
    since: Gauge,
    waiting: Gauge,
    /// Defined when a reason first applies (check names are many).
    reasons: RefCell<Vec<(String, Gauge)>>,
    checks: Vec<Gauge>,
    failures: Gauge,
    /// Per check, then the latch: counter ids by `RESULTS` index.
    queries: Vec<[Option<u32>; 4]>,
}

pub struct Gauges {
    /// By split id.
    splits: Vec<SplitGauges>,
}

/// A metric's full name: the split's labels, one more label, the name.
#[inline(never)]
fn name(prefix: &str, extra: &[(&str, &str)], metric: &str) -> String {
    prefix.to_string() + &tagged(metric, extra)
}

#[inline(never)]
fn gauge(vm: &Vm, prefix: &str, extra: &[(&str, &str)], metric: &str) -> Gauge {
    Gauge { id: vm.metric(MetricKind::Gauge, name(prefix, extra, metric)), last: Cell::new(None) }
}

impl SplitGauges {
    fn define(vm: &Vm, prefix: String, split: &Split) -> SplitGauges {
        let p = prefix.as_str();
        let proxy = &*vm.proxy;
        let per_target = |metric: &str| -> Vec<Gauge> {
            split.targets().iter().map(|t| gauge(vm, p, &[("target", t)], metric)).collect()
        };
        let configured = per_target(metrics::CONFIGURED_WEIGHT);
        for (gauge, share) in configured.iter().zip(split.configured_shares()) {
            gauge.set(proxy, u64::from(share));
        }
        let ramp = split.ramp().map(|ramp| {
            let steps = gauge(vm, p, &[], metrics::RAMP_STEPS);
            steps.set(proxy, ramp.steps.len() as u64);
            let step = gauge(vm, p, &[("target", &ramp.target)], metrics::RAMP_STEP);
            (step, gauge(vm, p, &[], metrics::RAMP_NEXT_STEP), steps)
        });
        let rollback = split.rollback().map(|r| RollbackGauges::define(vm, p, r));
        SplitGauges { live: per_target(metrics::LIVE_WEIGHT), configured, ramp, rollback, prefix }
    }
}

impl RollbackGauges {
    fn define(vm: &Vm, p: &str, rollback: &crate::split::Rollback) -> RollbackGauges {
        let checks = rollback.prometheus.as_ref().map_or(&[][..], |c| &c.checks[..]);
        let mut queries = Vec::new();
        if rollback.prometheus.is_some() {
            for query in checks.iter().map(|c| c.name.as_str()).chain(["latch"]) {
                queries.push(RESULTS.map(|result| {
                    let labels = [("query", query), ("result", result)];
                    vm.metric(MetricKind::Counter, name(p, &labels, metrics::PROMETHEUS_QUERIES))
                }));
            }
        }
        RollbackGauges {
            rolled_back: gauge(vm, p, &[("target", &rollback.target)], metrics::ROLLED_BACK),
            since: gauge(vm, p, &[], metrics::ROLLED_BACK_SINCE),
            waiting: gauge(vm, p, &[], metrics::WAITING),
            reasons: RefCell::new(Vec::new()),
            checks: checks
                .iter()
                .map(|c| gauge(vm, p, &[("check", &c.name)], metrics::CHECK_VALUE))
                .collect(),
            failures: gauge(vm, p, &[], metrics::CHECK_FAILURES),
            queries,
        }
    }
}

impl Gauges {
    pub fn define(vm: &Vm, router: &Router) -> Gauges {
        let splits = router
            .splits()
            .map(|(route, rule, split)| {
                let labels =
                    [("route", route.name.as_str()), ("rule", &rule.label), ("split", &split.identity_hex())];
                SplitGauges::define(vm, tagged("", &labels), split)
            })
            .collect();
        Gauges { splits }
    }

    /// Live weights and ramp steps at `now_ms` (from the root's tick).
    pub fn refresh(&self, proxy: &dyn Proxy, router: &Router, now_ms: u64, states: &Splits) {
        let moment = Moment { roll: 0, now_ms, splits: states };
        for ((_, _, split), gauges) in router.splits().zip(&self.splits) {
            for (gauge, share) in gauges.live.iter().zip(split.current_shares(&moment)) {
                gauge.set(proxy, u64::from(share));
            }
            if let (Some((step, next, _)), Some(ramp)) = (&gauges.ramp, split.ramp()) {
                let at = ramp.step_at(now_ms);
                step.set(proxy, at.map_or(0, |s| s as u64 + 1));
                let next_ms = match at {
                    None => Some(ramp.start_ms),
                    Some(s) if s + 1 < ramp.steps.len() => {
                        Some(ramp.start_ms + (s as u64 + 1) * ramp.every_ms)
                    }
                    Some(_) => None,
                };
                next.set(proxy, next_ms.map_or(0, |ms| ms / 1_000));
            }
        }
    }

    /// A split's verdict on this VM.
    pub fn verdict(&self, vm: &Vm, split_id: SplitId, verdict: &Verdict) {
        let Some(split) = self.splits.get(split_id.index()) else { return };
        let Some(gauges) = &split.rollback else { return };
        let proxy = &*vm.proxy;
        gauges.waiting.set(proxy, u64::from(*verdict == Verdict::Waiting));
        let Verdict::RolledBack(rolled) = verdict else {
            gauges.rolled_back.set(proxy, 0);
            gauges.since.set(proxy, 0);
            return;
        };
        gauges.rolled_back.set(proxy, 1);
        gauges.since.set(proxy, rolled.since_ms / 1_000);
        let mut reasons = gauges.reasons.borrow_mut();
        if !reasons.iter().any(|(reason, _)| *reason == rolled.reason) {
            let gauge = gauge(vm, &split.prefix, &[("reason", &rolled.reason)], metrics::ROLLBACK_REASON);
            reasons.push((rolled.reason.clone(), gauge));
        }
        for (reason, gauge) in reasons.iter() {
            gauge.set(proxy, u64::from(*reason == rolled.reason));
        }
    }

    /// Check values and failures from a split's shared state.
    pub fn fleet_state(&self, proxy: &dyn Proxy, split_id: SplitId, state: &FleetState) {
        let Some(gauges) = self.splits.get(split_id.index()).and_then(|s| s.rollback.as_ref()) else {
            return;
        };
        for (gauge, value) in gauges.checks.iter().zip(&state.values) {
            if let Some(value) = value {
                gauge.set(proxy, millionths(*value));
            }
        }
        gauges.failures.set(proxy, u64::from(state.failures));
    }

    /// Counts one Prometheus answer by what it said.
    pub fn query_answered(&self, proxy: &dyn Proxy, asks: Asks, sample: &Sample, split: &Split) {
        let Some(gauges) = self.splits.get(split.id.index()).and_then(|s| s.rollback.as_ref()) else {
            return;
        };
        let checks = split.rollback().and_then(|r| r.prometheus.as_ref()).map_or(&[][..], |p| &p.checks[..]);
        let index = match asks {
            Asks::Check(i) => i,
            Asks::Latch => checks.len(),
        };
        let fails = |value: f64| match asks {
            Asks::Check(i) => checks.get(i).is_some_and(|c| c.fails(value)),
            Asks::Latch => value > 0.0,
        };
        let result = match sample {
            Sample::Value(v) if fails(*v) => 1,
            Sample::Value(_) => 0,
            Sample::NoData => 2,
            Sample::Error(_) => 3,
        };
        if let Some(id) = gauges.queries.get(index).and_then(|ids| ids[result]) {
            proxy.increment_metric(id, 1);
        }
    }

    /// This config's splits that the next config does not have: their
    /// gauges read as gone (no weight, not rolled back, not waiting), so a
    /// dashboard does not show a replaced split's last state for good.
    pub fn retire(&self, proxy: &dyn Proxy, keep: &[u64], router: &Router) {
        for ((_, _, split), gauges) in router.splits().zip(&self.splits) {
            if keep.contains(&split.identity) {
                continue;
            }
            for gauge in gauges.live.iter().chain(&gauges.configured) {
                gauge.set(proxy, 0);
            }
            if let Some((step, next, steps)) = &gauges.ramp {
                for gauge in [step, next, steps] {
                    gauge.set(proxy, 0);
                }
            }
            if let Some(r) = &gauges.rollback {
                for gauge in [&r.rolled_back, &r.since, &r.waiting, &r.failures].into_iter().chain(&r.checks)
                {
                    gauge.set(proxy, 0);
                }
                for (_, gauge) in r.reasons.borrow().iter() {
                    gauge.set(proxy, 0);
                }
            }
        }
    }
}
