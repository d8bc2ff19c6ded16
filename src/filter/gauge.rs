//! One gauge: the id its name was defined under and the value this VM
//! last gave it, so a value is recorded only when it changes. The split,
//! ramp and comparison gauges are made of these.

use std::cell::Cell;

use super::proxy::{MetricKind, Proxy};
use super::Vm;
pub(super) use canary_router_core::rollout::metrics::millionths;
use canary_router_core::rollout::metrics::tagged;

/// One gauge and the value this VM last gave it.
pub(super) struct Gauge {
    id: Option<u32>,
    last: Cell<Option<u64>>,
}

impl Gauge {
    /// A gauge this config has no use for: setting it does nothing. Each
    /// metric Envoy creates costs the push its stats tags' regexes.
    pub(super) fn none() -> Gauge {
        Gauge { id: None, last: Cell::new(None) }
    }

    pub(super) fn set(&self, proxy: &dyn Proxy, value: u64) {
        if let (Some(id), false) = (self.id, self.last.get() == Some(value)) {
            proxy.record_metric(id, value);
            self.last.set(Some(value));
        }
    }
}

/// A metric's full name: the split's labels, one more label, the name.
#[inline(never)]
pub(super) fn name(prefix: &str, extra: &[(&str, &str)], metric: &str) -> String {
    prefix.to_string() + &tagged(metric, extra)
}

#[inline(never)]
pub(super) fn gauge(vm: &Vm, prefix: &str, extra: &[(&str, &str)], metric: &str) -> Gauge {
    Gauge { id: vm.metric(MetricKind::Gauge, name(prefix, extra, metric)), last: Cell::new(None) }
}
