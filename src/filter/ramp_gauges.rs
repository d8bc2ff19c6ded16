//! A ramp's gauges: the step in force (the step latch reads it), when the
//! next may come, how many there are, gated or by the clock, since when
//! the step is in force, holding and why, and for a gated ramp what its
//! gate waits for (responses, error rate, latency, verdict).

use super::gauge::{gauge, millionths, Gauge};
use super::proxy::Proxy;
use super::split_state::SplitState;
use super::Vm;
use canary_router_core::rollout::gate::{self, FleetProgress, HoldReason, Judgement};
use canary_router_core::rollout::metrics;
use canary_router_core::rollout::settings::{Latency, Ramp};

pub struct RampGauges {
    step: Gauge,
    /// A gated ramp's step and clock, for the step latch.
    progress: Option<Gauge>,
    next: Gauge,
    steps: Gauge,
    gated: Gauge,
    step_since: Gauge,
    /// Holding for the config's `hold`, and past `maxWait`.
    held: Gauge,
    held_past_max_wait: Gauge,
    held_for_view: Gauge,
    /// Since when a gated ramp holds (seconds; 0 while it does not).
    holding_since: Gauge,
    gate: Option<GateGauges>,
}

/// What a gated step's gate waits for.
struct GateGauges {
    responses: Gauge,
    needed: Gauge,
    error_rate: Gauge,
    latency: Gauge,
    passed: Gauge,
}

impl RampGauges {
    /// `latency`: the rollback's bound, whose percentile labels the gate's
    /// latency gauge.
    pub fn define(vm: &Vm, p: &str, ramp: &Ramp, latency: Option<&Latency>) -> RampGauges {
        let proxy = &*vm.proxy;
        let steps = gauge(vm, p, &[], metrics::RAMP_STEPS);
        steps.set(proxy, ramp.steps.len() as u64);
        let gated = gauge(vm, p, &[], metrics::RAMP_GATED);
        gated.set(proxy, u64::from(ramp.gate.is_some()));
        if let (Some(_), Some(latency)) = (&ramp.gate, latency) {
            let percentile = gauge(vm, p, &[], metrics::GATE_LATENCY_PERCENTILE);
            percentile.set(proxy, (latency.percentile * 10.0).round() as u64);
        }
        let gate = ramp.gate.as_ref().map(|_| GateGauges {
            responses: gauge(vm, p, &[], metrics::GATE_RESPONSES),
            needed: gauge(vm, p, &[], metrics::GATE_NEEDED),
            error_rate: gauge(vm, p, &[], metrics::GATE_ERROR_RATE),
            latency: gauge(vm, p, &[], metrics::GATE_LATENCY),
            passed: gauge(vm, p, &[], metrics::GATE_PASSED),
        });
        RampGauges {
            step: gauge(vm, p, &[("target", &ramp.target)], metrics::RAMP_STEP),
            progress: ramp.gate.as_ref().map(|_| gauge(vm, p, &[], metrics::RAMP_PROGRESS)),
            next: gauge(vm, p, &[], metrics::RAMP_NEXT_STEP),
            steps,
            gated,
            step_since: gauge(vm, p, &[], metrics::RAMP_STEP_SINCE),
            held: gauge(vm, p, &[("reason", "hold")], metrics::RAMP_HOLDING),
            held_past_max_wait: gauge(vm, p, &[("reason", "maxWait")], metrics::RAMP_HOLDING),
            held_for_view: gauge(vm, p, &[("reason", "fleetView")], metrics::RAMP_HOLDING),
            holding_since: gauge(vm, p, &[], metrics::RAMP_HOLDING_SINCE),
            gate,
        }
    }

    /// The step in force and its times, at `now_ms`.
    pub fn refresh(&self, proxy: &dyn Proxy, ramp: &Ramp, state: &SplitState, now_ms: u64) {
        let at = state.ramp_step(ramp, now_ms);
        self.step.set(proxy, at.map_or(0, |s| s as u64 + 1));
        let (since_ms, next_ms) = match (&ramp.gate, state.gate.get()) {
            (Some(_), Some(gated)) => (Some(gated.since_ms), gate::earliest_next_ms(ramp, &gated)),
            (Some(_), None) => (None, Some(ramp.start_ms)),
            (None, _) => ramp.clock_times(now_ms),
        };
        self.step_since.set(proxy, since_ms.map_or(0, |ms| ms / 1_000));
        self.next.set(proxy, next_ms.map_or(0, |ms| ms / 1_000));
        let started = at.is_some() && at < Some(ramp.last_step());
        self.held.set(proxy, u64::from(ramp.hold && started));
        let gated = state.gate.get();
        let holds_for = |reason| gated.is_some_and(|g| g.holds_for(reason));
        self.held_past_max_wait.set(proxy, u64::from(holds_for(HoldReason::MaxWait)));
        self.held_for_view.set(proxy, u64::from(holds_for(HoldReason::FleetView)));
        let holding_since = gated.and_then(|g| g.holding).map_or(0, |h| h.since_ms / 1_000);
        self.holding_since.set(proxy, holding_since);
        if let Some(progress) = &self.progress {
            progress.set(proxy, FleetProgress::gauge(gated.as_ref()));
        }
    }

    /// What the gate saw at the step.
    pub fn judged(&self, proxy: &dyn Proxy, judgement: &Judgement) {
        let Some(g) = &self.gate else { return };
        g.responses.set(proxy, judgement.responses);
        g.needed.set(proxy, judgement.needed);
        g.error_rate.set(proxy, judgement.error_rate.map_or(0, millionths));
        g.latency.set(proxy, judgement.latency_ms.map_or(0, |ms| ms.round() as u64));
        g.passed.set(proxy, u64::from(judgement.passed));
    }

    /// The split is gone: every gauge reads 0.
    pub fn retire(&self, proxy: &dyn Proxy) {
        let all = [
            &self.step,
            &self.next,
            &self.steps,
            &self.gated,
            &self.step_since,
            &self.held,
            &self.held_past_max_wait,
            &self.held_for_view,
            &self.holding_since,
        ];
        for gauge in all.into_iter().chain(&self.progress) {
            gauge.set(proxy, 0);
        }
        if let Some(g) = &self.gate {
            for gauge in [&g.responses, &g.needed, &g.error_rate, &g.latency, &g.passed] {
                gauge.set(proxy, 0);
            }
        }
    }
}
