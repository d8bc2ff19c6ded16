//! Gated ramps, once a second: each gated split's evidence (its local
//! window's responses since the step began, its last Prometheus poll, the
//! fleet view) judged by `canary_router_core::rollout::gate`, and the progress (the step and its
//! clock) written to the split's shared state with compare-and-swap, so
//! every worker of the proxy takes the same step and the clock counts each
//! second once; a step past `maxWait` with `onMaxWait: rollback` rolls the
//! split back.

use log::{info, warn};

use super::rollback;
use super::shared_state::update_state;
use super::split_state::Verdict;
use super::Active;
use canary_router_core::rollout::gate::{GateState, HoldReason, Judgement, Progress};
use canary_router_core::rollout::judge::{self, GateEvidence};
use canary_router_core::rollout::log_lines;

/// From the root's tick, after the rollback windows were merged.
pub fn evaluate(active: &Active, root_id: u32, now_ms: u64) {
    let proxy = &*active.vm.proxy;
    for (route, rule, split) in active.router.splits() {
        let Some(state) = active.state(split) else { continue };
        let (Some(ramp), Some(rollback)) = (split.ramp(), split.rollback()) else { continue };
        let Some(gate) = &ramp.gate else { continue };
        // Rolled back: nothing to judge. Waiting for the fleet's latches:
        // not live here, so the step's clock does not run.
        let live = match *state.verdict.borrow() {
            Verdict::RolledBack(_) => continue,
            Verdict::Waiting => false,
            Verdict::Live => true,
        };
        let window = state.watch.as_ref().map(|watch| watch.read(proxy).0);
        let mut seen: Option<(Judgement, Progress, bool)> = None;
        let updated = update_state(proxy, &state.state_key, |fleet| {
            let mut gated = match fleet.gate {
                Some(gated) => gated,
                // Step 1 begins when this proxy first sees the split live.
                None if live && now_ms >= ramp.start_ms => GateState::first(now_ms),
                None => return false,
            };
            let was_awaiting = gated.holds_for(HoldReason::FleetView);
            let evidence = GateEvidence {
                window: window.as_ref(),
                poll: rollback.prometheus.as_ref().map(|_| fleet.last_poll.as_ref()),
                fleet: fleet.fleet,
                live,
                view_confirmed: rollback.prometheus.is_none() || fleet.view.seen,
                now_ms,
            };
            let (judgement, progress) = judge::look_at_gate(ramp, gate, rollback, &mut gated, &evidence);
            seen = Some((judgement, progress, !was_awaiting && gated.holds_for(HoldReason::FleetView)));
            if progress == Progress::NotStarted {
                return false;
            }
            let mut changed = fleet.gate != Some(gated);
            fleet.gate = Some(gated);
            if progress == Progress::RollBack && fleet.rolled_back.is_none() {
                fleet.rolled_back = Some(judge::max_wait_rollback(ramp, &gated, now_ms));
                changed = true;
            }
            changed
        });
        let (Some(fleet), Some((judgement, progress, started_awaiting))) = (updated, seen) else { continue };
        let before = state.gated_step();
        // The step, and a rollback the gate (or another worker) recorded,
        // taken on as every shared state is.
        rollback::adopt(active, split, &fleet, root_id);
        active.gauges.judged(proxy, split.id, &judgement);
        if let Progress::Advanced(step) = progress {
            let line = log_lines::step_earned(&route.name, &rule.label, ramp, step, &judgement);
            info!("[ctx {root_id}] {line}");
        }
        if started_awaiting {
            warn!(
                "[ctx {root_id}] {}",
                log_lines::held_for_fleet_view(&route.name, &rule.label, &split.identity_hex())
            );
        }
        if before != state.gated_step() {
            active.log_ramp_steps(root_id, now_ms);
        }
    }
}
