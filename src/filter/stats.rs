//! The filter's counters: defined once per config, counted in the VM, and
//! added to the host's metrics on the root's tick (at most a second late),
//! so a request never pays a host call for a count it can add later.

use std::cell::Cell;

use super::proxy::{MetricKind, Proxy};
use super::Vm;
use crate::matcher::Test;
use crate::metrics::{self, tagged, STATUS_CLASSES};
use crate::mirror::Skip;
use crate::router::Router;

/// Counters of config loads, shared by every config of a VM. Rare, so
/// added to the host at once.
pub fn config_loaded(vm: &Vm, accepted: bool) {
    let name = if accepted { metrics::CONFIG_ACCEPTED } else { metrics::CONFIG_REJECTED };
    if let Some(id) = vm.metric(MetricKind::Counter, tagged(name, &[])) {
        vm.proxy.increment_metric(id, 1);
    }
}

/// One of this config's counters: an index into `Stats::ids`/`counts`.
#[derive(Clone, Copy)]
struct Counter(u32);

/// No counter: the route has no such thing to count.
const NONE: Counter = Counter(u32::MAX);

struct TargetStats {
    target: String,
    requests: Counter,
    /// By status class; `NONE` unless the config counts responses.
    responses: [Counter; STATUS_CLASSES.len()],
}

struct RouteStats {
    targets: Vec<TargetStats>,
    rule_hits: Vec<Counter>,
    default_routed: Counter,
    regex_skipped: Counter,
    shadow_sent: Counter,
    shadow_failed: Counter,
    /// By `Skip::index`.
    shadow_skipped: [Counter; Skip::ALL.len()],
}

pub struct Stats {
    /// Per counter: the host's metric id (`u32::MAX`: none).
    ids: Vec<u32>,
    /// Per counter: counts not yet added to the host's metric.
    counts: Vec<Cell<u32>>,
    routes: Vec<RouteStats>,
    unrouted: Counter,
}

impl Stats {
    pub fn define(vm: &Vm, router: &Router) -> Self {
        let mut stats = Stats { ids: Vec::new(), counts: Vec::new(), routes: Vec::new(), unrouted: NONE };
        stats.unrouted = stats.counter(vm, metrics::UNROUTED, &[]);
        for (index, route) in router.routes.iter().enumerate() {
            let r = route.name.as_str();
            let mut targets = Vec::new();
            for t in metrics::route_targets(router, index) {
                let requests = stats.counter(vm, metrics::REQUESTS, &[("route", r), ("target", t)]);
                let responses = STATUS_CLASSES.map(|class| {
                    if router.count_responses {
                        stats.counter(
                            vm,
                            metrics::RESPONSES,
                            &[("route", r), ("target", t), ("status_class", class)],
                        )
                    } else {
                        NONE
                    }
                });
                targets.push(TargetStats { target: t.to_string(), requests, responses });
            }
            let rule_hits = route
                .rules
                .iter()
                .map(|rule| stats.counter(vm, metrics::RULE_HITS, &[("route", r), ("rule", &rule.label)]))
                .collect();
            let default_routed = stats.counter(vm, metrics::DEFAULT_ROUTED, &[("route", r)]);
            let has_regex = route.rules.iter().any(|rule| {
                rule.conditions.iter().any(|c| matches!(c.test, Test::Regex { .. } | Test::Literals { .. }))
            });
            let regex_skipped =
                if has_regex { stats.counter(vm, metrics::REGEX_SKIPPED, &[("route", r)]) } else { NONE };
            let (mut shadow_sent, mut shadow_failed, mut shadow_skipped) =
                (NONE, NONE, [NONE; Skip::ALL.len()]);
            if let Some(mirror) = &route.mirror {
                let tags = [("route", r), ("cluster", mirror.cluster.as_str())];
                shadow_sent = stats.counter(vm, metrics::SHADOW_SENT, &tags);
                shadow_failed = stats.counter(vm, metrics::SHADOW_FAILED, &tags);
                shadow_skipped = Skip::ALL.map(|skip| {
                    stats.counter(vm, metrics::SHADOW_SKIPPED, &[tags[0], tags[1], ("reason", skip.label())])
                });
            }
            stats.routes.push(RouteStats {
                targets,
                rule_hits,
                default_routed,
                regex_skipped,
                shadow_sent,
                shadow_failed,
                shadow_skipped,
            });
        }
        stats
    }

    fn counter(&mut self, vm: &Vm, name: &str, tags: &[(&str, &str)]) -> Counter {
        let id = vm.metric(MetricKind::Counter, tagged(name, tags));
        self.ids.push(id.unwrap_or(u32::MAX));
        self.counts.push(Cell::new(0));
        Counter(u32::try_from(self.ids.len() - 1).unwrap_or(u32::MAX))
    }

    fn bump(&self, counter: Counter) {
        if let Some(count) = self.counts.get(counter.0 as usize) {
            count.set(count.get().saturating_add(1));
        }
    }

    /// Adds every count to the host's metrics.
    pub fn flush(&self, proxy: &dyn Proxy) {
        for (id, count) in self.ids.iter().zip(&self.counts) {
            let n = count.replace(0);
            if n > 0 && *id != u32::MAX {
                proxy.increment_metric(*id, u64::from(n));
            }
        }
    }

    /// Counts a routed request; returns the target's index for `response`.
    pub fn request(&self, route: usize, rule: Option<usize>, target: &str) -> Option<usize> {
        let stats = self.routes.get(route)?;
        self.bump(match rule {
            Some(rule) => stats.rule_hits.get(rule).copied().unwrap_or(NONE),
            None => stats.default_routed,
        });
        let index = stats.targets.iter().position(|t| t.target == target)?;
        self.bump(stats.targets[index].requests);
        Some(index)
    }

    pub fn unrouted(&self) {
        self.bump(self.unrouted);
    }

    pub fn response(&self, route: usize, target: usize, status_class: usize) {
        if let Some(t) = self.routes.get(route).and_then(|r| r.targets.get(target)) {
            self.bump(t.responses.get(status_class).copied().unwrap_or(NONE));
        }
    }

    pub fn shadow_sent(&self, route: usize) {
        self.bump(self.routes.get(route).map_or(NONE, |r| r.shadow_sent));
    }

    pub fn shadow_failed(&self, route: usize) {
        self.bump(self.routes.get(route).map_or(NONE, |r| r.shadow_failed));
    }

    pub fn shadow_skipped(&self, route: usize, why: Skip) {
        self.bump(
            self.routes.get(route).and_then(|r| r.shadow_skipped.get(why.index()).copied()).unwrap_or(NONE),
        );
    }

    /// A request whose regex budget could not pay for every test.
    pub fn regex_skipped(&self, route: usize) {
        self.bump(self.routes.get(route).map_or(NONE, |r| r.regex_skipped));
    }
}
