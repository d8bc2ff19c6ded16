//! The filter's counters, with the `.wasm`'s names and labels
//! (`canary_router_requests_total{route,target}` and the rest of
//! docs/metrics.md's request counters), defined once per config as
//! labelled families: Envoy takes definitions only while the config is
//! made, and a family costs one definition however many routes a config
//! has (the `.wasm` defines one metric per route and target).
//!
//! Envoy strips the `dynamicmodulescustom` namespace it files them under
//! from its Prometheus output, as it strips `wasmcustom`, so a dashboard
//! or rule reads the two homes alike; no `stats_tags` are needed.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::*;
use canary_router_core::rollout::metrics::{self, STATUS_CLASSES};
use canary_router_core::routing::router::Router;

/// A family Envoy defined: its id, and how many labels it takes.
#[derive(Clone, Copy)]
struct Family {
    id: usize,
    labels: usize,
}

pub struct Counters {
    requests: Option<Family>,
    responses: Option<Family>,
    rule_hits: Option<Family>,
    default_routed: Option<Family>,
    regex_skipped: Option<Family>,
    unrouted: Option<Family>,
    /// Per route: whether its response series were shown at zero yet (a
    /// PromQL ratio sees the first errors only after a zero).
    zeros_shown: Vec<AtomicBool>,
}

impl Counters {
    /// Defines the families with Envoy; a family Envoy refuses is not
    /// counted (routing is not affected).
    pub fn define(envoy: FilterConfigEnvoyPtr, router: &Router) -> Counters {
        let family = |name: &str, labels: &[&str]| {
            let names: Vec<ModuleBuffer> = labels.iter().map(|l| ModuleBuffer::of(l.as_bytes())).collect();
            let mut id = 0;
            // SAFETY: Envoy's config pointer, valid in `config_new`; the
            // buffers outlive the call.
            let result = unsafe {
                envoy_dynamic_module_callback_http_filter_config_define_counter(
                    envoy,
                    ModuleBuffer::of(name.as_bytes()),
                    names.as_ptr(),
                    names.len(),
                    &mut id,
                )
            };
            if result != METRICS_SUCCESS {
                eprintln!("canary-router: Envoy would not define {name} (result {result}); not counted");
                return None;
            }
            Some(Family { id, labels: labels.len() })
        };
        Counters {
            requests: family(metrics::REQUESTS, &["route", "target"]),
            responses: if router.count_responses {
                family(metrics::RESPONSES, &["route", "target", "status_class"])
            } else {
                None
            },
            rule_hits: family(metrics::RULE_HITS, &["route", "rule"]),
            default_routed: family(metrics::DEFAULT_ROUTED, &["route"]),
            regex_skipped: family(metrics::REGEX_SKIPPED, &["route"]),
            unrouted: family(metrics::UNROUTED, &[]),
            zeros_shown: router.routes.iter().map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Adds `by` to the family's series with these label values.
    fn add(envoy: FilterEnvoyPtr, family: Option<Family>, values: &[&[u8]], by: u64) {
        let Some(family) = family.filter(|f| f.labels == values.len()) else { return };
        let values: [ModuleBuffer; 3] =
            std::array::from_fn(|i| values.get(i).map_or_else(ModuleBuffer::null, |v| ModuleBuffer::of(v)));
        // SAFETY: Envoy's filter pointer, valid for the running hook; the
        // label count is the family's, as the ABI requires.
        unsafe {
            envoy_dynamic_module_callback_http_filter_increment_counter(
                envoy,
                family.id,
                values.as_ptr(),
                family.labels,
                by,
            );
        }
    }

    /// Counts a routed request: by target, and by the rule that decided
    /// or the route's default.
    pub fn request(&self, envoy: FilterEnvoyPtr, route: &str, rule: Option<&str>, target: &str) {
        let route = route.as_bytes();
        Self::add(envoy, self.requests, &[route, target.as_bytes()], 1);
        match rule {
            Some(rule) => Self::add(envoy, self.rule_hits, &[route, rule.as_bytes()], 1),
            None => Self::add(envoy, self.default_routed, &[route], 1),
        }
    }

    pub fn unrouted(&self, envoy: FilterEnvoyPtr) {
        Self::add(envoy, self.unrouted, &[], 1);
    }

    /// A request whose regex budget could not pay for every test.
    pub fn regex_skipped(&self, envoy: FilterEnvoyPtr, route: &str) {
        Self::add(envoy, self.regex_skipped, &[route.as_bytes()], 1);
    }

    pub fn counts_responses(&self) -> bool {
        self.responses.is_some()
    }

    pub fn response(&self, envoy: FilterEnvoyPtr, route: &str, target: &str, status_class: usize) {
        let Some(class) = STATUS_CLASSES.get(status_class) else { return };
        Self::add(envoy, self.responses, &[route.as_bytes(), target.as_bytes(), class.as_bytes()], 1);
    }

    /// On a route's first routed request: its response series for every
    /// target and class, at zero, as the `.wasm` shows them when its config
    /// is read (here route by route: a config at the limits has some
    /// 100,000, too many for one request to create).
    pub fn show_zeros(&self, envoy: FilterEnvoyPtr, router: &Router, route: usize) {
        let Some(shown) = self.zeros_shown.get(route) else { return };
        if self.responses.is_none() || shown.swap(true, Ordering::Relaxed) {
            return;
        }
        let Some(route) = router.routes.get(route) else { return };
        for target in route.targets() {
            for class in STATUS_CLASSES {
                let values = [route.name.as_bytes(), target.as_bytes(), class.as_bytes()];
                Self::add(envoy, self.responses, &values, 0);
            }
        }
    }
}
