//! This proxy's beacon: a random number that every VM of the proxy shares
//! (the first to configure writes it to the shared data) and exports as a
//! gauge for each split whose rollback asks Prometheus. The fleet view asks
//! Prometheus for it: found, the latches' answers include this proxy;
//! missing, they may be blind (no stats tags, no scrape, other labels).

use super::proxy::{Proxy, SharedWrite, ABSENT};
use canary_router_core::rollout::prometheus;

const KEY: &str = "canary-router/beacon";

/// The proxy's beacon; `random` makes one if no VM has yet.
pub fn of_proxy(proxy: &dyn Proxy, random: u64) -> u64 {
    if let Some(beacon) = read(proxy) {
        return beacon;
    }
    let mine = prometheus::beacon(random);
    match proxy.set_shared_data(KEY, &mine.to_le_bytes(), ABSENT) {
        SharedWrite::Written => mine,
        // Another VM wrote first: its beacon is the proxy's.
        SharedWrite::Conflict => read(proxy).unwrap_or(mine),
        SharedWrite::Failed => mine,
    }
}

fn read(proxy: &dyn Proxy) -> Option<u64> {
    let (bytes, _) = proxy.shared_data(KEY)?;
    let beacon = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    (1..=prometheus::BEACON_SPAN).contains(&beacon).then_some(beacon)
}
