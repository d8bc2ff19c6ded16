//! DESIGN.md's example config in `envoy/envoy.yaml`, through real requests.

use canary_router_core::hashing::hash::sticky_bucket;

use super::envoy::{inline_example, Envoy, EnvoyConfig};
use super::http::{get_host, Connection};

fn example() -> Envoy {
    Envoy::start(EnvoyConfig::from_repo("envoy/envoy.yaml"))
}

#[test]
fn the_repo_config_inlines_the_example_json() {
    let yaml = std::fs::read_to_string(super::envoy::repo().join("envoy/envoy.yaml")).unwrap();
    assert!(yaml.contains(&inline_example()), "envoy/envoy.yaml drifted from examples/config.json");
}

/// Host, path, extra headers, the backend that must answer.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn each_rule_of_the_example_reaches_its_backend() {
    let envoy = example();
    let port = envoy.ingress_port();
    let cases: &[Case] = &[
        ("a.example.com", "/", &[("foo", "bar")], "service-a-canary"),
        ("a.example.com", "/", &[("cookie", "session=1; foo=bar")], "service-a-canary"),
        ("a.example.com", "/?foo=bar", &[], "service-a-canary"),
        ("a.example.com", "/?foo=baz", &[], "service-a-canary"),
        ("a.example.com", "/", &[("x-canary", "never")], "service-a"),
        ("a.example.com", "/", &[], "service-a"),
        ("a.example.com", "/", &[("foo", "baz"), ("cookie", "foo=baz")], "service-a"),
        ("shop.example.com:10000", "/", &[("foo", "bar")], "service-a-canary"),
        ("b.example.com", "/", &[("cookie", "uid=alice")], "service-b"),
    ];
    for (host, path, headers, backend) in cases {
        let response = get_host(port, host, path, headers);
        assert_eq!(response.status, 200, "{host}{path} {headers:?}");
        assert_eq!(response.body_text(), *backend, "{host}{path} {headers:?}");
        assert_eq!(
            response.header("x-seen-target").as_deref(),
            Some(*backend),
            "upstream saw another target"
        );
    }
    let unrouted = get_host(port, "nowhere.org", "/", &[]);
    assert_eq!(
        (unrouted.status, unrouted.body_text().as_str()),
        (404, "no canary-router route for this host")
    );
    assert!(envoy.log().contains("route=service-a rule=beta target=service-a-canary reason=match"));
}

#[test]
fn the_twenty_eighty_split_holds_over_2000_requests() {
    let envoy = example();
    let mut connection = Connection::open(envoy.ingress_port()).unwrap();
    let n = 2_000;
    let mut canary = 0;
    for _ in 0..n {
        let response = connection.get("b.example.com", "/", &[]).unwrap();
        assert_eq!(response.status, 200);
        match response.body_text().as_str() {
            "service-b-canary" => canary += 1,
            "service-b" => {}
            other => panic!("unexpected backend {other}"),
        }
    }
    let share = canary as f64 * 100.0 / n as f64;
    assert!((share - 20.0).abs() <= 3.0, "canary share {share:.1}% (want 20 ± 3)");
}

#[test]
fn a_sticky_id_always_lands_on_the_same_backend() {
    let envoy = example();
    // An id whose bucket, by the documented hash, falls in the canary's 20%.
    let canary_user = (0..)
        .map(|i| format!("user-{i}"))
        .find(|id| sticky_bucket(b"service-b", id.as_bytes()) < 200_000)
        .unwrap();
    for (user, want) in [("alice", "service-b"), (canary_user.as_str(), "service-b-canary")] {
        let cookie = format!("uid={user}");
        for _ in 0..20 {
            // A new connection each time: any worker, any VM.
            let response = get_host(envoy.ingress_port(), "b.example.com", "/", &[("cookie", &cookie)]);
            assert_eq!(response.body_text(), want, "{user}");
        }
    }
}

#[test]
fn a_client_sent_target_header_cannot_reach_the_canary() {
    let envoy = example();
    let port = envoy.ingress_port();
    let spoof = [("x-route-target", "service-a-canary")];
    let routed = get_host(port, "a.example.com", "/", &spoof);
    assert_eq!((routed.status, routed.body_text().as_str()), (200, "service-a"));
    let unrouted = get_host(port, "nowhere.org", "/", &spoof);
    assert_eq!(unrouted.status, 404, "the client picked an upstream: {}", unrouted.body_text());
}

#[test]
fn hostile_headers_are_answered_by_a_backend() {
    let envoy = example();
    let mut connection = Connection::open(envoy.ingress_port()).unwrap();
    let non_utf8: &[(&[u8], &[u8])] = &[(b"foo", b"\xff\xfe\x80"), (b"cookie", b"foo=\xc3\x28; \xff=\xfe")];
    let response = connection.get("a.example.com", "/", non_utf8).unwrap();
    assert_eq!((response.status, response.body_text().as_str()), (200, "service-a"));

    let cookie = format!("big={}; foo=bar", "x".repeat(60 * 1024));
    let response = connection.get("a.example.com", "/", &[(b"cookie", cookie.as_bytes())]).unwrap();
    assert_eq!((response.status, response.body_text().as_str()), (200, "service-a-canary"));

    let response = connection.get("a.example.com", "/?foo=%zz&%ff=%&foo=bar", &[]).unwrap();
    assert_eq!((response.status, response.body_text().as_str()), (200, "service-a-canary"));
}
