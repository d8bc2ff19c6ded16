//! Automatic rollback across every worker: each VM adds the rollback
//! target's responses to an error window in the proxy's shared data, and
//! each VM's root checks the window on its tick. The first to see the
//! threshold crossed raises a shared flag; every VM then stops sending the
//! split's traffic to the target until the config changes (the keys carry
//! the config's fingerprint).

use log::warn;

use super::Active;
use crate::error_window::{self, Slot, SLOTS};
use crate::host::{self, SharedWrite};
use crate::router::Action;
use crate::split::Split;

/// Compare-and-swap attempts before a count is given up (lost, not fatal).
const CAS_ATTEMPTS: usize = 8;

fn key(active: &Active, split: &Split, suffix: &str) -> String {
    format!("canary-router/{:016x}/split{}/{suffix}", active.fingerprint, split.id)
}

/// Counts one response of a rollback target in the shared window.
pub fn record_response(active: &Active, split: &Split, now_ms: u64, error: bool) {
    let Some(rollback) = split.rollback() else { return };
    let bucket = error_window::bucket_of(now_ms, rollback.window_ms);
    let slot_key = key(active, split, &format!("slot{}", error_window::slot_of(bucket)));
    for _ in 0..CAS_ATTEMPTS {
        let (previous, cas) = match host::shared_data(&slot_key) {
            Some((bytes, cas)) => (Slot::decode(&bytes), cas),
            None => (None, 0),
        };
        let slot = error_window::record(previous, bucket, error);
        match host::set_shared_data(&slot_key, &slot.encode(), cas) {
            SharedWrite::Written | SharedWrite::Failed => return,
            SharedWrite::Conflict => continue,
        }
    }
}

/// Checks every rollback split of the active config (from the root's tick).
pub fn evaluate(active: &Active, root_id: u32, now_ms: u64) {
    let splits = active.router.routes.iter().enumerate().flat_map(|(r, route)| {
        route.rules.iter().filter_map(move |rule| match &rule.action {
            Action::Split(split) if split.rollback().is_some() => Some((r, split)),
            _ => None,
        })
    });
    for (route_index, split) in splits {
        let Some(rollback) = split.rollback() else { continue };
        if active.rolled_back.borrow().get(split.id).copied().unwrap_or(true) {
            continue;
        }
        let flag = key(active, split, "rolled-back");
        let (raised_here, detail) = if host::shared_data(&flag).is_some_and(|(v, _)| v == b"1") {
            (false, "another worker saw the threshold crossed".to_string())
        } else {
            let current = error_window::bucket_of(now_ms, rollback.window_ms);
            let slots: Vec<Option<Slot>> = (0..SLOTS)
                .map(|s| {
                    host::shared_data(&key(active, split, &format!("slot{s}")))
                        .and_then(|(v, _)| Slot::decode(&v))
                })
                .collect();
            let (requests, errors) = error_window::totals(&slots, current);
            if !error_window::crossed(rollback, requests, errors) {
                continue;
            }
            let rate = errors as f64 / requests as f64;
            (
                true,
                format!("{errors} errors in {requests} responses ({rate:.3} > {})", rollback.max_error_rate),
            )
        };
        if raised_here {
            let _ = host::set_shared_data(&flag, b"1", 0);
        }
        if let Some(state) = active.rolled_back.borrow_mut().get_mut(split.id) {
            *state = true;
        }
        active.stats.rolled_back(split.id);
        let route = active.router.routes.get(route_index).map_or("", |r| r.name.as_str());
        warn!(
            "[ctx {root_id}] canary-router: rolled back route={route} target={}: {detail} within {} ms; \
             its traffic goes to the other targets until the config changes",
            rollback.target, rollback.window_ms
        );
    }
}
