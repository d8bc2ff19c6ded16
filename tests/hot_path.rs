//! What a request costs the proxy, counted in the harness: calls into the
//! guest (each about a microsecond in Envoy) and wasm instructions (fuel),
//! the same on every run and machine. Time is measured in `make bench`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::{HeaderMap, Proxy};

const EXAMPLE: &str = include_str!("../examples/config.json");

fn a_request() -> HeaderMap {
    HeaderMap::from_pairs([
        (":authority", "a.example.com"),
        (":path", "/"),
        (":method", "GET"),
        ("cookie", "session=1; uid=u-1"),
        ("user-agent", "curl/8"),
    ])
}

/// Calls into the guest and wasm instructions for one more request.
fn one_request(proxy: &mut Proxy, request: HeaderMap) -> (u64, u64) {
    let (calls, instructions) = (proxy.guest_calls(), proxy.guest_instructions());
    proxy.send_map(request);
    (proxy.guest_calls() - calls, proxy.guest_instructions() - instructions)
}

#[test]
fn a_request_costs_five_calls_into_the_guest() {
    let mut proxy = Proxy::configured(EXAMPLE);
    proxy.send_map(a_request());
    // Context create, request headers, the allocation for the header map,
    // response headers, delete: no done, log, body or trailer callbacks.
    assert_eq!(one_request(&mut proxy, a_request()).0, 5);
    let exports = proxy.instructions_by_export();
    for absent in ["proxy_on_done", "proxy_on_log", "proxy_on_response_body", "proxy_on_request_trailers"] {
        assert!(!exports.contains_key(absent), "{absent} is exported");
    }
}

#[test]
fn the_response_status_is_read_only_when_a_feature_needs_it() {
    let counting = EXAMPLE.replacen('{', r#"{"countResponses": true,"#, 1);
    let mut proxy = Proxy::configured(&counting);
    proxy.send_map(a_request());
    // One more allocation: the host hands over `:status`.
    assert_eq!(one_request(&mut proxy, a_request()).0, 6);
}

#[test]
fn counters_are_batched_and_reach_the_host_within_a_second() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let name = "route=.=service-a;.;target=.=service-a;.;canary_router_requests_total";
    for _ in 0..10 {
        proxy.send_map(a_request());
    }
    // Not even defined: a counter is defined at the tick of its first count.
    assert_eq!(proxy.metric(name), None, "a request paid for a host call to count");
    proxy.flush_metrics();
    assert_eq!(proxy.metric(name), Some(10));
}

/// The request for the last of `routes` routes, each with five rules.
fn routes(n: usize) -> String {
    let routes: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name": "r{i}", "hosts": ["r{i}.example.com"], "default": "d", "rules": [
                    {{"match": [{{"header": "x-beta", "exact": "on"}}], "target": "c"}},
                    {{"match": [{{"cookie": "canary", "exact": "always"}}], "target": "c"}},
                    {{"match": [{{"query": "version", "oneOf": ["v2", "v3"]}}], "target": "c"}},
                    {{"match": [{{"header": "x-user-group", "prefix": "internal-"}}], "target": "c"}},
                    {{"split": {{"weights": [{{"target": "c", "weight": 10}}, {{"target": "d", "weight": 90}}], "stickyBy": {{"cookie": "uid"}}}}}}]}}"#
            )
        })
        .collect();
    format!(r#"{{"routes": [{}]}}"#, routes.join(","))
}

#[test]
fn the_cost_of_a_request_does_not_grow_with_the_number_of_routes() {
    let cost = |n: usize| {
        let mut proxy = Proxy::configured(&routes(n));
        let request = HeaderMap::from_pairs([
            (":authority", format!("r{}.example.com", n - 1).as_str()),
            (":path", "/?page=2"),
            ("cookie", "session=1; uid=u-1"),
        ]);
        proxy.send_map(request.clone());
        one_request(&mut proxy, request).1
    };
    let (ten, thousand) = (cost(10), cost(1_000));
    // Routes are looked up by host, so no step of a request grows with the
    // routes (a scan of 1,000 routes of five rules would cost some 100,000
    // instructions more). What differs is the allocator: with a bigger
    // config in the heap, dlmalloc's search for a request's buffers takes a
    // few hundred instructions more or less depending on the heap's layout
    // (168 to 372 more, as unrelated changes moved it). The bound is the
    // issue's: 1,000 routes within 5% of 10.
    assert!(thousand <= ten + ten / 20, "10 routes: {ten} instructions, 1,000: {thousand}");
}

#[test]
fn regexes_that_are_literals_skip_the_regex_engine() {
    let config = |pattern: &str| {
        format!(
            r#"{{"routes": [{{"name": "r", "default": "d", "rules": [{{"match": [{{"header": "user-agent", "regex": "{pattern}"}}], "target": "bots"}}]}}]}}"#
        )
    };
    let ua =
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0");
    let cost = |pattern: &str| {
        let mut proxy = Proxy::configured(&config(pattern));
        let request = HeaderMap::from_pairs([(":path", "/"), ua]);
        proxy.send_map(request.clone());
        one_request(&mut proxy, request).1
    };
    // The same matches (the literal test is checked against regex-lite in
    // src/literal_regex.rs), a fraction of the instructions.
    let (literal, engine) = (cost("(?i)bot|crawler"), cost("(?i)bo[t]|crawler"));
    assert!(literal * 3 < engine, "literals: {literal} instructions, the engine: {engine}");
    let mut proxy = Proxy::configured(&config("(?i)bot|crawler"));
    let bot = proxy.send(&[(":path", "/"), ("user-agent", "Googlebot/2.1")]);
    assert_eq!(bot.target().as_deref(), Some("bots"));
}
