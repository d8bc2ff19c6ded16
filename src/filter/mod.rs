//! The proxy-wasm glue: as thin as possible. The root context compiles the
//! config once per configure and shares it; each HTTP context reads the
//! request headers once, asks the router, writes the target header, and
//! counts what happened.

mod shadow;
mod stats;
mod stream;

use std::cell::Cell;
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

/// One accepted config and its counters, shared by the streams it routes.
pub struct Active {
    pub router: Router,
    pub stats: Stats,
}

pub struct RouterRoot {
    id: u32,
    active: Option<Rc<Active>>,
    shadows: Rc<ShadowQueue>,
    rng: Cell<Rng>,
    contexts: Cell<u32>,
}

impl RouterRoot {
    pub fn new(id: u32) -> Self {
        RouterRoot {
            id,
            active: None,
            shadows: Rc::new(ShadowQueue::default()),
            rng: Cell::new(Rng::new(seed(id))),
            contexts: Cell::new(0),
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
                host::set_tick_period_ms(if mirrors { shadow::TICK_MS } else { 0 });
                let stats = Stats::define(&router);
                self.active = Some(Rc::new(Active { router, stats }));
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
