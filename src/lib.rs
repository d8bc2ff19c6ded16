//! canary-router: a proxy-wasm HTTP filter that picks a service version per
//! request by header, cookie, query parameter or weight.
//!
//! Every decision lives in pure modules (`config`, `router`, `matcher`,
//! `split`, `hash`, ...), compiled and tested natively. `filter` is the
//! glue, which reaches the proxy through a small trait and is tested
//! natively too; `host` is that trait over the proxy-wasm ABI, and the
//! only code that is wasm-only or `unsafe`.

// All `unsafe` (the ABI's raw pointers and exported symbols) is in `host`.
#![deny(unsafe_code)]

pub mod byte_list;
pub mod bytes;
pub mod compare;
pub mod config;
pub mod cookie;
pub mod decimal;
pub mod error;
pub mod error_window;
pub mod fleet_state;
pub mod gate;
pub mod hash;
pub mod header_map;
pub mod header_names;
pub mod host_pattern;
pub mod json;
pub mod judge;
pub mod le_bytes;
pub mod limits;
pub mod literal_regex;
pub mod matcher;
pub mod metrics;
pub mod mirror;
pub mod number;
pub mod prometheus;
pub mod query;
pub mod regex_cost;
#[cfg(not(target_arch = "wasm32"))]
pub mod rehearsal;
pub mod request;
pub mod rng;
pub mod route;
pub mod route_index;
pub mod router;
pub mod sequential;
pub mod split;
pub mod time;

pub mod filter;
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod host;
