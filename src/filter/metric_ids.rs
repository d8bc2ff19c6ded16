//! The metrics a VM defined, by kind and name.
//!
//! Envoy gives every `proxy_define_metric` call a new id and keeps the name
//! for good, even when the name is one it already knows; a VM that defined
//! its counters afresh on every config push grew the proxy's memory with
//! each push. So a VM defines each name once and reuses the id for every
//! later config that names the same metric.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::proxy::{MetricKind, Proxy};
use crate::hash::FastHasher;

#[derive(Default)]
pub struct MetricIds {
    ids: RefCell<HashMap<(MetricKind, String), u32, BuildHasherDefault<FastHasher>>>,
}

impl MetricIds {
    /// The id of a metric, defined on first use only; `None` if the proxy
    /// refused it (its counts are then lost; routing is not affected).
    pub fn get_or_define(&self, proxy: &dyn Proxy, kind: MetricKind, name: String) -> Option<u32> {
        if let Some(id) = self.ids.borrow().get(&(kind, name.clone())).copied() {
            return Some(id);
        }
        let id = proxy.define_metric(kind, &name).ok()?;
        self.ids.borrow_mut().insert((kind, name), id);
        Some(id)
    }
}
