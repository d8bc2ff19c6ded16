//! An in-memory `Proxy` for the glue's native tests: a clock the test
//! moves, one request and response at a time, metrics by name, HTTP calls
//! the test answers, and shared data with compare-and-swap tags that
//! several VMs (several `FakeProxy`s) can share, as one proxy's workers
//! do. It behaves as Envoy does where the glue depends on it: every
//! `define_metric` hands out a new id, a CAS write with a stale tag is a
//! conflict, and a call to an unknown cluster is refused.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::proxy::{LocalReply, MetricKind, Proxy, SharedWrite, Status};
use canary_router_core::request::header_map;

/// proxy-wasm's `BadArgument`, Envoy's answer for a map or cluster it lacks.
const BAD_ARGUMENT: Status = Status(2);

/// Shared data as one proxy keeps it for all its VMs: value and CAS tag.
pub type SharedStore = Rc<RefCell<HashMap<String, (Vec<u8>, u32)>>>;

/// Another VM's write, run before a write of this one.
pub type OtherVmWrite = Box<dyn FnOnce(&SharedStore)>;

/// A dispatched HTTP call.
#[derive(Debug, Clone)]
#[allow(dead_code)] // Kept whole for a failing test's message.
pub struct Call {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| v.as_slice())
    }
}

#[derive(Default)]
pub struct FakeProxy {
    pub now_ms: Cell<u64>,
    pub config: RefCell<Vec<u8>>,
    pub tick_period_ms: Cell<u32>,
    pub request: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    pub request_body: RefCell<Vec<u8>>,
    pub response_status: RefCell<Option<Vec<u8>>>,
    pub response_headers: RefCell<Vec<(String, String)>>,
    /// Header names whose writes and removals fail.
    pub refuse_writes_of: RefCell<Vec<String>>,
    pub local_replies: RefCell<Vec<(u32, String)>>,
    /// Every definition, by id: (kind, name).
    pub definitions: RefCell<Vec<(MetricKind, String)>>,
    /// Values by name (counters add, gauges are set).
    pub values: RefCell<HashMap<String, u64>>,
    pub shared: SharedStore,
    /// Clusters calls may go to.
    pub clusters: RefCell<Vec<String>>,
    pub calls: RefCell<Vec<Call>>,
    next_token: Cell<u32>,
    /// The answer being handled: `:status` and body.
    pub answer: RefCell<Option<(Vec<u8>, Vec<u8>)>>,
    /// Runs before the next shared-data write checks its tag: another VM
    /// of the proxy writing first.
    pub before_write: RefCell<Option<OtherVmWrite>>,
    /// A host without the `clear_route_cache` foreign function.
    pub lacks_clear_route_cache: Cell<bool>,
    /// How often `clear_route_cache` was called (answered or not).
    pub route_cache_clears: Cell<u32>,
}

impl FakeProxy {
    /// A proxy at `now_ms` sharing `shared` with other VMs.
    pub fn new(now_ms: u64, shared: SharedStore) -> Self {
        let proxy = FakeProxy { shared, ..FakeProxy::default() };
        proxy.now_ms.set(now_ms);
        proxy
    }

    pub fn advance(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// A metric's value by its full (tagged) name; 0 if never touched.
    pub fn value(&self, name: &str) -> u64 {
        self.values.borrow().get(name).copied().unwrap_or(0)
    }

    /// Sets the request the next `request_headers` reads.
    pub fn set_request(&self, headers: &[(&str, &str)]) {
        *self.request.borrow_mut() =
            headers.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
    }

    pub fn request_header(&self, name: &str) -> Option<String> {
        self.request
            .borrow()
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The calls dispatched so far, taken out.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    fn writes_refused(&self, name: &str) -> bool {
        self.refuse_writes_of.borrow().iter().any(|n| n == name)
    }
}

impl Proxy for FakeProxy {
    fn log_level(&self) -> log::LevelFilter {
        log::LevelFilter::Info
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn set_tick_period_ms(&self, period: u32) {
        self.tick_period_ms.set(period);
    }

    fn plugin_configuration(&self, start: usize, length: usize) -> Result<Vec<u8>, Status> {
        let config = self.config.borrow();
        let start = start.min(config.len());
        Ok(config[start..start.saturating_add(length).min(config.len())].to_vec())
    }

    fn request_header_map(&self) -> Result<Vec<u8>, Status> {
        let request = self.request.borrow();
        let pairs: Vec<(&[u8], &[u8])> = request.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        Ok(header_map::serialize(&pairs))
    }

    fn replace_request_header(&self, name: &str, value: &[u8]) -> Result<(), Status> {
        if self.writes_refused(name) {
            return Err(BAD_ARGUMENT);
        }
        let mut request = self.request.borrow_mut();
        request.retain(|(k, _)| k != name.as_bytes());
        request.push((name.as_bytes().to_vec(), value.to_vec()));
        Ok(())
    }

    fn remove_request_header(&self, name: &str) -> Result<(), Status> {
        if self.writes_refused(name) {
            return Err(BAD_ARGUMENT);
        }
        self.request.borrow_mut().retain(|(k, _)| k != name.as_bytes());
        Ok(())
    }

    fn send_local_reply(&self, reply: &LocalReply<'_>) -> Result<(), Status> {
        self.local_replies.borrow_mut().push((reply.status, reply.details.to_string()));
        Ok(())
    }

    fn request_body(&self, size: usize) -> Result<Vec<u8>, Status> {
        let body = self.request_body.borrow();
        Ok(body[..size.min(body.len())].to_vec())
    }

    fn response_status(&self) -> Option<Vec<u8>> {
        self.response_status.borrow().clone()
    }

    fn add_response_header(&self, name: &str, value: &str) -> Result<(), Status> {
        self.response_headers.borrow_mut().push((name.to_string(), value.to_string()));
        Ok(())
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, Status> {
        let mut definitions = self.definitions.borrow_mut();
        definitions.push((kind, name.to_string()));
        Ok(u32::try_from(definitions.len() - 1).unwrap_or(u32::MAX))
    }

    fn increment_metric(&self, id: u32, by: u64) {
        let Some((_, name)) = self.definitions.borrow().get(id as usize).cloned() else { return };
        *self.values.borrow_mut().entry(name).or_default() += by;
    }

    fn record_metric(&self, id: u32, value: u64) {
        let Some((_, name)) = self.definitions.borrow().get(id as usize).cloned() else { return };
        self.values.borrow_mut().insert(name, value);
    }

    fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared.borrow().get(key).cloned()
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        if let Some(other_vm) = self.before_write.borrow_mut().take() {
            other_vm(&self.shared);
        }
        let mut shared = self.shared.borrow_mut();
        // As Envoy: an absent key is written whatever the tag; a present
        // one only with its own tag, or 0.
        let tag = match shared.get(key).map(|(_, tag)| *tag) {
            Some(current) if cas != 0 && cas != current => return SharedWrite::Conflict,
            Some(current) => current + 1,
            None => 1,
        };
        shared.insert(key.to_string(), (value.to_vec(), tag));
        SharedWrite::Written
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[u8],
        body: &[u8],
        timeout_ms: u32,
    ) -> Result<u32, Status> {
        if !self.clusters.borrow().iter().any(|c| c == cluster) {
            return Err(BAD_ARGUMENT);
        }
        let token = self.next_token.get() + 1;
        self.next_token.set(token);
        let headers = header_map::parse(headers)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let call = Call { token, cluster: cluster.to_string(), headers, body: body.to_vec(), timeout_ms };
        self.calls.borrow_mut().push(call);
        Ok(token)
    }

    fn http_call_status(&self) -> Option<Vec<u8>> {
        self.answer.borrow().as_ref().map(|(status, _)| status.clone())
    }

    fn http_call_body(&self, size: usize) -> Result<Vec<u8>, Status> {
        let answer = self.answer.borrow();
        let body = answer.as_ref().map_or(&[][..], |(_, body)| body.as_slice());
        Ok(body[..size.min(body.len())].to_vec())
    }

    fn clear_route_cache(&self) -> Result<(), Status> {
        self.route_cache_clears.set(self.route_cache_clears.get() + 1);
        if self.lacks_clear_route_cache.get() {
            Err(Status(1))
        } else {
            Ok(())
        }
    }
}
