//! The proxy-wasm ABI 0.2.1, all of it the filter uses, in one module:
//! the host calls the filter makes (here, as the `Proxy` the glue asks
//! for), and the callbacks it exports (`exports`). The only `unsafe` code
//! of the crate. No SDK: an SDK's context machinery costs every request a
//! crossing for each callback it exports, used or not, and its wrappers
//! `panic!` on statuses they do not expect and parse header names as UTF-8
//! with `unwrap`; a panic aborts the VM and Envoy then answers 503 on that
//! worker. These wrappers report every failure as a value instead.

pub mod exports;

use std::ptr::null_mut;

use crate::filter::{LocalReply, MetricKind, Proxy, SharedWrite, Status};

/// Status codes of the ABI (only the ones this filter distinguishes).
const STATUS_OK: u32 = 0;
const STATUS_NOT_FOUND: u32 = 1;
const STATUS_CAS_MISMATCH: u32 = 8;

/// Header map types.
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;
const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
/// Buffer types.
const REQUEST_BODY: u32 = 0;
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
const PLUGIN_CONFIGURATION: u32 = 7;
/// Metric types.
const METRIC_COUNTER: u32 = 0;
const METRIC_GAUGE: u32 = 1;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        return_results_data: *mut *mut u8,
        return_results_size: *mut usize,
    ) -> u32;
}

/// `Ok` or the status the host answered.
fn checked(status: u32) -> Result<(), Status> {
    if status == STATUS_OK {
        Ok(())
    } else {
        Err(Status(status))
    }
}

/// Memory for a buffer the host writes into our memory
/// (`proxy_on_memory_allocate`), later owned by `take_host_buffer`.
pub fn allocate(size: usize) -> *mut u8 {
    if size == 0 {
        return std::ptr::NonNull::<u8>::dangling().as_ptr();
    }
    match std::alloc::Layout::array::<u8>(size) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc(layout) },
        Err(_) => null_mut(),
    }
}

/// Takes ownership of a buffer the host allocated in our memory through
/// `proxy_on_memory_allocate` (`allocate`: exactly `size` bytes, the layout
/// a `Vec<u8>` of that capacity has).
///
/// # Safety
/// `data` must be null or come from the host with this `size`.
unsafe fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    Vec::from_raw_parts(data, size, size)
}

/// `size` bytes from `start` of a buffer of the host's (`buffer_type`), or
/// an empty one if it has none.
fn buffer(buffer_type: u32, start: usize, size: usize) -> Result<Vec<u8>, Status> {
    let mut data = null_mut();
    let mut len = 0;
    // SAFETY: the host writes a pointer/size pair it allocated for us.
    match unsafe { proxy_get_buffer_bytes(buffer_type, start, size, &mut data, &mut len) } {
        STATUS_OK => Ok(unsafe { take_host_buffer(data, len) }),
        STATUS_NOT_FOUND => Ok(Vec::new()),
        status => Err(Status(status)),
    }
}

fn header_value(map_type: u32, name: &str) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: the host writes a pointer/size pair it allocated for us.
    match unsafe { proxy_get_header_map_value(map_type, name.as_ptr(), name.len(), &mut data, &mut size) } {
        STATUS_OK => Some(unsafe { take_host_buffer(data, size) }),
        _ => None,
    }
}

fn write_log(level: u32, message: &str) {
    // SAFETY: the slice outlives the call. A failed log has nowhere to go.
    unsafe {
        proxy_log(level, message.as_ptr(), message.len());
    }
}

struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        write_log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Routes `log` to the host, and a panic (which would abort the VM) to the
/// host's log at critical level so its cause is never lost.
pub fn install_logger() {
    // Fails only if a logger is already set, which then keeps working.
    let _ = log::set_logger(&LOGGER);
    // The host's own level is read at configure time; until then, Info.
    log::set_max_level(log::LevelFilter::Info);
    std::panic::set_hook(Box::new(|info| write_log(5, &format!("canary-router panicked: {info}"))));
}

/// The proxy-wasm host, as the glue's `Proxy`.
pub struct Abi;

impl Proxy for Abi {
    fn log_level(&self) -> log::LevelFilter {
        let mut level = 2;
        // SAFETY: the host writes one u32.
        let status = unsafe { proxy_get_log_level(&mut level) };
        if status != STATUS_OK {
            return log::LevelFilter::Info;
        }
        match level {
            0 => log::LevelFilter::Trace,
            1 => log::LevelFilter::Debug,
            2 => log::LevelFilter::Info,
            3 => log::LevelFilter::Warn,
            4 => log::LevelFilter::Error,
            _ => log::LevelFilter::Off,
        }
    }

    /// 0 if the host cannot say, which only keeps ramps before their start.
    fn now_ms(&self) -> u64 {
        let mut nanos = 0;
        // SAFETY: the host writes one u64.
        match unsafe { proxy_get_current_time_nanoseconds(&mut nanos) } {
            STATUS_OK => nanos / 1_000_000,
            _ => 0,
        }
    }

    fn set_tick_period_ms(&self, period: u32) {
        // SAFETY: a plain value.
        unsafe {
            proxy_set_tick_period_milliseconds(period);
        }
    }

    fn plugin_configuration(&self, start: usize, length: usize) -> Result<Vec<u8>, Status> {
        buffer(PLUGIN_CONFIGURATION, start, length)
    }

    fn request_header_map(&self) -> Result<Vec<u8>, Status> {
        let mut data = null_mut();
        let mut size = 0;
        // SAFETY: the host writes a pointer/size pair it allocated for us.
        match unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size) } {
            STATUS_OK => Ok(unsafe { take_host_buffer(data, size) }),
            status => Err(Status(status)),
        }
    }

    fn replace_request_header(&self, name: &str, value: &[u8]) -> Result<(), Status> {
        // SAFETY: both slices outlive the call; the host copies them.
        checked(unsafe {
            proxy_replace_header_map_value(
                REQUEST_HEADERS,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn remove_request_header(&self, name: &str) -> Result<(), Status> {
        // SAFETY: the slice outlives the call; the host copies it.
        checked(unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) })
    }

    fn send_local_reply(&self, reply: &LocalReply<'_>) -> Result<(), Status> {
        let (details, body, headers) =
            (reply.details, reply.body, canary_router_core::request::header_map::EMPTY);
        // SAFETY: every slice outlives the call; the host copies them.
        checked(unsafe {
            proxy_send_local_response(
                reply.status,
                details.as_ptr(),
                details.len(),
                body.as_ptr(),
                body.len(),
                headers.as_ptr(),
                headers.len(),
                -1,
            )
        })
    }

    fn request_body(&self, size: usize) -> Result<Vec<u8>, Status> {
        buffer(REQUEST_BODY, 0, size)
    }

    fn response_status(&self) -> Option<Vec<u8>> {
        header_value(RESPONSE_HEADERS, ":status")
    }

    fn add_response_header(&self, name: &str, value: &str) -> Result<(), Status> {
        // SAFETY: both slices outlive the call; the host copies them.
        checked(unsafe {
            proxy_add_header_map_value(
                RESPONSE_HEADERS,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, Status> {
        let metric_type = match kind {
            MetricKind::Counter => METRIC_COUNTER,
            MetricKind::Gauge => METRIC_GAUGE,
        };
        let mut id = 0;
        // SAFETY: the slice outlives the call; the host writes one u32.
        checked(unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) }).map(|()| id)
    }

    /// A failed increment loses counts, nothing more.
    fn increment_metric(&self, id: u32, by: u64) {
        // SAFETY: plain values.
        unsafe {
            proxy_increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }

    fn record_metric(&self, id: u32, value: u64) {
        // SAFETY: plain values.
        unsafe {
            proxy_record_metric(id, value);
        }
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let mut data = null_mut();
        let mut size = 0;
        let mut cas = 0;
        // SAFETY: the host writes a pointer/size pair it allocated for us, and a u32.
        match unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) } {
            STATUS_OK => Some((unsafe { take_host_buffer(data, size) }, cas)),
            _ => None,
        }
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        // SAFETY: both slices outlive the call; the host copies them.
        match unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) } {
            STATUS_OK => SharedWrite::Written,
            STATUS_CAS_MISMATCH => SharedWrite::Conflict,
            _ => SharedWrite::Failed,
        }
    }

    /// `headers` is a serialized header map (`header_map::serialize`), so
    /// header bytes that are not UTF-8 go out as they came in.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[u8],
        body: &[u8],
        timeout_ms: u32,
    ) -> Result<u32, Status> {
        let no_trailers = canary_router_core::request::header_map::EMPTY;
        let mut token = 0;
        // SAFETY: every slice outlives the call; the host copies them and
        // writes one u32.
        checked(unsafe {
            proxy_http_call(
                cluster.as_ptr(),
                cluster.len(),
                headers.as_ptr(),
                headers.len(),
                body.as_ptr(),
                body.len(),
                no_trailers.as_ptr(),
                no_trailers.len(),
                timeout_ms,
                &mut token,
            )
        })
        .map(|()| token)
    }

    fn http_call_status(&self) -> Option<Vec<u8>> {
        header_value(HTTP_CALL_RESPONSE_HEADERS, ":status")
    }

    fn http_call_body(&self, size: usize) -> Result<Vec<u8>, Status> {
        buffer(HTTP_CALL_RESPONSE_BODY, 0, size)
    }

    fn clear_route_cache(&self) -> Result<(), Status> {
        const NAME: &str = "clear_route_cache";
        let mut data = null_mut();
        let mut size = 0;
        // SAFETY: the name outlives the call; a result the host allocated
        // for us is taken back and freed.
        let status = unsafe {
            proxy_call_foreign_function(NAME.as_ptr(), NAME.len(), NAME.as_ptr(), 0, &mut data, &mut size)
        };
        if !data.is_null() {
            drop(unsafe { take_host_buffer(data, size) });
        }
        checked(status)
    }
}
