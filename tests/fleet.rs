//! Fleet-wide rollback through the built `.wasm`: Prometheus polls, the
//! rollback latch, the wait of a proxy that just started, and the gauges
//! that show a split's state. Prometheus's answers are handed to the
//! filter as Envoy would deliver them; the real Prometheus is in the e2e
//! tier (tests/e2e/fleet.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::Duration;

use harness::{HeaderMap, HttpCall, LogLevel, Proxy};

const CONFIG: &str = r#"{"routes": [{"name": "cart", "default": "cart", "rules": [{"split": {
    "weights": [{"target": "cart-next", "weight": 50}, {"target": "cart", "weight": 50}],
    "rollback": {"target": "cart-next", "prometheus": {"cluster": "prometheus", "every": "5s", "timeoutMs": 1000,
        "threshold": 2, "lookback": "1h", "checks": [
            {"name": "error-rate", "query": "sum(rate(x{target=\"{{target}}\",route=\"{{route}}\"}[1m]))", "max": 0.05}]}}}}]}]}"#;

fn split_label() -> String {
    let router = canary_router_core::config::parse(CONFIG.as_bytes()).unwrap();
    let (_, _, split) = router.splits().next().unwrap();
    split.identity_hex()
}

fn gauge(proxy: &Proxy, name: &str, extra: &str) -> Option<u64> {
    proxy.metric(&format!("route=.=cart;.;rule=.=rules[0];.;split=.={};.;{extra}{name}", split_label()))
}

fn canary_share(proxy: &mut Proxy, n: usize) -> usize {
    (0..n).filter(|_| proxy.send(&[(":path", "/")]).target().as_deref() == Some("cart-next")).count()
}

/// A Prometheus instant-query answer with one series of this value.
fn vector(value: &str) -> Vec<u8> {
    format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1767225600,"{value}"]}}]}}}}"#)
        .into_bytes()
}

const EMPTY: &[u8] = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

/// The query a call asks, decoded from its `:path`.
fn query_of(call: &HttpCall) -> String {
    let path = call.headers.get(":path").unwrap();
    let encoded = path.strip_prefix("/api/v1/query?query=").expect("an instant query");
    String::from_utf8(canary_router_core::text::query::decode(encoded.as_bytes()).into_owned()).unwrap()
}

/// Answers every pending poll call: the check with `check`, the latch with
/// `latch` (`None`: the call fails, as with Prometheus down).
fn answer_poll(proxy: &mut Proxy, check: Option<&[u8]>, latch: Option<&[u8]>) -> usize {
    let calls: Vec<HttpCall> = proxy.http_calls().to_vec();
    for call in &calls {
        // The view asks for this proxy's beacon: found while Prometheus is up.
        let query = query_of(call);
        let answer = if query.contains("canary_router_rolled_back") {
            latch
        } else if query.contains("canary_router_proxy_beacon") {
            latch.map(|_| FOUND.as_slice())
        } else {
            check
        };
        match answer {
            Some(body) => proxy.answer_http_call_with_body(call.token, Some(200), body),
            None => proxy.answer_http_call(call.token, None),
        }
    }
    calls.len()
}

/// A view's answer that found the beacon.
static FOUND: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| vector("1"));

fn started() -> Proxy {
    let mut proxy = Proxy::start_with(LogLevel::Info, 7);
    proxy.set_clusters(&["prometheus"]);
    assert!(proxy.configure(CONFIG));
    proxy
}

#[test]
fn a_started_proxy_sends_the_canary_nothing_until_the_fleet_latch_answers() {
    let mut proxy = started();
    assert_eq!(canary_share(&mut proxy, 500), 0, "the canary got traffic before the latch answered");
    assert_eq!(gauge(&proxy, "canary_router_waiting_for_fleet", ""), Some(1));
    assert_eq!(gauge(&proxy, "canary_router_live_weight_ppm", "target=.=cart-next;.;"), Some(0));
    // The first tick polls: one query per check, one for the latch and one
    // for the view.
    proxy.tick();
    let calls = proxy.http_calls().to_vec();
    assert_eq!(calls.len(), 3);
    let split = split_label();
    let queries: Vec<String> = calls.iter().map(query_of).collect();
    assert!(
        queries.contains(&r#"sum(rate(x{target="cart-next",route="cart"}[1m]))"#.to_string()),
        "{queries:?}"
    );
    assert!(
        queries
            .contains(&format!(r#"max(max_over_time(canary_router_rolled_back{{split="{split}"}}[3600s]))"#)),
        "{queries:?}"
    );
    let view = format!(r#"count(canary_router_proxy_beacon{{split="{split}"}} == "#);
    let beacon = gauge(&proxy, "canary_router_proxy_beacon", "").expect("the beacon is exported");
    assert!(queries.contains(&format!("{view}{beacon})")), "{queries:?}");
    for call in &calls {
        assert_eq!(call.upstream, "prometheus");
        assert_eq!(call.headers.get(":method").as_deref(), Some("GET"));
        assert_eq!(call.headers.get(":authority").as_deref(), Some("prometheus"));
        assert_eq!(call.timeout_ms, 1000);
    }
    // Requests in the meantime neither wait nor reach the canary.
    assert_eq!(canary_share(&mut proxy, 200), 0);
    // No proxy ever reported this split: the latch is empty, the wait ends.
    answer_poll(&mut proxy, Some(&vector("0.01")), Some(EMPTY));
    let share = canary_share(&mut proxy, 2_000);
    assert!((900..1_100).contains(&share), "{share} of 2000 after the latch cleared");
    proxy.tick();
    assert_eq!(gauge(&proxy, "canary_router_waiting_for_fleet", ""), Some(0));
    assert_eq!(gauge(&proxy, "canary_router_live_weight_ppm", "target=.=cart-next;.;"), Some(500_000));
    assert_eq!(gauge(&proxy, "canary_router_check_value_millionths", "check=.=error-rate;.;"), Some(10_000));
}

#[test]
fn the_fleet_latch_rolls_a_proxy_back_that_saw_no_errors_itself() {
    let mut proxy = started();
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0.01")), Some(&vector("0")));
    assert!(canary_share(&mut proxy, 200) > 50);
    // Another proxy rolled the split back: the next poll's latch says 1.
    proxy.advance(Duration::from_secs(6));
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0.01")), Some(&vector("1")));
    assert_eq!(canary_share(&mut proxy, 500), 0);
    let warnings = proxy.logs_at(LogLevel::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("reason=fleet: a proxy of the fleet rolled this split back within 3600s"),
        "{}",
        warnings[0]
    );
    assert_eq!(gauge(&proxy, "canary_router_rolled_back", "target=.=cart-next;.;"), Some(1));
    assert_eq!(gauge(&proxy, "canary_router_rollback_reason", "reason=.=fleet;.;"), Some(1));
    let since = gauge(&proxy, "canary_router_rolled_back_since_seconds", "").unwrap();
    assert!(since >= 1_767_225_600, "{since}");
    proxy.tick();
    assert_eq!(gauge(&proxy, "canary_router_live_weight_ppm", "target=.=cart-next;.;"), Some(0));
    assert_eq!(gauge(&proxy, "canary_router_live_weight_ppm", "target=.=cart;.;"), Some(1_000_000));
    assert_eq!(gauge(&proxy, "canary_router_configured_weight_ppm", "target=.=cart-next;.;"), Some(500_000));
}

#[test]
fn threshold_failing_polls_in_a_row_roll_back_and_say_which_check() {
    let mut proxy = started();
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0.2")), Some(&vector("0")));
    assert!(canary_share(&mut proxy, 200) > 50, "one failing poll of a threshold of 2 rolled back");
    assert_eq!(gauge(&proxy, "canary_router_check_failures", ""), Some(1));
    proxy.advance(Duration::from_secs(6));
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0.3")), Some(&vector("0")));
    assert_eq!(canary_share(&mut proxy, 500), 0);
    let warnings = proxy.logs_at(LogLevel::Warn);
    assert!(
        warnings[0].contains("reason=check:error-rate: error-rate: 0.3 > 0.05, 2 polls in a row"),
        "{warnings:?}"
    );
    assert_eq!(gauge(&proxy, "canary_router_rollback_reason", "reason=.=check:error-rate;.;"), Some(1));
    assert_eq!(gauge(&proxy, "canary_router_check_value_millionths", "check=.=error-rate;.;"), Some(300_000));
    let queries = |query: &str, result: &str| {
        gauge(
            &proxy,
            "canary_router_prometheus_queries_total",
            &format!("query=.={query};.;result=.={result};.;"),
        )
    };
    assert_eq!(queries("error-rate", "fail"), Some(2));
    assert_eq!(queries("latch", "pass"), Some(2));
}

#[test]
fn prometheus_down_costs_nothing_but_counted_errors() {
    let mut proxy = started();
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0.01")), Some(&vector("0")));
    for round in 0..5 {
        proxy.advance(Duration::from_secs(6));
        proxy.tick();
        // Failed calls, a 503 from a proxy in between, a body that is no answer.
        let calls = proxy.http_calls().to_vec();
        assert_eq!(calls.len(), 3, "round {round}");
        match round % 3 {
            0 => {
                answer_poll(&mut proxy, None, None);
            }
            1 => {
                for call in &calls {
                    proxy.answer_http_call_with_body(call.token, Some(503), b"no healthy upstream");
                }
            }
            _ => {
                answer_poll(&mut proxy, Some(b"<html>"), Some(b"{}"));
            }
        }
        let share = canary_share(&mut proxy, 1_000);
        assert!((400..600).contains(&share), "round {round}: {share} of 1000");
    }
    assert!(proxy.logs_at(LogLevel::Warn).is_empty(), "{:?}", proxy.logs_at(LogLevel::Warn));
    let errors = gauge(&proxy, "canary_router_prometheus_queries_total", "query=.=latch;.;result=.=error;.;");
    assert_eq!(errors, Some(5));
    // A poll the proxy refuses outright (no such cluster) is counted too.
    proxy.set_clusters(&[]);
    proxy.advance(Duration::from_secs(6));
    proxy.tick();
    assert!(proxy.http_calls().is_empty());
    let errors = gauge(&proxy, "canary_router_prometheus_queries_total", "query=.=latch;.;result=.=error;.;");
    assert_eq!(errors, Some(6));
}

#[test]
fn a_restarted_proxy_waits_while_prometheus_is_down_then_follows_the_fleet() {
    let mut proxy = started();
    proxy.tick();
    answer_poll(&mut proxy, None, None);
    assert_eq!(canary_share(&mut proxy, 300), 0, "no latch answer yet: the canary gets nothing");
    proxy.advance(Duration::from_secs(6));
    proxy.tick();
    answer_poll(&mut proxy, Some(EMPTY), Some(&vector("1")));
    assert_eq!(canary_share(&mut proxy, 300), 0);
    assert_eq!(gauge(&proxy, "canary_router_rolled_back", "target=.=cart-next;.;"), Some(1));
    assert_eq!(gauge(&proxy, "canary_router_waiting_for_fleet", ""), Some(0));
}

#[test]
fn one_poll_per_proxy_per_period_whatever_the_number_of_workers() {
    let mut workers = vec![started()];
    for seed in 1..4 {
        let mut worker = Proxy::start_sharing_with(&workers[0], seed);
        worker.set_clusters(&["prometheus"]);
        assert!(worker.configure(CONFIG));
        workers.push(worker);
    }
    let mut polls = 0;
    let mut poll_times = Vec::new();
    // 60 s of one-second ticks on every worker, in turn.
    for second in 0..60 {
        for worker in &mut workers {
            worker.set_time_ms(1_767_225_600_000 + second * 1_000);
            worker.tick();
            let calls = answer_poll(worker, Some(&vector("0.01")), Some(&vector("0")));
            if calls > 0 {
                polls += 1;
                poll_times.push(second);
            }
        }
    }
    // every 5 s (± 10%) over 60 s: 11 to 13 polls, not 4 workers' worth.
    assert!((11..=13).contains(&polls), "{polls} polls at {poll_times:?}");
    for worker in &mut workers {
        assert!(canary_share(worker, 200) > 50);
    }
}

#[test]
fn a_local_window_and_prometheus_together_either_rolls_back() {
    let config = CONFIG.replace(
        r#""rollback": {"target": "cart-next", "#,
        r#""rollback": {"target": "cart-next", "maxErrorRate": 0.1, "minRequests": 20, "window": "60s", "#,
    );
    let mut proxy = Proxy::start_with(LogLevel::Info, 9);
    proxy.set_clusters(&["prometheus"]);
    assert!(proxy.configure(&config));
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0")), Some(&vector("0")));
    let mut errors = 0;
    while errors < 20 {
        let request = HeaderMap::from_pairs([(":path", "/")]);
        let exchange = proxy.exchange(request, HeaderMap::from_pairs([(":status", "503")]));
        errors += usize::from(exchange.target().as_deref() == Some("cart-next"));
    }
    assert_eq!(canary_share(&mut proxy, 300), 0);
    assert!(proxy.logs_at(LogLevel::Warn)[0].contains("reason=window: 20 errors in 20 responses"));
}

#[test]
fn a_replaced_split_reads_as_gone_and_its_successor_starts_fresh() {
    let mut proxy = started();
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0.01")), Some(&vector("1")));
    assert_eq!(gauge(&proxy, "canary_router_rolled_back", "target=.=cart-next;.;"), Some(1));
    // A new canary version: a new split identity, so the old one's gauges
    // read 0 and the new one waits for its own latch.
    let next = CONFIG.replace("cart-next", "cart-next2");
    assert!(proxy.configure(&next));
    assert_eq!(gauge(&proxy, "canary_router_rolled_back", "target=.=cart-next;.;"), Some(0));
    assert_eq!(gauge(&proxy, "canary_router_live_weight_ppm", "target=.=cart-next;.;"), Some(0));
    proxy.tick();
    answer_poll(&mut proxy, Some(&vector("0.01")), Some(EMPTY));
    let new_share = (0..1_000)
        .filter(|_| proxy.send(&[(":path", "/")]).target().as_deref() == Some("cart-next2"))
        .count();
    assert!(new_share > 400, "{new_share}");
}

/// Thanos, Mimir and secured gateways: the API under a path prefix, a
/// tenant header and a token on every query; the token in no log line,
/// even at debug level, and no error quotes it.
#[test]
fn queries_go_under_the_path_prefix_with_the_headers_and_no_value_is_logged() {
    const SECRET: &str = "Bearer s3cr3t-t0ken";
    let config = CONFIG.replace(
        r#""cluster": "prometheus","#,
        &format!(
            r#""cluster": "prometheus", "pathPrefix": "/prometheus/", "headers": [
                {{"name": "X-Scope-OrgID", "value": "tenant-1"}}, {{"name": "authorization", "value": "{SECRET}"}}],"#
        ),
    );
    let mut proxy = Proxy::start_with(LogLevel::Trace, 7);
    proxy.set_clusters(&["prometheus"]);
    assert!(proxy.configure(&config));
    proxy.tick();
    let calls = proxy.http_calls().to_vec();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        let path = call.headers.get(":path").unwrap();
        assert!(path.starts_with("/prometheus/api/v1/query?query="), "{path}");
        assert_eq!(call.headers.get("x-scope-orgid").as_deref(), Some("tenant-1"), "sent in lower case");
        assert_eq!(call.headers.get("authorization").as_deref(), Some(SECRET));
    }
    // Failed answers are logged: they must not carry the token either.
    for call in &calls {
        proxy.answer_http_call_with_body(
            call.token,
            Some(401),
            br#"{"status":"error","error":"unauthorized"}"#,
        );
    }
    proxy.advance(Duration::from_secs(5));
    proxy.tick();
    assert!(!proxy.log_text().contains("s3cr3t"), "a log line carries the token:\n{}", proxy.log_text());
    assert!(proxy.log_text().contains("unauthorized"), "the failure itself is logged");

    let bad = config.replace(SECRET, "a\\r\\nx-injected: 1");
    let mut proxy = Proxy::start_with(LogLevel::Info, 7);
    assert!(!proxy.configure(&bad));
    let error = proxy.log_text();
    assert!(error.contains("prometheus.headers[1].value: must not contain a line break or NUL"), "{error}");
    assert!(!error.contains("x-injected"), "the refused value is not repeated: {error}");
}
