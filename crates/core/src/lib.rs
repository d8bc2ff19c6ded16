//! canary-router's core: every decision the filter makes, as pure code
//! compiled and tested natively. The config is read and compiled once
//! (`config`) into a `routing::router::Router`; `Router::decide` takes the
//! request, randomness and time as values; the rollout's judges keep their
//! state in plain values the filter stores. No host, no I/O: the filter
//! crate carries these decisions to the proxy, the CLI to a terminal.
//!
//! Floors, each using only those below it: `text` and `hashing`, then
//! `request`, `rollout`, `routing`, and `config` (which compiles them all)
//! and `rehearsal` (a rollout played offline) on top.

#![forbid(unsafe_code)]

pub mod config;
pub mod hashing;
#[cfg(not(target_arch = "wasm32"))]
pub mod rehearsal;
pub mod request;
pub mod rollout;
pub mod routing;
pub mod text;
