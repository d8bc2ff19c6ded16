//! What the host remembers between calls: the proxy's side of the ABI.

use std::collections::HashMap;

use canary_router_core::hashing::rng::Rng;

use super::headers::HeaderMap;

/// proxy-wasm log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub fn from_u32(level: u32) -> Option<Self> {
        use LogLevel::*;
        [Trace, Debug, Info, Warn, Error, Critical].get(level as usize).copied()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub level: LogLevel,
    pub message: String,
}

/// The header maps of one HTTP stream, each present once its phase began.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    pub request_headers: Option<HeaderMap>,
    pub response_headers: Option<HeaderMap>,
    /// The answer the filter sent itself (`proxy_send_local_response`).
    pub local_reply: Option<LocalReply>,
}

/// A response the filter sent instead of letting the request go upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub value: u64,
}

/// An HTTP call the guest dispatched (`proxy_http_call`).
#[derive(Clone, Debug)]
pub struct HttpCall {
    pub token: u32,
    pub upstream: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
    /// The context it was dispatched from (the effective one).
    pub context_id: u32,
}

/// The proxy's shared data: one store for every VM of a plugin, with a
/// compare-and-swap tag per key.
pub type SharedData = std::rc::Rc<std::cell::RefCell<HashMap<Vec<u8>, (Vec<u8>, u32)>>>;

pub struct HostState {
    pub plugin_config: Vec<u8>,
    pub vm_config: Vec<u8>,
    /// The proxy's log level: messages below it are dropped, as Envoy does.
    pub log_level: LogLevel,
    pub logs: Vec<LogEntry>,
    /// The fake wall clock, in nanoseconds since the Unix epoch.
    pub now_ns: u64,
    pub tick_period_ms: u32,
    /// The context host calls act on (the callback's, or the one set by
    /// `proxy_set_effective_context`).
    pub effective_context: u32,
    pub streams: HashMap<u32, Stream>,
    /// Indexed by metric id.
    pub metrics: Vec<Metric>,
    /// Calls into the guest: callbacks and memory allocations.
    pub guest_calls: u64,
    /// Fuel the guest used: wasm instructions executed.
    pub guest_instructions: u64,
    pub instructions_by_export: std::collections::BTreeMap<String, u64>,
    /// Metric name → index in `metrics`.
    pub metric_index: HashMap<String, usize>,
    /// Metric id → index in `metrics`: one entry per definition.
    pub metric_ids: Vec<usize>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The deterministic source behind WASI `random_get`.
    pub random: Rng,
    /// Whether the plugin configuration buffer is readable (in `on_configure`).
    pub in_configure: bool,
    /// The request body chunk being delivered (in `on_request_body`).
    pub request_body: Option<Vec<u8>>,
    /// Calls dispatched and not yet answered.
    pub http_calls: Vec<HttpCall>,
    pub next_token: u32,
    /// Clusters `proxy_http_call` accepts; others answer BadArgument, as
    /// Envoy does for an unknown cluster. `None`: any.
    pub clusters: Option<Vec<String>>,
    /// The response headers of the call being answered (map type 6).
    pub http_call_response: Option<HeaderMap>,
    /// The body of the call being answered (buffer type 4).
    pub http_call_body: Option<Vec<u8>>,
    pub shared_data: SharedData,
    /// Request header names whose replacement and removal fail, as a
    /// proxy may refuse them.
    pub refused_header_writes: Vec<Vec<u8>>,
    /// A host without the `clear_route_cache` foreign function.
    pub lacks_clear_route_cache: bool,
    /// Calls of `clear_route_cache` from a stream context.
    pub route_cache_clears: u64,
}

impl HostState {
    pub fn metric(&self, id: u32) -> Option<&Metric> {
        self.metrics.get(*self.metric_ids.get(id as usize)?)
    }

    pub fn metric_mut(&mut self, id: u32) -> Option<&mut Metric> {
        let index = *self.metric_ids.get(id as usize)?;
        self.metrics.get_mut(index)
    }

    pub fn new(random_seed: u64) -> Self {
        HostState {
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            log_level: LogLevel::Info,
            logs: Vec::new(),
            // 2026-01-01T00:00:00Z
            now_ns: 1_767_225_600_000_000_000,
            tick_period_ms: 0,
            effective_context: 0,
            streams: HashMap::new(),
            metrics: Vec::new(),
            guest_calls: 0,
            guest_instructions: 0,
            instructions_by_export: Default::default(),
            metric_index: HashMap::new(),
            metric_ids: Vec::new(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            random: Rng::new(random_seed),
            in_configure: false,
            request_body: None,
            http_calls: Vec::new(),
            next_token: 1,
            clusters: None,
            http_call_response: None,
            http_call_body: None,
            shared_data: SharedData::default(),
            refused_header_writes: Vec::new(),
            lacks_clear_route_cache: false,
            route_cache_clears: 0,
        }
    }

    /// Reproducible bytes standing in for the host's entropy.
    pub fn next_random(&mut self) -> u64 {
        self.random.next_u64()
    }
}
