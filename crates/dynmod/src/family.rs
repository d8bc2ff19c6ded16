//! A labelled metric family Envoy defined for a config: counters and
//! gauges are defined while the config is made (Envoy answers `Frozen`
//! later) and changed from a stream's hook, with the label values of the
//! series meant.

use crate::abi::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// The most labels a family of this module has.
const MAX_LABELS: usize = 5;

/// A family Envoy defined: its kind, its id, how many labels it takes.
#[derive(Clone, Copy)]
pub struct Family {
    kind: Kind,
    id: usize,
    labels: usize,
}

impl Family {
    /// Defines `name` with these label names; `None` if Envoy refuses (its
    /// series are then not kept; routing is not affected).
    pub fn define(envoy: FilterConfigEnvoyPtr, kind: Kind, name: &str, labels: &[&str]) -> Option<Family> {
        if labels.len() > MAX_LABELS {
            return None;
        }
        let names: Vec<ModuleBuffer> = labels.iter().map(|l| ModuleBuffer::of(l.as_bytes())).collect();
        let mut id = 0;
        let name_buffer = ModuleBuffer::of(name.as_bytes());
        // SAFETY: Envoy's config pointer, valid in `config_new`; the
        // buffers outlive the call.
        let result = unsafe {
            match kind {
                Kind::Counter => envoy_dynamic_module_callback_http_filter_config_define_counter(
                    envoy,
                    name_buffer,
                    names.as_ptr(),
                    names.len(),
                    &mut id,
                ),
                Kind::Gauge => envoy_dynamic_module_callback_http_filter_config_define_gauge(
                    envoy,
                    name_buffer,
                    names.as_ptr(),
                    names.len(),
                    &mut id,
                ),
            }
        };
        if result != METRICS_SUCCESS {
            eprintln!("canary-router: Envoy would not define {name} (result {result}); not kept");
            return None;
        }
        Some(Family { kind, id, labels: labels.len() })
    }

    /// `record` into `family` if Envoy defined it (one it refused keeps no
    /// series).
    pub fn record_into(family: Option<Family>, envoy: FilterEnvoyPtr, values: &[&[u8]], by: u64) {
        if let Some(family) = family {
            family.record(envoy, values, by);
        }
    }

    /// Adds `by` to a counter's series, or sets a gauge's to `by`; values
    /// of another count than the family's labels are dropped.
    pub fn record(self, envoy: FilterEnvoyPtr, values: &[&[u8]], by: u64) {
        if values.len() != self.labels {
            return;
        }
        let values: [ModuleBuffer; MAX_LABELS] =
            std::array::from_fn(|i| values.get(i).map_or_else(ModuleBuffer::null, |v| ModuleBuffer::of(v)));
        // SAFETY: Envoy's filter pointer, valid for the running hook; the
        // label count is the family's, as the ABI requires.
        unsafe {
            match self.kind {
                Kind::Counter => envoy_dynamic_module_callback_http_filter_increment_counter(
                    envoy,
                    self.id,
                    values.as_ptr(),
                    self.labels,
                    by,
                ),
                Kind::Gauge => envoy_dynamic_module_callback_http_filter_set_gauge(
                    envoy,
                    self.id,
                    values.as_ptr(),
                    self.labels,
                    by,
                ),
            };
        }
    }
}
