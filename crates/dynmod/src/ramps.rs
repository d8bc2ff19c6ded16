//! Ramps: a clock ramp's step is read by each decision from the time, a
//! gated ramp's from the split's shared state (`gates`); the config's tick
//! (main thread) logs each clock step once, with the `.wasm`'s words, and
//! the next request sets the ramp gauges of docs/metrics.md ("Split
//! state": `canary_router_ramp_step`, `_ramp_steps`,
//! `_ramp_next_step_seconds`, `_ramp_gated`, `_ramp_step_since_seconds`,
//! `_ramp_holding` (`hold`, `maxWait`, `fleetView`),
//! `_ramp_holding_since_seconds`, `_ramp_progress`, and a gated step's
//! `canary_router_gate_*`), since Envoy takes a gauge change only from a
//! stream.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::abi::*;
use crate::family::{Family, Kind};
use crate::flag;
use crate::split_states::Splits;
use canary_router_core::rollout::gate::{self, FleetProgress, HoldReason};
use canary_router_core::rollout::log_lines;
use canary_router_core::rollout::metrics;
use canary_router_core::routing::router::Router;

/// No step logged yet (the first state is always logged).
const NOT_LOGGED: usize = usize::MAX;
/// Before the ramp's start.
const BEFORE_START: usize = usize::MAX - 1;

/// The ramp gauges, each labelled route, rule and split (and `extra`).
struct RampFamilies {
    step: Option<Family>,
    steps: Option<Family>,
    next: Option<Family>,
    gated: Option<Family>,
    since: Option<Family>,
    holding: Option<Family>,
    holding_since: Option<Family>,
    progress: Option<Family>,
    gate_responses: Option<Family>,
    gate_needed: Option<Family>,
    gate_error_rate: Option<Family>,
    gate_latency: Option<Family>,
    gate_passed: Option<Family>,
    gate_latency_percentile: Option<Family>,
}

pub struct Ramps {
    /// Per split id: the clock step last logged.
    logged: Vec<AtomicUsize>,
    /// The gauges are to be set again (at first, so the config's first
    /// request shows them).
    dirty: AtomicBool,
    families: RampFamilies,
}

impl Ramps {
    /// The config's ramps, if any split has one.
    pub fn define(envoy: FilterConfigEnvoyPtr, router: &Router) -> Option<Ramps> {
        router.splits().any(|(_, _, s)| s.ramp().is_some()).then(|| {
            let family = |name: &str, extra: Option<&str>| {
                let labels: Vec<&str> = ["route", "rule", "split"].into_iter().chain(extra).collect();
                Family::define(envoy, Kind::Gauge, name, &labels)
            };
            Ramps {
                logged: (0..router.split_count).map(|_| AtomicUsize::new(NOT_LOGGED)).collect(),
                dirty: AtomicBool::new(true),
                families: RampFamilies {
                    step: family(metrics::RAMP_STEP, Some("target")),
                    steps: family(metrics::RAMP_STEPS, None),
                    next: family(metrics::RAMP_NEXT_STEP, None),
                    gated: family(metrics::RAMP_GATED, None),
                    since: family(metrics::RAMP_STEP_SINCE, None),
                    holding: family(metrics::RAMP_HOLDING, Some("reason")),
                    holding_since: family(metrics::RAMP_HOLDING_SINCE, None),
                    progress: family(metrics::RAMP_PROGRESS, None),
                    gate_responses: family(metrics::GATE_RESPONSES, None),
                    gate_needed: family(metrics::GATE_NEEDED, None),
                    gate_error_rate: family(metrics::GATE_ERROR_RATE, None),
                    gate_latency: family(metrics::GATE_LATENCY, None),
                    gate_passed: family(metrics::GATE_PASSED, None),
                    gate_latency_percentile: family(metrics::GATE_LATENCY_PERCENTILE, None),
                },
            }
        })
    }

    /// A step changed where no stream is (a gate, on the tick).
    pub fn mark(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// On the config's tick: logs each clock ramp whose step changed.
    pub fn tick(&self, router: &Router, now_ms: u64) {
        for (route, rule, split) in router.splits() {
            let Some(ramp) = split.ramp().filter(|r| r.gate.is_none()) else { continue };
            let Some(logged) = self.logged.get(split.id.index()) else { continue };
            let step = ramp.step_at(now_ms);
            let code = step.unwrap_or(BEFORE_START);
            if logged.swap(code, Ordering::Relaxed) == code {
                continue;
            }
            self.mark();
            eprintln!("{}", log_lines::ramp_step(&route.name, &rule.label, ramp, step));
        }
    }

    /// From a stream, when marked: every ramp's gauges.
    pub fn publish(&self, envoy: FilterEnvoyPtr, router: &Router, splits: &Splits, now_ms: u64) {
        if !flag::take(&self.dirty) {
            return;
        }
        let f = &self.families;
        let set = |family, values: &[&[u8]], value| Family::record_into(family, envoy, values, value);
        for (route, rule, split) in router.splits() {
            let Some(ramp) = split.ramp() else { continue };
            let identity = split.identity_hex();
            let [route, rule, identity] = [route.name.as_bytes(), rule.label.as_bytes(), identity.as_bytes()];
            let labels = [route, rule, identity];
            let (gated, judgement) = match splits.get(split.id) {
                Some(shared) if ramp.gate.is_some() => {
                    let judged = shared.lock();
                    (judged.gate, judged.judgement.clone())
                }
                _ => (None, None),
            };
            let (step, since_ms, next_ms) = match (&ramp.gate, gated) {
                (Some(_), Some(g)) => {
                    (Some(g.step as usize), Some(g.since_ms), gate::earliest_next_ms(ramp, &g))
                }
                (Some(_), None) => (None, None, Some(ramp.start_ms)),
                (None, _) => {
                    let (since, next) = ramp.clock_times(now_ms);
                    (ramp.step_at(now_ms), since, next)
                }
            };
            set(f.step, &[route, rule, identity, ramp.target.as_bytes()], step.map_or(0, |s| s as u64 + 1));
            set(f.steps, &labels, ramp.steps.len() as u64);
            set(f.gated, &labels, u64::from(ramp.gate.is_some()));
            set(f.since, &labels, since_ms.map_or(0, |ms| ms / 1_000));
            set(f.next, &labels, next_ms.map_or(0, |ms| ms / 1_000));
            let started = step.is_some_and(|s| s < ramp.last_step());
            set(f.holding, &[route, rule, identity, b"hold"], u64::from(ramp.hold && started));
            if ramp.gate.is_none() {
                continue;
            }
            let past_max_wait = gated.is_some_and(|g| g.holds_for(HoldReason::MaxWait));
            set(f.holding, &[route, rule, identity, b"maxWait"], u64::from(past_max_wait));
            let unseen = gated.is_some_and(|g| g.holds_for(HoldReason::FleetView));
            set(f.holding, &[route, rule, identity, b"fleetView"], u64::from(unseen));
            let latency = split.rollback().and_then(|r| r.window.as_ref()).and_then(|w| w.latency.as_ref());
            if let Some(latency) = latency {
                set(f.gate_latency_percentile, &labels, (latency.percentile * 10.0).round() as u64);
            }
            set(f.holding_since, &labels, gated.and_then(|g| g.holding).map_or(0, |h| h.since_ms / 1_000));
            set(f.progress, &labels, FleetProgress::gauge(gated.as_ref()));
            if let Some(j) = judgement {
                set(f.gate_responses, &labels, j.responses);
                set(f.gate_needed, &labels, j.needed);
                set(f.gate_error_rate, &labels, j.error_rate.map_or(0, |r| (r * 1_000_000.0).round() as u64));
                set(f.gate_latency, &labels, j.latency_ms.map_or(0, |ms| ms.round() as u64));
                set(f.gate_passed, &labels, u64::from(j.passed));
            }
        }
    }
}
