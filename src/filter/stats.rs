//! The filter's counters: counted in the VM and added to the host's
//! metrics on the root's tick (at most a second late), so a request never
//! pays a host call for a count it can add later.
//!
//! A counter is defined with the host at the first tick that has a count
//! for it, not when the config is read: a config at the limits names some
//! 17,000 counters, and Envoy matches each new name against every stats
//! tag (about 60 µs each), which held a big config's first push for a
//! second. Response counters are the exception: a PromQL check divides
//! them, and `rate()` sees the first errors only after a zero.

use std::cell::Cell;

use super::proxy::{MetricKind, Proxy};
use super::Vm;
use canary_router_core::rollout::metrics::{self, tagged, STATUS_CLASSES};
use canary_router_core::routing::matcher::Test;
use canary_router_core::routing::mirror::Skip;
use canary_router_core::routing::router::Router;

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

/// What `Stats::each` calls with each counter, its metric and its tags.
type EachCounter<'a> = dyn FnMut(Counter, &str, &[(&str, &str)]) + 'a;

/// A counter the host has no id for yet.
const UNDEFINED: u32 = u32::MAX;
/// A counter the host would not define: its counts are dropped.
const REFUSED: u32 = u32::MAX - 1;

pub struct Stats {
    /// Per counter: the host's metric id, `UNDEFINED` or `REFUSED`.
    ids: Vec<Cell<u32>>,
    /// Per counter: counts not yet added to the host's metric.
    counts: Vec<Cell<u32>>,
    routes: Vec<RouteStats>,
    unrouted: Counter,
}

impl Stats {
    /// The config's counters; only the response counters are defined with
    /// the host now.
    pub fn new(vm: &Vm, router: &Router) -> Self {
        let mut stats = Stats { ids: Vec::new(), counts: Vec::new(), routes: Vec::new(), unrouted: NONE };
        stats.unrouted = stats.counter();
        for route in &router.routes {
            let mut targets = Vec::new();
            for t in route.targets() {
                let requests = stats.counter();
                let responses =
                    STATUS_CLASSES.map(|_| if router.count_responses { stats.counter() } else { NONE });
                targets.push(TargetStats { target: t.to_string(), requests, responses });
            }
            let rule_hits = route.rules.iter().map(|_| stats.counter()).collect();
            let default_routed = stats.counter();
            let has_regex = route.rules.iter().any(|rule| {
                rule.conditions.iter().any(|c| matches!(c.test, Test::Regex { .. } | Test::Literals { .. }))
            });
            let regex_skipped = if has_regex { stats.counter() } else { NONE };
            let (mut shadow_sent, mut shadow_failed, mut shadow_skipped) =
                (NONE, NONE, [NONE; Skip::ALL.len()]);
            if route.mirror.is_some() {
                shadow_sent = stats.counter();
                shadow_failed = stats.counter();
                shadow_skipped = Skip::ALL.map(|_| stats.counter());
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
        if router.count_responses {
            stats.define_where(vm, router, &|_, name| name == metrics::RESPONSES);
        }
        stats
    }

    fn counter(&mut self) -> Counter {
        self.ids.push(Cell::new(UNDEFINED));
        self.counts.push(Cell::new(0));
        Counter(u32::try_from(self.ids.len() - 1).unwrap_or(u32::MAX))
    }

    /// Each counter with its metric's name and tags.
    fn each(&self, router: &Router, f: &mut EachCounter) {
        f(self.unrouted, metrics::UNROUTED, &[]);
        for (stats, route) in self.routes.iter().zip(&router.routes) {
            let r = route.name.as_str();
            for t in &stats.targets {
                let tags = [("route", r), ("target", t.target.as_str())];
                f(t.requests, metrics::REQUESTS, &tags);
                for (counter, class) in t.responses.iter().zip(STATUS_CLASSES) {
                    f(*counter, metrics::RESPONSES, &[tags[0], tags[1], ("status_class", class)]);
                }
            }
            for (counter, rule) in stats.rule_hits.iter().zip(&route.rules) {
                f(*counter, metrics::RULE_HITS, &[("route", r), ("rule", &rule.label)]);
            }
            f(stats.default_routed, metrics::DEFAULT_ROUTED, &[("route", r)]);
            f(stats.regex_skipped, metrics::REGEX_SKIPPED, &[("route", r)]);
            if let Some(mirror) = &route.mirror {
                let tags = [("route", r), ("cluster", mirror.cluster.as_str())];
                f(stats.shadow_sent, metrics::SHADOW_SENT, &tags);
                f(stats.shadow_failed, metrics::SHADOW_FAILED, &tags);
                for (counter, skip) in stats.shadow_skipped.iter().zip(Skip::ALL) {
                    f(*counter, metrics::SHADOW_SKIPPED, &[tags[0], tags[1], ("reason", skip.label())]);
                }
            }
        }
    }

    /// Defines with the host each counter not yet defined that `wanted`
    /// picks (by its index and its metric's name).
    fn define_where(&self, vm: &Vm, router: &Router, wanted: &dyn Fn(usize, &str) -> bool) {
        self.each(router, &mut |counter, name, tags| {
            let index = counter.0 as usize;
            let Some(id) = self.ids.get(index) else { return };
            if id.get() == UNDEFINED && wanted(index, name) {
                id.set(vm.metric(MetricKind::Counter, tagged(name, tags)).unwrap_or(REFUSED));
            }
        });
    }

    fn bump(&self, counter: Counter) {
        if let Some(count) = self.counts.get(counter.0 as usize) {
            count.set(count.get().saturating_add(1));
        }
    }

    /// Adds every count to the host's metrics, defining first the
    /// counters counted for the first time.
    pub fn flush(&self, vm: &Vm, router: &Router) {
        let first_counts =
            self.ids.iter().zip(&self.counts).any(|(id, count)| id.get() == UNDEFINED && count.get() > 0);
        if first_counts {
            self.define_where(vm, router, &|index, _| self.counts.get(index).is_some_and(|c| c.get() > 0));
        }
        let proxy: &dyn Proxy = &*vm.proxy;
        for (id, count) in self.ids.iter().zip(&self.counts) {
            let n = count.replace(0);
            if n > 0 && id.get() < REFUSED {
                proxy.increment_metric(id.get(), u64::from(n));
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
