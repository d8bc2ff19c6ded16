//! End-to-end tests against the real Envoy 1.40 binary (`make e2e`): the
//! built filter loaded by V8, real HTTP on loopback, backends that are Envoy
//! `direct_response` listeners answering with their own name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backends;
#[path = "../bench_config/mod.rs"]
mod bench_config;
#[path = "../harness/built.rs"]
mod built;
mod compare;
mod demo;
mod envoy;
mod envoy_gateway;
mod envoy_gateway_shape;
mod evidence;
mod failure;
mod fleet;
mod gated_ramp;
mod hostile;
mod http;
#[path = "../istio/mod.rs"]
mod istio;
mod istio_shape;
mod live_reload;
mod load;
mod migration;
mod observability;
mod overload;
mod progressive;
mod prometheus;
mod reload;
mod routing;
mod secured_prometheus;
#[path = "../wasm_fixtures/mod.rs"]
mod wasm_fixtures;
