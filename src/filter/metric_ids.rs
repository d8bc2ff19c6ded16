//! The metrics a VM defined, by kind and name.
//!
//! Envoy gives every `proxy_define_metric` call a new id and keeps the name
//! for good, even when the name is one it already knows; a VM that defined
//! its counters afresh on every config push grew the proxy's memory with
//! each push. So a VM defines each name once and reuses the id for every
//! later config that names the same metric.
//!
//! Names are remembered by a 64-bit fingerprint, not a copy: a config at
//! the limits names some 40,000 metrics, whose names would hold megabytes
//! of every VM's memory for good. Two names of one VM would have to share
//! a fingerprint to be confused (about one chance in 10^10 at 100,000
//! names).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::proxy::{MetricKind, Proxy};
use canary_router_core::hashing::hash::{FastHasher, Fingerprint};

#[derive(Default)]
pub struct MetricIds {
    ids: RefCell<HashMap<(MetricKind, u64), u32, BuildHasherDefault<FastHasher>>>,
}

impl MetricIds {
    /// The id of a metric, defined on first use only; `None` if the proxy
    /// refused it (its counts are then lost; routing is not affected).
    pub fn get_or_define(&self, proxy: &dyn Proxy, kind: MetricKind, name: String) -> Option<u32> {
        let key = (kind, Fingerprint::default().field("metric", name.as_bytes()).finish());
        if let Some(id) = self.ids.borrow().get(&key).copied() {
            return Some(id);
        }
        let id = proxy.define_metric(kind, &name).ok()?;
        self.ids.borrow_mut().insert(key, id);
        Some(id)
    }
}
