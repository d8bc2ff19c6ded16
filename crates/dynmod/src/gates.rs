//! Gated ramps, once a second on Envoy's main thread (the config's tick):
//! each gated split's evidence (its local window's responses since the step
//! began) judged by the core's gate (`judge::look_at_gate`), as the `.wasm`
//! judges it, and its progress kept with the split's shared state, so every
//! worker takes the same step at once; a step past `maxWait` with
//! `onMaxWait: rollback` rolls the split back. With `prometheus`, the
//! step also needs the last poll's checks, and the fleet view showing this
//! proxy; a proxy that starts resumes at the fleet's furthest step (the
//! step latch, read by the polls of `fleet`).

use canary_router_core::rollout::gate::{GateState, HoldReason, Progress};
use canary_router_core::rollout::judge::{self, GateEvidence};
use canary_router_core::rollout::log_lines;
use canary_router_core::routing::router::Router;

use crate::split_states::Splits;

/// What a tick changed, for the gauges.
#[derive(Default)]
pub struct Changed {
    pub steps: bool,
    pub rollbacks: bool,
}

/// Judges every gated split at `now_ms`; logs each step earned and each
/// rollback, with the `.wasm`'s words.
pub fn tick(router: &Router, splits: &Splits, now_ms: u64) -> Changed {
    let mut changed = Changed::default();
    for (route, rule, split) in router.splits() {
        let (Some(ramp), Some(rollback)) = (split.ramp(), split.rollback()) else { continue };
        let (Some(gate), Some(shared)) = (&ramp.gate, splits.get(split.id)) else { continue };
        let mut judged = shared.lock();
        if judged.rolled_back.is_some() {
            continue;
        }
        // Waiting for the fleet's latches: not live here, so the step's
        // clock does not run.
        let fleet = rollback.prometheus.as_ref().map(|_| judged.fleet.clone().unwrap_or_default());
        let live = fleet.as_ref().is_none_or(|f| f.latch_clear);
        let mut gated = match judged.gate {
            Some(gated) => gated,
            // Step 1 begins when this proxy first sees the split live once
            // the ramp started: never earlier, whatever `start` says.
            None if live && now_ms >= ramp.start_ms => GateState::first(now_ms),
            None => continue,
        };
        let evidence = GateEvidence {
            window: rollback.window.as_ref().map(|_| &judged.window),
            poll: fleet.as_ref().map(|f| f.last_poll.as_ref()),
            fleet: fleet.as_ref().and_then(|f| f.fleet),
            live,
            view_confirmed: fleet.as_ref().is_none_or(|f| f.view.seen),
            now_ms,
        };
        let was_held = gated.holds_for(HoldReason::FleetView);
        let (judgement, progress) = judge::look_at_gate(ramp, gate, rollback, &mut gated, &evidence);
        if !was_held && gated.holds_for(HoldReason::FleetView) {
            eprintln!("{}", log_lines::held_for_fleet_view(&route.name, &rule.label, &split.identity_hex()));
        }
        if progress == Progress::NotStarted {
            continue;
        }
        let stepped = judged.gate.map(|g| g.step) != Some(gated.step);
        judged.gate = Some(gated);
        shared.set_gated_step(gated.step);
        if let Progress::Advanced(step) = progress {
            let line = log_lines::step_earned(&route.name, &rule.label, ramp, step, &judgement);
            eprintln!("{line}");
        }
        if stepped {
            eprintln!("{}", log_lines::ramp_step(&route.name, &rule.label, ramp, Some(gated.step as usize)));
        }
        changed.steps |= stepped || judged.judgement.as_ref() != Some(&judgement);
        judged.judgement = Some(judgement);
        if progress == Progress::RollBack {
            let rolled = judge::max_wait_rollback(ramp, &gated, now_ms);
            crate::rollback::log(&route.name, split, &rolled);
            judged.window.rolled_back = true;
            judged.rolled_back = Some(rolled);
            shared.withhold();
            changed.rollbacks = true;
        }
    }
    changed
}
