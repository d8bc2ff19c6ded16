//! The filter's counters, with the `.wasm`'s names and labels
//! (`canary_router_requests_total{route,target}` and the rest of
//! docs/metrics.md's request counters), defined once per config as
//! labelled families: Envoy takes definitions only while the config is
//! made, and a family costs one definition however many routes a config
//! has (the `.wasm` defines one metric per route and target).
//!
//! Envoy 1.40 files them under `dynamicmodulescustom` and, unlike
//! `wasmcustom`, keeps the namespace in its Prometheus output
//! (`envoy_dynamicmodulescustom_canary_router_requests_total`): the shipped
//! scrape job (dashboards/prometheus-scrape.yaml) renames them to the
//! `.wasm`'s, so a dashboard or rule reads the two homes alike. Their
//! labels are real labels: no `stats_tags` are needed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::abi::*;
use crate::family::{Family, Kind};
use crate::shadows::Outcomes;
use canary_router_core::rollout::metrics::{self, STATUS_CLASSES};
use canary_router_core::routing::mirror::Skip;
use canary_router_core::routing::router::Router;

pub struct Counters {
    requests: Option<Family>,
    responses: Option<Family>,
    rule_hits: Option<Family>,
    default_routed: Option<Family>,
    regex_skipped: Option<Family>,
    unrouted: Option<Family>,
    shadow_sent: Option<Family>,
    shadow_failed: Option<Family>,
    shadow_skipped: Option<Family>,
    /// Per route: whether its response series were shown at zero yet (a
    /// PromQL ratio sees the first errors only after a zero).
    zeros_shown: Vec<AtomicBool>,
}

impl Counters {
    /// Defines the families with Envoy.
    pub fn define(envoy: FilterConfigEnvoyPtr, router: &Router) -> Counters {
        let family = |name: &str, labels: &[&str]| Family::define(envoy, Kind::Counter, name, labels);
        let mirrors = router.routes.iter().any(|r| r.mirror.is_some());
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
            shadow_sent: mirrors.then(|| family(metrics::SHADOW_SENT, &["route", "cluster"])).flatten(),
            shadow_failed: mirrors.then(|| family(metrics::SHADOW_FAILED, &["route", "cluster"])).flatten(),
            shadow_skipped: mirrors
                .then(|| family(metrics::SHADOW_SKIPPED, &["route", "cluster", "reason"]))
                .flatten(),
            zeros_shown: router.routes.iter().map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn add(envoy: FilterEnvoyPtr, family: Option<Family>, values: &[&[u8]], by: u64) {
        if let Some(family) = family {
            family.record(envoy, values, by);
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

    /// Adds a route's shadow outcomes not counted yet (and zeroes them).
    pub fn shadows(&self, envoy: FilterEnvoyPtr, router: &Router, route: usize, outcomes: &Outcomes) {
        let Some(route) = router.routes.get(route) else { return };
        let Some(mirror) = &route.mirror else { return };
        let (name, cluster) = (route.name.as_bytes(), mirror.cluster.as_bytes());
        let take = |n: &AtomicU64| n.swap(0, Ordering::Relaxed);
        let add = |family: Option<Family>, values: &[&[u8]], n: u64| {
            if n > 0 {
                Self::add(envoy, family, values, n);
            }
        };
        add(self.shadow_sent, &[name, cluster], take(&outcomes.sent));
        add(self.shadow_failed, &[name, cluster], take(&outcomes.failed));
        for (skip, n) in Skip::ALL.iter().zip(&outcomes.skipped) {
            add(self.shadow_skipped, &[name, cluster, skip.label().as_bytes()], take(n));
        }
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
