//! The wall clock, in milliseconds since the Unix epoch, as the `.wasm`
//! reads the proxy's (0 if the system clock is before the epoch).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
