//! Which routes can apply to a host, found by lookup instead of a scan, so
//! a config with 2,000 routes picks its route as fast as one with 10.
//!
//! Routes are indexed by each `hosts` entry: exact names in one map,
//! `*.suffix` wildcards in another (keyed by the suffix with its dot), and
//! routes for any host in a list. A host is looked up exactly, then by each
//! of its suffixes from the longest, then in the list: the order of
//! specificity in which Envoy ranks virtual host domains. Each bucket
//! lists its routes in config order, so the first whose path prefix
//! matches is the one a scan would have picked. Buckets are keyed by the
//! name's hash, not a copy of it: a route that lands in a bucket by a hash
//! collision is passed over by checking its own hosts, and 2,000 routes'
//! host names are not held twice.

use crate::hashing::hash::{name_hash as key, ByNameHash as Buckets};
use crate::routing::route::Route;
use crate::text::host_pattern::HostPattern;

#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    exact: Buckets,
    suffix: Buckets,
    any: Vec<u32>,
}

impl RouteIndex {
    pub fn new(routes: &[Route]) -> Self {
        let mut index = RouteIndex::default();
        for (i, route) in routes.iter().enumerate() {
            index.add(u32::try_from(i).unwrap_or(u32::MAX), route);
        }
        index
    }

    /// Route `i`'s hosts. Not inlined: V8 runs a function's first calls
    /// unoptimized and optimizes it once it is hot, and `new` runs once
    /// per push (hashing every host of a big config unoptimized).
    #[inline(never)]
    fn add(&mut self, i: u32, route: &Route) {
        if route.hosts.is_empty() {
            push(&mut self.any, i);
        }
        for pattern in &route.hosts {
            match pattern {
                HostPattern::Any => push(&mut self.any, i),
                HostPattern::Exact(name) => push(self.exact.entry(key(name)).or_default(), i),
                HostPattern::Suffix(suffix) => push(self.suffix.entry(key(suffix)).or_default(), i),
            }
        }
    }

    /// The first route, most specific host first and then in config order,
    /// for which `applies` holds (its path prefix matches).
    pub fn find(
        &self,
        routes: &[Route],
        host: &[u8],
        mut applies: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        // Hosts almost always arrive in lower case: copy only when not.
        let owned;
        let lower: &[u8] = if host.iter().any(u8::is_ascii_uppercase) {
            owned = host.to_ascii_lowercase();
            &owned
        } else {
            host
        };
        // A route of the bucket whose own patterns hold the name (not a
        // hash collision's), its path matching.
        let mut first = |bucket: Option<&Vec<u32>>, holds: &dyn Fn(&HostPattern) -> bool| {
            bucket.and_then(|bucket| {
                bucket
                    .iter()
                    .map(|&r| r as usize)
                    .find(|&r| routes.get(r).is_some_and(|route| route.hosts.iter().any(holds)) && applies(r))
            })
        };
        let exact = |p: &HostPattern| matches!(p, HostPattern::Exact(name) if **name == *lower);
        if let Some(route) = first(self.exact.get(&key(lower)), &exact) {
            return Some(route);
        }
        // `a.b.example.com` has the suffixes `.b.example.com`, `.example.com`
        // and `.com`, longest first; a wildcard never matches the name itself.
        for (at, _) in lower.iter().enumerate().filter(|(at, &b)| b == b'.' && *at > 0) {
            let suffix = &lower[at..];
            let wildcard = |p: &HostPattern| matches!(p, HostPattern::Suffix(s) if **s == *suffix);
            if let Some(route) = first(self.suffix.get(&key(suffix)), &wildcard) {
                return Some(route);
            }
        }
        self.any.iter().map(|&r| r as usize).find(|&r| applies(r))
    }
}

/// Adds a route to a bucket once (a route may list two patterns that land
/// in the same bucket).
fn push(bucket: &mut Vec<u32>, route: u32) {
    if bucket.last() != Some(&route) {
        bucket.push(route);
    }
}

#[cfg(test)]
mod tests {
    use crate::config;
    use crate::request::Request;
    use crate::routing::split::Moment;

    fn route_of(json: &str, host: &str, path: &str) -> Option<String> {
        let router = config::parse(json.as_bytes()).unwrap();
        let request = Request::new(vec![(b":authority", host.as_bytes()), (b":path", path.as_bytes())]);
        router.decide(&request, &Moment::roll(0)).map(|d| d.route.to_string())
    }

    const ROUTES: &str = r#"{"routes": [
        {"name": "any", "default": "t"},
        {"name": "wild", "hosts": ["*.x.io"], "default": "t"},
        {"name": "wilder", "hosts": ["*.a.x.io"], "default": "t"},
        {"name": "exact-api", "hosts": ["q.a.x.io"], "pathPrefix": "/api", "default": "t"},
        {"name": "exact", "hosts": ["Q.A.x.io", "other.io"], "default": "t"},
        {"name": "twin", "hosts": ["*.x.io"], "default": "t"}]}"#;

    #[test]
    fn the_most_specific_host_then_the_first_listed_route_wins() {
        assert_eq!(route_of(ROUTES, "q.a.x.io", "/api/v1").as_deref(), Some("exact-api"));
        assert_eq!(route_of(ROUTES, "Q.a.X.io:8080", "/web").as_deref(), Some("exact"));
        assert_eq!(route_of(ROUTES, "z.a.x.io", "/").as_deref(), Some("wilder"));
        assert_eq!(route_of(ROUTES, "deep.z.a.x.io", "/").as_deref(), Some("wilder"));
        assert_eq!(route_of(ROUTES, "q.x.io", "/").as_deref(), Some("wild"), "ties go to the first listed");
        assert_eq!(route_of(ROUTES, "x.io", "/").as_deref(), Some("any"), "a wildcard is not its apex");
        assert_eq!(route_of(ROUTES, "other.io.", "/").as_deref(), Some("exact"));
        assert_eq!(route_of(ROUTES, "", "/").as_deref(), Some("any"));
        assert_eq!(route_of(ROUTES, ".x.io", "/").as_deref(), Some("any"));
        let long = format!("{}.x.io", "a".repeat(300));
        assert_eq!(route_of(ROUTES, &long, "/").as_deref(), Some("wild"));
    }

    #[test]
    fn a_path_prefix_that_does_not_match_falls_through_to_less_specific_hosts() {
        let json = r#"{"routes": [
            {"name": "api", "hosts": ["a.io"], "pathPrefix": "/api", "default": "t"},
            {"name": "wild", "hosts": ["*.io"], "default": "t"}]}"#;
        assert_eq!(route_of(json, "a.io", "/api").as_deref(), Some("api"));
        assert_eq!(route_of(json, "a.io", "/web").as_deref(), Some("wild"));
        assert_eq!(route_of(json, "b.org", "/api"), None);
    }

    #[test]
    fn an_exact_path_takes_that_path_only() {
        let json = r#"{"routes": [
            {"name": "home", "hosts": ["a.io"], "path": "/", "default": "t"},
            {"name": "api", "hosts": ["a.io"], "path": "/api", "default": "t"},
            {"name": "rest", "hosts": ["a.io"], "pathPrefix": "/", "default": "t"}]}"#;
        for (path, route) in
            [("/", "home"), ("/api", "api"), ("/api/", "rest"), ("/api/x", "rest"), ("/x", "rest")]
        {
            assert_eq!(route_of(json, "a.io", path).as_deref(), Some(route), "{path}");
        }
        assert_eq!(route_of(json, "a.io", "/api?x=1").as_deref(), Some("api"), "before `?`");
    }

    #[test]
    fn path_elements_match_whole_elements_as_kubernetes_prefixes_do() {
        let json = r#"{"routes": [
            {"name": "api", "hosts": ["a.io"], "pathPrefix": "/api", "pathElements": true, "default": "t"},
            {"name": "dir", "hosts": ["a.io"], "pathPrefix": "/web/", "pathElements": true, "default": "t"},
            {"name": "rest", "hosts": ["a.io"], "default": "t"}]}"#;
        for (path, route) in [
            ("/api", "api"),
            ("/api/", "api"),
            ("/api/v1/items", "api"),
            ("/api?x=1", "api"),
            ("/apiary", "rest"),
            ("/api-v2", "rest"),
            ("/web/", "dir"),
            ("/web/x", "dir"),
            ("/web", "dir"),
            ("/webby", "rest"),
        ] {
            assert_eq!(route_of(json, "a.io", path).as_deref(), Some(route), "{path}");
        }
        let raw = json.replace(r#""pathElements": true, "#, "");
        assert_eq!(route_of(&raw, "a.io", "/apiary").as_deref(), Some("api"), "without it, a raw prefix");
    }

    #[test]
    fn the_index_agrees_with_a_scan_of_every_route() {
        // The rule the index replaces: the best specificity among routes
        // whose host and path match, ties to the first listed.
        let router = config::parse(ROUTES.as_bytes()).unwrap();
        let hosts = ["q.a.x.io", "z.a.x.io", "q.x.io", "x.io", "other.io", "nope.org", "a.x.io", "Q.A.X.IO"];
        for host in hosts {
            for path in ["/", "/api", "/apix"] {
                let scan = router
                    .routes
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.path_prefix.as_ref().is_none_or(|p| path.as_bytes().starts_with(p)))
                    .filter_map(|(i, r)| {
                        let lower = host.to_ascii_lowercase();
                        let rank = if r.hosts.is_empty() {
                            Some(0)
                        } else {
                            r.hosts
                                .iter()
                                .filter(|h| h.matches(lower.as_bytes()))
                                .map(|h| h.specificity())
                                .max()
                        };
                        rank.map(|rank| (i, rank))
                    })
                    .fold(None, |best: Option<(usize, usize)>, (i, rank)| match best {
                        Some((_, best_rank)) if best_rank >= rank => best,
                        _ => Some((i, rank)),
                    })
                    .map(|(i, _)| router.routes[i].name.clone());
                assert_eq!(route_of(ROUTES, host, path), scan, "{host}{path}");
            }
        }
    }
}
