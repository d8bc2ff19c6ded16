//! A split's fleet state in the proxy's shared data, read and changed by
//! compare-and-swap: every worker VM of a proxy writes it (a local window
//! that crosses, a Prometheus poll, a gated step earned), and a write that
//! lost the race to another VM reads again and retries.

use super::proxy::{Proxy, SharedWrite, ABSENT};
use canary_router_core::rollout::fleet_state::FleetState;

/// Compare-and-swap attempts before a write is left for the next one.
pub(super) const CAS_ATTEMPTS: usize = 8;

/// A split's shared state, read from its key, and the tag to write it back.
pub fn read_state(proxy: &dyn Proxy, key: &str) -> (FleetState, u32) {
    match proxy.shared_data(key) {
        Some((bytes, cas)) => (FleetState::decode(&bytes), cas),
        None => (FleetState::default(), ABSENT),
    }
}

/// Changes a split's shared state with compare-and-swap; `change` returns
/// false to leave it as it is. Returns the state written (or read), or
/// `None` if the write did not go through.
pub fn update_state(
    proxy: &dyn Proxy,
    key: &str,
    mut change: impl FnMut(&mut FleetState) -> bool,
) -> Option<FleetState> {
    for _ in 0..CAS_ATTEMPTS {
        let (mut state, cas) = read_state(proxy, key);
        if !change(&mut state) {
            return Some(state);
        }
        match proxy.set_shared_data(key, &state.encode(), cas) {
            SharedWrite::Written => return Some(state),
            SharedWrite::Conflict => continue,
            SharedWrite::Failed => return None,
        }
    }
    None
}
