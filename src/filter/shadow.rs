//! Shadow copies: buffered by their stream, queued, then sent by the root
//! context on its next tick, so each call belongs to the root and is not
//! cancelled when the live request ends (Envoy cancels a stream's calls
//! with the stream), and its outcome can still be counted.
//!
//! Every byte a copy holds, from its first header to its answer, is taken
//! from the VM's `mirrorBudget` and given back when the copy is sent and
//! answered, skipped, or dropped with its stream; copies waiting or in
//! flight are capped in number too. So neither stalled uploads nor a slow,
//! closed or failing shadow can grow the VM past its budget: beyond it a
//! copy is skipped and counted with its reason.
//!
//! A copy in flight is given up when its root is deleted (a config push:
//! the proxy drops that root's calls without an answer) and, whatever
//! happens, once it is well past its timeout: an answer that never comes
//! must not keep its share of the budget for ever.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::rc::Rc;

use log::debug;

use super::proxy::{Proxy, LOST_ANSWER_AFTER_MS};
use super::Active;
use canary_router_core::hashing::hash::FastHasher;
use canary_router_core::rollout::metrics::{status_class, SERVER_ERROR};
use canary_router_core::routing::mirror::{Ledger, MirrorBudget, Skip};

/// How often the root sends queued copies while any route mirrors.
pub const TICK_MS: u32 = 10;

/// A share of the VM's budget, given back when dropped.
pub struct Held {
    ledger: Rc<RefCell<Ledger>>,
    bytes: usize,
    /// Counted among the copies waiting or in flight.
    copy: bool,
}

impl Held {
    /// Takes `bytes` more, or says why the budget cannot give them.
    pub fn grow(&mut self, budget: &MirrorBudget, bytes: usize) -> Result<(), Skip> {
        self.ledger.borrow_mut().reserve(budget, bytes)?;
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut ledger = self.ledger.borrow_mut();
        ledger.release(self.bytes);
        if self.copy {
            ledger.end_copy();
        }
    }
}

/// A copy ready to send.
pub struct PendingShadow {
    pub active: Rc<Active>,
    pub route: usize,
    pub cluster: String,
    /// Serialized (`header_map::serialize`).
    pub headers: Vec<u8>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
    pub held: Held,
}

/// A sent copy: what to count when its answer comes, and the budget it
/// holds until then.
struct InFlight {
    active: Rc<Active>,
    route: usize,
    /// The root that sent it: its answer comes to that root, or never.
    root_id: u32,
    /// When it is given up if no answer came (ms since the epoch).
    deadline_ms: u64,
    _held: Held,
}

#[derive(Default)]
pub struct ShadowQueue {
    ledger: Rc<RefCell<Ledger>>,
    pending: RefCell<VecDeque<PendingShadow>>,
    /// Sent copies by call token.
    in_flight: RefCell<HashMap<u32, InFlight, BuildHasherDefault<FastHasher>>>,
}

impl ShadowQueue {
    /// Holds `bytes` of the budget for a copy being assembled.
    pub fn hold(&self, budget: &MirrorBudget, bytes: usize) -> Result<Held, Skip> {
        let mut held = Held { ledger: self.ledger.clone(), bytes: 0, copy: false };
        held.grow(budget, bytes)?;
        Ok(held)
    }

    /// Queues a complete copy, or says why it cannot wait for sending.
    pub fn push(&self, budget: &MirrorBudget, mut shadow: PendingShadow) -> Result<(), Skip> {
        self.ledger.borrow_mut().start_copy(budget)?;
        shadow.held.copy = true;
        self.pending.borrow_mut().push_back(shadow);
        Ok(())
    }

    /// Sends every queued copy (from the root context).
    pub fn send_all(&self, proxy: &dyn Proxy, root_id: u32) {
        if self.pending.borrow().is_empty() {
            return;
        }
        let pending: Vec<PendingShadow> = self.pending.borrow_mut().drain(..).collect();
        let now_ms = proxy.now_ms();
        for shadow in pending {
            match proxy.dispatch_http_call(&shadow.cluster, &shadow.headers, &shadow.body, shadow.timeout_ms)
            {
                Ok(token) => {
                    shadow.active.stats.shadow_sent(shadow.route);
                    let in_flight = InFlight {
                        active: shadow.active,
                        route: shadow.route,
                        root_id,
                        deadline_ms: now_ms + u64::from(shadow.timeout_ms) + LOST_ANSWER_AFTER_MS,
                        _held: shadow.held,
                    };
                    self.in_flight.borrow_mut().insert(token, in_flight);
                }
                Err(status) => {
                    debug!("[ctx {root_id}] shadow to {} not sent (status {})", shadow.cluster, status.0);
                    shadow.active.stats.shadow_skipped(shadow.route, Skip::NotSent);
                }
            }
        }
    }

    /// A shadow's answer arrived (or its call failed): counted, and its
    /// share of the budget given back.
    pub fn answered(&self, proxy: &dyn Proxy, root_id: u32, token: u32, num_headers: usize) {
        let Some(InFlight { active, route, .. }) = self.in_flight.borrow_mut().remove(&token) else { return };
        let class =
            if num_headers == 0 { None } else { proxy.http_call_status().as_deref().and_then(status_class) };
        // No response (reset, timeout, no healthy host) or a 5xx: a failure.
        if class.is_none_or(|c| c == SERVER_ERROR) {
            debug!("[ctx {root_id}] shadow call {token} failed");
            active.stats.shadow_failed(route);
        }
    }

    /// The root that sent these copies is gone: their answers never come.
    /// Each counts as failed, and its budget is given back.
    pub fn root_gone(&self, root_id: u32) {
        self.give_up(|copy| copy.root_id == root_id);
    }

    /// Copies whose answer is long overdue are given up (from the tick).
    pub fn abandon_overdue(&self, now_ms: u64, root_id: u32) {
        let given_up = self.give_up(|copy| copy.deadline_ms <= now_ms);
        if given_up > 0 {
            debug!("[ctx {root_id}] {given_up} shadow call(s) never answered: given up");
        }
    }

    fn give_up(&self, lost: impl Fn(&InFlight) -> bool) -> usize {
        let gone: Vec<InFlight> = {
            let mut in_flight = self.in_flight.borrow_mut();
            let tokens: Vec<u32> = in_flight.iter().filter(|(_, c)| lost(c)).map(|(t, _)| *t).collect();
            tokens.iter().filter_map(|token| in_flight.remove(token)).collect()
        };
        for copy in &gone {
            copy.active.stats.shadow_failed(copy.route);
        }
        gone.len()
    }

    /// Copies waiting or in flight, and the bytes they hold.
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        let ledger = self.ledger.borrow();
        (ledger.copies(), ledger.bytes())
    }
}
