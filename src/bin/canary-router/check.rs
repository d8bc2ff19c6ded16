//! `canary-router check`: the filter's validation, with a summary.

use std::path::Path;

use canary_router::config;
use canary_router::router::{Action, Route, Router};
use canary_router::split::{Moment, Split};

use crate::input;
use crate::Failure;

pub fn run(path: &Path) -> Result<(), Failure> {
    let mut errors = Vec::new();
    for source in input::sources(path)? {
        match config::parse(source.json.as_bytes()) {
            Ok(router) => print!("{}", summary(&source.origin, &router)),
            Err(err) => errors.push(format!("{}: {err}", source.origin)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::Invalid(errors.join("\ncanary-router: ")))
    }
}

/// `ok` and one line per route.
pub fn summary(origin: &str, router: &Router) -> String {
    let mut out =
        format!("ok: {origin}: {} route(s), target header {}\n", router.routes.len(), router.target_header);
    for route in &router.routes {
        out += &format!("  {}\n", route_line(route));
    }
    out
}

fn route_line(route: &Route) -> String {
    let hosts = if route.hosts.is_empty() {
        "any host".to_string()
    } else {
        route.hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let path =
        route.path_prefix.as_ref().map(|p| format!(" {}*", String::from_utf8_lossy(p))).unwrap_or_default();
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
