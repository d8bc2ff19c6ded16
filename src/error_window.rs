//! A rollback's sliding error window, kept in slots every proxy worker can
//! update: the window is cut into `SLOTS` buckets of time, each slot holds
//! one bucket's request and error counts, and a slot whose bucket is too old
//! is reused. Pure: the proxy's shared data only stores the bytes.

use crate::split::Rollback;

/// Buckets per window: the window slides in steps of a tenth.
pub const SLOTS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slot {
    pub bucket: u64,
    pub requests: u64,
    pub errors: u64,
}

impl Slot {
    pub fn encode(&self) -> [u8; 24] {
        let mut out = [0; 24];
        out[..8].copy_from_slice(&self.bucket.to_le_bytes());
        out[8..16].copy_from_slice(&self.requests.to_le_bytes());
        out[16..].copy_from_slice(&self.errors.to_le_bytes());
        out
    }

    /// `None` for bytes that are not a slot (never written, or foreign).
    pub fn decode(bytes: &[u8]) -> Option<Slot> {
        let word =
            |i: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(i..i + 8)?.try_into().ok()?)) };
        if bytes.len() != 24 {
            return None;
        }
        Some(Slot { bucket: word(0)?, requests: word(8)?, errors: word(16)? })
    }
}

/// The time bucket `now_ms` falls in.
pub fn bucket_of(now_ms: u64, window_ms: u64) -> u64 {
    now_ms / (window_ms / SLOTS).max(1)
}

/// Which slot a bucket uses.
pub fn slot_of(bucket: u64) -> u64 {
    bucket % SLOTS
}

/// The slot after counting one response in `bucket`.
pub fn record(previous: Option<Slot>, bucket: u64, error: bool) -> Slot {
    let mut slot = match previous {
        Some(slot) if slot.bucket == bucket => slot,
        _ => Slot { bucket, requests: 0, errors: 0 },
    };
    slot.requests += 1;
    slot.errors += u64::from(error);
    slot
}

/// Requests and errors in the window ending with bucket `current`.
pub fn totals(slots: &[Option<Slot>], current: u64) -> (u64, u64) {
    slots
        .iter()
        .flatten()
        .filter(|s| s.bucket <= current && current - s.bucket < SLOTS)
        .fold((0, 0), |(r, e), s| (r + s.requests, e + s.errors))
}

/// Whether these counts cross the rollback's threshold.
pub fn crossed(rollback: &Rollback, requests: u64, errors: u64) -> bool {
    requests >= rollback.min_requests
        && requests > 0
        && errors as f64 / requests as f64 > rollback.max_error_rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollback() -> Rollback {
        Rollback { target: "c".into(), max_error_rate: 0.05, min_requests: 50, window_ms: 60_000 }
    }

    #[test]
    fn slots_round_trip_and_reject_junk() {
        let slot = Slot { bucket: 7, requests: 100, errors: 3 };
        assert_eq!(Slot::decode(&slot.encode()), Some(slot));
        assert_eq!(Slot::decode(b"nope"), None);
    }

    #[test]
    fn a_stale_slot_is_reset_before_counting() {
        let old = Slot { bucket: 3, requests: 9, errors: 9 };
        assert_eq!(record(Some(old), 13, false), Slot { bucket: 13, requests: 1, errors: 0 });
        assert_eq!(record(Some(old), 3, true), Slot { bucket: 3, requests: 10, errors: 10 });
    }

    #[test]
    fn only_the_last_window_counts() {
        let window = 60_000;
        let now = 1_000_000_000;
        let current = bucket_of(now, window);
        let slots: Vec<Option<Slot>> = (0..SLOTS)
            .map(|age| Some(Slot { bucket: current - age, requests: 10, errors: 1 }))
            .chain([Some(Slot { bucket: current - SLOTS, requests: 1000, errors: 1000 })])
            .collect();
        assert_eq!(totals(&slots, current), (100, 10));
    }

    #[test]
    fn the_threshold_needs_enough_requests_and_a_higher_rate() {
        assert!(!crossed(&rollback(), 49, 49), "too few requests");
        assert!(!crossed(&rollback(), 100, 5), "5% is not above 5%");
        assert!(crossed(&rollback(), 100, 6));
    }
}
