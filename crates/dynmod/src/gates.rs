//! Gated ramps, once a second on Envoy's main thread (the config's tick):
//! each gated split's evidence (its local window's responses since the step
//! began) judged by the core's gate (`judge::look_at_gate`), as the `.wasm`
//! judges it, and its progress kept with the split's shared state, so every
//! worker takes the same step at once; a step past `maxWait` with
//! `onMaxWait: rollback` rolls the split back. The fleet (Prometheus polls,
//! the step latch) is the `.wasm`'s: a gate whose rollback asks Prometheus
//! is refused here (`config::dynamic_module`).

use canary_router_core::rollout::gate::{GateState, Progress};
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
        let mut gated = match judged.gate {
            Some(gated) => gated,
            // Step 1 begins when this proxy first looks at it once the ramp
            // started: never earlier, whatever `start` says.
            None if now_ms >= ramp.start_ms => GateState::first(now_ms),
            None => continue,
        };
        let evidence = GateEvidence {
            window: rollback.window.as_ref().map(|_| &judged.window),
            poll: None,
            fleet: None,
            live: true,
            view_confirmed: true,
            now_ms,
        };
        let (judgement, progress) = judge::look_at_gate(ramp, gate, rollback, &mut gated, &evidence);
        if progress == Progress::NotStarted {
            continue;
        }
        let stepped = judged.gate.map(|g| g.step) != Some(gated.step);
        judged.gate = Some(gated);
        shared.set_gated_step(gated.step);
        if let Progress::Advanced(step) = progress {
            let line = log_lines::step_earned(
                &route.name,
                &rule.label,
                ramp,
                step,
                judgement.responses,
                &judgement.poll,
            );
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
