//! Whether each rollback split's watched target gets traffic on this VM,
//! and the proxy-wide state behind it.
//!
//! Every worker VM of a proxy reads one shared state per split (the
//! proxy's shared data, keyed by the split's identity): rolled back or
//! not, why and since when, and whether the fleet latch has answered
//! (`fleet_state`). It is written by the VM whose local window crosses
//! its threshold and by the VM that polls Prometheus (`fleet`).
//!
//! The local window: each VM batches the watched target's responses and
//! merges them into one shared error window with a compare-and-swap write,
//! at once for an error or for any response that may take the window over
//! its threshold, and on the root's tick otherwise. So the response that
//! crosses the threshold rolls the split back, not a tick later, and the
//! errors served before a rollback do not grow with traffic.
//!
//! A split stays rolled back for as long as it keeps its identity: a new
//! version of the split (new weights, targets, ramp or rollback) starts
//! fresh; an edit elsewhere in the config does not.

use log::{info, warn};

use super::proxy::SharedWrite;
use super::shared_state::{read_state, update_state, CAS_ATTEMPTS};
use super::split_state::{verdict_of, SplitState, Verdict, Watch};
use super::Active;
use canary_router_core::rollout::compare::{self, Arms, Compared};
pub use canary_router_core::rollout::compare::{Answered, WatchedArm};
use canary_router_core::rollout::error_window::{self, Counts, Crossed};
use canary_router_core::rollout::fleet_state::{FleetState, RolledBack};
use canary_router_core::rollout::judge;
use canary_router_core::rollout::log_lines;
use canary_router_core::routing::split::{Split, SplitId};

/// Takes on what the shared state says. A rollback is never undone for
/// the same split identity, whatever a later state says.
pub fn adopt(active: &Active, split: &Split, state: &FleetState, context_id: u32) {
    active.gauges.fleet_state(&*active.vm.proxy, split, state);
    let Some(split_state) = active.state(split) else { return };
    if split.ramp().is_some_and(|r| r.gate.is_some()) {
        split_state.gate.set(state.gate);
    }
    let current = split_state.verdict.borrow().clone();
    let next = verdict_of(split, state);
    if matches!(current, Verdict::RolledBack(_)) || current == next {
        return;
    }
    set_verdict(active, split, next, context_id);
}

/// Logs each rollback split of a config just applied that does not start
/// live (rolled back by the fleet, or waiting for its latch).
pub fn log_verdicts(active: &Active, root_id: u32) {
    for (_, _, split) in active.router.splits() {
        let verdict = active.state(split).map(|s| s.verdict.borrow().clone());
        if let Some(verdict @ (Verdict::Waiting | Verdict::RolledBack(_))) = verdict {
            set_verdict(active, split, verdict, root_id);
        }
    }
}

pub fn set_verdict(active: &Active, split: &Split, verdict: Verdict, context_id: u32) {
    let route = active.router.split(split.id).map_or("-", |(r, _, _)| r.name.as_str());
    let target = split.rollback().map_or("-", |r| r.target.as_str());
    let identity = split.identity_hex();
    match &verdict {
        Verdict::RolledBack(rolled) => {
            warn!("[ctx {context_id}] {}", log_lines::rolled_back(route, target, &identity, rolled))
        }
        Verdict::Waiting => {
            info!("[ctx {context_id}] {}", log_lines::waiting_for_fleet(route, target, &identity))
        }
        Verdict::Live => {
            info!("[ctx {context_id}] {}", log_lines::fleet_latch_clear(route, target, &identity))
        }
    }
    active.gauges.verdict(&active.vm, split.id, &verdict);
    if let Some(state) = active.state(split) {
        *state.verdict.borrow_mut() = verdict;
    }
}

/// Counts one response of a split's watched target (from a stream).
pub fn record_response(
    active: &Active,
    split_id: SplitId,
    context_id: u32,
    now_ms: u64,
    answered: &Answered,
) {
    // An error is also when another VM's rollback (a crossed window, a
    // Prometheus poll) is taken on here, not a tick later: the error that
    // follows a fleet rollback is this worker's last.
    let canary = answered.arm == WatchedArm::Canary;
    if let (true, true, Some((_, _, split))) = (canary, answered.error, active.router.split(split_id)) {
        take_on_shared_state(active, split, context_id);
    }
    let Some((watch, split)) = watch_of(active, split_id) else { return };
    let Some(window) = split.rollback().and_then(|r| r.window.as_ref()) else { return };
    // A batch holds one step's responses: another step's first merges it.
    if watch.pending_step.get() != answered.step
        && (!watch.pending.get().is_empty()
            || watch.pending_arms.as_ref().is_some_and(|a| !a.borrow().is_empty()))
    {
        sync(active, split, watch, context_id, now_ms);
    }
    watch.pending_step.set(answered.step);
    if let (Some(compare), Some(arms)) = (&window.compare, &watch.pending_arms) {
        let timed = compare.latency.as_ref().and(answered.latency_ms);
        let mut arms = arms.borrow_mut();
        match answered.arm {
            WatchedArm::Canary => arms.canary.count(answered.error, timed, Some(watch.forecast.get())),
            WatchedArm::Baseline => arms.baseline.count(answered.error, timed, None),
        }
    }
    // The baseline's responses are merged on the tick: only the canary's
    // can make it worse.
    if !canary {
        return;
    }
    let bucket =
        window.latency.as_ref().zip(answered.latency_ms).map(|(l, ms)| error_window::latency_bucket(ms, l));
    let mut pending = watch.pending.get();
    pending.add(Counts::one(answered.error, bucket));
    watch.pending.set(pending);
    let mut estimate = watch.seen.get();
    estimate.add(pending);
    let slow = bucket.is_some_and(error_window::is_slow)
        || answered.latency_ms.is_some_and(|ms| ms > watch.latency_trigger_ms.get());
    if answered.error || slow || error_window::crossed(window, &estimate).is_some() {
        sync(active, split, watch, context_id, now_ms);
    }
}

/// Reads a split's shared state and takes it on.
fn take_on_shared_state(active: &Active, split: &Split, context_id: u32) {
    let Some(key) = active.state(split).map(|s| s.state_key.as_str()) else { return };
    let (state, _) = read_state(&*active.vm.proxy, key);
    adopt(active, split, &state, context_id);
}

/// From the root's tick: merges every window's batch (and shows how the
/// canary compares with its baseline), then takes on each split's shared
/// state.
pub fn evaluate(active: &Active, root_id: u32, now_ms: u64) {
    for (_, _, split) in active.router.splits() {
        if split.rollback().is_none() {
            continue;
        }
        if let Some((watch, split)) = watch_of(active, split.id) {
            if let Some((arms, compared)) = sync(active, split, watch, root_id, now_ms) {
                active.gauges.compared(&*active.vm.proxy, split, &arms, &compared);
            }
        }
        take_on_shared_state(active, split, root_id);
    }
}

/// The window of a split that is not rolled back yet on this VM.
fn watch_of(active: &Active, split_id: SplitId) -> Option<(&Watch, &Split)> {
    let state: &SplitState = active.splits.get(split_id)?;
    if matches!(*state.verdict.borrow(), Verdict::RolledBack(_)) {
        return None;
    }
    let (_, _, split) = active.router.split(split_id)?;
    Some((state.watch.as_ref()?, split))
}

/// Reads the shared window, adds this VM's batch, raises the flag if the
/// threshold is crossed or the canary is worse than its baseline
/// (`judge::look_at_window`), and writes it back; rolls back if flagged.
/// Returns the step's arms and what they say, with `compare`.
fn sync(
    active: &Active,
    split: &Split,
    watch: &Watch,
    context_id: u32,
    now_ms: u64,
) -> Option<(Arms, Compared)> {
    let config = split.rollback().and_then(|r| r.window.as_ref())?;
    let proxy = &*active.vm.proxy;
    for _ in 0..CAS_ATTEMPTS {
        let (mut window, cas) = watch.read(proxy);
        let pending = watch.pending.get();
        let pending_arms = watch.pending_arms.as_ref().map_or_else(Arms::default, |a| **a.borrow());
        let bucket = error_window::bucket_of(now_ms, watch.window_ms);
        let nothing_pending = pending.is_empty() && pending_arms.is_empty();
        if !nothing_pending {
            window.add(bucket, pending, &pending_arms, watch.pending_step.get());
        }
        let look = judge::look_at_window(config, &window, bucket, split.ramp());
        let trigger = look.compared.and_then(|c| c.latency).and_then(|l| l.trigger_ms);
        watch.forecast.set(compare::forecast_rate(&look.arms.baseline));
        watch.latency_trigger_ms.set(trigger.map_or(u64::MAX, |ms| ms.floor() as u64));
        let crossed_here = if window.rolled_back { None } else { look.crossed };
        let seen = look.compared.map(|c| (look.arms, c));
        if nothing_pending && crossed_here.is_none() {
            watch.seen.set(look.totals);
            if window.rolled_back {
                window_rolled_back(active, split, context_id, now_ms, None);
            }
            return seen;
        }
        window.rolled_back |= crossed_here.is_some();
        match proxy.set_shared_data(&watch.key, &window.encode(), cas) {
            SharedWrite::Written => {
                watch.pending.set(Counts::default());
                if let Some(arms) = &watch.pending_arms {
                    **arms.borrow_mut() = Arms::default();
                }
                watch.seen.set(look.totals);
                if let Some(crossed) = crossed_here {
                    let detail = judge::crossing_detail(config, &look, crossed);
                    window_rolled_back(active, split, context_id, now_ms, Some((crossed, detail)));
                } else if window.rolled_back {
                    window_rolled_back(active, split, context_id, now_ms, None);
                }
                return seen;
            }
            SharedWrite::Conflict => continue,
            // The batch stays pending for the next sync.
            SharedWrite::Failed => return seen,
        }
    }
    None
}

/// The local window is flagged: record why in the shared state (the first
/// reason stays) and roll back here. `crossing` is the crossing VM's
/// reason and numbers; another VM that only saw the flag keeps whatever
/// the state says.
fn window_rolled_back(
    active: &Active,
    split: &Split,
    context_id: u32,
    now_ms: u64,
    crossing: Option<(Crossed, String)>,
) {
    let (reason, detail) = match crossing {
        Some((crossed, detail)) => (crossed.reason(), detail),
        None => ("window", "another worker saw the local window cross its threshold".to_string()),
    };
    let rolled = RolledBack { since_ms: now_ms, reason: reason.into(), detail };
    let key = active.state(split).map_or("", |s| s.state_key.as_str());
    let state = update_state(&*active.vm.proxy, key, |state| {
        if state.rolled_back.is_some() {
            return false;
        }
        state.rolled_back = Some(rolled.clone());
        true
    });
    let rolled = state.and_then(|s| s.rolled_back).unwrap_or(rolled);
    set_verdict(active, split, Verdict::RolledBack(rolled), context_id);
}
