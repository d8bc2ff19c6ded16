//! The roll that decides a non-sticky split, per worker thread: no lock,
//! no shared state between workers (a split's share holds per worker).

use std::sync::atomic::{AtomicU64, Ordering};

/// A roll for non-sticky splits: a per-thread xorshift seeded from the
/// clock and a counter (not for secrets; it spreads requests).
pub fn roll() -> u32 {
    static SEED: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            (nanos ^ SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x % 1_000_000) as u32
    })
}
