//! canary-router's core: every decision the filter makes, as pure code
//! compiled and tested natively. The config is read and compiled once
//! (`config`) into a `router::Router`; `Router::decide` takes the request,
//! randomness and time as values; splits, ramps, rollbacks and their judges
//! keep their state in plain values the filter stores. No host, no I/O: the
//! filter crate carries these decisions to the proxy, the CLI to a terminal.

#![forbid(unsafe_code)]

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
