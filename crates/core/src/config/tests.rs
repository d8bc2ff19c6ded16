//! Config acceptance and rejection, with the exact messages operators see.

use super::*;

fn error(json: &str) -> String {
    match parse(json.as_bytes()) {
        Ok(_) => panic!("config was accepted: {json}"),
        Err(err) => err.to_string(),
    }
}

/// A one-route config around the given rules.
fn with_rules(rules: &str) -> String {
    format!(r#"{{"routes": [{{"name": "r", "default": "a", "rules": {rules}}}]}}"#)
}

#[test]
fn the_design_example_compiles() {
    let router = parse(include_bytes!("../../../../examples/config.json")).unwrap();
    assert_eq!(router.target_header, "x-route-target");
    assert_eq!(router.routes.len(), 2);
    assert_eq!(router.routes[0].rules[0].label, "beta");
    assert_eq!(router.routes[0].rules[1].label, "rules[1]");
}

#[test]
fn the_target_header_defaults_and_can_be_set() {
    assert_eq!(parse(with_rules("[]").as_bytes()).unwrap().target_header, "x-route-target");
    let json = r#"{"targetHeader": "x-version", "routes": [{"name": "r", "default": "a"}]}"#;
    assert_eq!(parse(json.as_bytes()).unwrap().target_header, "x-version");
}

#[test]
fn integer_and_double_weights_are_the_same() {
    // Istio's pluginConfig is a protobuf Struct: every number is a double.
    for w in ["20", "20.0", "2e1"] {
        let rules = format!(
            r#"[{{"split": {{"weights": [{{"target": "b", "weight": {w}}}, {{"target": "a", "weight": 80.0}}]}}}}]"#
        );
        let router = parse(with_rules(&rules).as_bytes()).unwrap();
        let Action::Split(split) = &router.routes[0].rules[0].action else { panic!() };
        assert_eq!(split.weights(), &[20.0, 80.0]);
    }
}

#[test]
fn the_salt_defaults_to_the_route_name() {
    let router =
        parse(with_rules(r#"[{"split": {"weights": [{"target": "a", "weight": 1}]}}]"#).as_bytes()).unwrap();
    let Action::Split(split) = &router.routes[0].rules[0].action else { panic!() };
    assert_eq!(split.salt(), b"r");
}

#[test]
fn rejects_unknown_keys_at_their_path() {
    assert_eq!(
        error(r#"{"routes": [], "targetHeadr": "x"}"#),
        "targetHeadr: unknown field `targetHeadr`, expected one of `targetHeader`, `routes`, `mirrorBudget`, `countResponses`, `clearRouteCache` at line 1 column 16"
    );
    assert_eq!(
        error(&with_rules(r#"[{"match": [{"header": "foo", "exact": "bar", "exect": "x"}], "target": "b"}]"#)),
        "routes[0].rules[0].match[0].exect: unknown field `exect`, expected one of `header`, `cookie`, `query`, `exact`, `prefix`, `regex`, `oneOf`, `present`, `not` at line 1 column 98"
    );
}

#[test]
fn rejects_wrong_types_at_their_path() {
    assert_eq!(
        error(&with_rules(r#"[{"split": {"weights": [{"target": "a", "weight": "20"}]}}]"#)),
        "routes[0].rules[0].split.weights[0].weight: expected a number, got a string at line 1 column 102"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r"}]}"#),
        "routes[0]: missing field `default` at line 1 column 13"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "hosts": "a.io"}]}"#),
        "routes[0].hosts: expected a list, got a string at line 1 column 52"
    );
    assert_eq!(
        error(
            r#"{"routes": [{"name": "r", "default": "a", "rules": [{"match": [{"header": "h", "present": "yes"}], "target": "t"}]}]}"#
        ),
        "routes[0].rules[0].match[0].present: expected true or false, got a string at line 1 column 91"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "mirror": 5}]}"#),
        "routes[0].mirror: expected an object, got a number at line 1 column 53"
    );
}

#[test]
fn rejects_documents_that_are_not_a_config() {
    assert_eq!(error(""), "config: is empty; expected a JSON object with `routes` (see docs/config.md)");
    assert_eq!(error("[]"), "config: must be a JSON object with `routes`");
    assert_eq!(error(" \"routes\""), "config: must be a JSON object with `routes`");
    assert_eq!(error("{}"), "config: missing field `routes` at line 1 column 1");
    assert_eq!(error(r#"{"routes": []}"#), "routes: must list at least one route");
    assert!(error(r#"{"routes": [{"name": "r", "default": "a"}]} x"#)
        .starts_with("config: unexpected data after the config object"));
    assert_eq!(
        error("{\"routes\": ["),
        "routes[0]: the document ends where a value should be at line 1 column 13"
    );
}

#[test]
fn rejects_duplicate_and_empty_route_names() {
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a"}, {"name": "r", "default": "b"}]}"#),
        "routes[1].name: duplicate route name `r`"
    );
    assert_eq!(error(r#"{"routes": [{"name": " ", "default": "a"}]}"#), "routes[0].name: must not be empty");
}

#[test]
fn rejects_bad_hosts_and_path_prefixes() {
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "hosts": []}]}"#),
        "routes[0].hosts: must not be empty (omit `hosts` to match any host)"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "hosts": ["ok.com", "a.com:80"]}]}"#),
        "routes[0].hosts[1]: `a.com:80` must not contain a port: hosts are matched without it"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "pathPrefix": "api"}]}"#),
        "routes[0].pathPrefix: `api` must start with `/`"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "pathElements": true}]}"#),
        "routes[0]: `pathElements` needs `pathPrefix`: it says how pathPrefix matches"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "path": "/a", "pathPrefix": "/a"}]}"#),
        "routes[0]: `path` cannot go with `pathPrefix`: a route matches its path exactly or by prefix, not both"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": "a", "path": "a"}]}"#),
        "routes[0].path: `a` must start with `/`"
    );
}

#[test]
fn rejects_empty_and_unprintable_targets() {
    assert_eq!(
        error(r#"{"routes": [{"name": "r", "default": ""}]}"#),
        "routes[0].default: must not be empty"
    );
    assert_eq!(
        error(&with_rules(r#"[{"target": "a b"}]"#)),
        "routes[0].rules[0].target: `a b` must be visible ASCII without spaces (it is sent as a header value)"
    );
    assert_eq!(
        error(&with_rules(r#"[{"split": {"weights": [{"target": "", "weight": 1}]}}]"#)),
        "routes[0].rules[0].split.weights[0].target: must not be empty"
    );
}

#[test]
fn a_rule_needs_exactly_one_action() {
    assert_eq!(
        error(&with_rules(r#"[{"name": "x"}]"#)),
        "routes[0].rules[0]: needs an action: one of `target` or `split`"
    );
    assert_eq!(
        error(&with_rules(r#"[{"target": "a", "split": {"weights": [{"target": "a", "weight": 1}]}}]"#)),
        "routes[0].rules[0]: takes exactly one of `target` or `split`, found `target` and `split`"
    );
}

#[test]
fn a_condition_needs_exactly_one_source_and_one_test() {
    assert_eq!(
        error(&with_rules(r#"[{"target": "a"}, {"match": [{"header": "foo", "exact": "bar", "regex": "b"}], "target": "b"}]"#)),
        "routes[0].rules[1].match[0]: takes exactly one of `exact`, `prefix`, `regex`, `oneOf` or `present`, found `exact` and `regex`"
    );
    assert_eq!(
        error(&with_rules(r#"[{"match": [{"header": "foo"}], "target": "b"}]"#)),
        "routes[0].rules[0].match[0]: needs a test: one of `exact`, `prefix`, `regex`, `oneOf` or `present`"
    );
    assert_eq!(
        error(&with_rules(r#"[{"match": [{"header": "foo", "cookie": "foo", "exact": "bar"}], "target": "b"}]"#)),
        "routes[0].rules[0].match[0]: takes exactly one of `header`, `cookie` or `query`, found `header` and `cookie`"
    );
    assert_eq!(
        error(&with_rules(r#"[{"match": [{"exact": "bar"}], "target": "b"}]"#)),
        "routes[0].rules[0].match[0]: needs a source: one of `header`, `cookie` or `query`"
    );
}

#[test]
fn rejects_bad_condition_keys_and_values() {
    assert_eq!(
        error(&with_rules(r#"[{"match": [{"header": "bad name", "exact": "x"}], "target": "b"}]"#)),
        "routes[0].rules[0].match[0].header: `bad name` is not a valid header name"
    );
    assert_eq!(
        error(&with_rules(r#"[{"match": [{"cookie": "", "exact": "x"}], "target": "b"}]"#)),
        "routes[0].rules[0].match[0].cookie: must not be empty"
    );
    assert_eq!(
        error(&with_rules(r#"[{"match": [{"query": "q", "oneOf": []}], "target": "b"}]"#)),
        "routes[0].rules[0].match[0].oneOf: must list at least one value"
    );
    let bad_regex = error(&with_rules(r#"[{"match": [{"query": "q", "regex": "ba(r"}], "target": "b"}]"#));
    assert!(
        bad_regex.starts_with("routes[0].rules[0].match[0].regex: invalid regex `ba(r`: "),
        "{bad_regex}"
    );
    assert!(!bad_regex.contains('\n'));
}

#[test]
fn header_names_are_stored_lower_case() {
    let router =
        parse(with_rules(r#"[{"match": [{"header": "X-Foo", "present": true}], "target": "b"}]"#).as_bytes())
            .unwrap();
    assert_eq!(router.routes[0].rules[0].conditions[0].source, Source::Header(b"x-foo".to_vec()));
}

#[test]
fn rejects_bad_weights() {
    assert_eq!(
        error(&with_rules(
            r#"[{"split": {"weights": [{"target": "a", "weight": 1}, {"target": "b", "weight": -1}]}}]"#
        )),
        "routes[0].rules[0].split.weights[1].weight: must be a non-negative number, got -1"
    );
    assert_eq!(
        error(&with_rules(
            r#"[{"split": {"weights": [{"target": "a", "weight": 0}, {"target": "b", "weight": 0.0}]}}]"#
        )),
        "routes[0].rules[0].split.weights: sum must be > 0"
    );
    assert_eq!(
        error(&with_rules(r#"[{"split": {"weights": []}}]"#)),
        "routes[0].rules[0].split.weights: must list at least one target"
    );
    assert_eq!(
        error(&with_rules(
            r#"[{"split": {"weights": [{"target": "a", "weight": 1}, {"target": "a", "weight": 2}]}}]"#
        )),
        "routes[0].rules[0].split.weights[1].target: `a` is listed twice; give each target one weight"
    );
    assert_eq!(
        error(&with_rules(
            r#"[{"split": {"weights": [{"target": "a", "weight": 1e308}, {"target": "b", "weight": 1e308}]}}]"#
        )),
        "routes[0].rules[0].split.weights: sum is too large to divide"
    );
    assert!(error(&with_rules(r#"[{"split": {"weights": [{"target": "a", "weight": 1e999}]}}]"#))
        .starts_with("routes[0].rules[0].split.weights[0].weight: 1e999 is out of range"));
}

#[test]
fn rejects_bad_sticky_keys() {
    assert_eq!(
        error(&with_rules(r#"[{"split": {"weights": [{"target": "a", "weight": 1}], "stickyBy": {}}}]"#)),
        "routes[0].rules[0].split.stickyBy: needs a source: one of `header`, `cookie` or `query`"
    );
    assert_eq!(
        error(&with_rules(r#"[{"split": {"weights": [{"target": "a", "weight": 1}], "stickyBy": {"cookie": "uid", "query": "uid"}}}]"#)),
        "routes[0].rules[0].split.stickyBy: takes exactly one of `header`, `cookie` or `query`, found `cookie` and `query`"
    );
}

#[test]
fn rejects_target_headers_that_would_break_requests() {
    let json = |h: &str| format!(r#"{{"targetHeader": "{h}", "routes": [{{"name": "r", "default": "a"}}]}}"#);
    assert_eq!(
        error(&json("X-Route")),
        "targetHeader: `X-Route` must be lower-case (HTTP/2 and Envoy header names are)"
    );
    assert_eq!(
        error(&json("cookie")),
        "targetHeader: `cookie` carries the request itself and cannot be the target header"
    );
    assert_eq!(error(&json(":path")), "targetHeader: `:path` is not a valid header name");
    assert_eq!(error(&json("")), "targetHeader: `` is not a valid header name");
}

fn with_mirror(mirror: &str) -> String {
    format!(r#"{{"routes": [{{"name": "r", "default": "a", "mirror": {mirror}}}]}}"#)
}

#[test]
fn a_mirror_takes_a_cluster_and_a_percent_with_defaults() {
    let router =
        parse(with_mirror(r#"{"cluster": "outbound|80||a.svc", "percent": 12.5}"#).as_bytes()).unwrap();
    let mirror = router.routes[0].mirror.as_ref().unwrap();
    assert_eq!(
        (mirror.cluster.as_str(), mirror.percent, mirror.timeout_ms, mirror.max_body_bytes),
        ("outbound|80||a.svc", 12.5, 1000, 65536)
    );
    let istio = parse(
        with_mirror(r#"{"cluster": "s", "percent": 10.0, "timeoutMs": 250.0, "maxBodyBytes": 1024.0}"#)
            .as_bytes(),
    )
    .unwrap();
    let mirror = istio.routes[0].mirror.as_ref().unwrap();
    assert_eq!((mirror.timeout_ms, mirror.max_body_bytes), (250, 1024));
}

#[test]
fn rejects_bad_mirrors() {
    assert_eq!(
        error(&with_mirror(r#"{"cluster": "s", "percent": 101}"#)),
        "routes[0].mirror.percent: must be between 0 and 100, got 101"
    );
    assert_eq!(
        error(&with_mirror(r#"{"cluster": "", "percent": 1}"#)),
        "routes[0].mirror.cluster: must be a cluster name: visible ASCII without spaces (Istio: outbound|PORT||HOST)"
    );
    assert_eq!(
        error(&with_mirror(r#"{"cluster": "s", "percent": 1, "timeoutMs": 0.5}"#)),
        "routes[0].mirror.timeoutMs: must be a whole number from 1 to 3600000, got 0.5"
    );
    assert_eq!(
        error(&with_mirror(r#"{"cluster": "s", "percent": 1, "maxBodyBytes": -1}"#)),
        "routes[0].mirror.maxBodyBytes: must be a whole number from 0 to 1048576, got -1"
    );
    assert_eq!(
        error(&with_mirror(r#"{"cluster": "s", "percent": 1, "maxBodyBytes": 67108864}"#)),
        "routes[0].mirror.maxBodyBytes: must be a whole number from 0 to 1048576, got 67108864"
    );
    assert!(
        error(&with_mirror(r#"{"cluster": "s"}"#)).starts_with("routes[0].mirror: missing field `percent`")
    );
    assert!(error(&with_mirror(r#"{"cluster": "s", "percent": 1, "timeout": 5}"#))
        .starts_with("routes[0].mirror.timeout: unknown field `timeout`"));
}

fn with_split(extra: &str) -> String {
    with_rules(&format!(
        r#"[{{"split": {{"weights": [{{"target": "canary", "weight": 0}}, {{"target": "stable", "weight": 100}}]{extra}}}}}]"#
    ))
}

#[test]
fn ramps_assignment_cookies_and_rollbacks_compile() {
    let json = with_split(
        r#", "ramp": {"target": "canary", "start": "2026-11-24T10:00:00Z", "every": "10m", "steps": [1, 5, 25.5, 100]},
           "assignCookie": {"name": "v", "maxAge": 3600.0, "path": "/", "secure": true, "httpOnly": true},
           "rollback": {"target": "canary", "maxErrorRate": 0.05, "minRequests": 50.0, "window": "60s"}"#,
    );
    let router = parse(json.as_bytes()).unwrap();
    let Action::Split(split) = &router.routes[0].rules[0].action else { panic!() };
    let ramp = split.ramp().unwrap();
    assert_eq!(
        (ramp.start_ms, ramp.every_ms, ramp.steps.clone()),
        (1_795_514_400_000, 600_000, vec![1.0, 5.0, 25.5, 100.0])
    );
    assert_eq!(
        split.assign_cookie().unwrap().set_cookie("canary"),
        "v=canary; Max-Age=3600; Path=/; Secure; HttpOnly"
    );
    assert_eq!(split.rollback().unwrap().window.as_ref().unwrap().window_ms, 60_000);
    assert_eq!(router.split_count, 1);
}

#[test]
fn rejects_bad_ramps() {
    let ramp = |body: &str| error(&with_split(&format!(r#", "ramp": {body}"#)));
    assert_eq!(
        ramp(r#"{"target": "stable", "start": "2026-11-24T10:00:00Z", "every": "10m", "steps": [1]}"#),
        "routes[0].rules[0].split.ramp.target: `stable` must be the split's first target, so that each step only moves users onto it"
    );
    assert_eq!(
        ramp(r#"{"target": "canary", "start": "tomorrow", "every": "10m", "steps": [1]}"#),
        "routes[0].rules[0].split.ramp.start: `tomorrow` is not an RFC 3339 time like 2026-11-24T10:00:00Z"
    );
    assert_eq!(
        ramp(r#"{"target": "canary", "start": "2026-11-24T10:00:00Z", "every": "10 min", "steps": [1]}"#),
        "routes[0].rules[0].split.ramp.every: `10 min` is not a duration like 30s, 10m, 1h30m"
    );
    assert_eq!(
        ramp(r#"{"target": "canary", "start": "2026-11-24T10:00:00Z", "every": "10m", "steps": [5, 1]}"#),
        "routes[0].rules[0].split.ramp.steps[1]: 1 is below the step before it: a ramp only goes up (roll back with `rollback` or a config change)"
    );
    assert_eq!(
        ramp(r#"{"target": "canary", "start": "2026-11-24T10:00:00Z", "every": "10m", "steps": [150]}"#),
        "routes[0].rules[0].split.ramp.steps[0]: must be a percentage from 0 to 100, got 150"
    );
    assert_eq!(
        ramp(r#"{"target": "canary", "start": "2026-11-24T10:00:00Z", "every": "10m", "steps": []}"#),
        "routes[0].rules[0].split.ramp.steps: must list at least one step"
    );
}

#[test]
fn an_assignment_cookie_states_its_same_site_and_none_must_be_secure() {
    let cookie = |body: &str| with_split(&format!(r#", "assignCookie": {body}"#));
    let set_cookie = |body: &str| {
        let router = parse(cookie(body).as_bytes()).unwrap();
        let split = router.routes[0].rules[0].split().unwrap().clone();
        (split.assign_cookie().unwrap().set_cookie("canary"), split.identity)
    };
    let (lax, lax_identity) = set_cookie(r#"{"name": "v", "sameSite": "Lax"}"#);
    assert_eq!(lax, "v=canary; SameSite=Lax");
    let (cross_site, _) = set_cookie(r#"{"name": "v", "secure": true, "sameSite": "None"}"#);
    assert_eq!(cross_site, "v=canary; Secure; SameSite=None");
    let (plain, plain_identity) = set_cookie(r#"{"name": "v"}"#);
    assert_eq!(plain, "v=canary", "omitted: the browser's default");
    assert_ne!(lax_identity, plain_identity, "what the split sends changed: a new split");
    assert_eq!(
        error(&cookie(r#"{"name": "v", "sameSite": "None"}"#)),
        "routes[0].rules[0].split.assignCookie.sameSite: `None` needs `secure: true`: browsers drop a \
         SameSite=None cookie that is not Secure"
    );
    assert_eq!(
        error(&cookie(r#"{"name": "v", "sameSite": "lax"}"#)),
        "routes[0].rules[0].split.assignCookie.sameSite: `lax` is not `Strict`, `Lax` or `None`"
    );
}

#[test]
fn rejects_bad_assignment_cookies_and_rollbacks() {
    let split = |extra: &str| error(&with_split(extra));
    assert_eq!(
        split(r#", "assignCookie": {"name": "a b"}"#),
        "routes[0].rules[0].split.assignCookie.name: `a b` is not a valid cookie name"
    );
    assert_eq!(
        split(r#", "assignCookie": {"name": "v", "path": "x"}"#),
        "routes[0].rules[0].split.assignCookie.path: `x` must start with `/` and hold no `;` or spaces"
    );
    assert_eq!(
        split(r#", "rollback": {"target": "nope", "maxErrorRate": 0.1, "minRequests": 5, "window": "1m"}"#),
        "routes[0].rules[0].split.rollback.target: `nope` is not one of the split's targets"
    );
    assert_eq!(
        split(r#", "rollback": {"target": "canary", "maxErrorRate": 5, "minRequests": 5, "window": "1m"}"#),
        "routes[0].rules[0].split.rollback.maxErrorRate: must be a fraction between 0 and 1 (0.05 is 5%), got 5"
    );
    assert_eq!(
        split(r#", "rollback": {"target": "canary", "maxErrorRate": 0.1, "minRequests": 0, "window": "1m"}"#),
        "routes[0].rules[0].split.rollback.minRequests: must be a whole number from 1 to 1e12, got 0"
    );
    assert_eq!(
        split(
            r#", "rollback": {"target": "canary", "maxErrorRate": 0.1, "minRequests": 5, "window": "500ms"}"#
        ),
        "routes[0].rules[0].split.rollback.window: must be at least 1s"
    );
    assert_eq!(
        split(r#", "rollback": {"target": "stable", "maxErrorRate": 0.1, "minRequests": 5, "window": "1m"}"#),
        "routes[0].rules[0].split.weights: the targets other than `stable` need weight to take the traffic back"
    );
}

const PROMETHEUS: &str = r#""prometheus": {"cluster": "prometheus", "every": "5s", "timeoutMs": 1000.0, "threshold": 3,
    "lookback": "30m", "checks": [{"name": "error-rate", "query": "sum(rate(x{target=\"{{target}}\"}[1m]))", "max": 0.05},
                                 {"name": "p99-ms", "query": "histogram_quantile(0.99, y)", "min": 0, "max": 500}]}"#;

#[test]
fn a_rollback_may_ask_prometheus_with_or_without_a_local_window() {
    let json = with_split(&format!(r#", "rollback": {{"target": "canary", {PROMETHEUS}}}"#));
    let router = parse(json.as_bytes()).unwrap();
    let Action::Split(split) = &router.routes[0].rules[0].action else { panic!() };
    let rollback = split.rollback().unwrap();
    assert!(rollback.window.is_none());
    let p = rollback.prometheus.as_ref().unwrap();
    assert_eq!((p.cluster.as_str(), p.every_ms, p.timeout_ms, p.threshold), ("prometheus", 5_000, 1_000, 3));
    assert_eq!(p.lookback, "1800s");
    assert_eq!(p.checks[1].name, "p99-ms");
    assert_eq!((p.checks[1].min, p.checks[1].max), (Some(0.0), Some(500.0)));
    assert_eq!(p.latch_query, crate::rollout::prometheus::DEFAULT_LATCH_QUERY);

    let both = with_split(
        r#", "rollback": {"target": "canary", "maxErrorRate": 0.1, "minRequests": 5, "window": "1m",
              "prometheus": {"cluster": "prom"}}"#,
    );
    let router = parse(both.as_bytes()).unwrap();
    let Action::Split(split) = &router.routes[0].rules[0].action else { panic!() };
    let rollback = split.rollback().unwrap();
    assert!(rollback.window.is_some());
    let p = rollback.prometheus.as_ref().unwrap();
    assert_eq!((p.every_ms, p.timeout_ms, p.threshold, p.lookback.as_str()), (10_000, 1_000, 2, "3600s"));
    assert!(p.checks.is_empty(), "no checks: the fleet latch only");
}

#[test]
fn rejects_bad_prometheus_rollbacks() {
    let rollback = |body: &str| error(&with_split(&format!(r#", "rollback": {{"target": "canary"{body}}}"#)));
    assert_eq!(
        rollback(""),
        "routes[0].rules[0].split.rollback: needs something to judge by: `maxErrorRate`, `latency` or `compare` (each with `minRequests` and `window`), `prometheus`, or several"
    );
    assert_eq!(
        rollback(r#", "maxErrorRate": 0.1"#),
        "routes[0].rules[0].split.rollback: `maxErrorRate` needs `minRequests` and `window`: the error rate is judged over the local window"
    );
    let prometheus = |body: &str| rollback(&format!(r#", "prometheus": {{"cluster": "prom"{body}}}"#));
    assert_eq!(
        prometheus(r#", "every": "500ms""#),
        "routes[0].rules[0].split.rollback.prometheus.every: must be at least 1s"
    );
    assert_eq!(
        prometheus(r#", "every": "2s", "timeoutMs": 5000"#),
        "routes[0].rules[0].split.rollback.prometheus.timeoutMs: 5000 is longer than `every` (2000 ms): a poll must end before the next"
    );
    assert_eq!(
        prometheus(r#", "threshold": 0"#),
        "routes[0].rules[0].split.rollback.prometheus.threshold: must be a whole number from 1 to 100, got 0"
    );
    assert_eq!(
        prometheus(r#", "every": "1m", "lookback": "30s""#),
        "routes[0].rules[0].split.rollback.prometheus.lookback: must be at least `every` (60000 ms), or a rollback could fall between two polls"
    );
    assert_eq!(
        prometheus(r#", "checks": [{"name": "e", "query": "x{t=\"{{tagret}}\"}", "max": 1}]"#),
        "routes[0].rules[0].split.rollback.prometheus.checks[0].query: `{{tagret}}` is not a placeholder; use {{target}}, {{route}}, {{split}}, {{lookback}} or {{beacon}}"
    );
    assert_eq!(
        prometheus(r#", "checks": [{"name": "e", "query": "x"}]"#),
        "routes[0].rules[0].split.rollback.prometheus.checks[0]: needs `max`, `min` or both (the bounds its value must stay in), or `compareTo` with `maxIncrease` or `maxRatio`"
    );
    assert_eq!(
        prometheus(r#", "checks": [{"name": "e", "query": "x", "min": 2, "max": 1}]"#),
        "routes[0].rules[0].split.rollback.prometheus.checks[0].min: 2 is above `max` (1)"
    );
    assert_eq!(
        prometheus(r#", "checks": [{"name": "e", "query": "x", "max": 1}, {"name": "e", "query": "y", "max": 1}]"#),
        "routes[0].rules[0].split.rollback.prometheus.checks[1].name: `e` is used twice; each check needs its own name"
    );
    assert_eq!(
        prometheus(r#", "checks": [{"name": "error rate", "query": "x", "max": 1}]"#),
        "routes[0].rules[0].split.rollback.prometheus.checks[0].name: `error rate` must be letters, digits, `-`, `_` or `.` (it becomes a metric label)"
    );
    assert_eq!(
        prometheus(r#", "latchQuery": "max(canary_router_rolled_back)""#),
        "routes[0].rules[0].split.rollback.prometheus.latchQuery: must select the split with {{split}}, or every split would share one latch"
    );
    assert_eq!(
        prometheus(r#", "viewQuery": "count(canary_router_proxy_beacon{split=\"{{split}}\"})""#),
        "routes[0].rules[0].split.rollback.prometheus.viewQuery: must use {{split}} and {{beacon}}: it asks whether \
         Prometheus holds this proxy's own series of the split"
    );
    assert!(prometheus(r#", "blindAfter": "0s""#).ends_with("prometheus.blindAfter: must be at least 1s"));
    let eleven: Vec<String> =
        (0..11).map(|i| format!(r#"{{"name": "c{i}", "query": "x", "max": 1}}"#)).collect();
    assert_eq!(
        prometheus(&format!(r#", "checks": [{}]"#, eleven.join(","))),
        "routes[0].rules[0].split.rollback.prometheus.checks: 11 checks; at most 10 are allowed (config reference, \"Limits\")"
    );
    assert!(prometheus(r#", "check": []"#).starts_with(
        "routes[0].rules[0].split.rollback.prometheus.check: unknown field `check`, expected one of `cluster`"
    ));
}

/// Two configs' splits, in order, by identity.
fn identities(json: &str) -> Vec<String> {
    parse(json.as_bytes()).unwrap().splits().map(|(_, _, s)| s.identity_hex()).collect()
}

#[test]
fn a_split_keeps_its_identity_through_edits_elsewhere_and_gets_a_new_one_when_it_changes() {
    let config = |route_b: &str, split_a: &str| {
        format!(
            r#"{{"routes": [
              {{"name": "a", "hosts": ["a.example"], "default": "a", "rules": [{{"split": {{"weights": [{split_a}]}}}}]}},
              {{"name": "b", "hosts": ["{route_b}"], "default": "b", "rules": [{{"split": {{"weights": [{{"target": "b2", "weight": 5}}, {{"target": "b", "weight": 95}}]}}}}]}}]}}"#
        )
    };
    let a = r#"{"target": "a2", "weight": 20}, {"target": "a", "weight": 80}"#;
    let base = identities(&config("b.example", a));
    assert_eq!(base.len(), 2);
    assert_ne!(base[0], base[1]);
    // Another route edited: both splits keep their identity.
    assert_eq!(identities(&config("b2.example", a)), base);
    // The same split reformatted (Istio sends numbers as 20.0): the same.
    assert_eq!(
        identities(&config("b.example", r#"{"target":"a2","weight":20.0},{"target":"a","weight":80.0}"#)),
        base
    );
    // A new weight or a new canary: a new identity for that split only.
    let moved =
        identities(&config("b.example", r#"{"target": "a2", "weight": 30}, {"target": "a", "weight": 70}"#));
    assert_ne!(moved[0], base[0]);
    assert_eq!(moved[1], base[1]);
    let renamed =
        identities(&config("b.example", r#"{"target": "a3", "weight": 20}, {"target": "a", "weight": 80}"#));
    assert_ne!(renamed[0], base[0]);
}

#[test]
fn the_split_identity_is_pinned() {
    // Proxies of one fleet may run different versions of this filter
    // during an upgrade; they must agree on every split's identity. This
    // value changes only with a documented break (docs/progressive-delivery.md, "Split identity").
    let json = r#"{"routes": [{"name": "cart", "default": "cart", "rules": [{"split": {"weights":
        [{"target": "cart-next", "weight": 20}, {"target": "cart", "weight": 80}], "stickyBy": {"cookie": "uid"},
        "rollback": {"target": "cart-next", "maxErrorRate": 0.05, "minRequests": 20, "window": "60s"}}}]}]}"#;
    // Broken once, on purpose: since the identity stopped covering how the
    // canary is judged (thresholds, windows, checks, the gate's terms), it
    // was 86ef392b5f2aefe1 before.
    assert_eq!(identities(json), vec!["827e5ee234243d41".to_string()]);
}

#[test]
fn the_mirror_budget_has_defaults_and_bounds() {
    let router = parse(with_rules("[]").as_bytes()).unwrap();
    assert_eq!(router.mirror_budget, MirrorBudget { max_bytes: 8 * 1024 * 1024, max_in_flight: 128 });
    let json = r#"{"mirrorBudget": {"maxBytes": 1048576.0, "maxInFlight": 16}, "routes": [{"name": "r", "default": "a"}]}"#;
    assert_eq!(
        parse(json.as_bytes()).unwrap().mirror_budget,
        MirrorBudget { max_bytes: 1 << 20, max_in_flight: 16 }
    );
    assert_eq!(
        error(r#"{"mirrorBudget": {"maxInFlight": 5000}, "routes": [{"name": "r", "default": "a"}]}"#),
        "mirrorBudget.maxInFlight: must be a whole number from 0 to 4096, got 5000"
    );
    assert!(error(r#"{"mirrorBudget": {"maxByte": 1}, "routes": [{"name": "r", "default": "a"}]}"#)
        .starts_with("mirrorBudget.maxByte: unknown field `maxByte`"));
}

/// A config of `routes` routes with `rules` rules each, every rule with
/// `conditions` header conditions.
fn sized(routes: usize, rules: usize, conditions: usize) -> String {
    let condition = r#"{"header": "h", "exact": "v"}"#;
    let rule = format!(r#"{{"match": [{}], "target": "t"}}"#, vec![condition; conditions].join(","));
    let rules = vec![rule.as_str(); rules].join(",");
    let routes: Vec<String> = (0..routes)
        .map(|i| format!(r#"{{"name": "r{i}", "hosts": ["h{i}.test"], "default": "d", "rules": [{rules}]}}"#))
        .collect();
    format!(r#"{{"routes": [{}]}}"#, routes.join(","))
}

#[test]
fn configs_at_the_limits_are_accepted_and_one_over_is_refused_by_name() {
    assert!(parse(sized(limits::ROUTES, 5, 1).as_bytes()).is_ok());
    assert_eq!(
        error(&sized(limits::ROUTES + 1, 0, 0)),
        "routes: 2001 routes; at most 2000 are allowed (config reference, \"Limits\")"
    );
    assert!(parse(sized(1, limits::RULES_PER_ROUTE, limits::CONDITIONS_PER_RULE).as_bytes()).is_ok());
    assert_eq!(
        error(&sized(1, limits::RULES_PER_ROUTE + 1, 0)),
        "routes[0].rules: 101 rules in this route; at most 100 are allowed (config reference, \"Limits\")"
    );
    assert_eq!(
        error(&sized(1, 1, limits::CONDITIONS_PER_RULE + 1)),
        "routes[0].rules[0].match: 17 conditions; at most 16 are allowed (config reference, \"Limits\")"
    );
    assert_eq!(
        error(&sized(101, 100, 0)),
        "routes[100].rules: 10100 rules in all routes up to this one; at most 10000 are allowed (config reference, \"Limits\")"
    );
    let hosts: Vec<String> = (0..=limits::HOSTS_PER_ROUTE).map(|i| format!("\"h{i}\"")).collect();
    assert_eq!(
        error(&format!(r#"{{"routes": [{{"name": "r", "hosts": [{}], "default": "d"}}]}}"#, hosts.join(","))),
        "routes[0].hosts: 101 hosts; at most 100 are allowed (config reference, \"Limits\")"
    );
    let weights: Vec<String> =
        (0..=limits::TARGETS_PER_SPLIT).map(|i| format!(r#"{{"target": "t{i}", "weight": 1}}"#)).collect();
    assert_eq!(
        error(&with_rules(&format!(r#"[{{"split": {{"weights": [{}]}}}}]"#, weights.join(",")))),
        "routes[0].rules[0].split.weights: 33 targets; at most 32 are allowed (config reference, \"Limits\")"
    );
    let values: Vec<String> = (0..=limits::ONE_OF_VALUES).map(|i| format!("\"v{i}\"")).collect();
    assert_eq!(
        error(&with_rules(&format!(r#"[{{"match": [{{"header": "h", "oneOf": [{}]}}], "target": "t"}}]"#, values.join(",")))),
        "routes[0].rules[0].match[0].oneOf: 1001 values; at most 1000 are allowed (config reference, \"Limits\")"
    );
}

#[test]
fn a_config_over_four_mebibytes_is_refused_before_it_is_parsed() {
    let mut big = sized(1, 0, 0);
    big.push_str(&" ".repeat(limits::CONFIG_BYTES));
    assert_eq!(
        error(&big),
        format!("config: {} bytes; at most 4194304 are allowed (config reference, \"Limits\")", big.len())
    );
}

#[test]
fn regexes_too_complex_to_bound_are_refused_and_counted_towards_a_limit() {
    let rule = |pattern: &str| {
        with_rules(&format!(r#"[{{"match": [{{"cookie": "c", "regex": "{pattern}"}}], "target": "t"}}]"#))
    };
    assert!(parse(rule("[a-z0-9]{8,64}-[0-9]{1,16}x").as_bytes()).is_ok());
    assert_eq!(
        error(&rule("([a-z]{1,20}){1,20}")),
        "routes[0].rules[0].match[0].regex: `([a-z]{1,20}){1,20}` is too complex: about 421 automaton states, at most 256 (counted repetition such as {8,64} multiplies them; config reference, \"Limits\")"
    );
    let condition = r#"{"header": "h", "regex": "x"}"#;
    let rule = format!(r#"{{"match": [{}], "target": "t"}}"#, vec![condition; 16].join(","));
    let routes: Vec<String> =
        (0..63).map(|i| format!(r#"{{"name": "r{i}", "default": "d", "rules": [{rule}]}}"#)).collect();
    assert!(parse(format!(r#"{{"routes": [{}]}}"#, routes.join(",")).as_bytes()).is_err());
    assert_eq!(
        error(&format!(r#"{{"routes": [{}]}}"#, routes.join(","))),
        "routes[62].rules[0].match[8].regex: 1001 regex conditions in the config up to this one; at most 1000 are allowed (config reference, \"Limits\")"
    );
}

/// A split with a ramp of `canary`, `gate` inside the ramp and `rollback`
/// as given (`""`: none).
fn gated(gate: &str, rollback: &str) -> String {
    let rollback = if rollback.is_empty() { String::new() } else { format!(r#", "rollback": {rollback}"#) };
    with_rules(&format!(
        r#"[{{"split": {{"weights": [{{"target": "canary", "weight": 1}}, {{"target": "stable", "weight": 99}}],
            "ramp": {{"target": "canary", "start": "2026-01-01T00:00:00Z", "every": "10m", "steps": [5, 100], "gate": {gate}}}{rollback}}}}}]"#
    ))
}

const WINDOW: &str = r#"{"target": "canary", "maxErrorRate": 0.05, "minRequests": 20, "window": "1m"}"#;

#[test]
fn a_gate_is_refused_with_the_key_named_when_it_cannot_judge() {
    assert_eq!(
        error(&gated("{}", "")),
        "routes[0].rules[0].split.ramp.gate: needs the split's `rollback` of `canary`: it is what judges each step"
    );
    assert_eq!(
        error(&gated(r#"{"maxWait": "5m"}"#, WINDOW)),
        "routes[0].rules[0].split.ramp.gate.maxWait: must be at least the ramp's `every` (600000 ms): a step lasts that long at least"
    );
    assert_eq!(
        error(&gated(r#"{"onMaxWait": "later"}"#, WINDOW)),
        "routes[0].rules[0].split.ramp.gate.onMaxWait: `later` is not `hold` or `rollback`"
    );
    let prometheus_only = r#"{"target": "canary", "prometheus": {"cluster": "p"}}"#;
    assert_eq!(
        error(&gated(r#"{"minRequests": 10}"#, prometheus_only)),
        "routes[0].rules[0].split.ramp.gate.minRequests: counts the rollback's local window, and it has none (`maxErrorRate`, `minRequests`, `window`)"
    );
    let router = parse(gated(r#"{"maxWait": "30m", "onMaxWait": "rollback"}"#, WINDOW).as_bytes()).unwrap();
    let ramp = router.routes[0].rules[0].split().unwrap().ramp().unwrap();
    let gate = ramp.gate.as_ref().unwrap();
    assert_eq!(
        (gate.min_requests, gate.max_wait_ms, gate.on_max_wait),
        (20, Some(1_800_000), crate::rollout::settings::OnMaxWait::Rollback)
    );
    assert!(parse(gated("{}", prometheus_only).as_bytes()).is_ok(), "judged by Prometheus alone");
    let at_zero = gated("{}", WINDOW).replace("[5, 100]", "[0, 5, 100]");
    assert_eq!(
        error(&at_zero),
        "routes[0].rules[0].split.ramp.steps[0]: a gated step at 0% can never be earned: canary gets no requests \
         there, so nothing judges it; start above 0 (or leave the ramp ungated)"
    );
    let ungated = at_zero.replace(r#", "gate": {}"#, "");
    assert!(parse(ungated.as_bytes()).is_ok(), "by the clock, 0% is a step like any other");
    assert_eq!(
        error(&ungated.replace(r#""every": "10m""#, r#""every": "10m", "hold": true"#)),
        "routes[0].rules[0].split.ramp.hold: pauses a gated ramp; a ramp by the clock is wherever the clock puts \
         it, with nothing to freeze (gate it, or move `start`)"
    );
    assert!(parse(gated("{}", WINDOW).replace("[5, 100]", "[5, 0]").as_bytes()).is_err(), "never goes down");
}

#[test]
fn latency_is_refused_outside_its_bounds_and_without_a_window() {
    let with_latency = |latency: &str| {
        gated("{}", &WINDOW.replace(r#""window": "1m""#, &format!(r#""window": "1m", "latency": {latency}"#)))
    };
    assert_eq!(
        error(&with_latency(r#"{"percentile": 100, "maxMs": 500}"#)),
        "routes[0].rules[0].split.rollback.latency.percentile: must be a percentile from 50 to 99.9, got 100"
    );
    assert_eq!(
        error(&with_latency(r#"{"percentile": 99, "maxMs": 0.5}"#)),
        "routes[0].rules[0].split.rollback.latency.maxMs: must be a whole number from 1 to 3600000, got 0.5"
    );
    assert_eq!(
        error(&with_latency(r#"{"percentile": 99}"#)),
        "routes[0].rules[0].split.rollback.latency: missing field `maxMs` at line 2 column 224"
    );
    let no_window = r#"{"target": "canary", "latency": {"percentile": 99, "maxMs": 500}, "prometheus": {"cluster": "p"}}"#;
    assert_eq!(
        error(&gated("{}", no_window)),
        "routes[0].rules[0].split.rollback: `latency` needs `minRequests` and `window`: latency is judged over the local window"
    );
}

#[test]
fn how_the_canary_is_judged_is_not_part_of_the_split_identity_and_what_it_sends_is() {
    let identity =
        |json: String| parse(json.as_bytes()).unwrap().routes[0].rules[0].split().unwrap().identity;
    let plain = identity(gated("{}", WINDOW));
    // Pausing, the gate's terms, the window's thresholds, latency and the
    // Prometheus checks: edits mid-ramp that keep the step and a rollback.
    let prometheus = r#", "prometheus": {"cluster": "p", "every": "5s", "threshold": 3,
        "checks": [{"name": "e", "query": "q", "max": 0.1}], "blindAfter": "30s"}"#;
    let judged_otherwise = [
        gated("{}", WINDOW).replace(r#""gate": {}"#, r#""gate": {}, "hold": true"#),
        gated(r#"{"maxWait": "1h", "onMaxWait": "rollback", "minRequests": 50}"#, WINDOW),
        gated("{}", &WINDOW.replace("0.05", "0.25").replace("20", "7").replace(r#""1m""#, r#""5m""#)),
        gated(
            "{}",
            &WINDOW
                .replace("}", r#", "latency": {"percentile": 99, "maxMs": 300}, "abandonedAfterMs": 900}"#),
        ),
        gated("{}", &WINDOW.replace('}', &format!("{prometheus}}}"))),
    ];
    for json in judged_otherwise {
        assert_eq!(identity(json.clone()), plain, "{json}");
    }
    // What the split sends where: a new version of it.
    let sends_otherwise = [
        gated("{}", WINDOW).replace("[5, 100]", "[10, 100]"),
        gated("{}", WINDOW).replace("2026-01-01", "2026-02-01"),
        gated("{}", WINDOW).replace(r#""every": "10m""#, r#""every": "20m""#),
        gated("{}", WINDOW).replace(r#""weight": 1}"#, r#""weight": 2}"#),
        gated("{}", WINDOW).replace(r#", "gate": {}"#, ""),
    ];
    for json in sends_otherwise {
        assert_ne!(identity(json.clone()), plain, "{json}");
    }
}

#[test]
fn prometheus_headers_and_path_prefix_are_not_part_of_the_identity_and_are_checked() {
    let with = |extra: &str| {
        format!(
            r#"{{"routes": [{{"name": "b", "default": "s", "rules": [{{"split": {{
            "weights": [{{"target": "c", "weight": 50}}, {{"target": "s", "weight": 50}}],
            "rollback": {{"target": "c", "prometheus": {{"cluster": "prometheus"{extra}}}}}}}}}]}}]}}"#
        )
    };
    let identity =
        |json: String| parse(json.as_bytes()).unwrap().routes[0].rules[0].split().unwrap().identity;
    let plain = identity(with(""));
    let moved = with(r#", "pathPrefix": "/thanos", "headers": [{"name": "X-Scope-OrgID", "value": "t1"}]"#);
    assert_eq!(identity(moved.clone()), plain, "moving Prometheus keeps the rollout");
    assert_eq!(identity(moved.replace("t1", "t2")), plain, "a rotated value keeps it too");
    assert_eq!(
        error(&with(r#", "headers": [{"name": "Host", "value": "x"}]"#)),
        "routes[0].rules[0].split.rollback.prometheus.headers[0].name: `host` is the proxy's to set: name another header"
    );
    assert!(error(&with(r#", "headers": [{"name": "bad name", "value": "x"}]"#)).contains("headers[0].name"));
    assert!(error(&with(r#", "pathPrefix": "thanos""#)).contains("prometheus.pathPrefix"));
    assert_eq!(identity(with(r#", "authority": "prom.example.com:9090""#)), plain, "so is its Host");
    assert_eq!(
        error(&with(r#", "authority": "httproute/a/b""#)),
        "routes[0].rules[0].split.rollback.prometheus.authority: `httproute/a/b` must be a host name, with `:PORT` if any"
    );
    let headers: Vec<String> = (0..17).map(|i| format!(r#"{{"name": "x-{i}", "value": "v"}}"#)).collect();
    assert!(error(&with(&format!(r#", "headers": [{}]"#, headers.join(",")))).contains("at most 16"));
}

/// A cluster's name is often no host name; the queries' Host then comes
/// from what the name says, since Envoy refuses a request whose
/// `:authority` holds `/` or `|`.
#[test]
fn the_prometheus_authority_is_a_host_whatever_the_cluster_is_named() {
    use super::rollback::default_authority;
    assert_eq!(default_authority("prometheus"), "prometheus");
    assert_eq!(default_authority("prometheus.monitoring:9090"), "prometheus.monitoring:9090");
    assert_eq!(
        default_authority("outbound|9090||prometheus.istio-system.svc.cluster.local"),
        "prometheus.istio-system.svc.cluster.local:9090"
    );
    assert_eq!(default_authority("httproute/default/service-b/rule/2"), "prometheus");
    assert_eq!(default_authority("outbound|x||a b"), "prometheus");
}

#[test]
fn compare_is_refused_with_the_key_named_where_it_cannot_judge() {
    let rollback = |body: &str| {
        error(&with_split(&format!(
            r#", "rollback": {{"target": "canary", "minRequests": 20, "window": "60s"{body}}}"#
        )))
    };
    let compare = |body: &str| rollback(&format!(r#", "compare": {{{body}}}"#));
    for (body, message) in [
        (r#""maxErrorRateIncrease": 0.01, "confidence": 0.5"#, "compare.confidence: must be a probability between 0.5 and 0.9999, got 0.5"),
        (r#""maxErrorRateIncrease": 0.01, "confidence": 0.99995"#, "compare.confidence: must be a probability between 0.5 and 0.9999, got 0.99995"),
        (r#""maxErrorRateIncrease": -0.01"#, "compare.maxErrorRateIncrease: must be a fraction from 0 to 0.5 (0.01 is one percentage point), got -0.01"),
        (r#""latency": {"percentile": 99, "maxRatio": 0.9}"#, "compare.latency.maxRatio: must be a ratio from 1 to 100, got 0.9"),
        (r#""maxErrorRateIncrease": 0.01, "baseline": "nope""#, "compare.baseline: `nope` is not one of the split's targets (stable)"),
        (r#""maxErrorRateIncrease": 0.01, "baseline": "canary""#, "compare.baseline: `canary` is the target being judged: compare it with another target of the split"),
        (r#""confidence": 0.99"#, "compare: needs `maxErrorRateIncrease`, `latency` or both: what to compare"),
    ] {
        assert_eq!(compare(body), format!("routes[0].rules[0].split.rollback.{message}"), "{body}");
    }
    assert_eq!(
        rollback(r#", "prometheus": {"cluster": "prom"}"#),
        "routes[0].rules[0].split.rollback: `minRequests` and `window` judge nothing without `maxErrorRate`, `latency` or `compare`"
    );
    // A split with one target has nothing to compare with (nor to take
    // the traffic back).
    let alone = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
        "weights": [{"target": "canary", "weight": 100}],
        "rollback": {"target": "canary", "minRequests": 20, "window": "60s", "compare": {"maxErrorRateIncrease": 0.01}}}}]}]}"#;
    assert_eq!(
        error(alone),
        "routes[0].rules[0].split.weights: the targets other than `canary` need weight to take the traffic back"
    );
    // With compare, maxErrorRate is not needed, and the baseline defaults
    // to the split's other targets.
    let router = parse(
        with_split(
            r#", "rollback": {"target": "canary", "minRequests": 20, "window": "60s",
            "compare": {"maxErrorRateIncrease": 0.01, "latency": {"percentile": 99, "maxRatio": 1.5}}}"#,
        )
        .as_bytes(),
    )
    .unwrap();
    let (_, _, split) = router.splits().next().unwrap();
    let window = split.rollback().unwrap().window.as_ref().unwrap();
    let compare = window.compare.as_ref().unwrap();
    assert_eq!(
        (window.max_error_rate, compare.baseline.clone(), compare.confidence),
        (None, vec!["stable".to_string()], 0.95)
    );
    assert_eq!(compare.latency.as_ref().map(|l| l.min_increase_ms), Some(5));
}

#[test]
fn a_compared_check_needs_its_bound_and_the_target_placeholder() {
    let check = |body: &str| {
        error(&with_split(&format!(
            r#", "rollback": {{"target": "canary", "prometheus": {{"cluster": "p", "checks": [{{"name": "e", {body}}}]}}}}"#
        )))
    };
    let at = "routes[0].rules[0].split.rollback.prometheus.checks[0]";
    assert_eq!(
        check(r#""query": "e{t=\"{{target}}\"}", "compareTo": "baseline""#),
        format!("{at}: needs `max`, `min` or both (the bounds its value must stay in), or `compareTo` with `maxIncrease` or `maxRatio`")
    );
    assert_eq!(
        check(r#""query": "e", "compareTo": "baseline", "maxIncrease": 0.01"#),
        format!("{at}.query: must select the target with {{{{target}}}}: it is run once for the target and once for its baseline")
    );
    assert_eq!(
        check(r#""query": "e", "max": 1, "maxRatio": 2"#),
        format!("{at}: `maxRatio` needs `compareTo`: it bounds the ratio to the baseline")
    );
    assert_eq!(
        check(r#""query": "e{t=\"{{target}}\"}", "compareTo": "baseline", "max": 1, "maxRatio": 2"#),
        format!(
            "{at}: `compareTo` cannot go with `max`: a comparison is bounded by `maxIncrease` or `maxRatio`"
        )
    );
    assert_eq!(
        check(r#""query": "e{t=\"{{target}}\"}", "compareTo": "baseline", "maxRatio": 0.5"#),
        format!("{at}.maxRatio: must be a ratio of at least 1, got 0.5")
    );
    let router = parse(
        with_split(r#", "rollback": {"target": "canary", "prometheus": {"cluster": "p", "checks": [
            {"name": "e", "query": "e{t=\"{{target}}\"} / e{t=~\"{{baseline}}\"}", "compareTo": "baseline", "maxRatio": 1.5}]}}"#)
        .as_bytes(),
    )
    .unwrap();
    let (_, _, split) = router.splits().next().unwrap();
    let prometheus = split.rollback().unwrap().prometheus.as_ref().unwrap();
    assert_eq!(prometheus.baseline, "stable");
    assert_eq!(
        (prometheus.checks[0].max, prometheus.checks[0].compare_to),
        (Some(1.5), Some(crate::rollout::settings::Relation::Ratio))
    );
}

/// `n` routes, each on its lines, the third's first rule a `bad` one.
fn many_routes(n: usize, bad: &str) -> String {
    let routes: Vec<String> = (0..n)
        .map(|i| {
            let rule = if i == 2 { bad } else { r#"{"match": [{"cookie": "c", "exact": "v"}], "target": "b"}"# };
            format!("  {{\"name\": \"r{i}\", \"hosts\": [\"h{i}.example.com\"], \"default\": \"a\",\n   \"rules\": [{rule}]}}")
        })
        .collect();
    format!("{{\"routes\": [\n{}\n]}}", routes.join(",\n"))
}

#[test]
fn a_config_is_read_in_pieces_then_route_by_route_never_whole() {
    let config = many_routes(2000, r#"{"target": "b"}"#);
    let mut asked: Vec<(usize, usize)> = Vec::new();
    let router = parse_in_parts(config.len(), |start, length| {
        asked.push((start, length));
        config.as_bytes().get(start..(start + length).min(config.len())).map(<[u8]>::to_vec)
    })
    .unwrap();
    assert_eq!(router.routes.len(), 2000);
    assert_eq!(router.routes[1999].name, "r1999");
    let longest = asked.iter().map(|&(_, length)| length).max().unwrap();
    assert!(
        config.len() > 3 * PIECE_BYTES && longest <= PIECE_BYTES,
        "asked for {longest} of {} bytes at once",
        config.len()
    );
    let pieces = config.len().div_ceil(PIECE_BYTES);
    assert_eq!(asked.len(), pieces + 2000, "each piece once, then each route once");
}

#[test]
fn a_route_s_errors_name_its_line_and_column_in_the_whole_document() {
    let config = many_routes(5, r#"{"target": 7}"#);
    assert_eq!(
        error(&config),
        "routes[2].rules[0].target: expected a string, got a number at line 7 column 25"
    );
}

#[test]
fn a_config_that_is_not_json_is_named_as_the_whole_document_names_it() {
    // A trailing comma in the third route, and a route that is never closed.
    let config = many_routes(5, r#"{"target": "b",}"#);
    assert_eq!(error(&config), "routes[2].rules[0]: an object cannot end with a comma at line 7 column 29");
    let unclosed = many_routes(5, r#"{"target": "b"}"#).replacen("}]}", "}]", 1);
    let whole = json::parse(unclosed.as_bytes()).err().map(|e| format!("{}: {}", e.path, e.message));
    assert_eq!(Some(error(&unclosed)), whole);
    // A reader that fails part way: the configuration could not be read.
    let config = many_routes(5, r#"{"target": "b"}"#);
    let result = parse_in_parts(config.len(), |start, length| {
        (start == 0).then(|| config.as_bytes()[..length.min(config.len())].to_vec())
    });
    assert_eq!(
        result.err().map(|e| e.to_string()).as_deref(),
        Some("routes[0]: could not be read a second time from the proxy")
    );
}
