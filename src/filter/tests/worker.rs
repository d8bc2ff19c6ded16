//! One worker VM of a proxy on `FakeProxy`, as the glue's native tests
//! drive it: requests answered by a pretend upstream, ticks, and the
//! Prometheus answers a test gives.

use std::cell::Cell;
use std::rc::Rc;

use super::super::fake_proxy::{FakeProxy, SharedStore};
use super::super::{configure, http_call_answered, request_headers, tick, Headers, Root, Stream, Vm};

/// 2026-01-01T00:00:00Z.
pub const START_MS: u64 = 1_767_225_600_000;

/// One worker VM of a proxy, with one root context.
pub struct Worker {
    pub proxy: Rc<FakeProxy>,
    pub vm: Rc<Vm>,
    pub root: Rc<Root>,
    next_stream: Cell<u32>,
}

impl Worker {
    pub fn new(shared: &SharedStore) -> Worker {
        let proxy = Rc::new(FakeProxy::new(START_MS, shared.clone()));
        proxy.clusters.borrow_mut().extend(["shadow".to_string(), "prometheus".to_string()]);
        let vm = Rc::new(Vm::new(proxy.clone()));
        let root = Rc::new(Root::new(1, vm.clone(), 42));
        Worker { proxy, vm, root, next_stream: Cell::new(2) }
    }

    pub fn configured(config: &str) -> Worker {
        let worker = Worker::new(&SharedStore::default());
        assert!(worker.configure(config), "the config is accepted");
        worker
    }

    pub fn configure(&self, config: &str) -> bool {
        *self.proxy.config.borrow_mut() = config.as_bytes().to_vec();
        configure(&self.root, config.len())
    }

    /// A request through the filter, answered with `status` unless the
    /// filter answered it; returns the target header the upstream got.
    pub fn exchange(&self, headers: &[(&str, &str)], status: &str) -> Result<Option<String>, u32> {
        self.exchange_taking(headers, status, |_| 0)
    }

    /// Like `exchange`, the upstream taking `took(target)` ms to answer.
    pub fn exchange_taking(
        &self,
        headers: &[(&str, &str)],
        status: &str,
        took: impl Fn(&str) -> u64,
    ) -> Result<Option<String>, u32> {
        self.exchange_answered(headers, |target| (status.to_string(), took(target)))
    }

    /// Like `exchange`, each target answering with its own status, after
    /// its own time: `answer(target)` is both.
    pub fn exchange_answered(
        &self,
        headers: &[(&str, &str)],
        answer: impl Fn(&str) -> (String, u64),
    ) -> Result<Option<String>, u32> {
        self.proxy.set_request(headers);
        let id = self.next_stream.get();
        self.next_stream.set(id + 1);
        let replies = self.proxy.local_replies.borrow().len();
        match request_headers(&self.root, id, true) {
            Headers::Refused => {
                let replies = self.proxy.local_replies.borrow();
                return Err(replies.last().map(|r| r.0).expect("a refused request is answered"));
            }
            Headers::Continue(stream) => {
                assert_eq!(self.proxy.local_replies.borrow().len(), replies, "forwarded, not answered");
                let (status, took) = answer(&self.proxy.request_header("x-route-target").unwrap_or_default());
                self.proxy.advance(took);
                *self.proxy.response_status.borrow_mut() = Some(status.into_bytes());
                if let Some(mut stream) = stream {
                    stream.response_headers();
                }
            }
        }
        Ok(self.proxy.request_header("x-route-target"))
    }

    /// A request whose client gives up after `after_ms` without an answer:
    /// its stream ends with no response headers. Returns its target.
    pub fn abandon(&self, headers: &[(&str, &str)], after_ms: u64) -> Option<String> {
        let stream = self.start(headers, true);
        self.proxy.advance(after_ms);
        drop(stream);
        self.proxy.request_header("x-route-target")
    }

    /// A request with a body the client takes `upload_ms` to send, answered
    /// `status` `took_ms` after it. Returns its target.
    pub fn upload(
        &self,
        headers: &[(&str, &str)],
        upload_ms: u64,
        took_ms: u64,
        status: &str,
    ) -> Option<String> {
        *self.proxy.request_body.borrow_mut() = b"0123456789".to_vec();
        let mut stream = self.start(headers, false);
        self.proxy.advance(upload_ms);
        if let Some(stream) = stream.as_mut() {
            stream.request_body(10, true);
        }
        self.proxy.advance(took_ms);
        *self.proxy.response_status.borrow_mut() = Some(status.as_bytes().to_vec());
        if let Some(stream) = stream.as_mut() {
            stream.response_headers();
        }
        self.proxy.request_header("x-route-target")
    }

    /// A forwarded request's stream state, if it keeps any.
    fn start(&self, headers: &[(&str, &str)], end_of_stream: bool) -> Option<Box<Stream>> {
        self.proxy.set_request(headers);
        let id = self.next_stream.get();
        self.next_stream.set(id + 1);
        match request_headers(&self.root, id, end_of_stream) {
            Headers::Continue(stream) => stream,
            Headers::Refused => panic!("the filter answered the request itself"),
        }
    }

    /// The value of the one metric whose name ends with `suffix` (0 if
    /// none was recorded).
    pub fn metric_ending(&self, suffix: &str) -> u64 {
        let values = self.proxy.values.borrow();
        let found: Vec<u64> = values.iter().filter(|(k, _)| k.ends_with(suffix)).map(|(_, v)| *v).collect();
        assert!(found.len() <= 1, "{} metrics end with {suffix}", found.len());
        found.first().copied().unwrap_or(0)
    }

    /// Whether the split's rollback is in force for `reason`.
    pub fn rolled_back_for(&self, reason: &str) -> bool {
        self.metric_ending(&canary_router_core::rollout::metrics::tagged(
            canary_router_core::rollout::metrics::ROLLBACK_REASON,
            &[("reason", reason)],
        )) == 1
    }

    pub fn get(&self, host: &str) -> Option<String> {
        self.exchange(&[(":authority", host), (":path", "/")], "200").unwrap_or_default()
    }

    /// Moves the clock and runs the root's tick.
    pub fn tick_after(&self, ms: u64) {
        self.proxy.advance(ms);
        tick(&self.root);
    }

    /// Answers a dispatched call with `status` and `body`.
    pub fn answer(&self, token: u32, status: &str, body: &str) {
        *self.proxy.answer.borrow_mut() = Some((status.as_bytes().to_vec(), body.as_bytes().to_vec()));
        http_call_answered(&self.root, token, 1, body.len());
        *self.proxy.answer.borrow_mut() = None;
    }
}

pub fn vector(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{value}"]}}]}}}}"#
    )
}

/// A vector of several series, one value each.
pub fn vectors(values: &[&str]) -> String {
    let series: Vec<String> =
        values.iter().map(|v| format!(r#"{{"metric":{{"i":"{v}"}},"value":[1,"{v}"]}}"#)).collect();
    format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#, series.join(","))
}

pub const EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
