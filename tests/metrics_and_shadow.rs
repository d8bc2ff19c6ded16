//! Counters and traffic shadowing, through the built `.wasm` in the harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::{HeaderMap, Proxy, CONTINUE};

const EXAMPLE: &str = include_str!("../examples/config.json");

fn tagged(name: &str, tags: &[(&str, &str)]) -> String {
    let mut out: String = tags.iter().map(|(k, v)| format!("{k}=.={v};.;")).collect();
    out.push_str(name);
    out
}

/// A counter's value once the filter flushed what it batched: 0 while it
/// is not defined (a counter is defined at the tick of its first count).
fn count(proxy: &mut Proxy, name: &str, tags: &[(&str, &str)]) -> u64 {
    proxy.flush_metrics();
    proxy.metric(&tagged(name, tags)).unwrap_or(0)
}

fn respond(proxy: &mut Proxy, headers: &[(&str, &str)], status: &str) {
    let request = HeaderMap::from_pairs(headers.iter().copied());
    proxy.exchange(request, HeaderMap::from_pairs([(":status", status)]));
}

#[test]
fn requests_are_counted_per_route_target_and_rule() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let a = [(":authority", "a.example.com"), (":path", "/")];
    for _ in 0..3 {
        respond(&mut proxy, &[a[0], a[1], ("foo", "bar")], "200");
    }
    respond(&mut proxy, &[a[0], a[1], ("cookie", "foo=bar")], "200");
    for _ in 0..2 {
        respond(&mut proxy, &a, "200");
    }
    respond(&mut proxy, &[(":authority", "nowhere.test"), (":path", "/")], "404");

    let route = ("route", "service-a");
    assert_eq!(
        count(&mut proxy, "canary_router_requests_total", &[route, ("target", "service-a-canary")]),
        4
    );
    assert_eq!(count(&mut proxy, "canary_router_requests_total", &[route, ("target", "service-a")]), 2);
    assert_eq!(count(&mut proxy, "canary_router_rule_hits_total", &[route, ("rule", "beta")]), 3);
    assert_eq!(count(&mut proxy, "canary_router_rule_hits_total", &[route, ("rule", "rules[1]")]), 1);
    assert_eq!(count(&mut proxy, "canary_router_rule_hits_total", &[route, ("rule", "rules[2]")]), 0);
    assert_eq!(count(&mut proxy, "canary_router_default_total", &[route]), 2);
    assert_eq!(count(&mut proxy, "canary_router_unrouted_total", &[]), 1);
    assert_eq!(count(&mut proxy, "canary_router_config_accepted_total", &[]), 1);
}

#[test]
fn responses_are_counted_by_status_class_when_asked() {
    let counting = EXAMPLE.replacen('{', r#"{"countResponses": true,"#, 1);
    let mut proxy = Proxy::configured(&counting);
    let canary = [(":authority", "a.example.com"), (":path", "/"), ("foo", "bar")];
    for status in ["200", "204", "503", "503", "404", "302"] {
        respond(&mut proxy, &canary, status);
    }
    let tags = |class| [("route", "service-a"), ("target", "service-a-canary"), ("status_class", class)];
    assert_eq!(count(&mut proxy, "canary_router_responses_total", &tags("2xx")), 2);
    assert_eq!(count(&mut proxy, "canary_router_responses_total", &tags("5xx")), 2);
    assert_eq!(count(&mut proxy, "canary_router_responses_total", &tags("4xx")), 1);
    assert_eq!(count(&mut proxy, "canary_router_responses_total", &tags("3xx")), 1);
    let stable = [("route", "service-a"), ("target", "service-a"), ("status_class", "5xx")];
    assert_eq!(count(&mut proxy, "canary_router_responses_total", &stable), 0);
}

#[test]
fn rejected_configs_are_counted() {
    let mut proxy = Proxy::configured(EXAMPLE);
    assert!(!proxy.configure("{}"));
    assert!(!proxy.configure("[]"));
    assert_eq!(count(&mut proxy, "canary_router_config_rejected_total", &[]), 2);
    assert_eq!(count(&mut proxy, "canary_router_config_accepted_total", &[]), 1);
}

#[test]
fn config_pushes_reuse_metric_definitions_and_keep_memory_flat() {
    let mut proxy = Proxy::configured(EXAMPLE);
    let other = EXAMPLE.replace("\"beta\"", "\"beta-2\"");
    assert!(proxy.configure(&other));
    assert!(!proxy.configure("{\"routes\": []}"));
    let definitions = proxy.metric_definitions();
    // The allocator settles within a few pushes (a page, once); growth is
    // measured from there.
    for i in 0..10 {
        assert!(proxy.configure(if i % 2 == 0 { EXAMPLE } else { &other }));
    }
    let memory = proxy.memory_size();
    for i in 0..1_000 {
        assert!(proxy.configure(if i % 2 == 0 { EXAMPLE } else { &other }));
        assert!(!proxy.configure("{\"routes\": []}"));
    }
    assert_eq!(proxy.metric_definitions(), definitions, "a known metric name was defined again");
    assert_eq!(proxy.memory_size(), memory, "guest memory grew over 2,000 pushes");
    assert_eq!(count(&mut proxy, "canary_router_config_rejected_total", &[]), 1_001);
    assert_eq!(count(&mut proxy, "canary_router_config_accepted_total", &[]), 1_012);
}

#[test]
fn regex_tests_beyond_the_request_budget_do_not_match_and_are_counted() {
    let config = r#"{"routes": [{"name": "r", "default": "stable", "rules": [
        {"name": "bomb", "match": [{"cookie": "session", "regex": "[a-z0-9]{8,64}-[0-9]{1,16}x"}], "target": "canary"}]}]}"#;
    let mut proxy = Proxy::configured(config);
    let small = proxy.send(&[(":path", "/"), ("cookie", "session=abcdefgh-42x")]);
    assert_eq!(small.target().as_deref(), Some("canary"));
    // A 90 KB cookie value: 84 states × 90,000 bytes is far over the budget.
    let bomb = format!("session={}-1x", "a".repeat(90_000));
    let big = proxy.send(&[(":path", "/"), ("cookie", &bomb)]);
    assert_eq!(big.target().as_deref(), Some("stable"), "the value over the budget matched");
    // 300 cookies of 700 bytes under one name: the budget pays for the
    // first one only, whatever else the header holds. Each request whose
    // budget ran out is counted once.
    let many: Vec<String> = (0..300).map(|_| format!("session={}", "b".repeat(700))).collect();
    let spread = proxy.send(&[(":path", "/"), ("cookie", &many.join("; "))]);
    assert_eq!(spread.target().as_deref(), Some("stable"));
    assert_eq!(count(&mut proxy, "canary_router_regex_skipped_total", &[("route", "r")]), 2);
}

fn mirrored(percent: f64, extra: &str) -> String {
    format!(
        r#"{{"routes": [{{"name": "api", "hosts": ["api.test"], "default": "api-v1",
            "rules": [{{"match": [{{"header": "x-beta", "present": true}}], "target": "api-v2"}}],
            "mirror": {{"cluster": "api-v2-shadow", "percent": {percent}{extra}}}}}]}}"#
    )
}

fn post(proxy: &mut Proxy, body: &[&[u8]]) -> harness::Exchange {
    let request = HeaderMap::from_pairs([
        (":authority", "api.test:8080"),
        (":method", "POST"),
        (":path", "/orders?id=7"),
        ("content-type", "application/json"),
        ("transfer-encoding", "chunked"),
        ("x-route-target", "spoofed"),
    ]);
    proxy.exchange_with_body(request, body, HeaderMap::from_pairs([(":status", "201")]))
}

#[test]
fn a_shadow_copy_carries_the_headers_and_body_and_its_answer_is_ignored() {
    let mut proxy = Proxy::configured(&mirrored(100.0, r#", "timeoutMs": 250"#));
    let exchange = post(&mut proxy, &[b"{\"item\":", b" 42}"]);
    // The live request is untouched by the shadow and never paused.
    assert_eq!(
        (exchange.request_action, exchange.response.get(":status").as_deref()),
        (CONTINUE, Some("201"))
    );
    assert_eq!(exchange.upstream.get(":authority").as_deref(), Some("api.test:8080"));
    assert_eq!(exchange.target().as_deref(), Some("api-v1"));

    assert!(proxy.http_calls().is_empty(), "the copy is sent by the root on its tick, not from the stream");
    proxy.tick();
    let calls = proxy.http_calls().to_vec();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.upstream, "api-v2-shadow");
    assert_eq!(call.context_id, harness::ROOT_CONTEXT_ID);
    assert_eq!(call.timeout_ms, 250);
    assert_eq!(call.body, b"{\"item\": 42}");
    let h = &call.headers;
    assert_eq!(h.get(":authority").as_deref(), Some("api.test-shadow:8080"));
    assert_eq!(
        (h.get(":method").as_deref(), h.get(":path").as_deref()),
        (Some("POST"), Some("/orders?id=7"))
    );
    assert_eq!(h.get("content-type").as_deref(), Some("application/json"));
    assert_eq!(h.get("content-length").as_deref(), Some("12"));
    assert_eq!(h.get("transfer-encoding"), None);
    assert_eq!(
        h.get_all("x-route-target"),
        vec!["api-v1"],
        "the copy carries the decision, not the client's header"
    );

    proxy.answer_http_call(call.token, Some(200));
    let tags = [("route", "api"), ("cluster", "api-v2-shadow")];
    assert_eq!(count(&mut proxy, "canary_router_shadow_requests_total", &tags), 1);
    assert_eq!(count(&mut proxy, "canary_router_shadow_failures_total", &tags), 0);
}

/// Answers every call waiting, as a healthy shadow would.
fn answer_all(proxy: &mut Proxy, status: Option<u16>) -> usize {
    let tokens: Vec<u32> = proxy.http_calls().iter().map(|c| c.token).collect();
    for token in &tokens {
        proxy.answer_http_call(*token, status);
    }
    tokens.len()
}

fn skipped(proxy: &mut Proxy, reason: &str) -> u64 {
    count(
        proxy,
        "canary_router_shadow_skipped_total",
        &[("route", "api"), ("cluster", "api-v2-shadow"), ("reason", reason)],
    )
}

#[test]
fn the_mirror_percent_holds_over_many_requests() {
    let mut proxy = Proxy::configured(&mirrored(10.0, ""));
    let n = 5_000;
    let mut sent = 0;
    for i in 0..n {
        proxy.send(&[(":authority", "api.test"), (":method", "GET"), (":path", "/")]);
        if i % 100 == 0 {
            proxy.tick();
            sent += answer_all(&mut proxy, Some(200));
        }
    }
    proxy.tick();
    sent += answer_all(&mut proxy, Some(200));
    assert!((sent as f64 / n as f64 * 100.0 - 10.0).abs() < 1.5, "{sent} copies of {n}");
    let tags = [("route", "api"), ("cluster", "api-v2-shadow")];
    assert_eq!(count(&mut proxy, "canary_router_shadow_requests_total", &tags), sent as u64);
    assert_eq!(skipped(&mut proxy, "too_many_in_flight"), 0);
}

#[test]
fn failed_shadows_are_counted_and_never_touch_the_live_request() {
    let mut proxy = Proxy::configured(&mirrored(100.0, ""));
    let tags = [("route", "api"), ("cluster", "api-v2-shadow")];
    // The shadow answers 503, then not at all (reset or timeout).
    for _ in 0..2 {
        post(&mut proxy, &[b"x"]);
    }
    proxy.tick();
    let tokens: Vec<u32> = proxy.http_calls().iter().map(|c| c.token).collect();
    proxy.answer_http_call(tokens[0], Some(503));
    proxy.answer_http_call(tokens[1], None);
    assert_eq!(count(&mut proxy, "canary_router_shadow_failures_total", &tags), 2);

    // The cluster does not exist: the proxy refuses the call. The copy was
    // never sent, so it is a skip, not a failure.
    proxy.set_clusters(&["something-else"]);
    let exchange = post(&mut proxy, &[b"x"]);
    assert_eq!(exchange.response.get(":status").as_deref(), Some("201"));
    proxy.tick();
    assert!(proxy.http_calls().is_empty());
    assert_eq!(count(&mut proxy, "canary_router_shadow_failures_total", &tags), 2);
    assert_eq!(count(&mut proxy, "canary_router_shadow_requests_total", &tags), 2);
    assert_eq!(skipped(&mut proxy, "not_sent"), 1);
}

#[test]
fn bodies_over_the_limit_are_not_copied_but_counted() {
    let mut proxy = Proxy::configured(&mirrored(100.0, r#", "maxBodyBytes": 10"#));
    let exchange = post(&mut proxy, &[b"0123456", b"789ab"]);
    assert_eq!(exchange.request_action, CONTINUE);
    proxy.tick();
    assert!(proxy.http_calls().is_empty());
    assert_eq!(skipped(&mut proxy, "body_too_large"), 1);
    post(&mut proxy, &[b"0123456789"]);
    proxy.tick();
    assert_eq!(proxy.http_calls().len(), 1, "exactly the limit is copied");
}

#[test]
fn a_shadow_that_cannot_keep_up_is_shed_at_max_in_flight() {
    let mut proxy = Proxy::configured(&mirrored(100.0, ""));
    for _ in 0..300 {
        proxy.send(&[(":authority", "api.test"), (":method", "GET"), (":path", "/")]);
    }
    proxy.tick();
    // The shadow answers nothing: 128 copies (the default maxInFlight) are
    // out, the rest were skipped rather than queued.
    assert_eq!(proxy.http_calls().len(), 128);
    assert_eq!(skipped(&mut proxy, "too_many_in_flight"), 172);
    for _ in 0..10 {
        proxy.send(&[(":authority", "api.test"), (":method", "GET"), (":path", "/")]);
    }
    assert_eq!(skipped(&mut proxy, "too_many_in_flight"), 182);
    // Answers (or timeouts) free their places.
    answer_all(&mut proxy, None);
    proxy.send(&[(":authority", "api.test"), (":method", "GET"), (":path", "/")]);
    proxy.tick();
    assert_eq!(proxy.http_calls().len(), 1);
}

fn upload_headers() -> HeaderMap {
    HeaderMap::from_pairs([
        (":authority", "api.test"),
        (":method", "POST"),
        (":path", "/upload"),
        ("content-length", "60000000"),
    ])
}

#[test]
fn stalled_uploads_hold_no_more_than_the_budget_and_give_it_back_on_reset() {
    let budget = r#"{"mirrorBudget": {"maxBytes": 1048576, "maxInFlight": 8}, "routes": [{"name": "api", "hosts": ["api.test"], "default": "api-v1",
        "mirror": {"cluster": "api-v2-shadow", "percent": 100, "maxBodyBytes": 1048576}}]}"#;
    let mut proxy = Proxy::configured(budget);
    let chunk = vec![b'u'; 64 * 1024];
    let warm = proxy.start_upload(upload_headers(), &[&chunk]);
    proxy.reset(warm);
    let memory_before = proxy.memory_size();

    // 100 uploads of up to 15 chunks of 64 KiB that never finish: without
    // a budget they would buffer 96 MiB; the budget holds 1 MiB in all.
    let chunks: Vec<&[u8]> = vec![&chunk; 15];
    let streams: Vec<u32> = (0..100).map(|_| proxy.start_upload(upload_headers(), &chunks)).collect();
    let grown = proxy.memory_size() - memory_before;
    assert!(grown <= 2 * 1024 * 1024, "guest memory grew by {grown} bytes for stalled uploads");
    assert!(skipped(&mut proxy, "over_budget") >= 99, "{}", skipped(&mut proxy, "over_budget"));

    // Reset streams give their share back: a new upload fits again.
    for id in streams {
        proxy.reset(id);
    }
    assert!(skipped(&mut proxy, "incomplete") >= 1);
    let exchange = proxy.exchange_with_body(
        upload_headers(),
        &[&chunk, &chunk],
        HeaderMap::from_pairs([(":status", "200")]),
    );
    assert_eq!(exchange.request_action, CONTINUE);
    proxy.tick();
    assert_eq!(proxy.http_calls().len(), 1);
    assert_eq!(proxy.http_calls()[0].body.len(), 128 * 1024);
}

#[test]
fn copies_in_flight_hold_the_budget_until_answered() {
    let budget = r#"{"mirrorBudget": {"maxBytes": 300000, "maxInFlight": 100}, "routes": [{"name": "api", "hosts": ["api.test"], "default": "api-v1",
        "mirror": {"cluster": "api-v2-shadow", "percent": 100, "maxBodyBytes": 1048576}}]}"#;
    let mut proxy = Proxy::configured(budget);
    let chunk = vec![b'b'; 100_000];
    let ok = HeaderMap::from_pairs([(":status", "200")]);
    for _ in 0..3 {
        proxy.exchange_with_body(upload_headers(), &[&chunk], ok.clone());
    }
    proxy.tick();
    assert_eq!(proxy.http_calls().len(), 2, "the third copy's body did not fit next to two in flight");
    assert_eq!(skipped(&mut proxy, "over_budget"), 1);
    answer_all(&mut proxy, Some(200));
    proxy.exchange_with_body(upload_headers(), &[&chunk], ok);
    proxy.tick();
    assert_eq!(proxy.http_calls().len(), 1, "answered copies gave their bytes back");
}
