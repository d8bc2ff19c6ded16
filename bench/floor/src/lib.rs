//! A proxy-wasm filter that reads `:authority` and writes the target header:
//! one exported callback per request (plus the memory allocation the read
//! needs). What any wasm filter in Envoy costs at the least.
//!
//! Built with `--features callbacks`, it also exports the three callbacks
//! canary-router's features need, empty: context create (which root a
//! stream belongs to), response headers (cookies, rollback, response
//! counts) and delete (a stream's state freed). Five calls per request, as
//! canary-router makes: what those calls alone cost in Envoy (floor-5).
//!
//! With `--features callbacks,read-all` it reads every request header, as
//! canary-router does before it decides anything, and looks for the host in
//! them (floor-read): what any filter that reads the headers its rules
//! name pays. Reading five headers one by one costs the same in Envoy
//! 1.40 (measured), and would see only the first of repeated headers.

const REQUEST_HEADERS: u32 = 0;

#[cfg(feature = "serde")]
mod serde_config;

#[link(wasm_import_module = "env")]
extern "C" {
    #[cfg(not(feature = "read-all"))]
    fn proxy_get_header_map_value(map: u32, key: *const u8, key_len: usize, value: *mut *mut u8, value_len: *mut usize) -> u32;
    fn proxy_replace_header_map_value(map: u32, key: *const u8, key_len: usize, value: *const u8, value_len: usize) -> u32;
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    match std::alloc::Layout::array::<u8>(size.max(1)) {
        // SAFETY: a non-zero size; freed below as a Vec of this capacity.
        Ok(layout) => unsafe { std::alloc::alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Routes the request by the header the bench's routes read.
fn set_target(svc9: bool) {
    let target: &[u8] = if svc9 { b"svc9" } else { b"svc0" };
    let name = b"x-route-target";
    // SAFETY: both slices outlive the call; the host copies them.
    unsafe {
        proxy_replace_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), target.as_ptr(), target.len());
    }
}

#[cfg(feature = "read-all")]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

#[cfg(feature = "read-all")]
#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    let mut data = std::ptr::null_mut();
    let mut len = 0;
    // SAFETY: as below; the buffer holds the whole serialized map.
    unsafe {
        if proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut len) == 0 && !data.is_null() {
            let map = Vec::from_raw_parts(data, len, len.max(1));
            set_target(map.windows(5).any(|w| w == b"svc9."));
        }
    }
    0
}

#[cfg(not(feature = "read-all"))]
#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    let key = b":authority";
    let mut value = std::ptr::null_mut();
    let mut len = 0;
    // SAFETY: the host writes a buffer it allocated through
    // proxy_on_memory_allocate, which this function then frees.
    unsafe {
        if proxy_get_header_map_value(REQUEST_HEADERS, key.as_ptr(), key.len(), &mut value, &mut len) == 0 && !value.is_null() {
            let host = Vec::from_raw_parts(value, len, len.max(1));
            set_target(host.starts_with(b"svc9."));
        }
    }
    0
}

#[cfg(feature = "callbacks")]
#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_id: u32) {}

#[cfg(feature = "callbacks")]
#[no_mangle]
pub extern "C" fn proxy_on_response_headers(_context_id: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    0
}

#[cfg(feature = "callbacks")]
#[no_mangle]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}
