//! canary-router: a proxy-wasm HTTP filter that picks a service version per
//! request by header, cookie, query parameter or weight.
//!
//! Every decision lives in pure modules (`config`, `router`, `matcher`,
//! `split`, `hash`, ...), compiled and tested natively. Only `filter` and
//! `host` touch the proxy, and only on `wasm32`.

pub mod bytes;
pub mod config;
pub mod cookie;
pub mod decimal;
pub mod error;
pub mod error_window;
pub mod fleet_state;
pub mod hash;
pub mod header_map;
pub mod header_names;
pub mod host_pattern;
pub mod json;
pub mod limits;
pub mod literal_regex;
pub mod matcher;
pub mod metrics;
pub mod mirror;
pub mod prometheus;
pub mod query;
pub mod regex_cost;
pub mod request;
pub mod rng;
pub mod route;
pub mod route_index;
pub mod router;
pub mod split;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(target_arch = "wasm32")]
mod host;
