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
use crate::split::Split;

/// Compare-and-swap attempts before a count is given up (lost, not fatal).
const CAS_ATTEMPTS: usize = 8;

/// The shared-data keys of one rollback split, named once per config so a
/// response only looks its slot up.
pub struct Keys {
    flag: String,
    slots: Vec<String>,
    window_ms: u64,
}

impl Keys {
    pub fn new(fingerprint: u64, split: &Split) -> Option<Keys> {
        let rollback = split.rollback()?;
        let key = |suffix: &str| format!("canary-router/{fingerprint:016x}/split{}/{suffix}", split.id);
        Some(Keys {
            flag: key("rolled-back"),
            slots: (0..SLOTS).map(|s| key(&format!("slot{s}"))).collect(),
            window_ms: rollback.window_ms,
        })
    }

    fn slot(&self, bucket: u64) -> &str {
        self.slots.get(error_window::slot_of(bucket) as usize).map_or("", String::as_str)
    }
}

/// Counts one response of a rollback target in the shared window.
pub fn record_response(keys: &Keys, now_ms: u64, error: bool) {
    let bucket = error_window::bucket_of(now_ms, keys.window_ms);
    let slot_key = keys.slot(bucket);
    for _ in 0..CAS_ATTEMPTS {
        let (previous, cas) = match host::shared_data(slot_key) {
            Some((bytes, cas)) => (Slot::decode(&bytes), cas),
            None => (None, 0),
        };
        let slot = error_window::record(previous, bucket, error);
        match host::set_shared_data(slot_key, &slot.encode(), cas) {
            SharedWrite::Written | SharedWrite::Failed => return,
            SharedWrite::Conflict => continue,
        }
    }
}

/// Checks every rollback split of the active config (from the root's tick).
pub fn evaluate(active: &Active, root_id: u32, now_ms: u64) {
    for (route, _, split) in active.router.splits() {
        let (Some(rollback), Some(Some(keys))) = (split.rollback(), active.rollback_keys.get(split.id))
        else {
            continue;
        };
        if active.rolled_back.borrow().get(split.id).copied().unwrap_or(true) {
            continue;
        }
        let (raised_here, detail) = if host::shared_data(&keys.flag).is_some_and(|(v, _)| v == b"1") {
            (false, "another worker saw the threshold crossed".to_string())
        } else {
            let current = error_window::bucket_of(now_ms, rollback.window_ms);
            let slots: Vec<Option<Slot>> = keys
                .slots
                .iter()
                .map(|key| host::shared_data(key).and_then(|(v, _)| Slot::decode(&v)))
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
            let _ = host::set_shared_data(&keys.flag, b"1", 0);
        }
        if let Some(state) = active.rolled_back.borrow_mut().get_mut(split.id) {
            *state = true;
        }
        active.stats.rolled_back(split.id);
        warn!(
            "[ctx {root_id}] canary-router: rolled back route={} target={}: {detail} within {} ms; \
             its traffic goes to the other targets until the config changes",
            route.name, rollback.target, rollback.window_ms
        );
    }
}
