//! Gated ramps, once a second: each gated split's evidence (its local
//! window's responses since the step began, its last Prometheus poll)
//! judged by `crate::gate`, and the progress written to the split's shared
//! state with compare-and-swap, so every worker of the proxy takes the
//! same step; a step past `maxWait` with `onMaxWait: rollback` rolls the
//! split back.

use log::info;

use super::rollback::{self, update_state};
use super::Active;
use crate::error_window::Window;
use crate::fleet_state::RolledBack;
use crate::gate::{self, GateState, Judgement, Progress};

/// From the root's tick, after the rollback windows were merged.
pub fn evaluate(active: &Active, root_id: u32, now_ms: u64) {
    for (route, rule, split) in active.router.splits() {
        let Some(state) = active.state(split) else { continue };
        let (Some(ramp), Some(rollback)) = (split.ramp(), split.rollback()) else { continue };
        let Some(gate) = &ramp.gate else { continue };
        // Rolled back, or a started proxy that has not heard the fleet's
        // latches yet: nothing to judge.
        if state.verdict.borrow().withholds() {
            continue;
        }
        let window = state.watch.as_ref().map(|watch| {
            let bytes = active.vm.proxy.shared_data(&watch.key).map(|(bytes, _)| bytes);
            bytes.and_then(|b| Window::decode(&b)).unwrap_or_default()
        });
        let mut seen: Option<(Judgement, Progress)> = None;
        let updated = update_state(&*active.vm.proxy, &state.state_key, |fleet| {
            let mut gated = fleet.gate.unwrap_or_else(|| GateState::first(ramp));
            let step = window.as_ref().map(|w| w.since_step(gated.step));
            let poll = rollback.prometheus.as_ref().map(|_| fleet.last_poll.as_ref());
            let judgement = gate::judge(gate, rollback.window.as_ref(), step.as_ref(), poll, &gated);
            let progress = gate::progress(ramp, gate, &mut gated, &judgement, fleet.fleet_step, now_ms);
            seen = Some((judgement, progress));
            if progress == Progress::NotStarted {
                return false;
            }
            let mut changed = fleet.gate != Some(gated);
            fleet.gate = Some(gated);
            if progress == Progress::RollBack && fleet.rolled_back.is_none() {
                fleet.rolled_back = Some(max_wait_rollback(ramp, &gated, now_ms));
                changed = true;
            }
            changed
        });
        let (Some(fleet), Some((judgement, progress))) = (updated, seen) else { continue };
        let before = state.gated_step();
        // The step, and a rollback the gate (or another worker) recorded,
        // taken on as every shared state is.
        rollback::adopt(active, split, &fleet, root_id);
        active.gauges.judged(&*active.vm.proxy, split.id, &judgement);
        if let Progress::Advanced(step) = progress {
            info!(
                "[ctx {root_id}] canary-router: route={} rule={} ramp: step {} earned ({} responses, {:?})",
                route.name, rule.label, step, judgement.responses, judgement.poll
            );
        }
        if before != state.gated_step() {
            active.log_ramp_steps(root_id, now_ms);
        }
    }
}

/// Why a gated step rolled back: no verdict within `maxWait`.
fn max_wait_rollback(ramp: &crate::split::Ramp, gated: &GateState, now_ms: u64) -> RolledBack {
    let waited = now_ms.saturating_sub(gated.since_ms);
    RolledBack {
        since_ms: now_ms,
        reason: "maxWait".into(),
        detail: format!(
            "step {} of {} could not be judged healthy within {} ms (waited {waited} ms)",
            gated.step + 1,
            ramp.steps.len(),
            ramp.gate.as_ref().and_then(|g| g.max_wait_ms).unwrap_or(0)
        ),
    }
}
