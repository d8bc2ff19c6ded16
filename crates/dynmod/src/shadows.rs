//! Shadow copies: assembled by their stream (the request as the upstream
//! sees it, its body up to the route's `maxBodyBytes`), queued, and sent
//! from Envoy's main thread by the config, so a copy is not cancelled when
//! the live request ends (Envoy cancels a stream's calls with the stream)
//! and its answer can still be counted. Answers are otherwise ignored.
//!
//! Every byte a copy holds, from its first header to its answer, is taken
//! from the config's `mirrorBudget` (one per process here, where the
//! `.wasm` has one per worker VM) and given back when the copy is answered,
//! skipped, or dropped with its stream; copies waiting or in flight are
//! capped in number too. Beyond the budget a copy is skipped and counted
//! with its reason.
//!
//! Outcomes known on the main thread (sent, failed, not sent) are added to
//! the counters by the next request on any worker: Envoy takes a counter
//! change only from a stream's hook.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::*;
use crate::flag;
use crate::scheduler::{Scheduler, SEND_SHADOWS};
use canary_router_core::request::header_map;
use canary_router_core::rollout::metrics::{status_class, SERVER_ERROR};
use canary_router_core::routing::mirror::{shadow_copy, Ledger, MirrorBudget, Skip};
use canary_router_core::routing::router::Router;

/// A copy being assembled by its stream: the budget it holds so far.
pub struct Assembling {
    route: usize,
    request_map: Vec<u8>,
    target: String,
    body: Vec<u8>,
    bytes: usize,
}

/// A complete copy, waiting for the main thread.
struct Copy {
    route: usize,
    headers: Vec<u8>,
    body: Vec<u8>,
    bytes: usize,
}

/// A sent copy: what to count when its answer comes.
struct InFlight {
    route: usize,
    bytes: usize,
}

/// What happened to copies, per route, not yet added to the counters.
#[derive(Default)]
pub struct Outcomes {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: [AtomicU64; Skip::ALL.len()],
}

pub struct Shadows {
    /// Envoy's config pointer, used on the main thread only.
    envoy: usize,
    scheduler: Arc<Scheduler>,
    budget: MirrorBudget,
    ledger: Mutex<Ledger>,
    queue: Mutex<Vec<Copy>>,
    in_flight: Mutex<HashMap<u64, InFlight>>,
    /// Per route.
    outcomes: Vec<Outcomes>,
    /// Some outcome is not in the counters yet.
    dirty: AtomicBool,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Assembling {
    /// The route whose mirror this copy is for.
    pub fn route(&self) -> usize {
        self.route
    }
}

impl Shadows {
    /// The config's shadows, if any route mirrors.
    pub fn of(
        envoy: FilterConfigEnvoyPtr,
        router: &Router,
        scheduler: Option<&Arc<Scheduler>>,
    ) -> Option<Shadows> {
        if router.routes.iter().all(|r| r.mirror.is_none()) {
            return None;
        }
        let Some(scheduler) = scheduler else {
            eprintln!("canary-router: Envoy gave no scheduler; shadow copies are not sent");
            return None;
        };
        Some(Shadows {
            envoy: envoy as usize,
            scheduler: scheduler.clone(),
            budget: router.mirror_budget,
            ledger: Mutex::default(),
            queue: Mutex::default(),
            in_flight: Mutex::default(),
            outcomes: router.routes.iter().map(|_| Outcomes::default()).collect(),
            dirty: AtomicBool::new(false),
        })
    }

    fn skipped(&self, route: usize, why: Skip, bytes: usize) {
        locked(&self.ledger).release(bytes);
        self.count(route, |o| &o.skipped[why.index()]);
    }

    fn count(&self, route: usize, which: impl Fn(&Outcomes) -> &AtomicU64) {
        if let Some(outcomes) = self.outcomes.get(route) {
            which(outcomes).fetch_add(1, Ordering::Relaxed);
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Starts a copy of a request (its headers as Envoy holds them, the
    /// target the decision chose), or counts why not.
    pub fn start(
        &self,
        route: usize,
        pairs: &[(&[u8], &[u8])],
        target: &str,
        target_header: &str,
    ) -> Option<Assembling> {
        let request_map = header_map::serialize(pairs);
        let bytes = request_map.len() + target_header.len() + target.len();
        // The guard must go before the count: a guard in an `if let`
        // scrutinee lives through its body, and the ledger's lock is not
        // reentrant.
        let reserved = locked(&self.ledger).reserve(&self.budget, bytes);
        if let Err(why) = reserved {
            self.count(route, |o| &o.skipped[why.index()]);
            return None;
        }
        Some(Assembling { route, request_map, target: target.to_string(), body: Vec::new(), bytes })
    }

    /// Adds a chunk of the request body; `None` (counted) if the copy is
    /// skipped for it.
    pub fn grow(&self, mut copy: Assembling, chunk: &[u8], max_body_bytes: usize) -> Option<Assembling> {
        if copy.body.len() + chunk.len() > max_body_bytes {
            self.skipped(copy.route, Skip::BodyTooLarge, copy.bytes);
            return None;
        }
        let reserved = locked(&self.ledger).reserve(&self.budget, chunk.len());
        if let Err(why) = reserved {
            self.skipped(copy.route, why, copy.bytes);
            return None;
        }
        copy.bytes += chunk.len();
        copy.body.extend_from_slice(chunk);
        Some(copy)
    }

    /// The live request ended before its body did: the copy is dropped.
    pub fn abandon(&self, copy: Assembling) {
        self.skipped(copy.route, Skip::Incomplete, copy.bytes);
    }

    /// The request is whole: the copy is queued for the main thread.
    pub fn finish(&self, copy: Assembling, target_header: &str) {
        let Some(headers) =
            shadow_copy(&copy.request_map, target_header.as_bytes(), copy.target.as_bytes(), copy.body.len())
        else {
            self.skipped(copy.route, Skip::NotSent, copy.bytes);
            return;
        };
        let started = locked(&self.ledger).start_copy(&self.budget);
        if let Err(why) = started {
            self.skipped(copy.route, why, copy.bytes);
            return;
        }
        let first = {
            let mut queue = locked(&self.queue);
            queue.push(Copy { route: copy.route, headers, body: copy.body, bytes: copy.bytes });
            queue.len() == 1
        };
        if first {
            self.scheduler.commit(SEND_SHADOWS);
        }
    }

    /// On the main thread: sends every queued copy.
    pub fn send_all(&self, clusters: &dyn Fn(usize) -> Option<(String, u32)>) {
        let copies = std::mem::take(&mut *locked(&self.queue));
        for copy in copies {
            let Some((cluster, timeout_ms)) = clusters(copy.route) else { continue };
            let Some(pairs) = header_map::parse(&copy.headers) else { continue };
            let headers: Vec<ModuleHeader> = pairs
                .iter()
                .map(|(k, v)| ModuleHeader { key: ModuleBuffer::of(k), value: ModuleBuffer::of(v) })
                .collect();
            let mut id = 0;
            // SAFETY: Envoy's config pointer, on the main thread; the
            // buffers outlive the call, which copies them.
            let result = unsafe {
                envoy_dynamic_module_callback_http_filter_config_http_callout(
                    self.envoy as _,
                    &mut id,
                    ModuleBuffer::of(cluster.as_bytes()),
                    headers.as_ptr(),
                    headers.len(),
                    ModuleBuffer::of(&copy.body),
                    u64::from(timeout_ms),
                )
            };
            if result == CALLOUT_SUCCESS {
                self.count(copy.route, |o| &o.sent);
                locked(&self.in_flight).insert(id, InFlight { route: copy.route, bytes: copy.bytes });
            } else {
                self.skipped(copy.route, Skip::NotSent, copy.bytes);
                locked(&self.ledger).end_copy();
            }
        }
    }

    /// On the main thread: a copy's answer (its `:status`, if it had
    /// one). No answer or a 5xx is a failure.
    pub fn answered(&self, id: u64, succeeded: bool, status: Option<&[u8]>) {
        let Some(copy) = locked(&self.in_flight).remove(&id) else { return };
        let class = status.and_then(status_class);
        if !succeeded || class.is_none_or(|c| c == SERVER_ERROR) {
            self.count(copy.route, |o| &o.failed);
        }
        let mut ledger = locked(&self.ledger);
        ledger.release(copy.bytes);
        ledger.end_copy();
    }

    /// Hands each route's outcomes not yet counted to `add` (from a
    /// stream's hook), if there are any.
    pub fn flush(&self, add: &mut dyn FnMut(usize, &Outcomes)) {
        if !flag::take(&self.dirty) {
            return;
        }
        for (route, outcomes) in self.outcomes.iter().enumerate() {
            add(route, outcomes);
        }
    }
}
