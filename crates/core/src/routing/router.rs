//! The routing decision: first matching route, first matching rule, target.

use std::fmt;

use crate::request::Request;
use crate::routing::header_names::HeaderNames;
use crate::routing::mirror::MirrorBudget;
use crate::routing::route::{Action, Route, Rule};
use crate::routing::route_index::RouteIndex;
use crate::routing::split::{AssignCookie, Choice, Moment, Split, SplitId};
use crate::text::host_pattern::host_of;

/// A compiled config. Built once per configure, shared by every request.
#[derive(Debug, Clone)]
pub struct Router {
    pub target_header: String,
    pub routes: Vec<Route>,
    /// How many splits the routes hold (`Split::id` is below this).
    pub split_count: usize,
    /// What each VM may hold for shadow copies.
    pub mirror_budget: MirrorBudget,
    /// Per split id: its route's and rule's positions.
    pub split_locations: Vec<(usize, usize)>,
    /// Whether responses are counted per route, target and status class
    /// (`countResponses`): it costs a `:status` read on every response.
    pub count_responses: bool,
    /// Whether the host is asked to select the route again after the
    /// target header changed (`clearRouteCache`).
    pub clear_route_cache: bool,
    /// The routes by host (built from `routes` by `Router::new`).
    index: RouteIndex,
    /// The request headers the config may read.
    pub header_names: HeaderNames,
}

/// Why a target was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No rule matched: the route's `default`.
    Default,
    /// A rule's conditions held and it names a target.
    Matched,
    /// A rule's split chose.
    Split(Choice),
}

/// The outcome for a request that matched a route.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'r> {
    pub route: &'r str,
    /// The route's position in `Router::routes`.
    pub route_index: usize,
    /// The rule that decided; `None` when the default did.
    pub rule: Option<&'r str>,
    /// Its position in the route's `rules`.
    pub rule_index: Option<usize>,
    pub target: &'r str,
    pub reason: Reason,
    /// The split that decided, if one did.
    pub split: Option<&'r Split>,
}

impl<'r> Decision<'r> {
    /// The assignment cookie the response must set: the deciding split has
    /// one, and the request's own cookie did not decide.
    pub fn assign_cookie(&self) -> Option<&'r AssignCookie> {
        self.split.and_then(Split::assign_cookie).filter(|_| self.reason != Reason::Split(Choice::Cookie))
    }
}

impl Router {
    /// Routes a request. The moment supplies what is not in the request:
    /// the random roll for non-sticky splits, the time for ramps, and which
    /// splits are rolled back. `None`: no route applies to this request.
    ///
    /// Among the routes that apply, the one whose host matched most
    /// specifically wins, as Envoy picks virtual hosts (`b.example.com`
    /// beats `*.example.com` beats omitted `hosts`); ties go to the first
    /// listed.
    pub fn decide<'r>(&'r self, request: &Request<'_>, moment: &Moment<'_>) -> Option<Decision<'r>> {
        let path = request.path();
        let route_index = self.index.find(&self.routes, host_of(request.authority()), |r| {
            self.routes.get(r).is_some_and(|route| route.path_matches(path))
        })?;
        let route = self.routes.get(route_index)?;
        for (rule_index, rule) in route.rules.iter().enumerate() {
            if !rule.conditions.iter().all(|c| c.holds(request)) {
                continue;
            }
            let (target, reason, split) = match &rule.action {
                Action::Target(target) => (target.as_str(), Reason::Matched, None),
                Action::Split(split) => {
                    let (target, choice) = split.choose(request, moment);
                    (target, Reason::Split(choice), Some(split.as_ref()))
                }
            };
            return Some(Decision {
                route: &route.name,
                route_index,
                rule: Some(&rule.label),
                rule_index: Some(rule_index),
                target,
                reason,
                split,
            });
        }
        Some(Decision {
            route: &route.name,
            route_index,
            rule: None,
            rule_index: None,
            target: &route.default,
            reason: Reason::Default,
            split: None,
        })
    }
}

impl Router {
    /// A router over compiled routes (validated by `config::compile`).
    pub fn new(
        target_header: String,
        routes: Vec<Route>,
        mirror_budget: MirrorBudget,
        count_responses: bool,
    ) -> Router {
        let index = RouteIndex::new(&routes);
        let header_names = HeaderNames::new(&routes, &target_header);
        let split_locations: Vec<(usize, usize)> = routes
            .iter()
            .enumerate()
            .flat_map(|(r, route)| {
                route
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| rule.split().is_some())
                    .map(move |(i, _)| (r, i))
            })
            .collect();
        Router {
            target_header,
            split_count: split_locations.len(),
            routes,
            mirror_budget,
            split_locations,
            count_responses,
            clear_route_cache: true,
            index,
            header_names,
        }
    }

    /// The split with this id, with the route and rule holding it.
    pub fn split(&self, id: SplitId) -> Option<(&Route, &Rule, &Split)> {
        let &(route, rule) = self.split_locations.get(id.index())?;
        let route = self.routes.get(route)?;
        let rule = route.rules.get(rule)?;
        Some((route, rule, rule.split()?))
    }

    /// Every split of the config with the route and rule holding it.
    pub fn splits(&self) -> impl Iterator<Item = (&Route, &Rule, &Split)> {
        self.routes.iter().flat_map(|route| {
            route.rules.iter().filter_map(move |rule| rule.split().map(|split| (route, rule, split)))
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Default => f.write_str("default"),
            Reason::Matched => f.write_str("match"),
            Reason::Split(Choice::Sticky { bucket }) => write!(f, "split sticky bucket={bucket}"),
            Reason::Split(Choice::Random { roll }) => write!(f, "split random roll={roll}"),
            Reason::Split(Choice::Cookie) => f.write_str("split assignment cookie"),
        }
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "route={} rule={} target={} reason={}",
            self.route,
            self.rule.unwrap_or("-"),
            self.target,
            self.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn example() -> Router {
        config::parse(include_bytes!("../../../../examples/config.json")).unwrap()
    }

    #[test]
    fn a_route_lists_each_target_once_its_default_first() {
        let router = example();
        assert_eq!(router.routes[0].targets(), vec!["service-a", "service-a-canary"]);
        assert_eq!(router.routes[1].targets(), vec!["service-b", "service-b-canary"]);
    }

    fn decide(
        router: &Router,
        headers: &[(&str, &str)],
        roll: u32,
    ) -> Option<(String, Option<String>, Reason)> {
        let pairs = headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        router
            .decide(&Request::new(pairs), &Moment::roll(roll))
            .map(|d| (d.target.to_string(), d.rule.map(str::to_string), d.reason))
    }

    fn target(router: &Router, headers: &[(&str, &str)]) -> Option<String> {
        decide(router, headers, 0).map(|d| d.0)
    }

    #[test]
    fn header_cookie_and_query_foo_bar_reach_the_canary() {
        let r = example();
        let a = |extra: (&str, &str), path: &str| {
            target(&r, &[(":authority", "a.example.com"), (":path", path), extra])
        };
        assert_eq!(a(("foo", "bar"), "/"), Some("service-a-canary".into()));
        assert_eq!(a(("cookie", "x=1; foo=bar"), "/"), Some("service-a-canary".into()));
        assert_eq!(a(("accept", "*/*"), "/?foo=bar"), Some("service-a-canary".into()));
        assert_eq!(a(("accept", "*/*"), "/?foo=baz"), Some("service-a-canary".into()));
        assert_eq!(a(("foo", "baz"), "/?foo=barn"), Some("service-a".into()));
        assert_eq!(a(("x-canary", "never"), "/"), Some("service-a".into()));
    }

    #[test]
    fn the_first_matching_rule_decides_and_is_named() {
        let r = example();
        let d = decide(
            &r,
            &[(":authority", "a.example.com"), (":path", "/"), ("foo", "bar"), ("cookie", "foo=bar")],
            0,
        )
        .unwrap();
        assert_eq!((d.1.as_deref(), d.2), (Some("beta"), Reason::Matched));
        let d =
            decide(&r, &[(":authority", "a.example.com"), (":path", "/"), ("cookie", "foo=bar")], 0).unwrap();
        assert_eq!(d.1.as_deref(), Some("rules[1]"));
        let d = decide(&r, &[(":authority", "a.example.com"), (":path", "/")], 0).unwrap();
        assert_eq!((d.0.as_str(), d.1, d.2), ("service-a", None, Reason::Default));
    }

    #[test]
    fn routes_are_chosen_by_host_then_path_prefix() {
        let r = example();
        assert_eq!(
            target(&r, &[(":authority", "other.example.com:8080"), (":path", "/x")]),
            Some("service-a".into())
        );
        assert_eq!(
            target(&r, &[(":authority", "b.example.com")]).map(|t| t.starts_with("service-b")),
            Some(true)
        );
        assert_eq!(target(&r, &[(":authority", "unknown.org"), ("foo", "bar")]), None);
        assert_eq!(target(&r, &[("foo", "bar")]), None);

        let r = config::parse(br#"{"routes": [{"name": "api", "pathPrefix": "/api", "default": "api"}]}"#)
            .unwrap();
        assert_eq!(target(&r, &[(":path", "/api/v1?x=1")]), Some("api".into()));
        assert_eq!(target(&r, &[(":path", "/web?/api")]), None);
    }

    #[test]
    fn the_most_specific_host_wins_like_envoy_virtual_hosts() {
        let r = example();
        // service-a lists *.example.com first, but b.example.com is exact.
        let b = target(&r, &[(":authority", "b.example.com"), (":path", "/")]).unwrap();
        assert!(b.starts_with("service-b"), "{b}");
        let r = config::parse(
            br#"{"routes": [{"name": "any", "default": "any"}, {"name": "wild", "hosts": ["*.x.io"], "default": "wild"},
                {"name": "wilder", "hosts": ["*.a.x.io"], "default": "wilder"}, {"name": "twin", "hosts": ["*.x.io"], "default": "twin"}]}"#,
        )
        .unwrap();
        assert_eq!(target(&r, &[(":authority", "q.a.x.io")]), Some("wilder".into()));
        assert_eq!(
            target(&r, &[(":authority", "q.x.io")]),
            Some("wild".into()),
            "ties go to the first listed"
        );
        assert_eq!(target(&r, &[(":authority", "elsewhere")]), Some("any".into()));
    }

    #[test]
    fn a_split_uses_the_sticky_cookie_or_the_roll() {
        let r = example();
        let b = |cookie: &str, roll| {
            decide(&r, &[(":authority", "b.example.com"), ("cookie", cookie)], roll).unwrap()
        };
        // Pinned in hash.rs: alice's bucket under salt "service-b" is 237,645 (>= 200,000).
        assert_eq!(b("uid=alice", 0).0, "service-b");
        assert_eq!(b("uid=alice", 0).2, Reason::Split(Choice::Sticky { bucket: 237_645 }));
        assert_eq!(b("other=1", 199_999).0, "service-b-canary");
        assert_eq!(b("other=1", 200_000).0, "service-b");
    }

    #[test]
    fn a_zero_weight_receives_nothing_and_a_config_edit_flips_all_traffic() {
        let config = |blue: u32, green: u32| {
            config::parse(format!(
                r#"{{"routes": [{{"name": "r", "default": "blue", "rules": [{{"split": {{"weights": [
                    {{"target": "blue", "weight": {blue}}}, {{"target": "green", "weight": {green}}}]}}}}]}}]}}"#
            ).as_bytes()).unwrap()
        };
        let (before, after) = (config(100, 0), config(0, 100));
        for roll in (0..1_000_000).step_by(9_973) {
            assert_eq!(decide(&before, &[], roll).unwrap().0, "blue");
            assert_eq!(decide(&after, &[], roll).unwrap().0, "green");
        }
    }

    #[test]
    fn decisions_explain_themselves() {
        let r = example();
        let pairs = vec![(&b":authority"[..], &b"a.example.com"[..]), (b":path", b"/"), (b"foo", b"bar")];
        let request = Request::new(pairs);
        let decision = r.decide(&request, &Moment::roll(0)).unwrap();
        assert_eq!(decision.to_string(), "route=service-a rule=beta target=service-a-canary reason=match");
    }
}
