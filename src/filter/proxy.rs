//! What the glue asks of the proxy, as one small trait: the real one is
//! the proxy-wasm ABI (`crate::host`, wasm only), the in-memory one
//! (`fake_proxy`, tests only) lets the glue's own logic be unit-tested
//! natively. Every call reports failure as a value, never by panicking.

/// A host call that did not return `Ok`: the ABI's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

/// Outcome of a compare-and-swap write to shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedWrite {
    Written,
    /// Another VM wrote first: read again and retry.
    Conflict,
    Failed,
}

/// The compare-and-swap tag a write carries when its key was absent. Envoy
/// writes an absent key whatever the tag, and refuses a present key's
/// write whose tag is not the key's (0 skips the check). No key holds this
/// tag (Envoy hands tags out in order from 1: it would take four billion
/// writes), so when two VMs create one key at once the second write
/// conflicts, reads the first one's, and retries, instead of erasing it
/// as a write with tag 0 would.
pub const ABSENT: u32 = u32::MAX;

/// A metric's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// How long past its timeout an HTTP call's answer is waited for before
/// the call is given up: the proxy answers a timed-out call itself, so only
/// a lost answer (its root deleted by a config push) waits this long.
pub const LOST_ANSWER_AFTER_MS: u64 = 5_000;

/// A local answer the proxy sends instead of forwarding the request.
pub struct LocalReply<'a> {
    pub status: u32,
    /// Envoy's `response_code_details` (a token: no spaces).
    pub details: &'a str,
    pub body: &'a str,
}

pub trait Proxy {
    /// The proxy's log level, as a `log` filter.
    fn log_level(&self) -> log::LevelFilter;
    /// Wall clock, milliseconds since the Unix epoch (0 if unknown).
    fn now_ms(&self) -> u64;
    fn set_tick_period_ms(&self, period: u32);
    /// `length` bytes of the plugin configuration from `start` (fewer at
    /// its end), or an empty buffer when none was given.
    fn plugin_configuration(&self, start: usize, length: usize) -> Result<Vec<u8>, Status>;

    /// The request's header map, serialized (`header_map`).
    fn request_header_map(&self) -> Result<Vec<u8>, Status>;
    fn replace_request_header(&self, name: &str, value: &[u8]) -> Result<(), Status>;
    fn remove_request_header(&self, name: &str) -> Result<(), Status>;
    /// Answers the request locally; the request goes no further.
    fn send_local_reply(&self, reply: &LocalReply<'_>) -> Result<(), Status>;
    /// The request body chunk the proxy holds now.
    fn request_body(&self, size: usize) -> Result<Vec<u8>, Status>;
    /// The response's `:status`, if the response headers are there.
    fn response_status(&self) -> Option<Vec<u8>>;
    fn add_response_header(&self, name: &str, value: &str) -> Result<(), Status>;

    /// Defines a metric; a proxy may give the same name a new id each time.
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, Status>;
    fn increment_metric(&self, id: u32, by: u64);
    fn record_metric(&self, id: u32, value: u64);

    /// A value every VM of the plugin shares, and its compare-and-swap tag.
    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> SharedWrite;

    /// Sends an HTTP request to a cluster (`headers` serialized); its answer
    /// comes to the calling root with the returned token.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[u8],
        body: &[u8],
        timeout_ms: u32,
    ) -> Result<u32, Status>;
    /// The answered call's `:status` (while its answer is being handled).
    fn http_call_status(&self) -> Option<Vec<u8>>;
    fn http_call_body(&self, size: usize) -> Result<Vec<u8>, Status>;

    /// Asks the host to select the request's route again (the foreign
    /// function `clear_route_cache`); `Err` where the host has none.
    fn clear_route_cache(&self) -> Result<(), Status>;
}
