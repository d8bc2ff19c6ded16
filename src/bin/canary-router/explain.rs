//! `canary-router explain`: one request through the filter's decision code,
//! step by step.

use std::path::Path;

use canary_router::hash::BUCKETS;
use canary_router::request::Request;
use canary_router::router::{Action, Reason, Router};
use canary_router::split::Choice;

use crate::check::round;
use crate::input;
use crate::Failure;

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
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::Usage(format!("-H {header:?}: expected `name: value`")))?;
        pairs.push((name.trim().to_ascii_lowercase().into_bytes(), value.trim().as_bytes().to_vec()));
    }
    if !cookies.is_empty() {
        if let Some(bad) = cookies.iter().find(|c| !c.contains('=')) {
            return Err(Failure::Usage(format!("--cookie {bad:?}: expected `name=value`")));
        }
        pairs.push((b"cookie".to_vec(), cookies.join("; ").into_bytes()));
    }
    Ok(pairs)
}

pub fn run(path: &Path, headers: &[String], cookies: &[String], url: &str) -> Result<(), Failure> {
    let (_, router) = input::router(path)?;
    let pairs = request_pairs(headers, cookies, url)?;
    print!("{}", explain(&router, &pairs));
    Ok(())
}

/// The explanation as text.
pub fn explain(router: &Router, pairs: &[(Vec<u8>, Vec<u8>)]) -> String {
    let request = Request::new(pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect());
    let mut out = format!(
        "request: host {} path {}\n",
        String::from_utf8_lossy(request.authority()),
        String::from_utf8_lossy(pairs.iter().find(|(k, _)| k == b":path").map_or(&b""[..], |(_, v)| v))
    );
    let Some(decision) = router.decide(&request, 0) else {
        out += "route:   none matches this host and path\n";
        out += &format!("header:  {} removed (a client cannot choose the upstream)\n", router.target_header);
        return out;
    };
    out += &format!("route:   {}\n", decision.route);
    let Some(route) = router.routes.iter().find(|r| r.name == decision.route) else {
        return out;
    };
    for rule in &route.rules {
        let deciding = decision.rule == Some(rule.label.as_str());
        out += &format!("rule:    {}\n", rule.label);
        if rule.conditions.is_empty() {
            out += "           (no conditions: always holds)\n";
        }
        for condition in &rule.conditions {
            let verdict = if condition.holds(&request) { "holds" } else { "does not hold" };
            out += &format!("           {condition}: {verdict}\n");
        }
        if deciding {
            out += "           -> this rule decides\n";
            if let Action::Split(split) = &rule.action {
                let total: f64 = split.weights().iter().sum();
                let shares: Vec<String> = split
                    .targets()
                    .iter()
                    .zip(split.weights())
                    .map(|(t, w)| format!("{t} {}%", round(w / total * 100.0)))
                    .collect();
                out += &format!("split:   {}\n", shares.join(" / "));
                match decision.reason {
                    Reason::Split(Choice::Sticky { bucket }) => {
                        let source = split.sticky_by().map(ToString::to_string).unwrap_or_default();
                        out += &format!(
                            "sticky:  {source} -> bucket {bucket} of {BUCKETS}: always {}\n",
                            decision.target
                        );
                    }
                    _ => {
                        let why = match split.sticky_by() {
                            Some(source) => format!("no {source} in the request"),
                            None => "no stickyBy".to_string(),
                        };
                        out += &format!("random:  {why}: each request picks by the weights above\n");
                        out += &format!("target:  one of {}\n", split.targets().join(", "));
                        out += &format!("header:  {}: <the chosen target>\n", router.target_header);
                        return out;
                    }
                }
            }
            break;
        }
    }
    if decision.reason == Reason::Default {
        out += "default: no rule holds\n";
    }
    out += &format!("target:  {}\n", decision.target);
    out += &format!("header:  {}: {}\n", router.target_header, decision.target);
    out
}
