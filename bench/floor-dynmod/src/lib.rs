//! An Envoy dynamic module that reads every request header, looks for the
//! host, writes the target header and has Envoy select the route again:
//! what any dynamic module doing canary-router's job pays in Envoy 1.40,
//! with none of canary-router's work (no config, no state per stream, no
//! counters). Every other hook Envoy resolves is exported, empty. Built
//! against the same ABI declarations as the module (crates/dynmod/src/abi.rs).

#![allow(dead_code, clippy::missing_safety_doc)]

#[path = "../../../crates/dynmod/src/abi.rs"]
mod abi;

use abi::*;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION.as_ptr()
}

/// Any non-null pointer: the floor keeps no config.
const SOMETHING: FilterConfigModulePtr = 1 as FilterConfigModulePtr;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _envoy: FilterConfigEnvoyPtr,
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> FilterConfigModulePtr {
    SOMETHING
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    _config: FilterConfigModulePtr,
    _envoy: FilterEnvoyPtr,
) -> FilterModulePtr {
    SOMETHING
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoyPtr,
    _filter: FilterModulePtr,
    _end_of_stream: bool,
) -> u32 {
    let empty = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };
    let count = envoy_dynamic_module_callback_http_get_headers_size(envoy, REQUEST_HEADERS);
    let mut headers = vec![EnvoyHeader { key: empty, value: empty }; count];
    let read = count > 0 && envoy_dynamic_module_callback_http_get_headers(envoy, REQUEST_HEADERS, headers.as_mut_ptr());
    let svc9 = read
        && headers.iter().any(|h| h.key.bytes() == b":authority" && h.value.bytes().starts_with(b"svc9."));
    let target: &[u8] = if svc9 { b"svc9" } else { b"svc0" };
    envoy_dynamic_module_callback_http_set_header(
        envoy,
        REQUEST_HEADERS,
        ModuleBuffer::of(b"x-route-target"),
        ModuleBuffer::of(target),
    );
    envoy_dynamic_module_callback_http_clear_route_cache(envoy);
    CONTINUE
}

macro_rules! empty {
    ($($name:ident($($arg:ty),*) -> $ret:ty = $value:expr;)*) => {
        $(
            #[no_mangle]
            pub extern "C" fn $name($(_: $arg),*) -> $ret {
                $value
            }
        )*
    };
}

empty! {
    envoy_dynamic_module_on_http_filter_config_destroy(FilterConfigModulePtr) -> () = ();
    envoy_dynamic_module_on_http_filter_destroy(FilterModulePtr) -> () = ();
    envoy_dynamic_module_on_http_filter_request_body(FilterEnvoyPtr, FilterModulePtr, bool) -> u32 = CONTINUE;
    envoy_dynamic_module_on_http_filter_request_trailers(FilterEnvoyPtr, FilterModulePtr) -> u32 = CONTINUE;
    envoy_dynamic_module_on_http_filter_response_headers(FilterEnvoyPtr, FilterModulePtr, bool) -> u32 = CONTINUE;
    envoy_dynamic_module_on_http_filter_response_body(FilterEnvoyPtr, FilterModulePtr, bool) -> u32 = CONTINUE;
    envoy_dynamic_module_on_http_filter_response_trailers(FilterEnvoyPtr, FilterModulePtr) -> u32 = CONTINUE;
    envoy_dynamic_module_on_http_filter_stream_complete(FilterEnvoyPtr, FilterModulePtr) -> () = ();
    envoy_dynamic_module_on_http_filter_local_reply(FilterEnvoyPtr, FilterModulePtr, u32, EnvoyBuffer, bool) -> u32 = CONTINUE;
    envoy_dynamic_module_on_http_filter_per_route_config_new(EnvoyBuffer, EnvoyBuffer) -> FilterConfigModulePtr = std::ptr::null();
    envoy_dynamic_module_on_http_filter_per_route_config_destroy(FilterConfigModulePtr) -> () = ();
    envoy_dynamic_module_on_http_filter_config_scheduled(FilterConfigEnvoyPtr, FilterConfigModulePtr, u64) -> () = ();
    envoy_dynamic_module_on_http_filter_config_http_callout_done(FilterConfigEnvoyPtr, FilterConfigModulePtr, u64, u32, *const EnvoyHeader, usize, *const EnvoyBuffer, usize) -> () = ();
    envoy_dynamic_module_on_http_filter_config_http_stream_complete() -> () = ();
    envoy_dynamic_module_on_http_filter_config_http_stream_data() -> () = ();
    envoy_dynamic_module_on_http_filter_config_http_stream_headers() -> () = ();
    envoy_dynamic_module_on_http_filter_config_http_stream_reset() -> () = ();
    envoy_dynamic_module_on_http_filter_config_http_stream_trailers() -> () = ();
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark() -> () = ();
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark() -> () = ();
    envoy_dynamic_module_on_http_filter_http_callout_done() -> () = ();
    envoy_dynamic_module_on_http_filter_http_stream_complete() -> () = ();
    envoy_dynamic_module_on_http_filter_http_stream_data() -> () = ();
    envoy_dynamic_module_on_http_filter_http_stream_headers() -> () = ();
    envoy_dynamic_module_on_http_filter_http_stream_reset() -> () = ();
    envoy_dynamic_module_on_http_filter_http_stream_trailers() -> () = ();
    envoy_dynamic_module_on_http_filter_scheduled() -> () = ();
}
