//! canary-router: a proxy-wasm HTTP filter that picks a service version per
//! request by header, cookie, query parameter or weight.
//!
//! Every decision lives in `canary_router_core`, compiled and tested
//! natively. `filter` is the glue, which reaches the proxy through a small
//! trait and is tested natively too; `host` is that trait over the
//! proxy-wasm ABI, and the only code that is wasm-only or `unsafe`.

// All `unsafe` (the ABI's raw pointers and exported symbols) is in `host`.
#![deny(unsafe_code)]

// Natively only the glue's own tests use it; the .wasm's exports do.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod filter;
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod host;
