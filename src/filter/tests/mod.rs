//! The glue, tested natively on `FakeProxy`: what the harness can only
//! see from outside (the shadow budget, the rollback's compare-and-swap,
//! the fleet's poll rounds, counter batching, the routing header's
//! guarantees) asserted directly. The harness proves the ABI.

mod compare;
mod evidence;
mod worker;

use std::rc::Rc;

use super::fake_proxy::SharedStore;
use super::{configure, request_headers, tick, Headers, Root};
use canary_router_core::rollout::metrics::{self, tagged};
use worker::{vector, Worker, EMPTY};

fn requests_metric(route: &str, target: &str) -> String {
    tagged(metrics::REQUESTS, &[("route", route), ("target", target)])
}

const ONE_ROUTE: &str = r#"{"routes": [{"name": "a", "hosts": ["a.example.com"], "default": "stable",
    "rules": [{"match": [{"header": "foo", "exact": "bar"}], "target": "canary"}]}]}"#;

#[test]
fn counters_are_batched_until_the_tick_and_a_replaced_config_flushes_its_own() {
    let worker = Worker::configured(ONE_ROUTE);
    for _ in 0..3 {
        assert_eq!(worker.get("a.example.com").as_deref(), Some("stable"));
    }
    assert_eq!(worker.proxy.value(&requests_metric("a", "stable")), 0, "no host call per request");
    worker.tick_after(1_000);
    assert_eq!(worker.proxy.value(&requests_metric("a", "stable")), 3);

    worker.get("a.example.com");
    assert!(worker.configure(&ONE_ROUTE.replace("stable", "stable-2")));
    assert_eq!(worker.proxy.value(&requests_metric("a", "stable")), 4, "the replaced config's count is kept");
    let defined = worker.proxy.definitions.borrow().len();
    assert!(worker.configure(&ONE_ROUTE.replace("stable", "stable-2")));
    assert_eq!(worker.proxy.definitions.borrow().len(), defined, "a name is defined once per VM");
}

#[test]
fn a_counter_is_defined_at_its_first_count_and_a_response_counter_at_once() {
    let worker =
        Worker::configured(&ONE_ROUTE.replace(r#"{"routes""#, r#"{"countResponses": true, "routes""#));
    let defined = |name: &str| worker.proxy.definitions.borrow().iter().any(|(_, n)| n == name);
    let canary_5xx =
        tagged(metrics::RESPONSES, &[("route", "a"), ("target", "canary"), ("status_class", "5xx")]);
    assert!(defined(&canary_5xx), "a check's rate() sees the first errors only after a zero");
    assert!(!defined(&requests_metric("a", "stable")), "nothing counted yet: the push creates no metric");
    worker.get("a.example.com");
    worker.tick_after(1_000);
    assert_eq!(worker.proxy.value(&requests_metric("a", "stable")), 1);
    assert!(!defined(&requests_metric("a", "canary")), "never counted");
    assert!(!defined(&tagged(metrics::RULE_HITS, &[("route", "a"), ("rule", "rules[0]")])));
}

#[test]
fn a_big_config_defines_its_split_gauges_over_the_ticks_after_its_push() {
    let route = |i: usize| {
        format!(
            r#"{{"name": "r{i}", "hosts": ["r{i}.example.com"], "default": "stable", "rules": [{{"split": {{
                "weights": [{{"target": "canary", "weight": 10}}, {{"target": "stable", "weight": 90}}],
                "rollback": {{"target": "canary", "maxErrorRate": 0.5, "minRequests": 5, "window": "60s"}}}}}}]}}"#
        )
    };
    let routes: Vec<String> = (0..300).map(route).collect();
    let worker = Worker::configured(&format!(r#"{{"routes": [{}]}}"#, routes.join(",")));
    let defined = |metric: &str| {
        worker.proxy.definitions.borrow().iter().filter(|(_, name)| name.ends_with(metric)).count()
    };
    assert_eq!(defined(metrics::CONFIGURED_WEIGHT), 0, "the push defines none of 2,400 gauges");
    worker.tick_after(1_000);
    let first = defined(metrics::CONFIGURED_WEIGHT);
    assert!(first > 0 && first < 600, "a batch per tick: {first} of 600 target weights");
    for _ in 0..30 {
        worker.tick_after(1_000);
    }
    assert_eq!(defined(metrics::CONFIGURED_WEIGHT), 600, "every split's, in the end");
    assert_eq!(defined(metrics::ROLLED_BACK), 300);
    let labels =
        |i: usize, target: &'static str| {
            let split = Worker::configured(&format!(r#"{{"routes": [{}]}}"#, route(i)));
            let name =
                split.proxy.definitions.borrow().iter().map(|(_, n)| n.clone()).find(|n| {
                    n.ends_with(metrics::LIVE_WEIGHT) && n.contains(&format!("target=.={target};.;"))
                });
            name.unwrap()
        };
    // Each one holds its value once defined: the weights, live and as
    // configured, and the verdict.
    assert_eq!(worker.proxy.value(&labels(299, "canary")), 100_000);
    assert_eq!(worker.proxy.value(&labels(299, "stable")), 900_000);
    assert_eq!(
        worker.proxy.value(&labels(299, "canary").replace(metrics::LIVE_WEIGHT, metrics::CONFIGURED_WEIGHT)),
        100_000
    );
}

#[test]
fn without_an_accepted_config_a_request_is_answered_not_forwarded() {
    let worker = Worker::new(&SharedStore::default());
    let spoofed =
        [(":authority", "a.example.com"), ("x-svc-version", "canary"), ("x-route-target", "canary")];
    assert_eq!(worker.exchange(&spoofed, "200"), Err(503), "never configured");
    assert!(!worker.configure(r#"{"targetHeader": "x-svc-version", "routes": []}"#));
    assert_eq!(worker.exchange(&spoofed, "200"), Err(503), "after a rejected first config");
    assert_eq!(worker.proxy.local_replies.borrow()[0].1, "canary_router_no_config");
}

#[test]
fn a_routing_header_the_proxy_will_not_write_is_answered_not_forwarded() {
    let worker =
        Worker::configured(&ONE_ROUTE.replace(r#""routes""#, r#""targetHeader": "x-svc", "routes""#));
    worker.proxy.refuse_writes_of.borrow_mut().push("x-svc".into());
    let spoofed = [(":authority", "a.example.com"), ("x-svc", "canary")];
    assert_eq!(worker.exchange(&spoofed, "200"), Err(503), "routed, but the header stays the client's");
    let unrouted = [(":authority", "elsewhere.example.com"), ("x-svc", "canary")];
    assert_eq!(worker.exchange(&unrouted, "200"), Err(503), "unrouted, and the header cannot be removed");
    assert_eq!(worker.proxy.local_replies.borrow()[0].1, "canary_router_header_not_written");
}

const MIRRORED: &str = r#"{"mirrorBudget": {"maxInFlight": 4},
    "routes": [{"name": "a", "default": "stable", "mirror": {"cluster": "shadow", "percent": 100, "timeoutMs": 2000}}]}"#;

fn shadows_sent(worker: &Worker) -> usize {
    worker.tick_after(10);
    worker.proxy.take_calls().len()
}

#[test]
fn a_copy_holds_the_budget_until_it_is_answered() {
    let worker = Worker::configured(MIRRORED);
    for _ in 0..6 {
        worker.get("a.example.com");
    }
    assert_eq!(worker.vm.shadows.held().0, 4, "maxInFlight copies held");
    let calls = {
        worker.tick_after(10);
        worker.proxy.take_calls()
    };
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].header(":authority"), Some(&b"a.example.com-shadow"[..]));
    assert_eq!(calls[0].header("x-route-target"), Some(&b"stable"[..]));
    worker.answer(calls[0].token, "200", "");
    assert_eq!(worker.vm.shadows.held().0, 3, "an answered copy gives its slot back");
    worker.get("a.example.com");
    assert_eq!(shadows_sent(&worker), 1);
    worker.tick_after(1_000);
    let skipped = tagged(
        metrics::SHADOW_SKIPPED,
        &[("route", "a"), ("cluster", "shadow"), ("reason", "too_many_in_flight")],
    );
    assert_eq!(worker.proxy.value(&skipped), 2);
}

#[test]
fn copies_of_a_deleted_root_are_given_up_and_shadowing_goes_on() {
    let worker = Worker::configured(MIRRORED);
    for _ in 0..4 {
        worker.get("a.example.com");
    }
    assert_eq!(shadows_sent(&worker), 4);
    // A config push: the proxy deletes the old root with its calls, unanswered.
    worker.vm.root_deleted(1);
    assert_eq!(worker.vm.shadows.held(), (0, 0), "their budget is given back at once");
    let root = Rc::new(Root::new(7, worker.vm.clone(), 1));
    *worker.proxy.config.borrow_mut() = MIRRORED.as_bytes().to_vec();
    assert!(configure(&root, MIRRORED.len()));
    worker.proxy.set_request(&[(":path", "/")]);
    for id in 100..104 {
        let Headers::Continue(None) = request_headers(&root, id, true) else { panic!("forwarded, no state") };
    }
    worker.proxy.advance(10);
    tick(&root);
    assert_eq!(worker.proxy.take_calls().len(), 4, "copies keep being sent after the push");
}

#[test]
fn copies_never_answered_are_abandoned_after_their_deadline() {
    let worker = Worker::configured(MIRRORED);
    for _ in 0..4 {
        worker.get("a.example.com");
    }
    assert_eq!(shadows_sent(&worker), 4);
    worker.tick_after(2_000 + 4_000);
    assert_eq!(worker.vm.shadows.held().0, 4, "waited for past the timeout, with slack");
    worker.tick_after(1_000);
    assert_eq!(worker.vm.shadows.held(), (0, 0));
    let failed = tagged(metrics::SHADOW_FAILED, &[("route", "a"), ("cluster", "shadow")]);
    worker.tick_after(1_000);
    assert_eq!(worker.proxy.value(&failed), 4, "a lost answer counts as a failed copy");
    worker.get("a.example.com");
    assert_eq!(shadows_sent(&worker), 1);
}

/// A split judged by its local window, four requests its least evidence.
const WINDOWED: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 100}, {"target": "stable", "weight": 0.0001}],
    "rollback": {"target": "canary", "maxErrorRate": 0.5, "minRequests": 4, "window": "60s"}}}]}]}"#;

#[test]
fn workers_merge_their_windows_and_a_conflicting_write_is_retried() {
    let shared = SharedStore::default();
    let (one, two) = (Worker::new(&shared), Worker::new(&shared));
    assert!(one.configure(WINDOWED) && two.configure(WINDOWED));
    let b = [(":authority", "b.example.com")];
    // Each worker sees two of four errors: only together do they cross.
    for worker in [&one, &two] {
        assert_eq!(worker.exchange(&b, "200"), Ok(Some("canary".into())));
        assert_eq!(worker.exchange(&b, "503"), Ok(Some("canary".into())));
    }
    // Another worker writes the window between this one's read and write.
    let key = shared.borrow().keys().find(|k| k.ends_with("/window")).cloned().unwrap();
    one.proxy.before_write.replace(Some(Box::new(move |store: &SharedStore| {
        let mut store = store.borrow_mut();
        let (bytes, tag) = store.get(&key).cloned().unwrap();
        store.insert(key, (bytes, tag + 1));
    })));
    assert_eq!(one.exchange(&b, "503"), Ok(Some("canary".into())), "the response that crosses");
    assert_eq!(
        one.get("b.example.com").as_deref(),
        Some("stable"),
        "rolled back at once, despite the conflict"
    );
    assert_eq!(two.get("b.example.com").as_deref(), Some("canary"), "the other worker learns on its tick");
    two.tick_after(1_000);
    assert_eq!(two.get("b.example.com").as_deref(), Some("stable"));
}

const POLLED: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}],
    "rollback": {"target": "canary", "prometheus": {"cluster": "prometheus", "every": "10s", "threshold": 1,
        "checks": [{"name": "errors", "query": "errors{target=\"{{target}}\"}", "max": 0.1}]}}}}]}]}"#;

#[test]
fn one_worker_of_a_proxy_polls_per_period_and_a_round_is_judged_when_complete() {
    let shared = SharedStore::default();
    let (one, two) = (Worker::new(&shared), Worker::new(&shared));
    assert!(one.configure(POLLED), "polls at once: the first configure claims the round");
    assert!(two.configure(POLLED));
    let calls = one.proxy.take_calls();
    assert_eq!(calls.len(), 3, "the check, the latch and the view");
    assert!(two.proxy.take_calls().is_empty(), "the other worker found the round claimed");
    assert_eq!(two.get("b.example.com").as_deref(), Some("stable"), "waits for the latch");

    one.answer(calls[1].token, "200", EMPTY);
    one.answer(calls[2].token, "200", &vector("1"));
    one.answer(calls[0].token, "200", &vector("0.01"));
    two.tick_after(1_000);
    assert!(two.proxy.take_calls().is_empty(), "not due before `every`");
    let targets: Vec<_> = (0..40).filter_map(|_| two.get("b.example.com")).collect();
    assert!(targets.iter().any(|t| t == "canary"), "the latch answered: the canary gets traffic");

    one.tick_after(10_000);
    two.tick_after(10_000);
    let (a, b) = (one.proxy.take_calls(), two.proxy.take_calls());
    assert_eq!(a.len() + b.len(), 3, "one round per proxy per period: {} and {}", a.len(), b.len());
    let (poller, calls) = if a.is_empty() { (&two, b) } else { (&one, a) };
    poller.answer(calls[0].token, "200", &vector("0.5"));
    poller.answer(calls[2].token, "200", &vector("1"));
    assert_eq!(poller.get("b.example.com").as_deref().map(|_| ()), Some(()), "still half-answered");
    poller.answer(calls[1].token, "200", EMPTY);
    for worker in [&one, &two] {
        worker.tick_after(1_000);
        assert!((0..40).all(|_| worker.get("b.example.com").as_deref() == Some("stable")), "rolled back");
    }
}

#[test]
fn a_fleet_rollback_reaches_another_worker_at_its_next_canary_error_not_its_tick() {
    let shared = SharedStore::default();
    let (one, two) = (Worker::new(&shared), Worker::new(&shared));
    assert!(one.configure(POLLED) && two.configure(POLLED));
    let calls = one.proxy.take_calls();
    one.answer(calls[1].token, "200", EMPTY);
    one.answer(calls[2].token, "200", &vector("1"));
    one.answer(calls[0].token, "200", &vector("0.01"));
    two.tick_after(1_000);
    // The next round (due within `every` plus its jitter), on worker one,
    // fails the check: rolled back.
    one.tick_after(11_000);
    let calls = one.proxy.take_calls();
    assert_eq!(calls.len(), 3);
    one.answer(calls[0].token, "200", &vector("0.5"));
    one.answer(calls[2].token, "200", &vector("1"));
    one.answer(calls[1].token, "200", EMPTY);
    assert!((0..40).all(|_| one.get("b.example.com").as_deref() == Some("stable")), "rolled back");
    // Worker two, no tick since: its first canary error is its last.
    let b = [(":authority", "b.example.com")];
    let targets: Vec<_> = (0..60).map(|_| two.exchange(&b, "503").unwrap().unwrap_or_default()).collect();
    let first = targets.iter().position(|t| t == "canary").expect("worker two had not taken it on yet");
    assert!(targets[first + 1..].iter().all(|t| t == "stable"), "{targets:?}");
}

#[test]
fn a_round_whose_answers_never_come_is_given_up_and_polling_goes_on() {
    let worker = Worker::configured(POLLED);
    assert_eq!(worker.proxy.take_calls().len(), 3);
    worker.tick_after(10_000);
    assert!(worker.proxy.take_calls().is_empty(), "the round is still waiting for its answers");
    worker.tick_after(7_000);
    assert_eq!(worker.proxy.take_calls().len(), 3, "given up after timeout + 5 s: a new round");
}

const GATED: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
    "weights": [{"target": "canary", "weight": 1}, {"target": "stable", "weight": 99}],
    "ramp": {"target": "canary", "start": "2026-01-01T00:00:00Z", "every": "10s", "steps": [20, 50, 100],
             "gate": {"minRequests": 5, "maxWait": "30s", "onMaxWait": "rollback"}},
    "rollback": {"target": "canary", "maxErrorRate": 0.2, "minRequests": 5, "window": "60s",
                 "latency": {"percentile": 90, "maxMs": 100}}}}]}]}"#;

/// Requests to the gated split until the canary answered `n` of them, each
/// taking `canary_ms` (the stable target answers at once).
fn canary_answers(worker: &Worker, n: usize, status: &str, canary_ms: u64) -> usize {
    let (mut canary, mut sent) = (0, 0);
    while canary < n {
        let took = |target: &str| if target == "canary" { canary_ms } else { 0 };
        let target = worker.exchange_taking(&[(":authority", "b.example.com")], status, took).unwrap();
        canary += usize::from(target.as_deref() == Some("canary"));
        sent += 1;
        assert!(sent < 10_000, "the canary gets no traffic");
    }
    sent
}

fn step_gauge(worker: &Worker) -> u64 {
    let name =
        worker.proxy.values.borrow().keys().find(|k| k.ends_with(metrics::RAMP_STEP)).cloned().unwrap();
    worker.proxy.value(&name)
}

#[test]
fn a_gated_step_is_taken_only_after_every_and_enough_healthy_canary_responses() {
    let worker = Worker::configured(GATED);
    worker.tick_after(1_000);
    assert_eq!(step_gauge(&worker), 1, "the first step, from the start");
    worker.tick_after(10_000);
    assert_eq!(step_gauge(&worker), 1, "every has passed, but the canary was never judged");
    canary_answers(&worker, 4, "200", 5);
    worker.tick_after(1_000);
    assert_eq!(step_gauge(&worker), 1, "4 responses of the 5 needed");
    canary_answers(&worker, 1, "200", 5);
    worker.tick_after(1_000);
    assert_eq!(step_gauge(&worker), 2, "earned");
    let sent = canary_answers(&worker, 20, "200", 5);
    assert!(sent < 80, "at step 2 the canary gets half the traffic: {sent} requests for 20");
    worker.tick_after(5_000);
    assert_eq!(step_gauge(&worker), 2, "evidence, but not every yet");
    worker.tick_after(5_000);
    assert_eq!(step_gauge(&worker), 3);
}

#[test]
fn a_slow_canary_is_rolled_back_by_its_latency_at_the_first_step() {
    let worker = Worker::configured(GATED);
    worker.tick_after(1_000);
    canary_answers(&worker, 5, "200", 250);
    worker.tick_after(1_000);
    let reason = tagged(metrics::ROLLBACK_REASON, &[("reason", "latency")]);
    let rolled = worker.proxy.values.borrow().iter().any(|(k, v)| k.ends_with(&reason) && *v == 1);
    assert!(rolled, "rolled back for latency");
    assert_eq!(step_gauge(&worker), 1, "never at a higher weight");
    assert!((0..50).all(|_| worker.get("b.example.com").as_deref() == Some("stable")));
}

#[test]
fn a_step_that_cannot_be_judged_within_max_wait_rolls_back() {
    let worker = Worker::configured(GATED);
    worker.tick_after(29_000);
    assert!(worker.proxy.values.borrow().iter().all(|(k, v)| !k.contains("reason=.=maxWait") || *v == 0));
    worker.tick_after(1_000);
    let reason = tagged(metrics::ROLLBACK_REASON, &[("reason", "maxWait")]);
    let rolled = worker.proxy.values.borrow().iter().any(|(k, v)| k.ends_with(&reason) && *v == 1);
    assert!(rolled, "no verdict in 30 s: rolled back");
    assert_eq!(step_gauge(&worker), 1);
}

#[test]
fn the_host_reselects_the_route_when_the_target_header_changed_and_is_asked_once_if_it_cannot() {
    let worker = Worker::configured(ONE_ROUTE);
    let clears = || worker.proxy.route_cache_clears.get();
    let a = |extra: &[(&'static str, &'static str)]| {
        let mut headers = vec![(":authority", "a.example.com"), (":path", "/")];
        headers.extend_from_slice(extra);
        worker.exchange(&headers, "200").unwrap()
    };
    assert_eq!(a(&[]).as_deref(), Some("stable"));
    assert_eq!(clears(), 1, "the header was written: the route is selected again");
    assert_eq!(a(&[("x-route-target", "stable")]).as_deref(), Some("stable"));
    assert_eq!(clears(), 1, "the client's value was already the decision: the route stands");
    assert_eq!(a(&[("x-route-target", "canary")]).as_deref(), Some("stable"));
    assert_eq!(clears(), 2, "a client's value overwritten");
    worker.exchange(&[(":authority", "nowhere.org"), (":path", "/")], "200").unwrap();
    assert_eq!(clears(), 2, "no route and no header: nothing changed");
    let removed = worker.exchange(&[(":authority", "nowhere.org"), ("x-route-target", "canary")], "200");
    assert_eq!(removed, Ok(None));
    assert_eq!(clears(), 3, "a client's header removed");

    // A host without the function: asked once, then routed as it routes.
    worker.proxy.lacks_clear_route_cache.set(true);
    for _ in 0..5 {
        assert_eq!(a(&[("foo", "bar")]).as_deref(), Some("canary"), "routing goes on");
    }
    assert_eq!(clears(), 4, "asked once, never again");

    // `clearRouteCache: false`: the host is trusted to select it itself.
    let trusting = Worker::configured(&ONE_ROUTE.replacen('{', r#"{"clearRouteCache": false,"#, 1));
    assert_eq!(trusting.get("a.example.com").as_deref(), Some("stable"));
    assert_eq!(trusting.proxy.route_cache_clears.get(), 0);
}
