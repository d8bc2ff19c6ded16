//! The proxy-wasm glue: as thin as possible. The root context compiles the
//! config once per configure and shares it; each HTTP context reads the
//! request headers once, asks the router, and writes the target header.

use std::cell::Cell;
use std::rc::Rc;

use log::{debug, error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::config::{self, DEFAULT_TARGET_HEADER};
use crate::request::Request;
use crate::rng::Rng;
use crate::router::Router;
use crate::{header_map, host};

/// How many HTTP contexts between re-reads of the host's log level, so that
/// `envoy admin /logging?wasm=debug` takes effect without a reload.
const LOG_LEVEL_REFRESH: u32 = 1024;

pub struct RouterRoot {
    id: u32,
    router: Option<Rc<Router>>,
    rng: Cell<Rng>,
    contexts: Cell<u32>,
}

impl RouterRoot {
    pub fn new(id: u32) -> Self {
        RouterRoot { id, router: None, rng: Cell::new(Rng::new(seed(id))), contexts: Cell::new(0) }
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

impl Context for RouterRoot {}

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
                self.router = Some(Rc::new(router));
                true
            }
            Err(err) => {
                // Envoy keeps serving with the previous config, if any.
                error!("[ctx {}] canary-router: config rejected: {err}", self.id);
                false
            }
        }
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
        let mut rng = self.rng.get();
        let roll = rng.roll();
        self.rng.set(rng);
        Some(Box::new(RouterHttp { id: context_id, router: self.router.clone(), roll }))
    }
}

struct RouterHttp {
    id: u32,
    router: Option<Rc<Router>>,
    /// This request's random roll, used only if a non-sticky split decides.
    roll: u32,
}

impl Context for RouterHttp {}

impl HttpContext for RouterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.route();
        Action::Continue
    }
}

impl RouterHttp {
    fn route(&self) {
        let Some(router) = self.router.as_deref() else {
            // Never configured: still never let a client pick the upstream.
            self.remove(DEFAULT_TARGET_HEADER);
            return;
        };
        let map = host::request_header_map().unwrap_or_else(|status| {
            warn!("[ctx {}] cannot read request headers (status {}); routing as if none", self.id, status.0);
            Vec::new()
        });
        let pairs = header_map::parse(&map).unwrap_or_else(|| {
            warn!("[ctx {}] malformed request header map from the host; routing as if none", self.id);
            Vec::new()
        });
        let header = router.target_header.as_str();
        let client_sent_header =
            map.is_empty() || pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(header.as_bytes()));
        let request = Request::new(pairs);
        match router.decide(&request, self.roll) {
            Some(decision) => {
                debug!("[ctx {}] {decision}", self.id);
                if let Err(status) = host::replace_request_header(header, decision.target.as_bytes()) {
                    warn!("[ctx {}] cannot set {header} (status {})", self.id, status.0);
                }
            }
            None => {
                debug!("[ctx {}] route=- rule=- target=- reason=no route", self.id);
                if client_sent_header {
                    self.remove(header);
                }
            }
        }
    }

    fn remove(&self, header: &str) {
        if let Err(status) = host::remove_request_header(header) {
            warn!("[ctx {}] cannot remove {header} (status {})", self.id, status.0);
        }
    }
}
