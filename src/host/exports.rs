//! The callbacks the proxy calls: the module's only exports. Envoy calls
//! an export on every stream whether or not it does anything, about a
//! microsecond each, so the module exports only what some config needs:
//! context create (a stream's root), request headers, request body (shadow
//! copies), response headers (cookies, rollback, response counts), delete
//! (a stream's state, never left behind), and the root's configure, tick
//! and HTTP-call answers. Not `on_done`, `on_log`, response bodies,
//! trailers or metadata: the proxy skips what a module does not export.
//!
//! This layer only keeps track of contexts: which root a stream belongs
//! to, and the per-stream state a decision asked to keep. Everything else
//! is `crate::filter`'s. It never holds its own state borrowed while the
//! filter runs, so a callback the host makes while the filter is calling
//! it (memory allocation does) finds the state consistent.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;

use log::warn;

use super::Abi;
use crate::filter::{self, Headers, Root, Stream, Vm};
use canary_router_core::hashing::hash::FastHasher;

/// proxy-wasm `Action`: go on, or stop (the filter answered the request).
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;

type ById<V> = HashMap<u32, V, BuildHasherDefault<FastHasher>>;

/// One stream: its root, and what its body and response still need.
struct Entry {
    root: Rc<Root>,
    state: Option<Box<Stream>>,
}

/// The contexts the proxy created in this VM.
struct Contexts {
    /// One per plugin config in this VM: usually one, two during a push.
    roots: Vec<(u32, Rc<Root>)>,
    streams: ById<Entry>,
    /// What every root of this VM shares (the proxy, metric ids, the
    /// shadow copies' budget).
    vm: Rc<Vm>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = RefCell::new(Contexts {
        roots: Vec::new(),
        streams: ById::default(),
        vm: Rc::new(Vm::new(Rc::new(Abi))),
    });
}

fn root(id: u32) -> Option<Rc<Root>> {
    CONTEXTS.with(|c| c.borrow().root(id))
}

impl Contexts {
    fn root(&self, id: u32) -> Option<Rc<Root>> {
        self.roots.iter().find(|(root, _)| *root == id).map(|(_, root)| root.clone())
    }

    fn new_root(&mut self, id: u32) -> Rc<Root> {
        let root = Rc::new(Root::new(id, self.vm.clone(), seed(id)));
        self.roots.push((id, root.clone()));
        root
    }
}

/// A per-VM seed for random splits. Proxies implement WASI `random_get`;
/// if one did not, the split would still follow its weights, only with a
/// predictable sequence.
fn seed(id: u32) -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        warn!("[ctx {id}] no host randomness; random splits use a fixed seed");
        0x5eed_0000_0000_0000 | u64::from(id)
    })
}

/// A stream's root and its state, taken out while the filter works on it.
fn take_stream(id: u32) -> Option<(Rc<Root>, Option<Box<Stream>>)> {
    CONTEXTS.with(|c| c.borrow_mut().streams.get_mut(&id).map(|e| (e.root.clone(), e.state.take())))
}

fn put_state(id: u32, state: Option<Box<Stream>>) {
    if state.is_none() {
        return;
    }
    CONTEXTS.with(|c| {
        if let Some(entry) = c.borrow_mut().streams.get_mut(&id) {
            entry.state = state;
        }
    });
}

extern "C" {
    /// The linker's function that runs static constructors.
    fn __wasm_call_ctors();
}

/// Called once by the proxy before any other export (a WASI reactor).
/// Calling the constructors here, as the proxy-wasm SDK does, is what
/// keeps the linker from treating the module as a command and wrapping
/// every export to run constructors before it and destructors after it
/// (WASI issue 471); `tests/harness_host.rs` pins that no export is wrapped.
#[no_mangle]
pub extern "C" fn _initialize() {
    // SAFETY: the linker's own function, called once, first.
    unsafe { __wasm_call_ctors() };
    super::install_logger();
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory for a buffer the host hands over; `host::take_host_buffer` owns
/// and frees it.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    super::allocate(size)
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    CONTEXTS.with(|c| {
        let mut contexts = c.borrow_mut();
        if parent_id == 0 {
            contexts.new_root(context_id);
        } else if let Some(root) = contexts.root(parent_id) {
            contexts.streams.insert(context_id, Entry { root, state: None });
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, configuration_size: usize) -> u32 {
    // A root is created with its context; one the host did not announce
    // starts here.
    let root = CONTEXTS.with(|c| {
        let mut contexts = c.borrow_mut();
        contexts.root(root_id).unwrap_or_else(|| contexts.new_root(root_id))
    });
    u32::from(filter::configure(&root, configuration_size))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    if let Some(root) = root(root_id) {
        filter::tick(&root);
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    if let Some(root) = root(root_id) {
        filter::http_call_answered(&root, token, num_headers, body_size);
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _num_headers: usize, end_of_stream: u32) -> u32 {
    let Some((root, _)) = take_stream(context_id) else { return CONTINUE };
    match filter::request_headers(&root, context_id, end_of_stream != 0) {
        Headers::Continue(state) => {
            put_state(context_id, state);
            CONTINUE
        }
        Headers::Refused => PAUSE,
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    if let Some((_, Some(mut state))) = take_stream(context_id) {
        let keep = state.request_body(body_size, end_of_stream != 0);
        put_state(context_id, keep.then_some(state));
    }
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(
    context_id: u32,
    _num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    if let Some((_, Some(mut state))) = take_stream(context_id) {
        let keep = state.response_headers();
        put_state(context_id, keep.then_some(state));
    }
    CONTINUE
}

/// A stream or a root is gone: its state goes with it (a shadow copy still
/// waiting for its body is dropped, and its budget given back).
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    let (stream, root, vm) = CONTEXTS.with(|c| {
        let mut contexts = c.borrow_mut();
        let vm = contexts.vm.clone();
        match contexts.streams.remove(&context_id) {
            Some(entry) => (entry.state, None, vm),
            None => {
                let at = contexts.roots.iter().position(|(root, _)| *root == context_id);
                (None, at.map(|at| contexts.roots.swap_remove(at).1), vm)
            }
        }
    });
    // Dropped here, outside the borrow: a root's last config flushes its
    // counters to the host as it goes.
    drop(stream);
    if root.is_some() {
        vm.root_deleted(context_id);
    }
    drop(root);
}
