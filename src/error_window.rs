//! A rollback's sliding error window, as every proxy worker shares it: one
//! value in the proxy's shared data holds the rolled-back flag and `SLOTS`
//! time buckets of request and error counts, so one read and one
//! compare-and-swap write update it all. A slot whose bucket is too old is
//! reused. Pure: the proxy's shared data only stores the bytes.

use crate::split::LocalWindow;

/// Buckets per window: the window slides in steps of a tenth.
pub const SLOTS: usize = 10;

const SLOT_BYTES: usize = 24;
/// The encoded size: the flag, then the slots.
pub const ENCODED_BYTES: usize = 1 + SLOTS * SLOT_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slot {
    pub bucket: u64,
    pub requests: u64,
    pub errors: u64,
}

/// Responses counted but not yet in a window: a worker's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
    }

    pub fn is_empty(&self) -> bool {
        self.requests == 0
    }
}

/// One rollback split's shared state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Window {
    pub rolled_back: bool,
    pub slots: [Slot; SLOTS],
}

impl Window {
    pub fn encode(&self) -> [u8; ENCODED_BYTES] {
        let mut out = [0; ENCODED_BYTES];
        out[0] = u8::from(self.rolled_back);
        for (i, slot) in self.slots.iter().enumerate() {
            let at = 1 + i * SLOT_BYTES;
            out[at..at + 8].copy_from_slice(&slot.bucket.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&slot.requests.to_le_bytes());
            out[at + 16..at + 24].copy_from_slice(&slot.errors.to_le_bytes());
        }
        out
    }

    /// `None` for bytes that are not a window (never written, or foreign):
    /// the caller starts from an empty one.
    pub fn decode(bytes: &[u8]) -> Option<Window> {
        if bytes.len() != ENCODED_BYTES || bytes[0] > 1 {
            return None;
        }
        let word =
            |at: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)) };
        let mut window = Window { rolled_back: bytes[0] == 1, slots: [Slot::default(); SLOTS] };
        for (i, slot) in window.slots.iter_mut().enumerate() {
            let at = 1 + i * SLOT_BYTES;
            *slot = Slot { bucket: word(at)?, requests: word(at + 8)?, errors: word(at + 16)? };
        }
        Some(window)
    }

    /// Adds counts to `bucket`'s slot, resetting it if it held an older bucket.
    pub fn add(&mut self, bucket: u64, counts: Counts) {
        let slot = &mut self.slots[(bucket % SLOTS as u64) as usize];
        if slot.bucket != bucket {
            *slot = Slot { bucket, requests: 0, errors: 0 };
        }
        slot.requests = slot.requests.saturating_add(counts.requests);
        slot.errors = slot.errors.saturating_add(counts.errors);
    }

    /// Requests and errors in the window ending with bucket `current`.
    pub fn totals(&self, current: u64) -> Counts {
        self.slots
            .iter()
            .filter(|s| s.requests > 0 && s.bucket <= current && current - s.bucket < SLOTS as u64)
            .fold(Counts::default(), |mut total, s| {
                total.add(Counts { requests: s.requests, errors: s.errors });
                total
            })
    }
}

/// The time bucket `now_ms` falls in.
pub fn bucket_of(now_ms: u64, window_ms: u64) -> u64 {
    now_ms / (window_ms / SLOTS as u64).max(1)
}

/// Whether these counts cross the rollback's threshold.
pub fn crossed(rollback: &LocalWindow, counts: Counts) -> bool {
    counts.requests >= rollback.min_requests
        && counts.requests > 0
        && counts.errors as f64 / counts.requests as f64 > rollback.max_error_rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollback() -> LocalWindow {
        LocalWindow { max_error_rate: 0.05, min_requests: 50, window_ms: 60_000 }
    }

    fn counts(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors }
    }

    #[test]
    fn windows_round_trip_and_junk_is_rejected() {
        let mut window = Window::default();
        window.add(7, counts(100, 3));
        window.rolled_back = true;
        assert_eq!(Window::decode(&window.encode()), Some(window));
        assert_eq!(Window::decode(b"nope"), None);
        let mut bad = Window::default().encode();
        bad[0] = 7;
        assert_eq!(Window::decode(&bad), None);
    }

    #[test]
    fn a_stale_slot_is_reset_before_counting() {
        let mut window = Window::default();
        window.add(3, counts(9, 9));
        window.add(13, counts(1, 0));
        assert_eq!(window.slots[3], Slot { bucket: 13, requests: 1, errors: 0 });
        window.add(13, counts(2, 2));
        assert_eq!(window.slots[3], Slot { bucket: 13, requests: 3, errors: 2 });
    }

    #[test]
    fn only_the_last_window_counts() {
        let window_ms = 60_000;
        let now = 1_000_000_000;
        let current = bucket_of(now, window_ms);
        let mut window = Window::default();
        window.add(current - SLOTS as u64, counts(1000, 1000));
        for age in 0..SLOTS as u64 {
            window.add(current - age, counts(10, 1));
        }
        assert_eq!(window.totals(current), counts(100, 10));
        assert_eq!(window.totals(current + 5), counts(50, 5), "half the window has slid out");
    }

    #[test]
    fn the_threshold_needs_enough_requests_and_a_higher_rate() {
        assert!(!crossed(&rollback(), counts(49, 49)), "too few requests");
        assert!(!crossed(&rollback(), counts(100, 5)), "5% is not above 5%");
        assert!(crossed(&rollback(), counts(100, 6)));
    }
}
