//! The roll that decides a non-sticky split, per worker thread: the core's
//! generator (the one the `.wasm` seeds from the host), seeded here from
//! the clock and a counter; no lock, no state shared between workers.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use canary_router_core::hashing::rng::Rng;

/// A uniform roll in `0..1_000_000`.
pub fn roll() -> u32 {
    thread_local! {
        static RNG: Cell<Rng> = Cell::new(Rng::new(seed()));
    }
    RNG.with(|cell| {
        let mut rng = cell.get();
        let roll = rng.roll();
        cell.set(rng);
        roll
    })
}

/// A thread's seed: the time it first rolls, and a count of threads so two
/// starting in the same nanosecond differ.
fn seed() -> u64 {
    static THREADS: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ THREADS.fetch_add(1, Ordering::Relaxed).rotate_left(32)
}
