//! Gated ramps, once a second: each gated split's evidence (its local
//! window's responses since the step began, its last Prometheus poll, the
//! fleet view) judged by `crate::gate`, and the progress (the step and its
//! clock) written to the split's shared state with compare-and-swap, so
//! every worker of the proxy takes the same step and the clock counts each
//! second once; a step past `maxWait` with `onMaxWait: rollback` rolls the
//! split back.

use log::{info, warn};

use super::rollback::{self, update_state, Verdict};
use super::Active;
use crate::compare;
use crate::fleet_state::RolledBack;
use crate::gate::{self, GateState, HoldReason, Judgement, Look, Progress};

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
            let step = window.as_ref().map(|w| w.since_step(gated.step));
            let local = rollback.window.as_ref();
            let compared = local.zip(window.as_ref()).and_then(|(config, window)| {
                let compare = config.compare.as_ref()?;
                let arms = window.arms_since(gated.step);
                Some(compare::judge(compare, &arms, compare::epochs(Some(ramp)), config.min_requests))
            });
            let poll = rollback.prometheus.as_ref().map(|_| fleet.last_poll.as_ref());
            let judgement = gate::judge(gate, local, step.as_ref(), compared.as_ref(), poll, &gated);
            let look = Look {
                judgement: &judgement,
                fleet: fleet.fleet,
                live,
                view_confirmed: rollback.prometheus.is_none() || fleet.view.seen,
                now_ms,
            };
            let progress = gate::progress(ramp, gate, &mut gated, &look);
            seen = Some((judgement, progress, !was_awaiting && gated.holds_for(HoldReason::FleetView)));
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
        let (Some(fleet), Some((judgement, progress, started_awaiting))) = (updated, seen) else { continue };
        let before = state.gated_step();
        // The step, and a rollback the gate (or another worker) recorded,
        // taken on as every shared state is.
        rollback::adopt(active, split, &fleet, root_id);
        active.gauges.judged(proxy, split.id, &judgement);
        if let Progress::Advanced(step) = progress {
            info!(
                "[ctx {root_id}] canary-router: route={} rule={} ramp: step {} of {} earned ({} responses; {})",
                route.name,
                rule.label,
                step + 1,
                ramp.steps.len(),
                judgement.responses,
                judgement.poll
            );
        }
        if started_awaiting {
            warn!(
                "[ctx {root_id}] canary-router: route={} rule={} ramp: the next step is earned but held: Prometheus \
                 does not show this proxy's own series of split {} (the fleet view); it is taken once it does",
                route.name,
                rule.label,
                split.identity_hex()
            );
        }
        if before != state.gated_step() {
            active.log_ramp_steps(root_id, now_ms);
        }
    }
}

/// Why a gated step rolled back: no verdict within `maxWait` of judging.
fn max_wait_rollback(ramp: &crate::split::Ramp, gated: &GateState, now_ms: u64) -> RolledBack {
    RolledBack {
        since_ms: now_ms,
        reason: "maxWait".into(),
        detail: format!(
            "step {} of {} could not be judged healthy within {} ms (judged for {} ms)",
            gated.step + 1,
            ramp.steps.len(),
            ramp.gate.as_ref().and_then(|g| g.max_wait_ms).unwrap_or(0),
            gated.clock_ms
        ),
    }
}
