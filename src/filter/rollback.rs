//! Automatic rollback across every worker. Each VM batches the watched
//! target's responses and merges them into one shared error window (the
//! proxy's shared data) with a compare-and-swap write: at once for an
//! error, or for any response that may take the window over its threshold,
//! and on the root's tick otherwise. So the response that crosses the
//! threshold rolls the split back, not a tick later, and the errors served
//! before a rollback do not grow with traffic. The write that crosses sets
//! the window's flag; every other VM sees it at its next error or tick. It
//! stays rolled back until the config changes (the key carries the
//! config's fingerprint).

use std::cell::Cell;

use log::warn;

use super::Active;
use crate::decimal;
use crate::error_window::{self, Counts, Window};
use crate::host::{self, SharedWrite};
use crate::split::Split;

/// Compare-and-swap attempts before a sync is left for the next one.
const CAS_ATTEMPTS: usize = 8;

/// One rollback split's window as this VM sees it.
pub struct Watch {
    key: String,
    window_ms: u64,
    /// Responses counted here and not merged into the shared window yet.
    pending: Cell<Counts>,
    /// The shared window's totals at the last merge.
    seen: Cell<Counts>,
}

impl Watch {
    pub fn new(fingerprint: u64, split: &Split) -> Option<Watch> {
        let rollback = split.rollback()?;
        Some(Watch {
            key: format!("canary-router/{fingerprint:016x}/split{}/window", split.id),
            window_ms: rollback.window_ms,
            pending: Cell::new(Counts::default()),
            seen: Cell::new(Counts::default()),
        })
    }
}

/// Counts one response of a split's watched target (from a stream).
pub fn record_response(active: &Active, split_id: usize, context_id: u32, now_ms: u64, error: bool) {
    let Some((watch, split)) = watch_of(active, split_id) else { return };
    let mut pending = watch.pending.get();
    pending.add(Counts { requests: 1, errors: u64::from(error) });
    watch.pending.set(pending);
    let mut estimate = watch.seen.get();
    estimate.add(pending);
    let may_cross = split.rollback().is_some_and(|r| error_window::crossed(r, estimate));
    if error || may_cross {
        sync(active, split, watch, context_id, now_ms);
    }
}

/// Merges every split's batch and learns the shared flag (from the root's tick).
pub fn evaluate(active: &Active, root_id: u32, now_ms: u64) {
    for (_, _, split) in active.router.splits() {
        if let Some((watch, split)) = watch_of(active, split.id) {
            sync(active, split, watch, root_id, now_ms);
        }
    }
}

/// The watch of a split that is not rolled back yet on this VM.
fn watch_of(active: &Active, split_id: usize) -> Option<(&Watch, &Split)> {
    if active.rolled_back.borrow().get(split_id).copied().unwrap_or(true) {
        return None;
    }
    let watch = active.rollback_watches.get(split_id)?.as_ref()?;
    let (_, _, split) = active.router.split(split_id)?;
    Some((watch, split))
}

/// Reads the shared window, adds this VM's batch, raises the flag if the
/// threshold is crossed, and writes it back; rolls back here if flagged.
fn sync(active: &Active, split: &Split, watch: &Watch, context_id: u32, now_ms: u64) {
    let Some(rollback) = split.rollback() else { return };
    for _ in 0..CAS_ATTEMPTS {
        let (mut window, cas) = match host::shared_data(&watch.key) {
            Some((bytes, cas)) => (Window::decode(&bytes).unwrap_or_default(), cas),
            None => (Window::default(), 0),
        };
        let pending = watch.pending.get();
        let bucket = error_window::bucket_of(now_ms, watch.window_ms);
        if !pending.is_empty() {
            window.add(bucket, pending);
        }
        let totals = window.totals(bucket);
        let crossed_here = !window.rolled_back && error_window::crossed(rollback, totals);
        if pending.is_empty() && !crossed_here {
            watch.seen.set(totals);
            if window.rolled_back {
                roll_back(active, split, context_id, "another worker saw the threshold crossed".into());
            }
            return;
        }
        window.rolled_back |= crossed_here;
        match host::set_shared_data(&watch.key, &window.encode(), cas) {
            SharedWrite::Written => {
                watch.pending.set(Counts::default());
                watch.seen.set(totals);
                if crossed_here {
                    let rate = totals.errors as f64 / totals.requests as f64;
                    let detail = format!(
                        "{} errors in {} responses ({} > {})",
                        totals.errors,
                        totals.requests,
                        decimal::fixed(rate, 3),
                        decimal::format(rollback.max_error_rate)
                    );
                    roll_back(active, split, context_id, detail);
                } else if window.rolled_back {
                    roll_back(active, split, context_id, "another worker saw the threshold crossed".into());
                }
                return;
            }
            SharedWrite::Conflict => continue,
            // The batch stays pending for the next sync.
            SharedWrite::Failed => return,
        }
    }
}

fn roll_back(active: &Active, split: &Split, context_id: u32, detail: String) {
    if let Some(state) = active.rolled_back.borrow_mut().get_mut(split.id) {
        *state = true;
    }
    active.stats.rolled_back(split.id);
    let route = active.router.split(split.id).map_or("-", |(r, _, _)| r.name.as_str());
    let (target, window_ms) = split.rollback().map_or(("-", 0), |r| (r.target.as_str(), r.window_ms));
    warn!(
        "[ctx {context_id}] canary-router: rolled back route={route} target={target}: {detail} within {window_ms} ms; \
         its traffic goes to the other targets until the config changes"
    );
}
