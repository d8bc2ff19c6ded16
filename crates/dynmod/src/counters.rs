//! The filter's counters, with the `.wasm`'s names and labels
//! (`canary_router_requests_total{route,target}` and the rest of
//! docs/metrics.md's request counters), defined once per config as
//! labelled families: Envoy takes definitions only while the config is
//! made, and a family costs one definition however many routes a config
//! has (the `.wasm` defines one metric per route and target).
//!
//! A labelled increment costs Envoy a name built from the label values
//! (two a request cost 4% of the module's throughput), so counts are kept
//! per worker thread (`batch`) and added to Envoy's counters at most every
//! tenth of a second, by whichever request of that worker comes then: a
//! count is at most that late while traffic flows, and the last ones wait
//! for the next request (Envoy takes a counter change only from a stream).
//!
//! Envoy 1.40 files them under `dynamicmodulescustom` and, unlike
//! `wasmcustom`, keeps the namespace in its Prometheus output
//! (`envoy_dynamicmodulescustom_canary_router_requests_total`): the shipped
//! scrape job (dashboards/prometheus-scrape.yaml) renames them to the
//! `.wasm`'s, so a dashboard or rule reads the two homes alike. Their
//! labels are real labels: no `stats_tags` are needed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::abi::*;
use crate::batch::{Batch, Batches, ConfigStr, Series};
use crate::family::{Family, Kind};
use crate::flag;
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
    batches: Batches,
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
            batches: Batches::default(),
        }
    }

    /// Counts `series` in the calling worker's batch, and adds the batch
    /// to Envoy's counters if it is due.
    pub fn count(&self, envoy: FilterEnvoyPtr, router: &Router, now_ms: u64, series: &[Series]) {
        let mut batch = self.batches.mine();
        for s in series {
            batch.add(*s, 1);
        }
        if batch.due(now_ms) {
            self.flush(envoy, router, &mut batch);
        }
    }

    /// Adds a batch's counts to Envoy's counters.
    fn flush(&self, envoy: FilterEnvoyPtr, router: &Router, batch: &mut Batch) {
        for (series, n) in batch.pending.drain() {
            let name = |route: u32| router.routes.get(route as usize).map(|r| r.name.as_bytes());
            // SAFETY: every `ConfigStr` of this config's batches was made
            // from this config's router, alive while its streams are.
            let text = |target: ConfigStr| unsafe { target.text() }.as_bytes();
            match series {
                Series::Request { route, target } => {
                    if let Some(name) = name(route) {
                        Family::record_into(self.requests, envoy, &[name, text(target)], n);
                    }
                }
                Series::RuleHit { route, rule } => {
                    let label = router.routes.get(route as usize).and_then(|r| r.rules.get(rule as usize));
                    if let (Some(name), Some(rule)) = (name(route), label) {
                        Family::record_into(self.rule_hits, envoy, &[name, rule.label.as_bytes()], n);
                    }
                }
                Series::Default { route } => {
                    if let Some(name) = name(route) {
                        Family::record_into(self.default_routed, envoy, &[name], n);
                    }
                }
                Series::RegexSkipped { route } => {
                    if let Some(name) = name(route) {
                        Family::record_into(self.regex_skipped, envoy, &[name], n);
                    }
                }
                Series::Unrouted => Family::record_into(self.unrouted, envoy, &[], n),
                Series::Response { route, target, class } => {
                    let class = STATUS_CLASSES.get(usize::from(class));
                    if let (Some(name), Some(class)) = (name(route), class) {
                        Family::record_into(
                            self.responses,
                            envoy,
                            &[name, text(target), class.as_bytes()],
                            n,
                        );
                    }
                }
            }
        }
    }

    /// Adds a route's shadow outcomes not counted yet (and zeroes them).
    pub fn shadows(&self, envoy: FilterEnvoyPtr, router: &Router, route: usize, outcomes: &Outcomes) {
        let Some(route) = router.routes.get(route) else { return };
        let Some(mirror) = &route.mirror else { return };
        let (name, cluster) = (route.name.as_bytes(), mirror.cluster.as_bytes());
        let take = |n: &AtomicU64| n.swap(0, Ordering::Relaxed);
        let add = |family: Option<Family>, values: &[&[u8]], n: u64| {
            if n > 0 {
                Family::record_into(family, envoy, values, n);
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

    /// On a route's first routed request: its response series for every
    /// target and class, at zero (added with the worker's next counts), as
    /// the `.wasm` shows them when its config is read (here route by route:
    /// a config at the limits has some 100,000, too many for one request).
    pub fn show_zeros(&self, router: &Router, route: usize) {
        let Some(shown) = self.zeros_shown.get(route) else { return };
        if self.responses.is_none() || !flag::raise(shown) {
            return;
        }
        let Some(r) = router.routes.get(route) else { return };
        let route = u32::try_from(route).unwrap_or(u32::MAX);
        let mut batch = self.batches.mine();
        for target in r.targets() {
            for class in 0..STATUS_CLASSES.len() {
                let class = u8::try_from(class).unwrap_or(u8::MAX);
                batch.add(Series::Response { route, target: ConfigStr::of(target), class }, 0);
            }
        }
    }
}
