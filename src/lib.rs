//! canary-router: a proxy-wasm HTTP filter that picks a service version per
//! request by header, cookie, query parameter or weight.
//!
//! Every decision lives in pure modules (`config`, `router`, `matcher`,
//! `split`, `hash`, ...), compiled and tested natively. Only `filter` and
//! `host` touch the proxy, and only on `wasm32`.

pub mod config;
pub mod cookie;
pub mod error;
pub mod error_window;
pub mod hash;
pub mod header_map;
pub mod host_pattern;
pub mod limits;
pub mod matcher;
pub mod metrics;
pub mod mirror;
pub mod query;
pub mod regex_cost;
pub mod request;
pub mod rng;
pub mod router;
pub mod split;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(target_arch = "wasm32")]
mod host;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    host::install_logger();
    proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(filter::RouterRoot::new(context_id))
    });
}}
