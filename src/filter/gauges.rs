//! Gauges of each split's state, for people, dashboards, `canary-router
//! status` and the fleet latch: live and configured weights, the ramp's
//! step, rolled back or waiting and why, and the Prometheus checks. Every
//! worker VM records the same values (they come from the clock and the
//! shared state), each only when it changes.

use std::cell::{Cell, OnceCell, RefCell};

use super::compare_gauges::CompareGauges;
use super::gauge::{gauge, millionths, name, Gauge};
use super::proxy::{MetricKind, Proxy};
use super::ramp_gauges::RampGauges;
use super::split_state::Splits;
use super::split_state::Verdict;
use super::Vm;
use canary_router_core::rollout::compare::{Arms, Compared};
use canary_router_core::rollout::fleet_state::FleetState;
use canary_router_core::rollout::gate::Judgement;
use canary_router_core::rollout::metrics::{self, tagged};
use canary_router_core::rollout::poll_round::{self, QUERY_RESULTS};
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::{Moment, Split, SplitId};

struct SplitGauges {
    /// The labels every gauge here carries (route, rule, split identity),
    /// encoded as the start of a metric name.
    prefix: String,
    live: Vec<Gauge>,
    configured: Vec<Gauge>,
    /// Boxed, as `compare`: each split without one would pay its size
    /// inline, hundreds of bytes for each of thousands of splits.
    pub(super) ramp: Option<Box<RampGauges>>,
    /// Rollback splits only.
    rollback: Option<RollbackGauges>,
}

struct RollbackGauges {
    rolled_back: Gauge,
    /// Defined at the first rollback.
    since: OnceCell<Gauge>,
    /// With Prometheus only: without the latch nothing waits.
    waiting: Gauge,
    /// With Prometheus: the proxy's beacon, and 1 while the fleet view has
    /// missed it past `blindAfter`.
    beacon: Option<Gauge>,
    blind: Option<Gauge>,
    /// Defined when a reason first applies (check names are many).
    reasons: RefCell<Vec<(String, Gauge)>>,
    checks: Vec<Gauge>,
    /// Per check: 1 while its last answer was no data or an error.
    unanswered: Vec<Gauge>,
    /// With checks only.
    failures: Gauge,
    /// Per check, then the latch, then the step latch: counter ids by
    /// `QUERY_RESULTS` index.
    queries: Vec<[Option<u32>; 4]>,
    /// With `compare`.
    compare: Option<Box<CompareGauges>>,
}

pub struct Gauges {
    /// By split id; empty until defined: a big config defines its splits'
    /// gauges a batch per tick after the push (`define_more`).
    splits: Vec<OnceCell<SplitGauges>>,
    /// The first split not defined yet.
    next: Cell<usize>,
    beacon: u64,
}

/// How many gauges a config defines at once: all of a small config's at
/// the push, a big one's over the ticks after it. Envoy matches each new
/// metric's name against every stats tag (about 60 µs with the project's
/// eleven), and a config at the limits has some 12,000 split gauges, which
/// held its push for a second in every VM that applied it (Envoy's
/// validation VM first).
const GAUGES_AT_ONCE: usize = 1_000;

/// About how many gauges a split defines (its budget's unit).
fn gauges_of(split: &Split) -> usize {
    let rollback = split.rollback().map_or(0, |r| {
        4 + r.prometheus.as_ref().map_or(0, |p| 4 + 6 * p.checks.len())
            + r.window.as_ref().and_then(|w| w.compare.as_ref()).map_or(0, |_| 10)
    });
    2 * split.targets().len() + rollback + split.ramp().map_or(0, |_| 12)
}

impl SplitGauges {
    fn define(vm: &Vm, prefix: String, split: &Split, beacon: u64) -> SplitGauges {
        let p = prefix.as_str();
        let proxy = &*vm.proxy;
        let per_target = |metric: &str| -> Vec<Gauge> {
            split.targets().iter().map(|t| gauge(vm, p, &[("target", t)], metric)).collect()
        };
        let configured = per_target(metrics::CONFIGURED_WEIGHT);
        for (gauge, share) in configured.iter().zip(split.configured_shares()) {
            gauge.set(proxy, u64::from(share));
        }
        let latency = split.rollback().and_then(|r| r.window.as_ref()).and_then(|w| w.latency.as_ref());
        let ramp = split.ramp().map(|ramp| Box::new(RampGauges::define(vm, p, ramp, latency)));
        let gated = split.ramp().is_some_and(|r| r.gate.is_some());
        let rollback = split.rollback().map(|r| RollbackGauges::define(vm, p, r, gated, beacon));
        SplitGauges { live: per_target(metrics::LIVE_WEIGHT), configured, ramp, rollback, prefix }
    }
}

impl RollbackGauges {
    fn define(
        vm: &Vm,
        p: &str,
        rollback: &canary_router_core::rollout::settings::Rollback,
        gated: bool,
        beacon: u64,
    ) -> RollbackGauges {
        let checks = rollback.checks();
        let mut queries = Vec::new();
        if rollback.prometheus.is_some() {
            let latches = poll_round::latch_rows(gated);
            for query in checks.iter().map(|c| c.name.as_str()).chain(latches.iter().copied()) {
                queries.push(QUERY_RESULTS.map(|result| {
                    let labels = [("query", query), ("result", result)];
                    vm.metric(MetricKind::Counter, name(p, &labels, metrics::PROMETHEUS_QUERIES))
                }));
            }
        }
        gauge(vm, p, &[], metrics::ROLLBACK_FLEET).set(&*vm.proxy, u64::from(rollback.prometheus.is_some()));
        let beacon = rollback.prometheus.as_ref().map(|_| {
            let gauge = gauge(vm, p, &[], metrics::PROXY_BEACON);
            gauge.set(&*vm.proxy, beacon);
            gauge
        });
        let compare = rollback.window.as_ref().and_then(|w| w.compare.as_ref());
        RollbackGauges {
            compare: compare.map(|c| Box::new(CompareGauges::define(vm, p, c))),
            beacon,
            blind: rollback.prometheus.as_ref().map(|_| gauge(vm, p, &[], metrics::FLEET_BLIND)),
            rolled_back: gauge(vm, p, &[("target", &rollback.target)], metrics::ROLLED_BACK),
            since: OnceCell::new(),
            waiting: match rollback.prometheus {
                Some(_) => gauge(vm, p, &[], metrics::WAITING),
                None => Gauge::none(),
            },
            reasons: RefCell::new(Vec::new()),
            checks: checks
                .iter()
                .map(|c| gauge(vm, p, &[("check", &c.name)], metrics::CHECK_VALUE))
                .collect(),
            unanswered: checks
                .iter()
                .map(|c| gauge(vm, p, &[("check", &c.name)], metrics::CHECK_UNANSWERED))
                .collect(),
            failures: match checks.is_empty() {
                true => Gauge::none(),
                false => gauge(vm, p, &[], metrics::CHECK_FAILURES),
            },
            queries,
        }
    }
}

impl Gauges {
    /// A config's gauges: all of them now if it has at most
    /// `GAUGES_AT_ONCE`, else none until the ticks after the push.
    pub fn define(vm: &Vm, router: &Router, beacon: u64) -> Gauges {
        let gauges = Gauges {
            splits: (0..router.split_count).map(|_| OnceCell::new()).collect(),
            next: Cell::new(0),
            beacon,
        };
        if router.splits().map(|(_, _, split)| gauges_of(split)).sum::<usize>() <= GAUGES_AT_ONCE {
            gauges.define_more(vm, router, None);
        }
        gauges
    }

    /// Defines the next splits' gauges, about `GAUGES_AT_ONCE` of them, and
    /// sets each one's verdict from `states` (live weights and ramp steps
    /// follow at the refresh, the rest at their next change). Without
    /// `states`, every split's (a small config, when it is applied).
    pub fn define_more(&self, vm: &Vm, router: &Router, states: Option<&Splits>) {
        if self.next.get() >= self.splits.len() {
            return;
        }
        let mut budget = if states.is_some() { GAUGES_AT_ONCE } else { usize::MAX };
        for (route, rule, split) in router.splits().skip(self.next.get()) {
            if budget == 0 {
                return;
            }
            budget = budget.saturating_sub(gauges_of(split));
            let labels =
                [("route", route.name.as_str()), ("rule", &rule.label), ("split", &split.identity_hex())];
            let defined = SplitGauges::define(vm, tagged("", &labels), split, self.beacon);
            if let Some(cell) = self.splits.get(split.id.index()) {
                let _ = cell.set(defined);
            }
            self.next.set(self.next.get() + 1);
            if let Some(state) = states.and_then(|s| s.get(split.id)) {
                self.verdict(vm, split.id, &state.verdict.borrow());
            }
        }
    }

    /// A split's gauges, once defined.
    fn of(&self, split_id: SplitId) -> Option<&SplitGauges> {
        self.splits.get(split_id.index()).and_then(OnceCell::get)
    }

    /// Live weights and ramp steps at `now_ms` (from the root's tick).
    pub fn refresh(&self, proxy: &dyn Proxy, router: &Router, now_ms: u64, states: &Splits) {
        let moment = Moment { roll: 0, now_ms, splits: states };
        for ((_, _, split), gauges) in router.splits().zip(&self.splits) {
            let Some(gauges) = gauges.get() else { continue };
            for (gauge, share) in gauges.live.iter().zip(split.current_shares(&moment)) {
                gauge.set(proxy, u64::from(share));
            }
            if let (Some(gauges), Some(ramp), Some(state)) =
                (&gauges.ramp, split.ramp(), states.get(split.id))
            {
                gauges.refresh(proxy, ramp, state, now_ms);
            }
        }
    }

    /// A gated step's evidence, as the gate judged it.
    pub fn judged(&self, proxy: &dyn Proxy, split_id: SplitId, judgement: &Judgement) {
        if let Some(ramp) = self.of(split_id).and_then(|s| s.ramp.as_ref()) {
            ramp.judged(proxy, judgement);
        }
    }

    /// How the canary compares with its baseline.
    pub fn compared(&self, proxy: &dyn Proxy, split: &Split, arms: &Arms, compared: &Compared) {
        let gauges = self.of(split.id).and_then(|s| s.rollback.as_ref());
        let compare = split.rollback().and_then(|r| r.window.as_ref()).and_then(|w| w.compare.as_ref());
        if let (Some(gauges), Some(compare)) = (gauges.and_then(|g| g.compare.as_ref()), compare) {
            gauges.set(proxy, compare, split.ramp(), arms, compared);
        }
    }

    /// A split's verdict on this VM.
    pub fn verdict(&self, vm: &Vm, split_id: SplitId, verdict: &Verdict) {
        let Some(split) = self.of(split_id) else { return };
        let Some(gauges) = &split.rollback else { return };
        let proxy = &*vm.proxy;
        gauges.waiting.set(proxy, u64::from(*verdict == Verdict::Waiting));
        let Verdict::RolledBack(rolled) = verdict else {
            gauges.rolled_back.set(proxy, 0);
            if let Some(since) = gauges.since.get() {
                since.set(proxy, 0);
            }
            return;
        };
        gauges.rolled_back.set(proxy, 1);
        let since = gauges.since.get_or_init(|| gauge(vm, &split.prefix, &[], metrics::ROLLED_BACK_SINCE));
        since.set(proxy, rolled.since_ms / 1_000);
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
    pub fn fleet_state(&self, proxy: &dyn Proxy, split: &Split, state: &FleetState) {
        let Some(gauges) = self.of(split.id).and_then(|s| s.rollback.as_ref()) else {
            return;
        };
        for (gauge, value) in gauges.checks.iter().zip(&state.values) {
            if let Some(value) = value {
                gauge.set(proxy, millionths(*value));
            }
        }
        gauges.failures.set(proxy, u64::from(state.failures));
        if let (Some(blind), Some(prometheus)) =
            (&gauges.blind, split.rollback().and_then(|r| r.prometheus.as_ref()))
        {
            blind.set(proxy, u64::from(state.view.blind(prometheus.blind_after_ms, proxy.now_ms())));
        }
        if let Some(poll) = &state.last_poll {
            for (gauge, check) in gauges.unanswered.iter().zip(split.checks()) {
                gauge.set(proxy, u64::from(poll.unanswered.contains(&check.name)));
            }
        }
    }

    /// Counts one Prometheus answer: its query's row (each check, then the
    /// latch, the view and the step latch) and its result's index in
    /// `QUERY_RESULTS`.
    pub fn query_answered(&self, proxy: &dyn Proxy, split: &Split, row: usize, result: usize) {
        let gauges = self.of(split.id).and_then(|s| s.rollback.as_ref());
        if let Some(id) =
            gauges.and_then(|g| g.queries.get(row)).and_then(|ids| ids.get(result).copied().flatten())
        {
            proxy.increment_metric(id, 1);
        }
    }

    /// This config's splits that the next config does not have: their
    /// gauges read as gone (no weight, not rolled back, not waiting), so a
    /// dashboard does not show a replaced split's last state for good.
    pub fn retire(&self, proxy: &dyn Proxy, keep: &[u64], router: &Router) {
        for ((_, _, split), gauges) in router.splits().zip(&self.splits) {
            let Some(gauges) = gauges.get().filter(|_| !keep.contains(&split.identity)) else { continue };
            for gauge in gauges.live.iter().chain(&gauges.configured) {
                gauge.set(proxy, 0);
            }
            if let Some(ramp) = &gauges.ramp {
                ramp.retire(proxy);
            }
            if let Some(r) = &gauges.rollback {
                let all = [&r.rolled_back, &r.waiting, &r.failures];
                let fleet = r.beacon.iter().chain(&r.blind).chain(r.since.get());
                for gauge in all.into_iter().chain(fleet).chain(&r.checks).chain(&r.unanswered) {
                    gauge.set(proxy, 0);
                }
                for (_, gauge) in r.reasons.borrow().iter() {
                    gauge.set(proxy, 0);
                }
                if let Some(compare) = &r.compare {
                    compare.retire(proxy);
                }
            }
        }
    }
}
