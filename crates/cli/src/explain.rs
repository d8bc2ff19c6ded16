//! `canary-router explain`: one request through the filter's decision code,
//! step by step.

use std::path::Path;

use canary_router_core::hashing::hash::BUCKETS;
use canary_router_core::request::Request;
use canary_router_core::routing::route::Rule;
use canary_router_core::routing::router::{Decision, Reason, Router};
use canary_router_core::routing::split::{Choice, Moment, Split};

use crate::check::{round, shares};
use crate::input;
use crate::{Failure, When};

/// Owned request headers, pseudo-headers included.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The request an `explain` describes, as header pairs.
pub fn request_pairs(headers: &[String], cookies: &[String], url: &str) -> Result<Pairs, Failure> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).unwrap_or(url);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    let mut pairs =
        vec![(b":authority".to_vec(), authority.as_bytes().to_vec()), (b":path".to_vec(), path.into_bytes())];
    pairs.push((b":method".to_vec(), b"GET".to_vec()));
    for header in headers {
        // `:authority: x` splits after the pseudo-header's own colon.
        let (name, value) = match header.strip_prefix(':') {
            Some(rest) => rest.split_once(':').map(|(n, v)| (format!(":{n}"), v)),
            None => header.split_once(':').map(|(n, v)| (n.to_string(), v)),
        }
        .ok_or_else(|| Failure::Usage(format!("-H {header:?}: expected `name: value`")))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().as_bytes().to_vec();
        // As in Envoy, `host` is the HTTP/1 spelling of `:authority`: curl's
        // `-H 'host: ...'` decides the route, whatever the URL says.
        if name == "host" || name == ":authority" {
            pairs[0].1 = value;
            continue;
        }
        pairs.push((name.into_bytes(), value));
    }
    if !cookies.is_empty() {
        if let Some(bad) = cookies.iter().find(|c| !c.contains('=')) {
            return Err(Failure::Usage(format!("--cookie {bad:?}: expected `name=value`")));
        }
        pairs.push((b"cookie".to_vec(), cookies.join("; ").into_bytes()));
    }
    Ok(pairs)
}

pub fn run(
    path: &Path,
    headers: &[String],
    cookies: &[String],
    url: &str,
    when: &When,
) -> Result<(), Failure> {
    let (_, router) = input::router(path)?;
    let pairs = request_pairs(headers, cookies, url)?;
    let live = when.live(router.split_count);
    let moment = Moment { roll: 0, now_ms: when.now_ms()?, splits: &live };
    print!("{}", explain(&router, &pairs, &moment));
    Ok(())
}

/// The explanation as text.
pub fn explain(router: &Router, pairs: &[(Vec<u8>, Vec<u8>)], moment: &Moment<'_>) -> String {
    let request = Request::new(pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect());
    let mut out = format!(
        "request: host {} path {}\n",
        String::from_utf8_lossy(request.authority()),
        String::from_utf8_lossy(pairs.iter().find(|(k, _)| k == b":path").map_or(&b""[..], |(_, v)| v))
    );
    let Some(decision) = router.decide(&request, moment) else {
        out += "route:   none matches this host and path\n";
        out += &format!("header:  {} removed (a client cannot choose the upstream)\n", router.target_header);
        return out;
    };
    out += &format!("route:   {}\n", decision.route);
    let Some(route) = router.routes.iter().find(|r| r.name == decision.route) else {
        return out;
    };
    for rule in &route.rules {
        out += &rule_lines(rule, &request);
        if decision.rule != Some(rule.label.as_str()) {
            continue;
        }
        out += "           -> this rule decides\n";
        if let Some(split) = rule.split() {
            out += &split_lines(split, &decision, moment);
            if random(split, &decision, moment) {
                out += &format!("target:  one of {}\n", split.targets().join(", "));
                out += &format!("header:  {}: <the chosen target>\n", router.target_header);
                if let Some(cookie) = decision.assign_cookie() {
                    out += &format!("response: set-cookie: {}\n", cookie.set_cookie("<the chosen target>"));
                }
                return out;
            }
        }
        break;
    }
    if decision.reason == Reason::Default {
        out += "default: no rule holds\n";
    }
    out += &format!("target:  {}\n", decision.target);
    out += &format!("header:  {}: {}\n", router.target_header, decision.target);
    if let Some(cookie) = decision.assign_cookie() {
        out += &format!("response: set-cookie: {}\n", cookie.set_cookie(decision.target));
    }
    out
}

/// A rule and whether each of its conditions holds.
fn rule_lines(rule: &Rule, request: &Request<'_>) -> String {
    let mut out = format!("rule:    {}\n", rule.label);
    if rule.conditions.is_empty() {
        out += "           (no conditions: always holds)\n";
    }
    for condition in &rule.conditions {
        let verdict = if condition.holds(request) { "holds" } else { "does not hold" };
        out += &format!("           {condition}: {verdict}\n");
    }
    out
}

/// Whether the deciding split chose by the request's random roll.
fn random(split: &Split, decision: &Decision<'_>, moment: &Moment<'_>) -> bool {
    matches!(decision.reason, Reason::Split(Choice::Random { .. }))
        && split.current_percents(moment).iter().filter(|p| **p > 0.0).count() > 1
}

/// The deciding split: its shares now, its ramp, its rollback, and how it chose.
fn split_lines(split: &Split, decision: &Decision<'_>, moment: &Moment<'_>) -> String {
    let mut out = format!("split:   {}\n", shares(split, moment));
    if let Some(ramp) = split.ramp().filter(|r| r.gate.is_some()) {
        out += &format!(
            "ramp:    {} gated: each step is earned, so its step is the proxies' (`canary-router status`); \
             shown with the listed weights\n",
            ramp.target
        );
    } else if let Some(ramp) = split.ramp() {
        out += &match ramp.step_at(moment.now_ms) {
            Some(step) => format!(
                "ramp:    {} at step {} of {} ({}%)\n",
                ramp.target,
                step + 1,
                ramp.steps.len(),
                round(ramp.steps.get(step).copied().unwrap_or(0.0))
            ),
            None => "ramp:    not started: the listed weights apply until its start\n".to_string(),
        };
    }
    if let Some(rollback) = split.rollback() {
        if moment.splits.live(split.id).withheld {
            out += &format!("rollback: rolled back: {} gets no traffic\n", rollback.target);
        }
    }
    match decision.reason {
        Reason::Split(Choice::Cookie) => {
            out += "cookie:  the request's assignment cookie names a target with weight: kept\n";
        }
        Reason::Split(Choice::Sticky { bucket }) => {
            let source = split.sticky_by().map(ToString::to_string).unwrap_or_default();
            out +=
                &format!("sticky:  {source} -> bucket {bucket} of {BUCKETS}: always {}\n", decision.target);
        }
        _ if !random(split, decision, moment) => {
            out += "only:    one target has weight: every request gets it\n";
        }
        _ => {
            let why = match split.sticky_by() {
                Some(source) => format!("no {source} in the request"),
                None => "no stickyBy".to_string(),
            };
            out += &format!("random:  {why}: each request picks by the weights above\n");
        }
    }
    out
}
