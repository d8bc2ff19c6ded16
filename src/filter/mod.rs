//! The filter: what the proxy's callbacks do, as thin as the decisions
//! allow. A root compiles its config once per configure and shares it with
//! its streams; a stream reads the request headers once, asks the router,
//! writes the target header, and keeps state for its body and response
//! only when its decision needs it. Counters are batched in the VM and
//! flushed on the root's tick.
//!
//! The glue reaches the proxy only through `Proxy` (the ABI in
//! `crate::host` on wasm, `fake_proxy` in tests), so all of it builds and
//! is unit-tested natively.

mod active;
mod beacon;
mod compare_gauges;
#[cfg(test)]
mod fake_proxy;
mod fleet;
mod gauge;
mod gauges;
mod metric_ids;
mod proxy;
mod ramp_gate;
mod ramp_gauges;
mod rollback;
mod shadow;
mod shared_state;
mod split_state;
mod stats;
mod stream;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use log::{error, info};

pub use active::Active;
use canary_router_core::config;
use canary_router_core::hashing::rng::Rng;
use canary_router_core::rollout::log_lines;
use metric_ids::MetricIds;
// What `host` (the .wasm's ABI, absent natively) builds the glue with.
#[cfg_attr(not(target_arch = "wasm32"), allow(unused_imports))]
pub use proxy::{LocalReply, MetricKind, Proxy, SharedWrite, Status};
use shadow::ShadowQueue;
#[cfg_attr(not(target_arch = "wasm32"), allow(unused_imports))]
pub use stream::{request_headers, Headers, Stream};

/// How many streams between re-reads of the host's log level, so that
/// `envoy admin /logging?wasm=debug` takes effect without a reload.
const LOG_LEVEL_REFRESH: u32 = 1024;

/// How often counters are flushed and ramps and rollbacks looked at: a
/// counter is at most this late.
const PROGRESS_TICK_MS: u64 = 1_000;

/// What every root of one VM (one Envoy worker) shares: the proxy, the
/// metric ids it handed out, and the shadow copies' budget.
pub struct Vm {
    pub proxy: Rc<dyn Proxy>,
    metric_ids: MetricIds,
    shadows: ShadowQueue,
    /// The host answered that it has no `clear_route_cache`: not asked again.
    no_route_cache_clearing: std::cell::Cell<bool>,
    /// The proxy's beacon (`beacon`), once a config read it (0 before).
    beacon: Cell<u64>,
}

impl Vm {
    pub fn new(proxy: Rc<dyn Proxy>) -> Self {
        Vm {
            proxy,
            metric_ids: MetricIds::default(),
            shadows: ShadowQueue::default(),
            no_route_cache_clearing: std::cell::Cell::new(false),
            beacon: Cell::new(0),
        }
    }

    /// The proxy's beacon, read (or made from `random`) once per VM.
    fn beacon(&self, random: u64) -> u64 {
        if self.beacon.get() == 0 {
            self.beacon.set(beacon::of_proxy(&*self.proxy, random));
        }
        self.beacon.get()
    }

    /// The target header changed: the host selects the route again. A
    /// host that re-selects by itself (Envoy 1.40) is asked all the same,
    /// as a host that stopped doing so would route by a stale choice; a
    /// host without the function is asked once, and routes as it does.
    fn clear_route_cache(&self, id: u32) {
        if self.no_route_cache_clearing.get() {
            return;
        }
        if let Err(status) = self.proxy.clear_route_cache() {
            self.no_route_cache_clearing.set(true);
            info!(
                "[ctx {id}] the host has no clear_route_cache (status {}): the route is the one it selects itself",
                status.0
            );
        }
    }

    /// The id of a metric, defined on first use only (see `MetricIds`).
    fn metric(&self, kind: MetricKind, name: String) -> Option<u32> {
        self.metric_ids.get_or_define(&*self.proxy, kind, name)
    }

    /// A root was deleted: shadow copies it sent will never be answered.
    pub fn root_deleted(&self, root_id: u32) {
        self.shadows.root_gone(root_id);
    }
}

/// A root context: one plugin config of this VM.
pub struct Root {
    id: u32,
    vm: Rc<Vm>,
    active: RefCell<Option<Rc<Active>>>,
    rng: Cell<Rng>,
    streams: Cell<u32>,
    /// Prometheus polls in flight.
    polls: fleet::Polls,
    /// When ramps and rollbacks were last looked at.
    last_progress_ms: Cell<u64>,
}

impl Root {
    /// `seed` drives random splits: each worker has its own VM, so each
    /// needs its own (the ABI layer draws it from the host).
    pub fn new(id: u32, vm: Rc<Vm>, seed: u64) -> Self {
        Root {
            id,
            vm,
            active: RefCell::new(None),
            rng: Cell::new(Rng::new(seed)),
            streams: Cell::new(0),
            polls: fleet::Polls::default(),
            last_progress_ms: Cell::new(0),
        }
    }

    fn active(&self) -> Option<Rc<Active>> {
        self.active.borrow().clone()
    }

    /// 64 random bits.
    fn random(&self) -> u64 {
        let mut rng = self.rng.get();
        let value = rng.next_u64();
        self.rng.set(rng);
        value
    }

    /// A uniform roll in `0..1_000_000`.
    fn roll(&self) -> u32 {
        let mut rng = self.rng.get();
        let roll = rng.roll();
        self.rng.set(rng);
        roll
    }

    /// Counts a stream; re-reads the host's log level now and then.
    fn stream_started(&self) {
        let seen = self.streams.get().wrapping_add(1);
        self.streams.set(seen);
        if seen.is_multiple_of(LOG_LEVEL_REFRESH) {
            log::set_max_level(self.vm.proxy.log_level());
        }
    }
}

/// `on_configure`: compiles the plugin configuration, or keeps the running
/// one and says why not.
pub fn configure(root: &Root, configuration_size: usize) -> bool {
    let proxy = &*root.vm.proxy;
    log::set_max_level(proxy.log_level());
    // Read in pieces, then route by route: the VM never holds the whole
    // text, and the compiled config and the splits' state take the memory
    // the pieces had (`config::parse_in_parts`).
    let unread = Cell::new(None);
    let parsed = config::parse_in_parts(configuration_size, |start, length| {
        proxy.plugin_configuration(start, length).map_err(|status| unread.set(Some(status))).ok()
    });
    if let (Err(_), Some(status)) = (&parsed, unread.get()) {
        error!("[ctx {}] canary-router: cannot read the plugin configuration (status {})", root.id, status.0);
        stats::config_loaded(&root.vm, false);
        return false;
    }
    match parsed {
        Ok(router) => {
            info!(
                "[ctx {}] {}",
                root.id,
                log_lines::config_accepted(router.routes.len(), &router.target_header)
            );
            stats::config_loaded(&root.vm, true);
            // The previous config goes before this one's state is built, so
            // the state takes its memory: a big config pushed over another
            // held both states (5.5x the JSON, now 4.8x). It flushes its
            // counters as it goes; its splits that this one does not keep
            // read as gone.
            if let Some(previous) = root.active.take() {
                let keep: Vec<u64> = router.splits().map(|(_, _, s)| s.identity).collect();
                previous.gauges.retire(proxy, &keep, &previous.router);
            }
            let uses_fleet =
                router.splits().any(|(_, _, s)| s.rollback().is_some_and(|r| r.prometheus.is_some()));
            let beacon = if uses_fleet { root.vm.beacon(root.random()) } else { 0 };
            let active = Active::new(root.vm.clone(), router, beacon);
            proxy.set_tick_period_ms(if active.mirrors { shadow::TICK_MS } else { PROGRESS_TICK_MS as u32 });
            let now = proxy.now_ms();
            active.log_ramp_steps(root.id, now);
            rollback::log_verdicts(&active, root.id);
            let active = Rc::new(active);
            progress(root, &active, now);
            root.active.replace(Some(active));
            root.last_progress_ms.set(now);
            true
        }
        Err(err) => {
            // Envoy keeps serving with the previous config, if any.
            error!("[ctx {}] canary-router: config rejected: {err}", root.id);
            stats::config_loaded(&root.vm, false);
            false
        }
    }
}

/// `on_tick`: sends queued shadow copies; once a second flushes counters,
/// logs ramp steps, abandons shadow copies past their deadline and merges
/// rollback windows.
pub fn tick(root: &Root) {
    let proxy = &*root.vm.proxy;
    root.vm.shadows.send_all(proxy, root.id);
    let now = proxy.now_ms();
    // A tick may come a little early: a tenth of slack keeps a one-second
    // tick period from skipping every other tick. A clock that stepped
    // back is due at once, or nothing would move until it caught up.
    if now.checked_sub(root.last_progress_ms.get()).is_some_and(|since| since < PROGRESS_TICK_MS * 9 / 10) {
        return;
    }
    root.last_progress_ms.set(now);
    root.vm.shadows.abandon_overdue(now, root.id);
    let Some(active) = root.active() else { return };
    active.stats.flush(&root.vm, &active.router);
    active.gauges.define_more(&root.vm, &active.router, Some(&active.splits));
    active.log_ramp_steps(root.id, now);
    progress(root, &active, now);
}

/// Rollbacks merged and adopted, Prometheus polled when due, split gauges
/// brought up to date.
fn progress(root: &Root, active: &Rc<Active>, now_ms: u64) {
    rollback::evaluate(active, root.id, now_ms);
    ramp_gate::evaluate(active, root.id, now_ms);
    fleet::tick(active, &root.polls, root.id, now_ms, root.roll());
    active.gauges.refresh(&*root.vm.proxy, &active.router, now_ms, &active.splits);
}

/// `on_http_call_response`: a Prometheus poll's answer or a shadow copy's.
pub fn http_call_answered(root: &Root, token: u32, num_headers: usize, body_size: usize) {
    if !fleet::answered(&root.polls, root.id, token, num_headers, body_size) {
        root.vm.shadows.answered(&*root.vm.proxy, root.id, token, num_headers);
    }
}
