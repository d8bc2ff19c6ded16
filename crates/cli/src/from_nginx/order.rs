//! Which route of a host takes a request, as ingress-nginx decides it. Its
//! nginx template writes a location per path: `pathType: Exact` as an
//! exact location (`location = /api`), which wins outright; `Prefix` as a
//! prefix location of the path with a trailing `/` plus an exact one of the
//! path itself (so `/api` takes `/api` and `/api/...`, never `/apiary`);
//! `ImplementationSpecific` as a plain nginx prefix (`/api` takes
//! `/apiary` too); nginx then takes the longest matching prefix. With
//! `use-regex` on any Ingress of a host, every path of that host becomes a
//! case-insensitive regex anchored at its start (Exact ones too), tried
//! longest first.
//!
//! The filter takes the first route of a host whose path matches, so a
//! host's routes are listed in that order: exact paths, then prefixes by
//! the length nginx compares, longest first.

use serde_json::{json, Map, Value};

use super::homes::Placement;
use crate::Failure;

/// How a path of an Ingress matches, in the filter's keys.
pub fn path_keys(path: &str, path_type: &str, regex_host: bool) -> Map<String, Value> {
    let mut keys = Map::new();
    if regex_host {
        keys.insert("pathPrefix".into(), json!(path));
        return keys;
    }
    match path_type {
        "Exact" => {
            keys.insert("path".into(), json!(path));
        }
        "Prefix" if path != "/" => {
            keys.insert("pathPrefix".into(), json!(path));
            // Kubernetes matches a Prefix path by whole elements.
            keys.insert("pathElements".into(), json!(true));
        }
        _ => {
            keys.insert("pathPrefix".into(), json!(path));
        }
    }
    keys
}

/// Characters that make a use-regex path a pattern rather than a literal.
const REGEX_SYNTAX: &[char] = &['.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\', '^', '$'];

/// A path on a use-regex host: a literal one is a prefix (case aside); a
/// pattern cannot be carried over.
pub fn check_regex_path(ingress: &str, host: &str, path: &str) -> Result<(), Failure> {
    if path.contains(REGEX_SYNTAX) {
        return Err(Failure::Invalid(format!(
            "Ingress {ingress}: host {host:?} has use-regex and path {path:?} is a regex: canary-router matches \
             paths exactly or by prefix; write the path as a literal prefix"
        )));
    }
    Ok(())
}

/// The warning for a use-regex host, whose literal paths become prefixes.
pub fn regex_host_warning(host: &str) -> String {
    format!(
        "host {host:?}: use-regex makes ingress-nginx match each of its paths as a case-insensitive prefix \
         (`~* \"^/path\"`, Exact ones too), longest first; canary-router matches them as case-sensitive prefixes, \
         longest first"
    )
}

/// Where a route sorts among its host's: exact paths first, then
/// prefixes by the length nginx compares (a Prefix path's with its `/`),
/// longest first; a route without a path (the default server) last.
fn rank(route: &Value) -> (u8, std::cmp::Reverse<usize>) {
    if let Some(path) = route["path"].as_str() {
        return (0, std::cmp::Reverse(path.len()));
    }
    match route["pathPrefix"].as_str() {
        Some(prefix) => {
            let elements = route["pathElements"] == true && !prefix.ends_with('/');
            (1, std::cmp::Reverse(prefix.len() + usize::from(elements)))
        }
        None => (2, std::cmp::Reverse(0)),
    }
}

/// Sorts the placements host by host (hosts in their first order), each
/// host's routes in ingress-nginx's order.
pub fn as_nginx_orders(placements: &mut [Placement]) {
    let host = |p: &Placement| p.route["hosts"][0].as_str().unwrap_or("").to_string();
    let mut hosts: Vec<String> = Vec::new();
    for placement in placements.iter() {
        let h = host(placement);
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    placements.sort_by_key(|p| (hosts.iter().position(|h| *h == host(p)), rank(&p.route)));
}
