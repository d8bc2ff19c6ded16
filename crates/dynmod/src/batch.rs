//! Counts kept per worker thread until they are added to Envoy's counters:
//! each thread takes one of a few slots (a mutex nobody else but a thread
//! hashed to the same slot takes), and a slot's counts go to Envoy at most
//! every `FLUSH_MS`, from the hook of the request that finds them due.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use canary_router_core::hashing::hash::FastHasher;

/// How long counts wait in a slot while traffic flows.
pub const FLUSH_MS: u64 = 100;

/// Slots per config: more than Envoy's workers on most machines, so that
/// two workers rarely share one.
const SLOTS: usize = 16;

/// A config's string (a route's target), by address and length: the config
/// outlives every count of it, and comparing addresses costs no hashing of
/// the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigStr {
    ptr: usize,
    len: usize,
}

impl ConfigStr {
    pub fn of(text: &str) -> ConfigStr {
        ConfigStr { ptr: text.as_ptr() as usize, len: text.len() }
    }

    /// # Safety
    /// `self` was made from a string of a config that is still alive.
    pub unsafe fn text<'a>(self) -> &'a str {
        // SAFETY: the caller's promise: the bytes are that string's.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr as *const u8, self.len)) }
    }
}

/// One counter series of the config, by what names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Series {
    Request { route: u32, target: ConfigStr },
    RuleHit { route: u32, rule: u32 },
    Default { route: u32 },
    RegexSkipped { route: u32 },
    Unrouted,
    Response { route: u32, target: ConfigStr, class: u8 },
}

#[derive(Default)]
pub struct Batch {
    pub pending: HashMap<Series, u64, BuildHasherDefault<FastHasher>>,
    flushed_ms: u64,
}

impl Batch {
    pub fn add(&mut self, series: Series, n: u64) {
        *self.pending.entry(series).or_default() += n;
    }

    /// Whether the counts are due at `now_ms` (and, if so, marks them
    /// flushed now).
    pub fn due(&mut self, now_ms: u64) -> bool {
        let due = !self.pending.is_empty() && now_ms.saturating_sub(self.flushed_ms) >= FLUSH_MS;
        if due {
            self.flushed_ms = now_ms;
        }
        due
    }
}

pub struct Batches(Box<[Mutex<Batch>]>);

impl Default for Batches {
    fn default() -> Self {
        Batches((0..SLOTS).map(|_| Mutex::default()).collect())
    }
}

impl Batches {
    /// The calling thread's slot, locked.
    pub fn mine(&self) -> MutexGuard<'_, Batch> {
        thread_local! {
            static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let slot = SLOT.with(|slot| match slot.get() {
            Some(taken) => taken,
            None => {
                let taken = NEXT.fetch_add(1, Ordering::Relaxed);
                slot.set(Some(taken));
                taken
            }
        });
        let index = slot % self.0.len().max(1);
        // A panic holding the lock left counts that are still counts.
        self.0[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_due_once_per_flush_period_and_only_when_there_are_some() {
        let mut batch = Batch::default();
        assert!(!batch.due(1_000_000), "nothing to add");
        batch.add(Series::Unrouted, 1);
        assert!(batch.due(1_000_000), "a first count is due at once");
        batch.add(Series::Unrouted, 1);
        assert!(!batch.due(1_000_000 + FLUSH_MS - 1));
        assert!(batch.due(1_000_000 + FLUSH_MS));
    }

    #[test]
    fn a_thread_keeps_its_slot() {
        let batches = Batches::default();
        batches.mine().add(Series::Default { route: 3 }, 2);
        batches.mine().add(Series::Default { route: 3 }, 1);
        assert_eq!(batches.mine().pending.get(&Series::Default { route: 3 }), Some(&3));
        let text = String::from("service-a");
        // SAFETY: `text` is alive.
        assert_eq!(unsafe { ConfigStr::of(&text).text() }, "service-a");
    }
}
