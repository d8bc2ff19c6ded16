//! The filter: what the proxy's callbacks do, as thin as the decisions
//! allow. A root compiles its config once per configure and shares it with
//! its streams; a stream reads the request headers once, asks the router,
//! writes the target header, and keeps state for its body and response
//! only when its decision needs it. Counters are batched in the VM and
//! flushed on the root's tick.

mod fleet;
mod gauges;
mod rollback;
mod shadow;
mod stats;
mod stream;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use log::{error, info, warn};

use crate::config;
use crate::host;
use crate::rng::Rng;
use crate::router::Router;
use gauges::Gauges;
use rollback::Verdict;
pub use shadow::ShadowQueue;
use stats::Stats;
pub use stream::{request_headers, Stream};

/// How many streams between re-reads of the host's log level, so that
/// `envoy admin /logging?wasm=debug` takes effect without a reload.
const LOG_LEVEL_REFRESH: u32 = 1024;

/// A ramp step no ramp has, so that the first state is always logged.
const NOT_LOGGED: Option<usize> = Some(usize::MAX);

/// How often counters are flushed and ramps and rollbacks looked at: a
/// counter is at most this late.
const PROGRESS_TICK_MS: u64 = 1_000;

/// One accepted config, its counters and its progress, shared by the
/// streams it routes.
pub struct Active {
    pub router: Router,
    pub stats: Stats,
    /// Whether any split has a ramp (decisions then need the clock).
    pub uses_clock: bool,
    /// Whether any route mirrors (streams may then need their body).
    pub mirrors: bool,
    pub gauges: Gauges,
    /// Per split id: whether its rollback's target gets traffic here.
    pub verdicts: RefCell<Vec<Verdict>>,
    /// Per split id: its rollback's target gets no traffic (the verdicts,
    /// as decisions read them).
    pub withheld: RefCell<Vec<bool>>,
    /// Per split id: a rollback split's local window as this VM sees it.
    pub rollback_watches: Vec<Option<rollback::Watch>>,
    /// Per split id: the shared-data key of a rollback split's state
    /// (empty for a split without rollback).
    state_keys: Vec<String>,
    /// Per split id: the ramp step last logged (`None`: before the start;
    /// `NOT_LOGGED` until the first log).
    ramp_steps: RefCell<Vec<Option<usize>>>,
}

impl Active {
    /// A compiled config, with each rollback split's verdict read from the
    /// proxy's shared state (a split the fleet rolled back, or that waits
    /// for the fleet latch, gets no traffic from the first request on).
    fn new(router: Router) -> Self {
        let uses_clock = router.splits().any(|(_, _, s)| s.ramp().is_some());
        let mirrors = router.routes.iter().any(|r| r.mirror.is_some());
        let count = router.split_count;
        let stats = Stats::define(&router);
        let gauges = Gauges::define(&router);
        let mut verdicts = vec![Verdict::Live; count];
        let mut rollback_watches = Vec::with_capacity(count);
        let mut state_keys = Vec::with_capacity(count);
        for (_, _, split) in router.splits() {
            rollback_watches.push(rollback::Watch::new(split));
            let key = if split.rollback().is_some() { rollback::state_key(split) } else { String::new() };
            if split.rollback().is_some() {
                let (state, _) = rollback::read_state(&key);
                if let Some(slot) = verdicts.get_mut(split.id) {
                    *slot = rollback::verdict_of(split, &state);
                }
                gauges.fleet_state(split.id, &state);
            }
            state_keys.push(key);
        }
        for (id, verdict) in verdicts.iter().enumerate() {
            gauges.verdict(id, verdict);
        }
        Active {
            rollback_watches,
            state_keys,
            uses_clock,
            mirrors,
            withheld: RefCell::new(verdicts.iter().map(Verdict::withholds).collect()),
            verdicts: RefCell::new(verdicts),
            ramp_steps: RefCell::new(vec![NOT_LOGGED; count]),
            gauges,
            router,
            stats,
        }
    }

    /// Logs each rollback split that does not start live.
    /// The shared-data key of split `id`'s state.
    pub fn state_key(&self, id: usize) -> &str {
        self.state_keys.get(id).map_or("", String::as_str)
    }

    fn log_verdicts(&self, root_id: u32) {
        for (_, _, split) in self.router.splits() {
            let verdict = self.verdicts.borrow().get(split.id).cloned();
            if let Some(verdict @ (Verdict::Waiting | Verdict::RolledBack(_))) = verdict {
                rollback::set_verdict(self, split, verdict, root_id);
            }
        }
    }

    /// Logs each ramp's step once, when it changes.
    fn log_ramp_steps(&self, root_id: u32, now_ms: u64) {
        let mut logged = self.ramp_steps.borrow_mut();
        for (route, rule, split) in self.router.splits() {
            let Some(ramp) = split.ramp() else { continue };
            let step = ramp.step_at(now_ms);
            let Some(previous) = logged.get_mut(split.id) else { continue };
            if *previous == step {
                continue;
            }
            *previous = step;
            match step {
                Some(s) => info!(
                    "[ctx {root_id}] canary-router: route={} rule={} ramp: {} now at {}% (step {} of {})",
                    route.name,
                    rule.label,
                    ramp.target,
                    crate::decimal::format(ramp.steps.get(s).copied().unwrap_or(0.0)),
                    s + 1,
                    ramp.steps.len()
                ),
                None => info!(
                    "[ctx {root_id}] canary-router: route={} rule={} ramp: {} waits for its start",
                    route.name, rule.label, ramp.target
                ),
            }
        }
    }
}

/// A root context: one plugin config of this VM.
pub struct Root {
    id: u32,
    active: RefCell<Option<Rc<Active>>>,
    shadows: Rc<ShadowQueue>,
    rng: Cell<Rng>,
    streams: Cell<u32>,
    /// Prometheus polls in flight.
    polls: fleet::Polls,
    /// When ramps and rollbacks were last looked at.
    last_progress_ms: Cell<u64>,
}

impl Root {
    pub fn new(id: u32, shadows: Rc<ShadowQueue>) -> Self {
        Root {
            id,
            active: RefCell::new(None),
            shadows,
            rng: Cell::new(Rng::new(seed(id))),
            streams: Cell::new(0),
            polls: fleet::Polls::default(),
            last_progress_ms: Cell::new(0),
        }
    }

    fn active(&self) -> Option<Rc<Active>> {
        self.active.borrow().clone()
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
            log::set_max_level(host::host_log_level());
        }
    }
}

/// A per-VM seed for random splits: each worker has its own VM, so each
/// needs its own. Proxies implement WASI `random_get`; if one did not, the
/// split would still follow its weights, only with a predictable sequence.
fn seed(id: u32) -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        warn!("[ctx {id}] no host randomness; random splits use a fixed seed");
        0x5eed_0000_0000_0000 | u64::from(id)
    })
}

/// `on_configure`: compiles the plugin configuration, or keeps the running
/// one and says why not.
pub fn configure(root: &Root, configuration_size: usize) -> bool {
    log::set_max_level(host::host_log_level());
    let json = match host::plugin_configuration(configuration_size) {
        Ok(json) => json,
        Err(status) => {
            error!(
                "[ctx {}] canary-router: cannot read the plugin configuration (status {})",
                root.id, status.0
            );
            stats::config_loaded(false);
            return false;
        }
    };
    match config::parse(&json) {
        Ok(router) => {
            info!(
                "[ctx {}] canary-router: config accepted: {} route(s), target header `{}`",
                root.id,
                router.routes.len(),
                router.target_header
            );
            stats::config_loaded(true);
            let active = Active::new(router);
            host::set_tick_period_ms(if active.mirrors { shadow::TICK_MS } else { PROGRESS_TICK_MS as u32 });
            let now = host::now_ms();
            active.log_ramp_steps(root.id, now);
            active.log_verdicts(root.id);
            let active = Rc::new(active);
            progress(root, &active, now);
            // The previous config flushes its counters as it goes; its
            // splits that this one does not keep read as gone.
            let keep: Vec<u64> = active.router.splits().map(|(_, _, s)| s.identity).collect();
            if let Some(previous) = root.active.borrow_mut().replace(active) {
                previous.gauges.retire(&keep, &previous.router);
            }
            root.last_progress_ms.set(now);
            true
        }
        Err(err) => {
            // Envoy keeps serving with the previous config, if any.
            error!("[ctx {}] canary-router: config rejected: {err}", root.id);
            stats::config_loaded(false);
            false
        }
    }
}

/// `on_tick`: sends queued shadow copies; once a second flushes counters,
/// logs ramp steps and merges rollback windows.
pub fn tick(root: &Root) {
    root.shadows.send_all(root.id);
    let Some(active) = root.active() else { return };
    let now = host::now_ms();
    // A tick may come a little early: a tenth of slack keeps a one-second
    // tick period from skipping every other tick.
    if now.saturating_sub(root.last_progress_ms.get()) < PROGRESS_TICK_MS * 9 / 10 {
        return;
    }
    root.last_progress_ms.set(now);
    active.stats.flush();
    active.log_ramp_steps(root.id, now);
    progress(root, &active, now);
}

/// Rollbacks merged and adopted, Prometheus polled when due, split gauges
/// brought up to date.
fn progress(root: &Root, active: &Rc<Active>, now_ms: u64) {
    rollback::evaluate(active, root.id, now_ms);
    fleet::tick(active, &root.polls, root.id, now_ms, root.roll());
    active.gauges.refresh(&active.router, now_ms, &active.withheld.borrow());
}

/// `on_http_call_response`: a Prometheus poll's answer, if it is one.
pub fn http_call_answered(root: &Root, token: u32, num_headers: usize, body_size: usize) -> bool {
    fleet::answered(&root.polls, root.id, token, num_headers, body_size)
}
