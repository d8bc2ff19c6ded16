//! `canary-router check`: the filter's validation, with a summary of what
//! each route and split does, and warnings for what is valid but likely
//! not meant.

use std::path::PathBuf;

use canary_router_core::rollout::settings::{Compare, Gate, OnMaxWait, Ramp, Rollback};
use canary_router_core::routing::route::{Action, Route};
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::{AllLive, Moment, Split};
use canary_router_core::text::decimal;
use canary_router_core::text::time::format_rfc3339;

use crate::input;
use crate::Failure;

pub fn run(paths: &[PathBuf]) -> Result<(), Failure> {
    let mut errors = Vec::new();
    for source in input::sources_of(paths)? {
        for warning in &source.warnings {
            eprintln!("canary-router: warning: {warning}");
        }
        match source.parse() {
            Ok(router) => {
                let now_ms = now_ms();
                for warning in warnings(&source.origin, &router, now_ms) {
                    eprintln!("canary-router: warning: {warning}");
                }
                print!("{}", summary(&source.origin, &router, now_ms));
            }
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::Invalid(errors.join("\ncanary-router: ")))
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Valid, but probably not what was meant: each names its place. `module`:
/// the config is the dynamic module's, which has no Prometheus checks yet.
pub fn warnings(origin: &str, router: &Router, now_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    for (i, route) in router.routes.iter().enumerate() {
        for (j, rule) in route.rules.iter().enumerate() {
            let Action::Split(split) = &rule.action else { continue };
            let split_place = format!("{origin}: routes[{i}].rules[{j}].split");
            out.extend(progress_warnings(&split_place, split, now_ms));
            let place = format!("{split_place}.weights");
            let sum: f64 = split.weights().iter().sum();
            if (sum - 100.0).abs() > 1e-9 {
                out.push(format!(
                    "{place}: the weights sum to {}, not 100: each target gets its weight / {} of the traffic",
                    decimal::format(sum),
                    decimal::format(sum)
                ));
            }
            for ((target, weight), share) in
                split.targets().iter().zip(split.weights()).zip(split.configured_shares())
            {
                if *weight > 0.0 && share == 0 {
                    out.push(format!(
                        "{place}: {target} has weight {} but its share rounds to 0 of 1,000,000: it gets no traffic",
                        decimal::format(*weight)
                    ));
                }
            }
        }
    }
    out
}

/// A clock ramp already past its last step, a gate that would take,
/// hold or roll back a step on no evidence, a rollback only this proxy
/// remembers.
fn progress_warnings(place: &str, split: &Split, now_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(ramp), Some(rollback)) = (split.ramp(), split.rollback()) {
        if let Some(gate) = &ramp.gate {
            out.extend(gate_warnings(&format!("{place}.ramp.gate"), ramp, gate, rollback));
        }
    }
    if let Some(ramp) = split.ramp().filter(|r| r.gate.is_none() && r.steps.len() > 1) {
        let last_from = ramp.start_ms + ramp.last_step() as u64 * ramp.every_ms;
        if now_ms >= last_from {
            out.push(format!(
                "{place}.ramp.start: {} puts this ramp past its last step already: applying it sends {}% to {} at once; \
                 move `start`, or gate the ramp (`gate`) so each step is earned",
                format_rfc3339(ramp.start_ms / 1000),
                decimal::format(ramp.steps.last().copied().unwrap_or(0.0)),
                ramp.target
            ));
        }
    }
    if let Some(rollback) = split.rollback().filter(|r| r.prometheus.is_none()) {
        out.push(format!(
            "{place}.rollback: judged by each proxy's own window only: a rollback is forgotten when the proxy \
             restarts, which then sends {} its share again; add `prometheus` so the fleet remembers \
             (docs/progressive-delivery.md#rollback-splitrollback)",
            rollback.target
        ));
    }
    out
}

/// Where a gate would move, hold or roll back a step without evidence.
fn gate_warnings(place: &str, ramp: &Ramp, gate: &Gate, rollback: &Rollback) -> Vec<String> {
    let mut out = Vec::new();
    let checks = rollback.checks().len();
    if rollback.window.is_none() && checks == 0 {
        out.push(format!(
            "{place}: nothing judges {}: no local window and no Prometheus checks, so each step is taken \
             after `every` on no evidence at all; add a window or a check",
            ramp.target
        ));
    }
    if let (Some(max_wait), Some(prometheus)) = (gate.max_wait_ms, &rollback.prometheus) {
        // The first poll of a step may come a period (and its jitter) and
        // a timeout after the step began.
        let first_poll = prometheus.every_ms + prometheus.every_ms / 10 + u64::from(prometheus.timeout_ms);
        if checks > 0 && max_wait < ramp.every_ms + first_poll {
            out.push(format!(
                "{place}.maxWait: {} may pass before a Prometheus poll judged the step once (a step lasts `every`, \
                 {}, and its first poll can take {}): the step would then {} on no evidence",
                seconds(max_wait),
                seconds(ramp.every_ms),
                seconds(first_poll),
                on_max_wait(gate.on_max_wait)
            ));
        }
    }
    if gate.max_wait_ms.is_some() && gate.on_max_wait == OnMaxWait::Rollback {
        out.push(format!(
            "{place}.onMaxWait: `rollback` takes {} out when a step could not be judged in time (too little \
             traffic, checks without data), not only when it failed; `hold` waits and alerts instead",
            ramp.target
        ));
    }
    out
}

fn on_max_wait(on: OnMaxWait) -> &'static str {
    match on {
        OnMaxWait::Hold => "hold",
        OnMaxWait::Rollback => "roll back",
    }
}

/// `ok` and one line per route, then what each split and mirror does.
pub fn summary(origin: &str, router: &Router, now_ms: u64) -> String {
    let mut out =
        format!("ok: {origin}: {} route(s), target header {}\n", router.routes.len(), router.target_header);
    for route in &router.routes {
        out += &format!("  {}\n", route_line(route));
        for rule in &route.rules {
            if let Action::Split(split) = &rule.action {
                out += &split_details(&rule.label, split, now_ms);
            }
        }
        if let Some(mirror) = &route.mirror {
            out += &format!(
                "    mirror: {}% of requests copied to cluster {}, answers ignored, timeout {} ms, bodies up to {} bytes\n",
                decimal::format(mirror.percent),
                mirror.cluster,
                mirror.timeout_ms,
                mirror.max_body_bytes
            );
        }
    }
    out
}

/// A split's ramp timeline, rollback criteria and assignment cookie.
fn split_details(label: &str, split: &Split, now_ms: u64) -> String {
    let mut out = String::new();
    if let Some(ramp) = split.ramp() {
        out += &ramp_line(label, split, ramp, now_ms);
    }
    if let Some(rollback) = split.rollback() {
        let mut judges = Vec::new();
        if let Some(window) = &rollback.window {
            let bounds: Vec<String> = [
                window
                    .max_error_rate
                    .map(|max| format!("more than {}% errors", decimal::format(max * 100.0))),
                window
                    .latency
                    .as_ref()
                    .map(|l| format!("p{} above {} ms", decimal::format(l.percentile), l.max_ms)),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !bounds.is_empty() {
                judges.push(format!(
                    "this proxy's window: {} over {} with at least {} responses",
                    bounds.join(" or "),
                    seconds(window.window_ms),
                    window.min_requests
                ));
            }
            if let Some(compare) = &window.compare {
                judges.push(compare_line(compare, split, window.min_requests));
            }
        }
        if let Some(prometheus) = &rollback.prometheus {
            let checks: Vec<String> = prometheus
                .checks
                .iter()
                .map(|c| {
                    let bounds: Vec<String> = [
                        c.min.map(|m| format!(">= {}", decimal::format(m))),
                        c.max.map(|m| format!("<= {}", decimal::format(m))),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    format!("{} {}", c.name, bounds.join(" and "))
                })
                .collect();
            let checks = if checks.is_empty() {
                "no checks".to_string()
            } else {
                format!("checks {}", checks.join(", "))
            };
            let mut via = format!("cluster {}", prometheus.cluster);
            if !prometheus.path_prefix.is_empty() {
                via += &format!(" under {}", prometheus.path_prefix);
            }
            if !prometheus.headers.is_empty() {
                let names: Vec<&str> = prometheus.headers.iter().map(|(name, _)| name.as_str()).collect();
                via += &format!(" with headers {} (values not shown)", names.join(", "));
            }
            judges.push(format!(
                "Prometheus via {via} every {}: {checks}, {} failing polls in a row; the fleet latch looks back {}",
                seconds(prometheus.every_ms),
                prometheus.threshold,
                prometheus.lookback
            ));
        }
        out += &format!("    {label} rollback of {}: {}\n", rollback.target, judges.join("; "));
    }
    if let Some(cookie) = split.assign_cookie() {
        out += &format!("    {label} assignment cookie: {}\n", cookie.set_cookie("TARGET"));
    }
    out
}

/// What `compare` judges, in words.
fn compare_line(compare: &Compare, split: &Split, min_requests: u64) -> String {
    let worse: Vec<String> = [
        compare.max_error_rate_increase.map(|d| {
            format!("an error rate more than {} above it", canary_router_core::rollout::judge::points(d))
        }),
        compare.latency.as_ref().map(|l| {
            format!(
                "p{} more than {}x and {} ms slower",
                decimal::format(l.percentile),
                decimal::format(l.max_ratio),
                l.min_increase_ms
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let over = match split.ramp() {
        Some(ramp) => {
            format!("over the whole ramp ({} steps, each judged on its own evidence)", ramp.steps.len())
        }
        None => "over the split's life".to_string(),
    };
    format!(
        "against its baseline ({}) on this proxy: {}, at {}% confidence {over}, once each has {min_requests} responses",
        compare.baseline.join(", "),
        worse.join(" or "),
        decimal::format(compare.confidence * 100.0),
    )
}

/// A ramp's steps: a clock ramp's times, the step it is at now and its
/// weights then; a gated ramp's gate.
fn ramp_line(label: &str, split: &Split, ramp: &Ramp, now_ms: u64) -> String {
    if let Some(gate) = &ramp.gate {
        let steps: Vec<String> = ramp.steps.iter().map(|p| format!("{}%", decimal::format(*p))).collect();
        let wait = match gate.max_wait_ms {
            Some(ms) => {
                format!(", judged for at most {} then {}", seconds(ms), on_max_wait(gate.on_max_wait))
            }
            None => String::new(),
        };
        let hold = if ramp.hold { " (hold: frozen at its step, its clock stopped)" } else { "" };
        let begins = if ramp.start_ms > now_ms {
            format!(
                "at {}, or when a proxy first applies this config if later",
                format_rfc3339(ramp.start_ms / 1000)
            )
        } else {
            format!(
                "when a proxy first applies this config (`start`, {}, is past)",
                format_rfc3339(ramp.start_ms / 1000)
            )
        };
        let polled = split.rollback().is_some_and(|r| r.prometheus.is_some());
        let fleet = if polled { ", once the fleet's latches answered" } else { "" };
        // What earns a step: the local window's responses, a passing
        // Prometheus poll, or both; never "0 responses".
        let compared = split
            .rollback()
            .and_then(|r| r.window.as_ref())
            .and_then(|w| w.compare.as_ref())
            .map_or(String::new(), |c| {
                format!(
                    ", the canary shown within its allowances against its baseline at {}% confidence",
                    decimal::format(c.confidence * 100.0)
                )
            });
        let evidence = match (gate.min_requests, polled) {
            (0, _) => "a Prometheus poll that passes during the step".to_string(),
            (n, false) => format!("{n} responses within the window's limits{compared}"),
            (n, true) => {
                format!("{n} responses within the window's limits{compared} and a passing Prometheus poll")
            }
        };
        return format!(
            "    {label} gated ramp of {}: {}, each step after at least {} and a passed judgement \
             ({evidence}{wait}); step 1 begins {begins}{fleet}; the step in force is the proxies' \
             (`canary-router status`){hold}\n",
            ramp.target,
            steps.join(", "),
            seconds(ramp.every_ms),
        );
    }
    let current = ramp.step_at(now_ms);
    let steps: Vec<String> = ramp
        .steps
        .iter()
        .enumerate()
        .map(|(i, percent)| {
            let at = format_rfc3339((ramp.start_ms + i as u64 * ramp.every_ms) / 1000);
            let mark = if current == Some(i) { " (now)" } else { "" };
            format!("{}% from {at}{mark}", decimal::format(*percent))
        })
        .collect();
    let now = match current {
        None => " (now: before the start, the listed weights)".to_string(),
        Some(_) => format!("; now {}", shares(split, &Moment { roll: 0, now_ms, splits: &AllLive })),
    };
    format!("    {label} ramp of {}: {}{now}\n", ramp.target, steps.join(", "))
}

fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn route_line(route: &Route) -> String {
    let hosts = if route.hosts.is_empty() {
        "any host".to_string()
    } else {
        route.hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let path = route
        .path_prefix
        .as_ref()
        .map(|p| {
            format!(" {}{}", String::from_utf8_lossy(p), if route.path_exact { " (exactly)" } else { "*" })
        })
        .unwrap_or_default();
    let rules: Vec<String> = route
        .rules
        .iter()
        .map(|rule| match &rule.action {
            Action::Target(target) => format!("{} -> {target}", rule.label),
            Action::Split(split) => {
                let sticky = split.sticky_by().map(|s| format!(", sticky by {s}")).unwrap_or_default();
                // The listed weights: time 0 is before any ramp.
                format!("{} -> split {}{sticky}", rule.label, shares(split, &Moment::roll(0)))
            }
        })
        .collect();
    let rules = if rules.is_empty() { String::new() } else { format!("; {}", rules.join("; ")) };
    format!("route {}: {hosts}{path}{rules}; default -> {}", route.name, route.default)
}

/// Each target's share at a moment: `canary 20% / stable 80%`.
pub fn shares(split: &Split, moment: &Moment<'_>) -> String {
    let shares: Vec<String> = split
        .targets()
        .iter()
        .zip(split.current_percents(moment))
        .map(|(t, p)| format!("{t} {}%", round(p)))
        .collect();
    shares.join(" / ")
}

/// A percentage with at most two decimals, without trailing zeros.
pub fn round(percent: f64) -> String {
    let text = format!("{percent:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
