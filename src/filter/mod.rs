//! The proxy-wasm glue: as thin as possible. The root context compiles the
//! config once per configure and shares it; each HTTP context reads the
//! request headers once, asks the router, writes the target header, and
//! counts what happened.

mod rollback;
mod shadow;
mod stats;
mod stream;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::config;
use crate::host;
use crate::rng::Rng;
use crate::router::Router;
use shadow::ShadowQueue;
use stats::Stats;
use stream::RouterHttp;

/// How many HTTP contexts between re-reads of the host's log level, so that
/// `envoy admin /logging?wasm=debug` takes effect without a reload.
const LOG_LEVEL_REFRESH: u32 = 1024;

/// A ramp step no ramp has, so that the first state is always logged.
const NOT_LOGGED: Option<usize> = Some(usize::MAX);

/// How often ramps and rollbacks are looked at.
const PROGRESS_TICK_MS: u64 = 1_000;

/// One accepted config, its counters and its progress, shared by the
/// streams it routes.
pub struct Active {
    pub router: Router,
    pub stats: Stats,
    /// Whether any split has a ramp (decisions then need the clock).
    pub uses_clock: bool,
    /// Whether any split has a rollback (responses then need the clock).
    pub has_rollback: bool,
    /// Per split id: rolled back on this VM.
    pub rolled_back: RefCell<Vec<bool>>,
    /// Per split id: a rollback split's window as this VM sees it.
    pub rollback_watches: Vec<Option<rollback::Watch>>,
    /// Per split id: the ramp step last logged (`None`: before the start;
    /// `NOT_LOGGED` until the first log).
    ramp_steps: RefCell<Vec<Option<usize>>>,
}

impl Active {
    fn new(router: Router, json: &[u8]) -> Self {
        let uses_clock = router.splits().any(|(_, _, s)| s.ramp().is_some());
        let has_rollback = router.splits().any(|(_, _, s)| s.rollback().is_some());
        let count = router.split_count;
        let stats = Stats::define(&router);
        // Names this config's state in the proxy's shared data.
        let fingerprint = crate::hash::fingerprint(json);
        let rollback_watches = (0..count)
            .map(|id| router.split(id).and_then(|(_, _, split)| rollback::Watch::new(fingerprint, split)))
            .collect();
        Active {
            rollback_watches,
            uses_clock,
            has_rollback,
            rolled_back: RefCell::new(vec![false; count]),
            ramp_steps: RefCell::new(vec![NOT_LOGGED; count]),
            router,
            stats,
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
                    ramp.steps.get(s).copied().unwrap_or(0.0),
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

pub struct RouterRoot {
    id: u32,
    active: Option<Rc<Active>>,
    shadows: Rc<ShadowQueue>,
    rng: Cell<Rng>,
    contexts: Cell<u32>,
    /// When ramps and rollbacks were last looked at.
    last_progress_ms: u64,
}

impl RouterRoot {
    pub fn new(id: u32) -> Self {
        RouterRoot {
            id,
            active: None,
            shadows: Rc::new(ShadowQueue::default()),
            rng: Cell::new(Rng::new(seed(id))),
            contexts: Cell::new(0),
            last_progress_ms: 0,
        }
    }

    fn roll(&self) -> u32 {
        let mut rng = self.rng.get();
        let roll = rng.roll();
        self.rng.set(rng);
        roll
    }
}

/// A per-VM seed for random splits: each worker has its own VM, so each
/// needs its own. Proxies implement WASI `random_get`; if one did not, the
/// split would still follow its weights, only with a predictable sequence.
fn seed(id: u32) -> u64 {
    getrandom::u64().unwrap_or_else(|err| {
        warn!("[ctx {id}] no host randomness ({err}); random splits use a fixed seed");
        0x5eed_0000_0000_0000 | u64::from(id)
    })
}

impl Context for RouterRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        self.shadows.answered(self.id, token_id, num_headers);
    }
}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        log::set_max_level(host::host_log_level());
        let json = match host::plugin_configuration(plugin_configuration_size) {
            Ok(json) => json,
            Err(status) => {
                error!(
                    "[ctx {}] canary-router: cannot read the plugin configuration (status {})",
                    self.id, status.0
                );
                stats::config_loaded(false);
                return false;
            }
        };
        match config::parse(&json) {
            Ok(router) => {
                info!(
                    "[ctx {}] canary-router: config accepted: {} route(s), target header `{}`",
                    self.id,
                    router.routes.len(),
                    router.target_header
                );
                stats::config_loaded(true);
                let mirrors = router.routes.iter().any(|r| r.mirror.is_some());
                let active = Active::new(router, &json);
                let progressive = active.uses_clock || active.has_rollback;
                let tick = if mirrors {
                    shadow::TICK_MS
                } else if progressive {
                    PROGRESS_TICK_MS as u32
                } else {
                    0
                };
                host::set_tick_period_ms(tick);
                let now = host::now_ms();
                active.log_ramp_steps(self.id, now);
                // A config applied again (same bytes) is still rolled back:
                // pick that up now, not a tick later.
                rollback::evaluate(&active, self.id, now);
                self.active = Some(Rc::new(active));
                self.last_progress_ms = now;
                true
            }
            Err(err) => {
                // Envoy keeps serving with the previous config, if any.
                error!("[ctx {}] canary-router: config rejected: {err}", self.id);
                stats::config_loaded(false);
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.shadows.send_all(self.id);
        let Some(active) = self.active.clone() else { return };
        let now = host::now_ms();
        if now.saturating_sub(self.last_progress_ms) < PROGRESS_TICK_MS {
            return;
        }
        self.last_progress_ms = now;
        active.log_ramp_steps(self.id, now);
        rollback::evaluate(&active, self.id, now);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let seen = self.contexts.get().wrapping_add(1);
        self.contexts.set(seen);
        if seen.is_multiple_of(LOG_LEVEL_REFRESH) {
            log::set_max_level(host::host_log_level());
        }
        let (split_roll, mirror_roll) = (self.roll(), self.roll());
        Some(Box::new(RouterHttp::new(
            context_id,
            self.active.clone(),
            self.shadows.clone(),
            split_roll,
            mirror_roll,
        )))
    }
}
