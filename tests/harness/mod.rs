//! A proxy-wasm ABI 0.2.1 host on wasmtime that runs the built filter the
//! way Envoy does, with a stateful API a scenario reads plainly:
//!
//! ```ignore
//! let mut proxy = Proxy::configured(CONFIG);
//! let exchange = proxy.send(&[(":authority", "a.example.com"), (":path", "/"), ("foo", "bar")]);
//! assert_eq!(exchange.target().as_deref(), Some("service-a-canary"));
//! ```
//!
//! Any guest trap fails the test with the guest's own panic message; any
//! host call the harness does not implement traps, naming the call.
#![allow(dead_code)]

mod built;
mod compiled_module;
mod headers;
mod host_calls;
mod memory;
mod state;
mod wasi;

use std::time::Duration;

use wasmtime::{bail, ExternType, Instance, Linker, Store, WasmParams, WasmResults};

#[allow(unused_imports)]
pub use built::{linked_wasm, require_fresh_cli, wasm_path};
pub use headers::HeaderMap;
#[allow(unused_imports)] // Not every test binary uses every type.
pub use state::{HttpCall, LocalReply, LogEntry, LogLevel, Metric, MetricKind};

use state::{HostState, Stream};

/// The root context's id, as Envoy numbers it: the first context.
pub const ROOT_CONTEXT_ID: u32 = 1;

/// Instructions one callback may run before it counts as stuck.
const FUEL_PER_CALL: u64 = 5_000_000_000;

/// proxy-wasm's `Action`.
pub const CONTINUE: i32 = 0;
pub const PAUSE: i32 = 1;

/// One VM with one root context, like an Envoy worker thread.
pub struct Proxy {
    store: Store<HostState>,
    instance: Instance,
    next_context_id: u32,
    /// Why the VM cannot be used any more (it trapped).
    dead: Option<String>,
}

/// What one request went through.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub context_id: u32,
    /// The request headers as they leave the filter towards the upstream
    /// (empty when the filter answered the request itself).
    pub upstream: HeaderMap,
    /// The answer the filter sent instead of forwarding the request.
    pub local_reply: Option<LocalReply>,
    pub request_action: i32,
    /// The response headers as they leave the filter towards the client.
    pub response: HeaderMap,
    pub response_action: i32,
}

impl Exchange {
    /// The default target header the upstream receives.
    pub fn target(&self) -> Option<String> {
        self.upstream.get("x-route-target")
    }
}

impl Proxy {
    /// Loads the filter and starts its VM at Envoy's default log level.
    pub fn start() -> Self {
        Self::start_with(LogLevel::Info, 0x5eed)
    }

    /// Loads the filter with the host at `log_level`; `seed` drives the
    /// host's randomness (WASI `random_get`), so runs are reproducible.
    pub fn start_with(log_level: LogLevel, seed: u64) -> Self {
        let (engine, module) = compiled_module::compiled();
        Self::instantiate(engine, module, log_level, seed)
    }

    /// Starts another module in place of the filter (harness self-tests).
    pub fn start_module(bytes: &[u8]) -> Self {
        let (engine, _) = compiled_module::compiled();
        let module = wasmtime::Module::new(engine, bytes).expect("the test module compiles");
        Self::instantiate(engine, &module, LogLevel::Info, 1)
    }

    fn instantiate(
        engine: &wasmtime::Engine,
        module: &wasmtime::Module,
        log_level: LogLevel,
        seed: u64,
    ) -> Self {
        let mut linker = Linker::new(engine);
        for import in module.imports() {
            let (module_name, name) = (import.module(), import.name());
            let defined = match module_name {
                "env" => host_calls::define(&mut linker, name),
                "wasi_snapshot_preview1" => wasi::define(&mut linker, name),
                _ => Ok(false),
            }
            .unwrap_or_else(|e| panic!("cannot define {module_name}::{name}: {e:?}"));
            if defined {
                continue;
            }
            let ExternType::Func(ty) = import.ty() else {
                panic!(
                    "the filter imports {module_name}::{name}, which is not a function; no proxy provides it"
                )
            };
            let call = format!("{module_name}::{name}");
            linker
                .func_new(module_name, name, ty, move |_, _, _| {
                    bail!("unimplemented host call {call}: the harness does not provide it (tests/harness/)")
                })
                .unwrap_or_else(|e| panic!("cannot stub {module_name}::{name}: {e:?}"));
        }
        let mut state = HostState::new(seed);
        state.log_level = log_level;
        let mut store = Store::new(engine, state);
        store.set_fuel(FUEL_PER_CALL).unwrap();
        let instance = linker
            .instantiate(&mut store, module)
            .unwrap_or_else(|e| panic!("the filter does not instantiate: {e:?}"));
        let mut proxy = Proxy { store, instance, next_context_id: ROOT_CONTEXT_ID + 1, dead: None };
        if proxy.instance.get_func(&mut proxy.store, "_initialize").is_some() {
            proxy.call::<(), ()>("_initialize", ());
        }
        proxy.store.data_mut().effective_context = ROOT_CONTEXT_ID;
        proxy.callback::<(i32, i32), ()>("proxy_on_context_create", (ROOT_CONTEXT_ID as i32, 0), ());
        let vm_config_len = proxy.store.data().vm_config.len() as i32;
        let started = proxy.callback::<(i32, i32), i32>(
            "proxy_on_vm_start",
            (ROOT_CONTEXT_ID as i32, vm_config_len),
            1,
        );
        assert_ne!(started, 0, "proxy_on_vm_start returned false; logs:\n{}", proxy.log_text());
        proxy
    }

    /// Another VM of the same plugin (another Envoy worker): its own memory,
    /// clock and entropy, the same shared data.
    pub fn start_sharing_with(other: &Proxy, seed: u64) -> Self {
        let mut proxy = Self::start_with(other.store.data().log_level, seed);
        proxy.store.data_mut().shared_data = other.store.data().shared_data.clone();
        proxy.store.data_mut().now_ns = other.store.data().now_ns;
        proxy
    }

    /// Starts the filter and configures it, failing the test on rejection.
    pub fn configured(config: &str) -> Self {
        let mut proxy = Self::start();
        assert!(proxy.configure(config), "the filter rejected its config; logs:\n{}", proxy.log_text());
        proxy
    }

    /// Delivers a plugin configuration (`on_configure`). Returns what the
    /// filter returned: `false` makes Envoy keep the previous config.
    pub fn configure(&mut self, config: &str) -> bool {
        self.configure_bytes(config.as_bytes())
    }

    pub fn configure_bytes(&mut self, config: &[u8]) -> bool {
        let state = self.store.data_mut();
        state.plugin_config = config.to_vec();
        state.in_configure = true;
        state.effective_context = ROOT_CONTEXT_ID;
        let accepted = self.callback::<(i32, i32), i32>(
            "proxy_on_configure",
            (ROOT_CONTEXT_ID as i32, config.len() as i32),
            1,
        );
        self.store.data_mut().in_configure = false;
        accepted != 0
    }

    /// Sends one request with these headers through a whole stream
    /// lifecycle; the upstream answers `:status 200`.
    pub fn send(&mut self, headers: &[(&str, &str)]) -> Exchange {
        self.send_map(HeaderMap::from_pairs(headers.iter().copied()))
    }

    /// Like `send`, with raw header bytes (for non-UTF-8 input).
    pub fn send_map(&mut self, request: HeaderMap) -> Exchange {
        self.exchange(request, HeaderMap::from_pairs([(":status", "200")]))
    }

    /// One stream: context create, request headers, response headers,
    /// done, log, delete. Header maps exist only from their phase on and
    /// disappear with the context, as in Envoy.
    pub fn exchange(&mut self, request: HeaderMap, response: HeaderMap) -> Exchange {
        self.exchange_with_body(request, &[], response)
    }

    /// Like `exchange`, with a request body delivered in these chunks
    /// (`on_request_body` once per chunk, the last with end of stream).
    pub fn exchange_with_body(
        &mut self,
        request: HeaderMap,
        body: &[&[u8]],
        response: HeaderMap,
    ) -> Exchange {
        let request_len = request.len() as i32;
        let id = self.begin_stream(request);
        let ctx = id as i32;
        let headers_end = i32::from(body.is_empty());
        let request_action = self.callback::<(i32, i32, i32), i32>(
            "proxy_on_request_headers",
            (ctx, request_len, headers_end),
            CONTINUE,
        );
        for (i, chunk) in body.iter().enumerate() {
            self.enter(id).request_body = Some(chunk.to_vec());
            let end = i32::from(i + 1 == body.len());
            self.callback::<(i32, i32, i32), i32>(
                "proxy_on_request_body",
                (ctx, chunk.len() as i32, end),
                CONTINUE,
            );
            self.store.data_mut().request_body = None;
        }
        // A local reply goes back through the filter instead of the
        // upstream's answer, as in Envoy; nothing went upstream.
        let local_reply = self.stream(id).local_reply.clone();
        let (upstream, response) = match &local_reply {
            Some(reply) => (HeaderMap::new(), HeaderMap::from_pairs([(":status", reply.status.to_string())])),
            None => (self.stream(id).request_headers.clone().unwrap_or_default(), response),
        };

        let response_len = response.len() as i32;
        self.enter(id).streams.get_mut(&id).unwrap().response_headers = Some(response);
        let response_action = self.callback::<(i32, i32, i32), i32>(
            "proxy_on_response_headers",
            (ctx, response_len, 1),
            CONTINUE,
        );
        let response = self.stream(id).response_headers.clone().unwrap_or_default();

        self.end_stream(id);
        Exchange { context_id: id, upstream, local_reply, request_action, response, response_action }
    }

    /// Starts a request whose body is still arriving: request headers,
    /// then these chunks, none of them the last. The stream stays open
    /// (a stalled upload) until `reset`.
    pub fn start_upload(&mut self, request: HeaderMap, chunks: &[&[u8]]) -> u32 {
        let request_len = request.len() as i32;
        let id = self.begin_stream(request);
        let ctx = id as i32;
        self.callback::<(i32, i32, i32), i32>("proxy_on_request_headers", (ctx, request_len, 0), CONTINUE);
        for chunk in chunks {
            self.enter(id).request_body = Some(chunk.to_vec());
            self.callback::<(i32, i32, i32), i32>(
                "proxy_on_request_body",
                (ctx, chunk.len() as i32, 0),
                CONTINUE,
            );
            self.store.data_mut().request_body = None;
        }
        self.store.data_mut().effective_context = ROOT_CONTEXT_ID;
        id
    }

    /// The client goes away mid-request: Envoy resets the stream, which
    /// then gets done, log and delete without a response.
    pub fn reset(&mut self, id: u32) {
        self.end_stream(id);
    }

    /// Creates a stream context holding these request headers.
    fn begin_stream(&mut self, request: HeaderMap) -> u32 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        self.store.data_mut().effective_context = ROOT_CONTEXT_ID;
        self.callback::<(i32, i32), ()>("proxy_on_context_create", (id as i32, ROOT_CONTEXT_ID as i32), ());
        let stream = Stream { request_headers: Some(request), ..Stream::default() };
        self.enter(id).streams.insert(id, stream);
        id
    }

    /// Done, log, delete (those the module exports): after these the
    /// stream's maps are gone.
    fn end_stream(&mut self, id: u32) {
        let ctx = id as i32;
        self.enter(id);
        self.callback::<i32, i32>("proxy_on_done", ctx, 1);
        self.enter(id);
        self.callback::<i32, ()>("proxy_on_log", ctx, ());
        self.enter(id);
        self.callback::<i32, ()>("proxy_on_delete", ctx, ());
        let state = self.store.data_mut();
        state.streams.remove(&id);
        state.effective_context = ROOT_CONTEXT_ID;
    }

    /// Times `n` request-headers callbacks alone (each in a full stream
    /// lifecycle, which is not timed), for the micro-benchmark.
    pub fn time_request_headers(&mut self, request: &HeaderMap, n: usize) -> std::time::Duration {
        let mut total = std::time::Duration::ZERO;
        for _ in 0..n {
            let id = self.begin_stream(request.clone());
            let started = std::time::Instant::now();
            self.call::<(i32, i32, i32), i32>(
                "proxy_on_request_headers",
                (id as i32, request.len() as i32, 1),
            );
            total += started.elapsed();
            self.end_stream(id);
        }
        total
    }

    /// From now on the host has no `clear_route_cache` foreign function.
    pub fn lack_clear_route_cache(&mut self) {
        self.store.data_mut().lacks_clear_route_cache = true;
    }

    /// How often the filter asked the host to select a route again.
    pub fn route_cache_clears(&self) -> u64 {
        self.store.data().route_cache_clears
    }

    /// From now on the host refuses to replace or remove this request
    /// header, as a proxy may.
    pub fn refuse_header_writes(&mut self, name: &str) {
        self.store.data_mut().refused_header_writes.push(name.as_bytes().to_vec());
    }

    /// Every log line the filter wrote at or above the host's level.
    pub fn logs(&self) -> &[LogEntry] {
        &self.store.data().logs
    }

    /// The messages logged at exactly `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<String> {
        self.logs().iter().filter(|l| l.level == level).map(|l| l.message.clone()).collect()
    }

    pub fn clear_logs(&mut self) {
        self.store.data_mut().logs.clear();
    }

    /// All logs, one per line, for failure messages.
    pub fn log_text(&self) -> String {
        self.logs().iter().map(|l| format!("  [{:?}] {}", l.level, l.message)).collect::<Vec<_>>().join("\n")
    }

    /// Changes the proxy's log level (as `/logging?wasm=debug` does).
    pub fn set_log_level(&mut self, level: LogLevel) {
        self.store.data_mut().log_level = level;
    }

    /// Moves the fake clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.store.data_mut().now_ns += by.as_nanos() as u64;
    }

    /// The tick period the filter asked for (0: none).
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    /// Sets the fake wall clock (milliseconds since the Unix epoch).
    pub fn set_time_ms(&mut self, unix_ms: u64) {
        self.store.data_mut().now_ns = unix_ms * 1_000_000;
    }

    /// Advances the clock by the tick period the filter asked for, then
    /// delivers `on_tick`.
    pub fn tick(&mut self) {
        let period = self.store.data().tick_period_ms;
        assert!(period > 0, "the filter never set a tick period");
        self.advance(Duration::from_millis(u64::from(period)));
        self.store.data_mut().effective_context = ROOT_CONTEXT_ID;
        self.callback::<i32, ()>("proxy_on_tick", ROOT_CONTEXT_ID as i32, ());
    }

    /// Lets a second pass and delivers `on_tick`: the filter adds the
    /// counts it batched to the host's metrics (at most a second late).
    pub fn flush_metrics(&mut self) {
        self.advance(Duration::from_secs(1));
        self.store.data_mut().effective_context = ROOT_CONTEXT_ID;
        self.callback::<i32, ()>("proxy_on_tick", ROOT_CONTEXT_ID as i32, ());
    }

    /// The HTTP calls the filter dispatched and nobody answered yet.
    pub fn http_calls(&self) -> &[HttpCall] {
        &self.store.data().http_calls
    }

    /// Only these clusters exist for `proxy_http_call` (others: BadArgument).
    pub fn set_clusters(&mut self, clusters: &[&str]) {
        self.store.data_mut().clusters = Some(clusters.iter().map(|c| c.to_string()).collect());
    }

    /// Answers a dispatched call: `Some(status)` with that response, `None`
    /// as a failure (reset or timeout: no headers), delivered to the context
    /// that dispatched it.
    pub fn answer_http_call(&mut self, token: u32, status: Option<u16>) {
        self.answer_http_call_with_body(token, status, b"");
    }

    /// Like `answer_http_call`, with a response body (no body for a failure).
    pub fn answer_http_call_with_body(&mut self, token: u32, status: Option<u16>, body: &[u8]) {
        let state = self.store.data_mut();
        let index = state.http_calls.iter().position(|c| c.token == token).expect("no such pending call");
        let call = state.http_calls.remove(index);
        let headers = status.map(|s| HeaderMap::from_pairs([(":status".to_string(), s.to_string())]));
        let num_headers = headers.as_ref().map_or(0, HeaderMap::len) as i32;
        let body_size = if status.is_some() { body.len() } else { 0 };
        state.http_call_response = headers;
        state.http_call_body = status.map(|_| body.to_vec());
        state.effective_context = call.context_id;
        self.call::<(i32, i32, i32, i32, i32), ()>(
            "proxy_on_http_call_response",
            (call.context_id as i32, token as i32, num_headers, body_size as i32, 0),
        );
        let state = self.store.data_mut();
        state.http_call_response = None;
        state.http_call_body = None;
        state.effective_context = ROOT_CONTEXT_ID;
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.store.data().metrics
    }

    /// How many times the filter called `proxy_define_metric`: in Envoy
    /// each call keeps memory for good.
    pub fn metric_definitions(&self) -> usize {
        self.store.data().metric_ids.len()
    }

    pub fn metric(&self, name: &str) -> Option<u64> {
        let state = self.store.data();
        state.metric_index.get(name).and_then(|&i| state.metrics.get(i)).map(|m| m.value)
    }

    /// The guest's linear memory size in bytes.
    pub fn memory_size(&mut self) -> usize {
        let memory = self.instance.get_memory(&mut self.store, "memory").expect("guest exports memory");
        memory.data_size(&self.store)
    }

    /// What the guest wrote to stdout and stderr (Envoy logs these).
    pub fn stdio(&self) -> (String, String) {
        let state = self.store.data();
        (
            String::from_utf8_lossy(&state.stdout).into_owned(),
            String::from_utf8_lossy(&state.stderr).into_owned(),
        )
    }

    fn enter(&mut self, context_id: u32) -> &mut HostState {
        let state = self.store.data_mut();
        state.effective_context = context_id;
        state
    }

    fn stream(&self, id: u32) -> &Stream {
        &self.store.data().streams[&id]
    }

    /// Calls a callback as a proxy does: an export the module does not
    /// have is skipped and the proxy's default (`missing`) stands, as
    /// Envoy skips it. A module pays for each callback it exports.
    fn callback<P: WasmParams, R: WasmResults>(&mut self, name: &str, params: P, missing: R) -> R {
        if self.instance.get_export(&mut self.store, name).is_none() {
            return missing;
        }
        self.call(name, params)
    }

    /// Wasm instructions the guest ran so far (wasmtime's fuel): the work
    /// a request costs inside the VM, the same on every run and machine.
    pub fn guest_instructions(&self) -> u64 {
        self.store.data().guest_instructions
    }

    /// Wasm instructions per export so far (allocations the host makes
    /// during a callback count towards that callback).
    pub fn instructions_by_export(&self) -> &std::collections::BTreeMap<String, u64> {
        &self.store.data().instructions_by_export
    }

    /// How many times the proxy called into the guest so far: callbacks
    /// and memory allocations. Each costs about a microsecond in Envoy.
    pub fn guest_calls(&self) -> u64 {
        self.store.data().guest_calls
    }

    /// Calls a guest export. A trap fails the test with the guest's panic
    /// message (logged at critical level by its panic hook) and the wasm
    /// backtrace, and leaves the VM dead as a proxy would.
    fn call<P: WasmParams, R: WasmResults>(&mut self, name: &str, params: P) -> R {
        if let Some(why) = &self.dead {
            panic!("the VM is dead since an earlier trap:\n{why}");
        }
        let func = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .unwrap_or_else(|e| panic!("the filter's export `{name}` is missing or mistyped: {e:?}"));
        self.store.set_fuel(FUEL_PER_CALL).unwrap();
        self.store.data_mut().guest_calls += 1;
        let outcome = func.call(&mut self.store, params);
        let used = FUEL_PER_CALL - self.store.get_fuel().unwrap_or(0);
        let state = self.store.data_mut();
        state.guest_instructions += used;
        *state.instructions_by_export.entry(name.to_string()).or_default() += used;
        match outcome {
            Ok(result) => result,
            Err(err) => {
                let (_, stderr) = self.stdio();
                let why = format!(
                    "the guest trapped in {name}: {err:?}\nguest logs:\n{}\nguest stderr: {stderr}",
                    self.log_text()
                );
                self.dead = Some(why.clone());
                panic!("{why}");
            }
        }
    }
}

impl Proxy {
    /// Calls a no-argument export by name (harness self-tests only).
    pub fn call_for_test(&mut self, name: &str) {
        self.call::<(), ()>(name, ());
    }
}
