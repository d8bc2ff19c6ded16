//! The user's scenarios, through the built `.wasm` in the harness: what a
//! request looks like to the upstream after the filter ran. Each test is a
//! row of CONTRIBUTING.md's scenario table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::{HeaderMap, LogLevel, Proxy};

const EXAMPLE: &str = include_str!("../examples/config.json");

fn a(extra: &[(&str, &str)], path: &str) -> Vec<(String, String)> {
    let mut headers = vec![
        (":authority".to_string(), "a.example.com".to_string()),
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), path.to_string()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    headers
}

fn target_of(proxy: &mut Proxy, headers: Vec<(String, String)>) -> Option<String> {
    proxy.send_map(HeaderMap::from_pairs(headers)).target()
}

fn split_config(blue: f64, green: f64) -> String {
    format!(
        r#"{{"routes": [{{"name": "web", "default": "blue", "rules": [{{"split": {{"weights": [
            {{"target": "blue", "weight": {blue}}}, {{"target": "green", "weight": {green}}}]}}}}]}}]}}"#
    )
}

#[test]
fn header_foo_bar_goes_to_the_canary() {
    let mut proxy = Proxy::configured(EXAMPLE);
    assert_eq!(target_of(&mut proxy, a(&[("foo", "bar")], "/")).as_deref(), Some("service-a-canary"));
    assert_eq!(target_of(&mut proxy, a(&[("Foo", "bar")], "/")).as_deref(), Some("service-a-canary"));
    assert_eq!(target_of(&mut proxy, a(&[("foo", "bar2")], "/")).as_deref(), Some("service-a"));
}

#[test]
fn cookie_foo_bar_goes_to_the_canary() {
    let mut proxy = Proxy::configured(EXAMPLE);
    assert_eq!(
        target_of(&mut proxy, a(&[("cookie", "session=1; foo=bar")], "/")).as_deref(),
        Some("service-a-canary")
    );
    // HTTP/2 clients send one cookie header per cookie.
    let split = a(&[("cookie", "session=1"), ("cookie", "foo=bar")], "/");
    assert_eq!(target_of(&mut proxy, split).as_deref(), Some("service-a-canary"));
    assert_eq!(target_of(&mut proxy, a(&[("cookie", "foo=baz")], "/")).as_deref(), Some("service-a"));
}

#[test]
fn query_foo_bar_goes_to_the_canary() {
    let mut proxy = Proxy::configured(EXAMPLE);
    for path in ["/?foo=bar", "/items?x=1&foo=bar", "/?foo=b%61r", "/?foo=baz#frag"] {
        assert_eq!(target_of(&mut proxy, a(&[], path)).as_deref(), Some("service-a-canary"), "{path}");
    }
    for path in ["/?foo=barn", "/?Foo=bar", "/foo=bar", "/?foo"] {
        assert_eq!(target_of(&mut proxy, a(&[], path)).as_deref(), Some("service-a"), "{path}");
    }
}

#[test]
fn everything_else_stays_on_the_default() {
    let mut proxy = Proxy::configured(EXAMPLE);
    assert_eq!(target_of(&mut proxy, a(&[], "/")).as_deref(), Some("service-a"));
    assert_eq!(
        target_of(&mut proxy, a(&[("x-canary", "never"), ("cookie", "foo=bar")], "/")).as_deref(),
        Some("service-a-canary")
    );
    let other_host = vec![
        (":authority".to_string(), "shop.example.com:8443".to_string()),
        (":path".to_string(), "/".to_string()),
    ];
    assert_eq!(target_of(&mut proxy, other_host).as_deref(), Some("service-a"));
}

#[test]
fn twenty_percent_of_requests_go_to_the_canary() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let n = 10_000;
    let canary = (0..n)
        .filter(|_| {
            let t = proxy.send(&[(":authority", "b.example.com"), (":path", "/")]).target().unwrap();
            assert!(t == "service-b" || t == "service-b-canary", "{t}");
            t == "service-b-canary"
        })
        .count();
    let share = canary as f64 * 100.0 / n as f64;
    assert!((share - 20.0).abs() < 1.5, "canary share {share:.2}%");
}

#[test]
fn a_sticky_user_keeps_their_target_on_every_replica() {
    // Two VMs with different entropy stand for two Envoy replicas.
    let mut replicas = [Proxy::configured(EXAMPLE), Proxy::start_with(LogLevel::Info, 99)];
    assert!(replicas[1].configure(EXAMPLE));
    for user in ["alice", "bob", "user-42", "carol"] {
        let cookie = format!("uid={user}");
        let targets: Vec<String> = (0..10)
            .map(|i| {
                let proxy = &mut replicas[i % 2];
                proxy
                    .send(&[(":authority", "b.example.com"), (":path", "/"), ("cookie", &cookie)])
                    .target()
                    .unwrap()
            })
            .collect();
        assert!(targets.iter().all(|t| *t == targets[0]), "{user}: {targets:?}");
    }
    // alice's bucket is pinned (237,645 >= 200,000): she stays on service-b.
    let alice = replicas[0].send(&[(":authority", "b.example.com"), (":path", "/"), ("cookie", "uid=alice")]);
    assert_eq!(alice.target().as_deref(), Some("service-b"));
}

#[test]
fn blue_green_switches_by_config_alone_and_rolls_back() {
    let mut proxy = Proxy::configured(&split_config(100.0, 0.0));
    assert!((0..500).all(|_| proxy.send(&[(":path", "/")]).target().as_deref() == Some("blue")));
    assert!(proxy.configure(&split_config(0.0, 100.0)));
    assert!((0..500).all(|_| proxy.send(&[(":path", "/")]).target().as_deref() == Some("green")));
    // Rollback is the same one edit.
    assert!(proxy.configure(&split_config(100.0, 0.0)));
    assert!((0..500).all(|_| proxy.send(&[(":path", "/")]).target().as_deref() == Some("blue")));
}

#[test]
fn istio_style_double_weights_route_the_same() {
    let mut proxy = Proxy::configured(&split_config(0.0, 100.0).replace("100", "100.0"));
    assert_eq!(proxy.send(&[(":path", "/")]).target().as_deref(), Some("green"));
}

#[test]
fn a_client_sent_target_header_is_overwritten() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let sent = a(&[("x-route-target", "service-a-canary"), ("x-route-target", "evil")], "/");
    let exchange = proxy.send_map(HeaderMap::from_pairs(sent));
    assert_eq!(exchange.upstream.get_all("x-route-target"), vec!["service-a"]);
}

#[test]
fn a_client_sent_target_header_is_removed_when_no_route_matches() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let exchange =
        proxy.send(&[(":authority", "unrouted.org"), (":path", "/"), ("x-route-target", "service-a-canary")]);
    assert_eq!(exchange.upstream.get_all("x-route-target"), Vec::<String>::new());
    assert_eq!(exchange.upstream.get(":authority").as_deref(), Some("unrouted.org"));
    let plain = proxy.send(&[(":authority", "unrouted.org"), (":path", "/")]);
    assert_eq!(plain.upstream.get("x-route-target"), None);
}

#[test]
fn a_custom_target_header_is_the_one_written_and_stripped() {
    let config =
        r#"{"targetHeader": "x-version", "routes": [{"name": "r", "hosts": ["a.test"], "default": "v1"}]}"#;
    let mut proxy = Proxy::configured(config);
    let routed = proxy.send(&[(":authority", "a.test"), (":path", "/"), ("x-version", "v2")]);
    assert_eq!(routed.upstream.get_all("x-version"), vec!["v1"]);
    let unrouted = proxy.send(&[(":authority", "b.test"), (":path", "/"), ("x-version", "v2")]);
    assert_eq!(unrouted.upstream.get("x-version"), None);
}

#[test]
fn a_client_never_reaches_the_upstream_its_own_header_names() {
    let custom =
        r#"{"targetHeader": "x-version", "routes": [{"name": "r", "hosts": ["a.test"], "default": "v1"}]}"#;
    let spoofed = [(":authority", "a.test"), (":path", "/"), ("x-version", "v2"), ("x-route-target", "v2")];
    let refused = |exchange: &harness::Exchange, details: &str| {
        let reply = exchange.local_reply.as_ref().expect("answered by the filter, not forwarded");
        assert_eq!((reply.status, reply.details.as_str()), (503, details));
        assert!(exchange.upstream.is_empty(), "nothing went upstream");
        assert_eq!(exchange.request_action, harness::PAUSE);
    };

    // Before any config, the filter cannot know which header routes.
    let mut proxy = Proxy::start();
    refused(&proxy.send(&spoofed), "canary_router_no_config");
    // A rejected first config does not make it any wiser.
    assert!(!proxy.configure(&custom.replace(r#""default": "v1""#, r#""default": """#)));
    refused(&proxy.send(&spoofed), "canary_router_no_config");
    assert!(proxy.configure(custom));
    assert_eq!(proxy.send(&spoofed).upstream.get_all("x-version"), vec!["v1"]);

    // The proxy refuses the write: the client's value would go upstream.
    proxy.refuse_header_writes("x-version");
    refused(&proxy.send(&spoofed), "canary_router_header_not_written");
    let unrouted = [(":authority", "b.test"), (":path", "/"), ("x-version", "v2")];
    refused(&proxy.send(&unrouted), "canary_router_header_not_written");
}

#[test]
fn non_utf8_header_bytes_are_routed_not_fatal() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let mut headers = HeaderMap::from_pairs(a(&[], "/"));
    headers.add(b"x-\xff\xfe", b"\x80\x81");
    headers.add(b"foo", b"\xc3\x28");
    headers.add(b"cookie", b"\xff=\xfe; foo=\xe2\x82");
    assert_eq!(proxy.send_map(headers.clone()).target().as_deref(), Some("service-a"));
    headers.add(b"foo", b"bar");
    assert_eq!(proxy.send_map(headers).target().as_deref(), Some("service-a-canary"));
    let bad_path =
        HeaderMap::from_pairs([(&b":authority"[..], &b"a.example.com"[..]), (b":path", b"/\xff?foo=\xfe")]);
    assert_eq!(proxy.send_map(bad_path).target().as_deref(), Some("service-a"));
}

#[test]
fn a_64_kib_cookie_is_routed_not_fatal() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let huge = format!("big={}; foo=bar", "x".repeat(64 * 1024));
    assert_eq!(target_of(&mut proxy, a(&[("cookie", &huge)], "/")).as_deref(), Some("service-a-canary"));
    let junk: String = (0..64 * 1024).map(|i| [';', '=', ' ', '"', 'a'][i % 5]).collect();
    assert_eq!(target_of(&mut proxy, a(&[("cookie", &junk)], "/")).as_deref(), Some("service-a"));
    let huge_header = "v".repeat(64 * 1024);
    assert_eq!(target_of(&mut proxy, a(&[("foo", &huge_header)], "/")).as_deref(), Some("service-a"));
}

#[test]
fn malformed_queries_are_routed_not_fatal() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let repeated = format!("/?{}foo=bar", "foo=x&".repeat(100));
    // 5,000 values of one key: the request's regex budget (docs/config.md, "The
    // regex budget") pays for about 1,300 tests of `^ba[rz]$`, so the last
    // value is never tested: the request goes to the default, not fatal.
    let flood = format!("/?{}foo=bar", "foo=x&".repeat(5_000));
    assert_eq!(target_of(&mut proxy, a(&[], &flood)).as_deref(), Some("service-a"));
    for path in [
        "/?%zz",
        "/?foo=%",
        "/?foo=%zzbar",
        "/?&&&==&=",
        "/??foo=bar",
        "/?foo=%e2%82",
        "/?%ff=%fe",
        "/#?foo=bar",
    ] {
        assert_eq!(target_of(&mut proxy, a(&[], path)).as_deref(), Some("service-a"), "{path}");
    }
    assert_eq!(target_of(&mut proxy, a(&[], &repeated)).as_deref(), Some("service-a-canary"));
    assert_eq!(target_of(&mut proxy, a(&[], "/?x=%zz&foo=bar")).as_deref(), Some("service-a-canary"));
}

#[test]
fn an_invalid_config_fails_configure_with_the_logged_error() {
    let mut proxy = Proxy::start();
    let bad = r#"{"routes": [{"name": "b", "default": "b", "rules": [
        {"split": {"weights": [{"target": "b", "weight": 0}, {"target": "c", "weight": 0}]}}]}]}"#;
    assert!(!proxy.configure(bad));
    assert_eq!(
        proxy.logs_at(LogLevel::Error),
        vec!["[ctx 1] canary-router: config rejected: routes[0].rules[0].split.weights: sum must be > 0"]
    );
    assert!(!proxy.configure(r#"{"routes": [{"name": "r", "default": "a", "tagret": "x"}]}"#));
    assert!(
        proxy.logs_at(LogLevel::Error)[1].contains("routes[0].tagret: unknown field `tagret`"),
        "{}",
        proxy.log_text()
    );
    assert!(!proxy.configure(""));
    assert!(proxy.logs_at(LogLevel::Error)[2].contains("config: is empty"));
}

#[test]
fn a_rejected_config_leaves_the_running_one_in_force() {
    let mut proxy = Proxy::configured(&split_config(0.0, 100.0));
    assert!(!proxy.configure(&split_config(-1.0, 100.0)));
    assert_eq!(proxy.send(&[(":path", "/")]).target().as_deref(), Some("green"));
}

#[test]
fn every_decision_is_explained_in_the_debug_log() {
    let mut proxy = Proxy::start_with(LogLevel::Debug, 1);
    assert!(proxy.configure(EXAMPLE));
    let exchange = proxy.send_map(HeaderMap::from_pairs(a(&[("foo", "bar")], "/")));
    let id = exchange.context_id;
    proxy.send(&[(":authority", "b.example.com"), (":path", "/"), ("cookie", "uid=alice")]);
    proxy.send(&[(":authority", "nowhere.test"), (":path", "/")]);
    let debug = proxy.logs_at(LogLevel::Debug);
    assert_eq!(
        debug,
        vec![
            format!("[ctx {id}] route=service-a rule=beta target=service-a-canary reason=match"),
            format!(
                "[ctx {}] route=service-b rule=rules[0] target=service-b reason=split sticky bucket=237645",
                id + 1
            ),
            format!("[ctx {}] route=- rule=- target=- reason=no route", id + 2),
        ]
    );
    assert_eq!(
        proxy.logs_at(LogLevel::Info),
        vec!["[ctx 1] canary-router: config accepted: 2 route(s), target header `x-route-target`"]
    );
}

#[test]
fn raising_the_host_log_level_at_runtime_reaches_the_filter() {
    let mut proxy = Proxy::configured(EXAMPLE);
    proxy.set_log_level(LogLevel::Debug);
    // The filter re-reads the host's level every 1,024 streams.
    for _ in 0..1_024 {
        proxy.send(&[(":authority", "a.example.com"), (":path", "/")]);
    }
    assert!(!proxy.logs_at(LogLevel::Debug).is_empty());
}

/// Hosts that route by a header a filter wrote must select the route again
/// after it (Envoy may stop doing so by itself): the filter asks through
/// the `clear_route_cache` foreign function when it changed the header, and
/// a host without the function is asked once and goes on routing.
#[test]
fn the_route_is_selected_again_after_the_target_header_changed() {
    let mut proxy = Proxy::configured(EXAMPLE);
    assert_eq!(target_of(&mut proxy, a(&[("foo", "bar")], "/")).as_deref(), Some("service-a-canary"));
    assert_eq!(proxy.route_cache_clears(), 1);
    let unchanged = a(&[("foo", "bar"), ("x-route-target", "service-a-canary")], "/");
    assert_eq!(target_of(&mut proxy, unchanged).as_deref(), Some("service-a-canary"));
    assert_eq!(proxy.route_cache_clears(), 1, "the client's value was the decision: nothing to select again");

    let mut lacking = Proxy::configured(EXAMPLE);
    lacking.lack_clear_route_cache();
    for _ in 0..3 {
        assert_eq!(target_of(&mut lacking, a(&[("foo", "bar")], "/")).as_deref(), Some("service-a-canary"));
    }
    let said = lacking.logs_at(LogLevel::Info);
    assert_eq!(said.iter().filter(|l| l.contains("has no clear_route_cache")).count(), 1, "{said:?}");
}
