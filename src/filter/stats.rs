//! The filter's counters, defined once per config and incremented by id.
//!
//! Envoy gives every `proxy_define_metric` call a new id and keeps the name
//! for good, even when the name is one it already knows; a VM that defined
//! its counters afresh on every config push grew the proxy's memory with
//! each push. So a VM defines each name once and reuses the id for every
//! later config that names the same metric.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::host;
use crate::metrics::{self, tagged, STATUS_CLASSES};
use crate::mirror::Skip;
use crate::router::Router;

/// A counter id; `None` if the host refused to define it (counts are then
/// lost, routing is not affected).
type Counter = Option<u32>;

thread_local! {
    /// Every metric this VM defined, by kind and name.
    static DEFINED: RefCell<HashMap<(bool, String), u32>> = RefCell::new(HashMap::new());
}

/// The id of a metric, defined on first use only.
fn defined(gauge: bool, name: String) -> Counter {
    if let Some(id) = DEFINED.with(|d| d.borrow().get(&(gauge, name.clone())).copied()) {
        return Some(id);
    }
    let id = if gauge { host::define_gauge(&name) } else { host::define_counter(&name) }.ok()?;
    DEFINED.with(|d| d.borrow_mut().insert((gauge, name), id));
    Some(id)
}

fn counter(name: &str, tags: &[(&str, &str)]) -> Counter {
    defined(false, tagged(name, tags))
}

fn bump(counter: Counter) {
    if let Some(id) = counter {
        host::increment(id);
    }
}

struct TargetStats {
    target: String,
    requests: Counter,
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
    routes: Vec<RouteStats>,
    unrouted: Counter,
    /// Per split id: a gauge, 1 once the split rolled back (rollback splits only).
    rolled_back: Vec<Counter>,
}

/// Counters of config loads, shared by every config of a VM.
pub fn config_loaded(accepted: bool) {
    bump(counter(if accepted { metrics::CONFIG_ACCEPTED } else { metrics::CONFIG_REJECTED }, &[]));
}

impl Stats {
    pub fn define(router: &Router) -> Self {
        let routes = router
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| {
                let r = route.name.as_str();
                let targets = metrics::route_targets(router, index)
                    .into_iter()
                    .map(|t| TargetStats {
                        target: t.to_string(),
                        requests: counter(metrics::REQUESTS, &[("route", r), ("target", t)]),
                        responses: STATUS_CLASSES.map(|class| {
                            counter(
                                metrics::RESPONSES,
                                &[("route", r), ("target", t), ("status_class", class)],
                            )
                        }),
                    })
                    .collect();
                let rule_hits = route
                    .rules
                    .iter()
                    .map(|rule| counter(metrics::RULE_HITS, &[("route", r), ("rule", &rule.label)]))
                    .collect();
                let cluster = route.mirror.as_ref().map_or("", |m| m.cluster.as_str());
                let mirrored = route.mirror.is_some();
                let shadow = |name, reason: Option<&str>| {
                    let mut tags = vec![("route", r), ("cluster", cluster)];
                    tags.extend(reason.map(|reason| ("reason", reason)));
                    if mirrored {
                        counter(name, &tags)
                    } else {
                        None
                    }
                };
                let has_regex = route.rules.iter().any(|rule| {
                    rule.conditions.iter().any(|c| matches!(c.test, crate::matcher::Test::Regex { .. }))
                });
                RouteStats {
                    targets,
                    rule_hits,
                    default_routed: counter(metrics::DEFAULT_ROUTED, &[("route", r)]),
                    regex_skipped: if has_regex {
                        counter(metrics::REGEX_SKIPPED, &[("route", r)])
                    } else {
                        None
                    },
                    shadow_sent: shadow(metrics::SHADOW_SENT, None),
                    shadow_failed: shadow(metrics::SHADOW_FAILED, None),
                    shadow_skipped: Skip::ALL.map(|skip| shadow(metrics::SHADOW_SKIPPED, Some(skip.label()))),
                }
            })
            .collect();
        let mut rolled_back = vec![None; router.split_count];
        for (route, rule, split) in router.splits() {
            let Some(rollback) = split.rollback() else { continue };
            let tags = [
                ("route", route.name.as_str()),
                ("rule", rule.label.as_str()),
                ("target", rollback.target.as_str()),
            ];
            let gauge = defined(true, tagged(metrics::ROLLED_BACK, &tags));
            if let Some(id) = gauge {
                host::record(id, 0);
            }
            if let Some(slot) = rolled_back.get_mut(split.id) {
                *slot = gauge;
            }
        }
        Stats { routes, unrouted: counter(metrics::UNROUTED, &[]), rolled_back }
    }

    /// Sets the split's rollback gauge to 1.
    pub fn rolled_back(&self, split_id: usize) {
        if let Some(id) = self.rolled_back.get(split_id).copied().flatten() {
            host::record(id, 1);
        }
    }

    /// Counts a routed request; returns the target's index for `response`.
    pub fn request(&self, route: usize, rule: Option<usize>, target: &str) -> Option<usize> {
        let stats = self.routes.get(route)?;
        match rule {
            Some(rule) => bump(stats.rule_hits.get(rule).copied().flatten()),
            None => bump(stats.default_routed),
        }
        let index = stats.targets.iter().position(|t| t.target == target)?;
        bump(stats.targets[index].requests);
        Some(index)
    }

    pub fn unrouted(&self) {
        bump(self.unrouted);
    }

    pub fn response(&self, route: usize, target: usize, status_class: usize) {
        if let Some(t) = self.routes.get(route).and_then(|r| r.targets.get(target)) {
            bump(t.responses.get(status_class).copied().flatten());
        }
    }

    pub fn shadow_sent(&self, route: usize) {
        bump(self.routes.get(route).and_then(|r| r.shadow_sent));
    }

    pub fn shadow_failed(&self, route: usize) {
        bump(self.routes.get(route).and_then(|r| r.shadow_failed));
    }

    pub fn shadow_skipped(&self, route: usize, why: Skip) {
        bump(self.routes.get(route).and_then(|r| r.shadow_skipped.get(why.index()).copied().flatten()));
    }

    /// A request whose regex budget could not pay for every test.
    pub fn regex_skipped(&self, route: usize) {
        bump(self.routes.get(route).and_then(|r| r.regex_skipped));
    }
}
