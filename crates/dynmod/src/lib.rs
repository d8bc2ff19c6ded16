//! canary-router as an Envoy dynamic module: the same JSON config and the
//! same decisions (`canary-router-core`), called by Envoy as functions in
//! its own process instead of through a wasm VM.
//!
//! All of it: routing (rules, splits, sticky keys, assignment cookies, the
//! target header written or, when no route applies, removed), the
//! counters and gauges, rollbacks by each proxy's local window, by the
//! comparison with the baseline and by the fleet through Prometheus, ramps
//! by the clock or gated, and shadow copies. Every hook catches a panic at
//! the boundary: a panic here would be the proxy's crash.

mod abi;
mod batch;
mod clock;
mod compare;
mod counters;
mod family;
mod flag;
mod fleet;
mod gates;
mod gauges;
mod ramps;
mod roll;
mod rollback;
mod scheduler;
mod shadows;
mod split_states;
mod ticker;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi::*;
use batch::{ConfigStr, Series};
use canary_router_core::config;
use canary_router_core::request::Request;
use canary_router_core::rollout::compare::{arm_of, WatchedArm};
use canary_router_core::rollout::log_lines;
use canary_router_core::rollout::metrics::{status_class, SERVER_ERROR};
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::Moment;
use canary_router_core::routing::split::SplitId;

/// A hook's body, with a panic turned into `fallback`.
fn guarded<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION.as_ptr()
}

/// One filter config: compiled once on Envoy's main thread, shared by
/// every worker's streams (a `Router` is only read).
struct FilterConfig {
    router: Router,
    counters: counters::Counters,
    splits: split_states::Splits,
    gauges: gauges::Gauges,
    shadows: Option<shadows::Shadows>,
    ramps: Option<ramps::Ramps>,
    compares: Option<compare::Compares>,
    fleet: Option<fleet::Fleet>,
    /// Held for its life: dropping it stops its thread.
    _ticker: Option<ticker::Ticker>,
}

impl FilterConfig {
    /// Adds shadow outcomes not counted yet (from a stream's hook).
    fn flush_shadows(&self, envoy: FilterEnvoyPtr) {
        if let Some(shadows) = &self.shadows {
            shadows.flush(&mut |route, outcomes| self.counters.shadows(envoy, &self.router, route, outcomes));
        }
    }

    /// Gives Envoy, from a stream, what changed where no stream is (each
    /// part's gauges are set only when marked changed).
    fn show_state(&self, envoy: FilterEnvoyPtr, now_ms: u64) {
        let (router, splits) = (&self.router, &self.splits);
        self.gauges.show(envoy, router, splits, now_ms);
        if let Some(ramps) = &self.ramps {
            ramps.publish(envoy, router, splits, now_ms);
        }
        if let Some(compares) = &self.compares {
            compares.show(envoy, router, splits);
        }
        if let Some(fleet) = &self.fleet {
            fleet.show(envoy, router, splits, now_ms);
            for &route in fleet.routes_to_show_at_zero() {
                self.counters.show_zeros(router, route);
            }
        }
    }

    /// A stream's copy is whole: queued, or counted as skipped.
    fn finish_shadow(&self, copy: shadows::Assembling) {
        if let Some(shadows) = &self.shadows {
            shadows.finish(copy, &self.router.target_header);
        }
    }
}

/// # Safety
/// Envoy passes buffers valid for this call.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: FilterConfigEnvoyPtr,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> FilterConfigModulePtr {
    // SAFETY: valid for this call, as the ABI says.
    let json = unsafe { config.bytes() };
    guarded(std::ptr::null(), || {
        let refused = |why: &dyn std::fmt::Display| {
            eprintln!("canary-router: config rejected: {why}");
            std::ptr::null()
        };
        let router = match config::parse(json) {
            Ok(router) => router,
            Err(err) => return refused(&err),
        };
        eprintln!("{}", log_lines::config_accepted(router.routes.len(), &router.target_header));
        let counters = counters::Counters::define(envoy, &router);
        let splits = split_states::Splits::of(&router);
        let gauges = gauges::Gauges::define(envoy, &router, &splits);
        let ramps = ramps::Ramps::define(envoy, &router);
        let compares = compare::Compares::define(envoy, &router);
        let fleet = fleet::Fleet::define(envoy, &router);
        fleet::log_waiting(&router, &splits);
        let mirrors = router.routes.iter().any(|r| r.mirror.is_some());
        let ticks = ramps.is_some() || compares.is_some() || fleet.is_some();
        let scheduler = (mirrors || ticks).then(|| scheduler::Scheduler::new(envoy)).flatten().map(Arc::new);
        let shadows = shadows::Shadows::of(envoy, &router, scheduler.as_ref());
        let ticker = scheduler.filter(|_| ticks).and_then(ticker::Ticker::start);
        let config = FilterConfig {
            router,
            counters,
            splits,
            gauges,
            shadows,
            ramps,
            compares,
            fleet,
            _ticker: ticker,
        };
        Box::into_raw(Box::new(config)) as FilterConfigModulePtr
    })
}

/// # Safety
/// `config` is what `config_new` returned, destroyed once.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: FilterConfigModulePtr) {
    if !config.is_null() {
        // SAFETY: from `Box::into_raw` in `config_new`, given back once.
        drop(unsafe { Box::from_raw(config as *mut FilterConfig) });
    }
}

/// A stream's filter: which config it routes by, and what its response
/// needs from the request's decision.
struct Filter {
    config: *const FilterConfig,
    /// The route's position and the target, when responses are counted.
    routed: Option<(u32, ConfigStr)>,
    /// The assignment cookie to set on the response.
    set_cookie: Option<String>,
    /// A request to a rollback's target, until its response is counted.
    watched: Option<Watched>,
    /// A shadow copy waiting for the rest of the request body.
    shadow: Option<shadows::Assembling>,
}

/// A request whose response a rollback's window counts.
struct Watched {
    split: SplitId,
    arm: WatchedArm,
    /// The ramp step it was sent at.
    step: u32,
    /// When the request was sent whole (ms since the epoch).
    sent_ms: u64,
    abandoned_after_ms: u64,
}

impl Filter {
    /// # Safety
    /// `filter` is what `filter_new` returned, not destroyed yet.
    unsafe fn of<'a>(filter: FilterModulePtr) -> Option<&'a mut Filter> {
        // SAFETY: the caller's promise; Envoy runs one hook of a stream
        // at a time, so the borrow is the only one.
        unsafe { (filter as *mut Filter).as_mut() }
    }

    /// The stream's filter and its config, as a hook starts.
    ///
    /// # Safety
    /// As `of`.
    unsafe fn with_config<'a>(filter: FilterModulePtr) -> Option<(&'a mut Filter, &'a FilterConfig)> {
        // SAFETY: the caller's promise.
        let filter = unsafe { Filter::of(filter) }?;
        let config = filter.config()?;
        Some((filter, config))
    }

    /// Not borrowed from the filter: the config outlives it.
    fn config<'c>(&self) -> Option<&'c FilterConfig> {
        // SAFETY: Envoy keeps a config alive while a stream made from it is.
        unsafe { self.config.as_ref() }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: FilterConfigModulePtr,
    _envoy: FilterEnvoyPtr,
) -> FilterModulePtr {
    let filter = Filter {
        config: config as *const FilterConfig,
        routed: None,
        set_cookie: None,
        watched: None,
        shadow: None,
    };
    Box::into_raw(Box::new(filter)) as FilterModulePtr
}

/// # Safety
/// `filter` is what `filter_new` returned, destroyed once.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: FilterModulePtr) {
    if !filter.is_null() {
        // SAFETY: from `Box::into_raw` in `filter_new`, given back once.
        let mut filter = unsafe { Box::from_raw(filter as *mut Filter) };
        let shadows = filter.config().and_then(|c| c.shadows.as_ref());
        if let (Some(copy), Some(shadows)) = (filter.shadow.take(), shadows) {
            shadows.abandon(copy);
        }
    }
}

/// # Safety
/// Envoy's pointers are valid for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoyPtr,
    filter: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy's pointer, from `filter_new`, for this stream's hook.
    let Some((filter, config)) = (unsafe { Filter::with_config(filter) }) else { return CONTINUE };
    let (router, counters) = (&config.router, &config.counters);
    config.flush_shadows(envoy);
    // A panic deciding is taken as no route applying: the header is
    // removed, so a client's own never picks the upstream.
    let target = guarded(None, || {
        // SAFETY: Envoy's map, valid for this hook; nothing is set before
        // the decision is made.
        let request = Request::new(unsafe { request_headers(envoy) });
        // The decision borrows the config, which outlives the request.
        let now_ms = clock::now_ms();
        config.show_state(envoy, now_ms);
        let moment = Moment { roll: roll::roll(), now_ms, splits: &config.splits };
        let decision = router.decide(&request, &moment);
        match &decision {
            Some(d) => {
                let route = u32::try_from(d.route_index).unwrap_or(u32::MAX);
                let decided = match d.rule_index {
                    Some(rule) => Series::RuleHit { route, rule: u32::try_from(rule).unwrap_or(u32::MAX) },
                    None => Series::Default { route },
                };
                let request_series = Series::Request { route, target: ConfigStr::of(d.target) };
                if counters.counts_responses() {
                    counters.show_zeros(router, d.route_index);
                    filter.routed = Some((route, ConfigStr::of(d.target)));
                }
                if request.regex_skipped() > 0 {
                    counters.count(
                        envoy,
                        router,
                        now_ms,
                        &[request_series, decided, Series::RegexSkipped { route }],
                    );
                } else {
                    counters.count(envoy, router, now_ms, &[request_series, decided]);
                }
                filter.set_cookie = d.assign_cookie().map(|c| c.set_cookie(d.target));
                let mirror = router.routes.get(d.route_index).and_then(|r| r.mirror.as_ref());
                if let (Some(shadows), true) =
                    (&config.shadows, mirror.is_some_and(|m| m.selects(roll::roll())))
                {
                    // The request's headers as read for the decision: nothing
                    // is set before the copy is taken.
                    filter.shadow =
                        shadows.start(d.route_index, request.headers(), d.target, &router.target_header);
                    if end_of_stream {
                        if let Some(copy) = filter.shadow.take() {
                            config.finish_shadow(copy);
                        }
                    }
                }
                filter.watched = d.split.and_then(|split| {
                    let rollback = split.rollback()?;
                    let arm = arm_of(rollback, d.target)?;
                    let abandoned_after_ms = rollback.window.as_ref()?.abandoned_after_ms;
                    let sent_ms = now_ms;
                    let gated = config.splits.get(split.id).and_then(|s| s.gated_step());
                    let step = split.ramp().and_then(|r| r.step_in_force(gated, sent_ms)).unwrap_or(0);
                    let step = u32::try_from(step).unwrap_or(u32::MAX);
                    Some(Watched { split: split.id, arm, step, sent_ms, abandoned_after_ms })
                });
            }
            None => counters.count(envoy, router, now_ms, &[Series::Unrouted]),
        }
        decision.map(|d| d.target)
    });
    let name = ModuleBuffer::of(router.target_header.as_bytes());
    let value = target.map_or_else(ModuleBuffer::null, |t| ModuleBuffer::of(t.as_bytes()));
    // SAFETY: Envoy's filter pointer, valid for this hook; our buffers
    // outlive the calls.
    unsafe {
        envoy_dynamic_module_callback_http_set_header(envoy, REQUEST_HEADERS, name, value);
        if router.clear_route_cache {
            envoy_dynamic_module_callback_http_clear_route_cache(envoy);
        }
    }
    CONTINUE
}

/// Counts the response by its status class; sets the assignment cookie.
///
/// # Safety
/// Envoy's pointers are valid for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterEnvoyPtr,
    filter: FilterModulePtr,
    _end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy's pointer, from `filter_new`, for this stream's hook.
    let Some((filter, config)) = (unsafe { Filter::with_config(filter) }) else { return CONTINUE };
    if let Some((route, target)) = filter.routed.take() {
        guarded((), || {
            // SAFETY: Envoy's filter pointer, for this hook.
            let class = unsafe { response_status(envoy) }.and_then(status_class);
            if let Some(class) = class.and_then(|c| u8::try_from(c).ok()) {
                let series = Series::Response { route, target, class };
                config.counters.count(envoy, &config.router, clock::now_ms(), &[series]);
            }
        });
    }
    if let Some(watched) = filter.watched.take() {
        guarded((), || {
            // SAFETY: Envoy's filter pointer, for this hook.
            let class = unsafe { response_status(envoy) }.and_then(status_class);
            let now_ms = clock::now_ms();
            let answered = rollback::Answered {
                arm: watched.arm,
                error: class == Some(SERVER_ERROR),
                latency_ms: Some(now_ms.saturating_sub(watched.sent_ms)),
                step: watched.step,
            };
            record(envoy, config, &watched, &answered, now_ms);
        });
    }
    if let Some(cookie) = filter.set_cookie.take() {
        // SAFETY: Envoy's filter pointer, for this hook; the buffers
        // outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_add_header(
                envoy,
                RESPONSE_HEADERS,
                ModuleBuffer::of(b"set-cookie"),
                ModuleBuffer::of(cookie.as_bytes()),
            );
        }
    }
    CONTINUE
}

/// The response's `:status`, borrowed from Envoy's map.
///
/// # Safety
/// `envoy` is the filter pointer of the running hook.
unsafe fn response_status<'a>(envoy: FilterEnvoyPtr) -> Option<&'a [u8]> {
    let mut value = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
    // SAFETY: the caller's promise; `value` is ours to write.
    let found = unsafe {
        envoy_dynamic_module_callback_http_get_header(
            envoy,
            RESPONSE_HEADERS,
            ModuleBuffer::of(b":status"),
            &mut value,
            0,
            std::ptr::null_mut(),
        )
    };
    // SAFETY: Envoy's bytes, valid until the hook ends.
    found.then(|| unsafe { value.bytes() }).filter(|v| !v.is_empty())
}

/// The request's headers (name, value), borrowed from Envoy's map.
///
/// # Safety
/// `envoy` is the filter pointer of the running hook; the slices are valid
/// until it ends or a header is set.
unsafe fn request_headers<'a>(envoy: FilterEnvoyPtr) -> Vec<(&'a [u8], &'a [u8])> {
    let empty = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
    // SAFETY: the caller's promise; the array has room for every header
    // Envoy says it has.
    unsafe {
        let count = envoy_dynamic_module_callback_http_get_headers_size(envoy, REQUEST_HEADERS);
        let mut raw = vec![EnvoyHeader { key: empty, value: empty }; count];
        if count == 0
            || !envoy_dynamic_module_callback_http_get_headers(envoy, REQUEST_HEADERS, raw.as_mut_ptr())
        {
            return Vec::new();
        }
        raw.iter().map(|h| (h.key.bytes(), h.value.bytes())).collect()
    }
}

macro_rules! pass {
    ($name:ident $(, $arg:ty)*) => {
        #[no_mangle]
        pub extern "C" fn $name(_envoy: FilterEnvoyPtr, _filter: FilterModulePtr $(, _: $arg)*) -> u32 {
            CONTINUE
        }
    };
}

/// The request is sent whole: a watched request's latency counts from here.
///
/// # Safety
/// Envoy's pointers are valid for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterEnvoyPtr,
    filter: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy's pointer, from `filter_new`, for this stream's hook.
    let Some((filter, config)) = (unsafe { Filter::with_config(filter) }) else { return CONTINUE };
    if end_of_stream {
        if let Some(watched) = filter.watched.as_mut() {
            watched.sent_ms = clock::now_ms();
        }
    }
    let Some(copy) = filter.shadow.take() else { return CONTINUE };
    guarded((), || {
        let Some(shadows) = &config.shadows else { return };
        let max_body_bytes = config
            .router
            .routes
            .get(copy.route())
            .and_then(|r| r.mirror.as_ref())
            .map_or(0, |m| m.max_body_bytes);
        let mut copy = Some(copy);
        // SAFETY: Envoy's filter pointer; the chunks are valid for this hook.
        for chunk in unsafe { request_body_chunks(envoy) } {
            copy = copy.and_then(|c| shadows.grow(c, chunk, max_body_bytes));
        }
        match copy {
            Some(copy) if end_of_stream => config.finish_shadow(copy),
            copy => filter.shadow = copy,
        }
        config.flush_shadows(envoy);
    });
    CONTINUE
}

/// The request body chunks this hook received, borrowed from Envoy.
///
/// # Safety
/// `envoy` is the filter pointer of the running hook.
unsafe fn request_body_chunks<'a>(envoy: FilterEnvoyPtr) -> Vec<&'a [u8]> {
    // SAFETY: the caller's promise; the array has room for every chunk
    // Envoy says it has.
    unsafe {
        let count = envoy_dynamic_module_callback_http_get_body_chunks_size(envoy, RECEIVED_REQUEST_BODY);
        let mut chunks = vec![EnvoyBuffer { ptr: std::ptr::null(), length: 0 }; count];
        if count == 0
            || !envoy_dynamic_module_callback_http_get_body_chunks(
                envoy,
                RECEIVED_REQUEST_BODY,
                chunks.as_mut_ptr(),
            )
        {
            return Vec::new();
        }
        chunks.iter().map(|c| c.bytes()).collect()
    }
}
pass!(envoy_dynamic_module_on_http_filter_request_trailers);
pass!(envoy_dynamic_module_on_http_filter_response_body, bool);
pass!(envoy_dynamic_module_on_http_filter_response_trailers);

/// The stream is done. A watched request that never got its response
/// headers waited for nothing: once it waited `abandonedAfterMs`, it is a
/// failure of the target and that wait a latency sample (a canary that
/// hangs is seen); a client that gave up sooner says nothing either way.
///
/// # Safety
/// Envoy's pointers are valid for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: FilterEnvoyPtr,
    filter: FilterModulePtr,
) {
    // SAFETY: Envoy's pointer, from `filter_new`, for this stream's hook.
    let Some((filter, config)) = (unsafe { Filter::with_config(filter) }) else { return };
    let Some(watched) = filter.watched.take() else { return };
    guarded((), || {
        let now_ms = clock::now_ms();
        let waited = now_ms.saturating_sub(watched.sent_ms);
        if waited >= watched.abandoned_after_ms {
            eprintln!("canary-router: the request to a watched target ended unanswered after {waited} ms: a failure");
            let answered = rollback::Answered {
                arm: watched.arm,
                error: true,
                latency_ms: Some(waited),
                step: watched.step,
            };
            record(envoy, config, &watched, &answered, now_ms);
        }
    });
}

/// Counts a watched response; if it rolled the split back, says so as the
/// `.wasm` does and shows it in the gauges.
fn record(
    envoy: FilterEnvoyPtr,
    config: &FilterConfig,
    watched: &Watched,
    answered: &rollback::Answered,
    now_ms: u64,
) {
    let Some((route, _, split)) = config.router.split(watched.split) else { return };
    let Some(shared) = config.splits.get(watched.split) else { return };
    let Some(rolled) = rollback::record(split, shared, answered, now_ms) else { return };
    rollback::log(&route.name, split, &rolled);
    config.gauges.split(envoy, &config.router, &config.splits, watched.split, Some(&rolled), now_ms);
}

/// A local reply goes out as Envoy made it.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: FilterEnvoyPtr,
    _filter: FilterModulePtr,
    _response_code: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> u32 {
    CONTINUE
}

/// No per-route config: a route that names one is refused.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> FilterConfigModulePtr {
    std::ptr::null()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _config: FilterConfigModulePtr,
) {
}

/// Hooks Envoy resolves but this module never starts what calls them
/// (callouts, streams, schedulers, watermarks of terminal filters).
macro_rules! never_called {
    ($($name:ident),*) => {
        $(
            #[no_mangle]
            pub extern "C" fn $name() {}
        )*
    };
}

/// On the main thread: sends the queued shadow copies, or ticks.
///
/// # Safety
/// `config` is what `config_new` returned, alive.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _envoy: FilterConfigEnvoyPtr,
    config: FilterConfigModulePtr,
    event: u64,
) {
    // SAFETY: the caller's promise.
    let Some(config) = (unsafe { (config as *const FilterConfig).as_ref() }) else { return };
    guarded((), || match (event, &config.shadows, &config.ramps) {
        (scheduler::SEND_SHADOWS, Some(shadows), _) => shadows.send_all(&|route| {
            let mirror = config.router.routes.get(route)?.mirror.as_ref()?;
            Some((mirror.cluster.clone(), mirror.timeout_ms))
        }),
        (scheduler::TICK, _, _) => {
            let now_ms = clock::now_ms();
            let mut rollbacks = false;
            if let Some(ramps) = &config.ramps {
                ramps.tick(&config.router, now_ms);
                let changed = gates::tick(&config.router, &config.splits, now_ms);
                if changed.steps || changed.rollbacks {
                    ramps.mark();
                }
                rollbacks |= changed.rollbacks;
            }
            if let Some(compares) = &config.compares {
                rollbacks |= compares.tick(&config.router, &config.splits, now_ms);
            }
            if let Some(fleet) = &config.fleet {
                fleet.tick(&config.router, &config.splits, now_ms);
            }
            // A ramp's live weights move with time.
            if rollbacks || config.ramps.is_some() {
                config.gauges.mark();
            }
        }
        _ => {}
    });
}

/// On the main thread: a shadow copy's answer, counted and ignored.
///
/// # Safety
/// `config` is what `config_new` returned, alive; Envoy's buffers are
/// valid for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _envoy: FilterConfigEnvoyPtr,
    config: FilterConfigModulePtr,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    header_count: usize,
    body: *const EnvoyBuffer,
    body_count: usize,
) {
    // SAFETY: the caller's promise.
    let Some(config) = (unsafe { (config as *const FilterConfig).as_ref() }) else { return };
    guarded((), || {
        let headers = if headers.is_null() || header_count == 0 {
            &[][..]
        } else {
            // SAFETY: Envoy's array of `header_count` headers, valid for this hook.
            unsafe { std::slice::from_raw_parts(headers, header_count) }
        };
        // SAFETY: Envoy's buffers, valid for this hook.
        let status = headers
            .iter()
            .find(|h| unsafe { h.key.bytes() } == b":status")
            .map(|h| unsafe { h.value.bytes() });
        if let Some(fleet) = &config.fleet {
            let chunks = if body.is_null() || body_count == 0 {
                &[][..]
            } else {
                // SAFETY: Envoy's array of `body_count` buffers, valid for this hook.
                unsafe { std::slice::from_raw_parts(body, body_count) }
            };
            // SAFETY: Envoy's buffers, valid for this hook.
            let chunks: Vec<&[u8]> = chunks.iter().map(|c| unsafe { c.bytes() }).collect();
            let code = status.filter(|_| result == CALLOUT_SUCCESS).and_then(|s| std::str::from_utf8(s).ok());
            let code = code.and_then(|s| s.parse().ok());
            if fleet.answered(&config.router, &config.splits, callout_id, code, &chunks) {
                // A poll may have rolled a split back or cleared its latch.
                config.gauges.mark();
                return;
            }
        }
        if let Some(shadows) = &config.shadows {
            shadows.answered(callout_id, result == CALLOUT_SUCCESS, status);
        }
    });
}

never_called!(
    envoy_dynamic_module_on_http_filter_config_http_stream_complete,
    envoy_dynamic_module_on_http_filter_config_http_stream_data,
    envoy_dynamic_module_on_http_filter_config_http_stream_headers,
    envoy_dynamic_module_on_http_filter_config_http_stream_reset,
    envoy_dynamic_module_on_http_filter_config_http_stream_trailers,
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark,
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark,
    envoy_dynamic_module_on_http_filter_http_callout_done,
    envoy_dynamic_module_on_http_filter_http_stream_complete,
    envoy_dynamic_module_on_http_filter_http_stream_data,
    envoy_dynamic_module_on_http_filter_http_stream_headers,
    envoy_dynamic_module_on_http_filter_http_stream_reset,
    envoy_dynamic_module_on_http_filter_http_stream_trailers,
    envoy_dynamic_module_on_http_filter_scheduled
);
