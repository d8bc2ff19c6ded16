//! Shadow copies waiting to be sent. Streams queue them; the root context
//! sends them on its next tick, so each call belongs to the root and is not
//! cancelled when the live request ends (Envoy cancels a stream's calls
//! with the stream), and its outcome can still be counted.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use log::debug;

use super::Active;
use crate::host;
use crate::metrics::{status_class, SERVER_ERROR};

/// Copies waiting beyond this are dropped and counted as skipped: a shadow
/// that cannot keep up must not grow the VM's memory.
pub const MAX_PENDING: usize = 1_024;
/// How often the root sends queued copies while any route mirrors.
pub const TICK_MS: u32 = 10;

pub struct PendingShadow {
    pub active: Rc<Active>,
    pub route: usize,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

#[derive(Default)]
pub struct ShadowQueue {
    pending: RefCell<VecDeque<PendingShadow>>,
    in_flight: RefCell<HashMap<u32, (Rc<Active>, usize)>>,
}

impl ShadowQueue {
    /// Queues a copy; counts it as skipped if the queue is full.
    pub fn push(&self, shadow: PendingShadow) {
        let mut pending = self.pending.borrow_mut();
        if pending.len() >= MAX_PENDING {
            shadow.active.stats.shadow_skipped(shadow.route);
            return;
        }
        pending.push_back(shadow);
    }

    /// Sends every queued copy (from the root context).
    pub fn send_all(&self, root_id: u32) {
        let pending: Vec<PendingShadow> = self.pending.borrow_mut().drain(..).collect();
        for shadow in pending {
            let headers: Vec<(&str, &str)> =
                shadow.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let body = if shadow.body.is_empty() { None } else { Some(shadow.body.as_slice()) };
            let timeout = Duration::from_millis(u64::from(shadow.timeout_ms));
            match proxy_wasm::hostcalls::dispatch_http_call(&shadow.cluster, headers, body, vec![], timeout) {
                Ok(token) => {
                    shadow.active.stats.shadow_sent(shadow.route);
                    self.in_flight.borrow_mut().insert(token, (shadow.active, shadow.route));
                }
                Err(status) => {
                    debug!("[ctx {root_id}] shadow to {} not sent (status {status:?})", shadow.cluster);
                    shadow.active.stats.shadow_failed(shadow.route);
                }
            }
        }
    }

    /// A shadow's answer arrived (or its call failed): only counted.
    pub fn answered(&self, root_id: u32, token: u32, num_headers: usize) {
        let Some((active, route)) = self.in_flight.borrow_mut().remove(&token) else { return };
        let class =
            if num_headers == 0 { None } else { host::http_call_status().as_deref().and_then(status_class) };
        // No response (reset, timeout, no healthy host) or a 5xx: a failure.
        if class.is_none_or(|c| c == SERVER_ERROR) {
            debug!("[ctx {root_id}] shadow call {token} failed");
            active.stats.shadow_failed(route);
        }
    }
}
