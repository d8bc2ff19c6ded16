//! The filter's counters, defined once per config and incremented by id.

use crate::host;
use crate::metrics::{self, tagged, STATUS_CLASSES};
use crate::router::Router;

/// A counter id; `None` if the host refused to define it (counts are then
/// lost, routing is not affected).
type Counter = Option<u32>;

fn counter(name: &str, tags: &[(&str, &str)]) -> Counter {
    host::define_counter(&tagged(name, tags)).ok()
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
    shadow_sent: Counter,
    shadow_failed: Counter,
    shadow_skipped: Counter,
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
                let shadow = |name| {
                    if route.mirror.is_some() {
                        counter(name, &[("route", r), ("cluster", cluster)])
                    } else {
                        None
                    }
                };
                RouteStats {
                    targets,
                    rule_hits,
                    default_routed: counter(metrics::DEFAULT_ROUTED, &[("route", r)]),
                    shadow_sent: shadow(metrics::SHADOW_SENT),
                    shadow_failed: shadow(metrics::SHADOW_FAILED),
                    shadow_skipped: shadow(metrics::SHADOW_SKIPPED),
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
            let gauge = host::define_gauge(&tagged(metrics::ROLLED_BACK, &tags)).ok();
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

    pub fn shadow_skipped(&self, route: usize) {
        bump(self.routes.get(route).and_then(|r| r.shadow_skipped));
    }
}
