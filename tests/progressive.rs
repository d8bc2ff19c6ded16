//! Progressive delivery inside the proxy, through the built `.wasm`: weight
//! ramps by wall-clock time, assignment cookies, automatic rollback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::Duration;

use harness::{HeaderMap, LogLevel, Proxy};

/// 2026-01-01T00:00:00Z, the harness clock's start.
const T0_MS: u64 = 1_767_225_600_000;
const MINUTE: u64 = 60_000;

fn ramp_config(start: &str) -> String {
    format!(
        r#"{{"routes": [{{"name": "b", "default": "stable", "rules": [{{"split": {{
            "weights": [{{"target": "canary", "weight": 0}}, {{"target": "stable", "weight": 100}}],
            "stickyBy": {{"cookie": "uid"}},
            "ramp": {{"target": "canary", "start": "{start}", "every": "10m", "steps": [1, 5, 25, 50, 100]}}}}}}]}}]}}"#
    )
}

fn canary_share(proxy: &mut Proxy, n: usize) -> f64 {
    let canary =
        (0..n).filter(|_| proxy.send(&[(":path", "/")]).target().as_deref() == Some("canary")).count();
    canary as f64 * 100.0 / n as f64
}

#[test]
fn a_ramp_follows_its_steps_by_wall_clock_time() {
    let mut proxy = Proxy::configured(&ramp_config("2026-01-01T01:00:00Z"));
    assert_eq!(canary_share(&mut proxy, 2_000), 0.0, "before the start the listed weights apply");
    for (minutes, want) in [(60, 1.0), (70, 5.0), (85, 25.0), (95, 50.0), (105, 100.0), (500, 100.0)] {
        proxy.set_time_ms(T0_MS + minutes * MINUTE);
        let share = canary_share(&mut proxy, 10_000);
        assert!((share - want).abs() < 1.0, "at +{minutes} min: {share:.2}% (want {want}%)");
    }
}

#[test]
fn every_replica_is_on_the_same_step_and_sticky_users_only_move_onto_the_canary() {
    let start = "2026-01-01T00:00:00Z";
    let mut a = Proxy::configured(&ramp_config(start));
    let mut b = Proxy::start_with(LogLevel::Info, 777);
    assert!(b.configure(&ramp_config(start)));
    let users: Vec<String> = (0..2_000).map(|i| format!("uid=user-{i}")).collect();
    let mut on_canary = vec![false; users.len()];
    for minutes in [0, 10, 20, 30, 40] {
        a.set_time_ms(T0_MS + minutes * MINUTE);
        b.set_time_ms(T0_MS + minutes * MINUTE);
        for (i, cookie) in users.iter().enumerate() {
            let request = [(":path", "/"), ("cookie", cookie.as_str())];
            let (ta, tb) = (a.send(&request).target().unwrap(), b.send(&request).target().unwrap());
            assert_eq!(ta, tb, "replicas disagree on {cookie} at +{minutes} min");
            let now = ta == "canary";
            assert!(now || !on_canary[i], "{cookie} left the canary at +{minutes} min");
            on_canary[i] = now;
        }
    }
    assert!(on_canary.iter().all(|c| *c), "at 100% everyone is on the canary");
}

#[test]
fn each_step_change_is_logged_once() {
    let mut proxy = Proxy::configured(&ramp_config("2026-01-01T00:00:30Z"));
    assert_eq!(proxy.tick_period_ms(), 1_000, "a ramp needs the tick");
    for _ in 0..(25 * 60) {
        proxy.tick();
    }
    let steps: Vec<String> =
        proxy.logs_at(LogLevel::Info).into_iter().filter(|l| l.contains("ramp:")).collect();
    assert_eq!(
        steps,
        vec![
            "[ctx 1] canary-router: route=b rule=rules[0] ramp: canary waits for its start",
            "[ctx 1] canary-router: route=b rule=rules[0] ramp: canary now at 1% (step 1 of 5)",
            "[ctx 1] canary-router: route=b rule=rules[0] ramp: canary now at 5% (step 2 of 5)",
            "[ctx 1] canary-router: route=b rule=rules[0] ramp: canary now at 25% (step 3 of 5)",
        ]
    );
}

fn cookie_config(canary_weight: u32) -> String {
    format!(
        r#"{{"routes": [{{"name": "b", "default": "stable", "rules": [{{"split": {{
            "weights": [{{"target": "canary", "weight": {canary_weight}}}, {{"target": "stable", "weight": {}}}],
            "assignCookie": {{"name": "b-version", "maxAge": 86400, "path": "/", "secure": true, "httpOnly": true}}}}}}]}}]}}"#,
        100 - canary_weight
    )
}

fn visit(proxy: &mut Proxy, cookie: Option<&str>) -> (String, Option<String>) {
    let mut request = HeaderMap::from_pairs([(":path", "/")]);
    if let Some(cookie) = cookie {
        request.add(b"cookie", cookie.as_bytes());
    }
    let exchange = proxy.send_map(request);
    (exchange.target().unwrap(), exchange.response.get("set-cookie"))
}

#[test]
fn a_new_user_is_assigned_and_keeps_the_cookie() {
    let mut proxy = Proxy::configured(&cookie_config(20));
    let (target, set_cookie) = visit(&mut proxy, None);
    assert_eq!(set_cookie, Some(format!("b-version={target}; Max-Age=86400; Path=/; Secure; HttpOnly")));
    for _ in 0..20 {
        let (again, set_again) = visit(&mut proxy, Some(&format!("session=1; b-version={target}")));
        assert_eq!((again.as_str(), set_again), (target.as_str(), None));
    }
    // A cookie naming no target, or a target without weight, is replaced.
    let (_, replaced) = visit(&mut proxy, Some("b-version=bogus"));
    assert!(replaced.is_some());
    assert!(proxy.configure(&cookie_config(0)));
    let (moved, reassigned) = visit(&mut proxy, Some("b-version=canary"));
    assert_eq!(moved, "stable");
    assert_eq!(reassigned.as_deref(), Some("b-version=stable; Max-Age=86400; Path=/; Secure; HttpOnly"));
}

#[test]
fn with_symmetric_cookies_the_canary_share_stays_at_its_weight() {
    // Every user, canary or stable, keeps the cookie they were given, so
    // requests split like users do. (Pinning only canary users lets stable
    // users re-roll on every request and drifts the canary above its
    // weight: the failure Flagger users report.)
    let mut proxy = Proxy::configured(&cookie_config(20));
    let (users, visits) = (20_000, 3);
    let mut canary_requests = 0;
    let mut canary_users = 0;
    for _ in 0..users {
        let mut jar: Option<String> = None;
        for _ in 0..visits {
            let (target, set_cookie) = visit(&mut proxy, jar.as_deref());
            if let Some(set) = set_cookie {
                assert!(jar.is_none(), "a user with a valid cookie was reassigned");
                jar = Some(set.split(';').next().unwrap().to_string());
            }
            canary_requests += usize::from(target == "canary");
        }
        canary_users += usize::from(jar.as_deref() == Some("b-version=canary"));
    }
    let request_share = canary_requests as f64 * 100.0 / (users * visits) as f64;
    let user_share = canary_users as f64 * 100.0 / users as f64;
    assert!((request_share - 20.0).abs() < 1.0, "requests: {request_share:.2}%");
    assert!((user_share - 20.0).abs() < 1.0, "users: {user_share:.2}%");
}

fn rollback_config(max_error_rate: &str) -> String {
    format!(
        r#"{{"routes": [{{"name": "b", "default": "stable", "rules": [{{"split": {{
            "weights": [{{"target": "canary", "weight": 50}}, {{"target": "stable", "weight": 50}}],
            "rollback": {{"target": "canary", "maxErrorRate": {max_error_rate}, "minRequests": 20, "window": "60s"}}}}}}]}}]}}"#
    )
}

/// Sends `n` requests all answered `status`; returns how many went to the
/// canary. (The rollback watches its target's answers only, so stable's
/// 503s in `failing` traffic do not count against anything.)
fn answered(proxy: &mut Proxy, n: usize, status: &str) -> usize {
    (0..n)
        .filter(|_| {
            let request = HeaderMap::from_pairs([(":path", "/")]);
            let exchange = proxy.exchange(request, HeaderMap::from_pairs([(":status", status)]));
            exchange.target().as_deref() == Some("canary")
        })
        .count()
}

fn traffic(proxy: &mut Proxy, n: usize) -> usize {
    answered(proxy, n, "200")
}

fn failing_canary(proxy: &mut Proxy, n: usize) -> usize {
    answered(proxy, n, "503")
}

/// The split's identity, as the filter computes it (the `split` label).
fn identity(config: &str) -> String {
    let router = canary_router_core::config::parse(config.as_bytes()).unwrap();
    let (_, _, split) = router.splits().next().unwrap();
    split.identity_hex()
}

fn rolled_back_gauge(proxy: &Proxy) -> Option<u64> {
    let split = identity(&rollback_config("0.1"));
    proxy.metric(&format!(
        "route=.=b;.;rule=.=rules[0];.;split=.={split};.;target=.=canary;.;canary_router_rolled_back"
    ))
}

/// Sends failing requests one at a time until `n` of them reached the canary.
fn canary_errors(proxy: &mut Proxy, n: usize) {
    let mut seen = 0;
    for _ in 0..10_000 {
        if seen == n {
            return;
        }
        seen += failing_canary(proxy, 1);
    }
    panic!("only {seen} of {n} requests reached the canary: it was rolled back");
}

#[test]
fn an_erroring_canary_is_rolled_back_by_the_response_that_crosses_and_stays_back() {
    let mut proxy = Proxy::configured(&rollback_config("0.1"));
    assert_eq!(rolled_back_gauge(&proxy), Some(0));
    // 19 canary errors: fewer than minRequests (20), nothing happens.
    canary_errors(&mut proxy, 19);
    assert!(proxy.logs_at(LogLevel::Warn).is_empty());
    assert_eq!(rolled_back_gauge(&proxy), Some(0));
    // The 20th crosses the threshold and rolls the split back at once,
    // before any tick: no request after it reaches the canary.
    canary_errors(&mut proxy, 1);
    assert_eq!(traffic(&mut proxy, 500), 0, "the canary still gets traffic after rolling back");
    assert_eq!(rolled_back_gauge(&proxy), Some(1));
    let warnings = proxy.logs_at(LogLevel::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let split = identity(&rollback_config("0.1"));
    assert!(
        warnings[0].contains(&format!(
            "canary-router: rolled back route=b target=canary split={split} reason=window: \
             20 errors in 20 responses (1.000 > 0.1) within 60000 ms"
        )),
        "{}",
        warnings[0]
    );

    // It stays back as time passes and ticks go by...
    proxy.advance(Duration::from_secs(3_600));
    for _ in 0..5 {
        proxy.tick();
    }
    assert_eq!(traffic(&mut proxy, 200), 0);
    assert_eq!(proxy.logs_at(LogLevel::Warn).len(), 1, "the rollback is logged once");
    // Applying the same config again does not undo it, at once...
    assert!(proxy.configure(&rollback_config("0.1")));
    assert_eq!(traffic(&mut proxy, 200), 0, "re-applying the same config let traffic back before a tick");
    // ...nor does an edit elsewhere in the config...
    let another_route = rollback_config("0.1").replacen(
        r#"{"routes": ["#,
        r#"{"routes": [{"name": "new", "hosts": ["new.example"], "default": "x"}, "#,
        1,
    );
    assert!(proxy.configure(&another_route));
    assert_eq!(traffic(&mut proxy, 200), 0, "an edit to another route undid the rollback");
    // ...nor an edit to how the canary is judged (a looser threshold)...
    assert!(proxy.configure(&rollback_config("0.2")));
    assert_eq!(traffic(&mut proxy, 200), 0, "a threshold edit undid the rollback");
    // ...only a new version of the split (new weights) starts fresh.
    assert!(proxy.configure(&rollback_config("0.2").replace("50}", "40}")));
    assert!(traffic(&mut proxy, 200) > 50);
}

#[test]
fn successes_keep_a_canary_under_its_threshold() {
    let mut proxy = Proxy::configured(&rollback_config("0.1"));
    // One error in twenty canary answers: 5%, under the 10% threshold at
    // every response, the errors included.
    for _ in 0..30 {
        canary_errors(&mut proxy, 1);
        let mut ok = 0;
        while ok < 19 {
            ok += traffic(&mut proxy, 1);
        }
    }
    proxy.tick();
    assert!(traffic(&mut proxy, 200) > 50, "a canary at its threshold was rolled back");
    assert!(proxy.logs_at(LogLevel::Warn).is_empty());
}

#[test]
fn errors_outside_the_window_do_not_count() {
    let mut proxy = Proxy::configured(&rollback_config("0.1"));
    canary_errors(&mut proxy, 15);
    proxy.advance(Duration::from_secs(120));
    proxy.tick();
    canary_errors(&mut proxy, 15);
    assert_eq!(rolled_back_gauge(&proxy), Some(0), "an old burst of errors rolled the canary back");
    assert!(proxy.logs_at(LogLevel::Warn).is_empty());
    canary_errors(&mut proxy, 5);
    assert_eq!(traffic(&mut proxy, 200), 0, "20 errors within the window did not roll back");
}

#[test]
fn every_worker_rolls_back_from_the_errors_all_of_them_saw() {
    let mut a = Proxy::configured(&rollback_config("0.1"));
    let mut b = Proxy::start_sharing_with(&a, 4242);
    assert!(b.configure(&rollback_config("0.1")));
    // Each worker alone sees too few canary answers; together they cross,
    // at the response that makes 20, on whichever worker it lands.
    canary_errors(&mut a, 12);
    canary_errors(&mut b, 8);
    assert_eq!(traffic(&mut b, 200), 0, "worker b did not roll back on the shared window");
    assert!(
        b.logs_at(LogLevel::Warn)[0].contains("20 errors in 20 responses"),
        "{:?}",
        b.logs_at(LogLevel::Warn)
    );
    // Worker a learns it on its next tick (or its next canary error).
    a.tick();
    assert_eq!(traffic(&mut a, 200), 0, "worker a did not follow the rollback");
    assert!(
        a.logs_at(LogLevel::Warn)[0].contains("reason=window: 20 errors in 20 responses"),
        "{:?}",
        a.logs_at(LogLevel::Warn)
    );
}

#[test]
fn errors_served_before_a_rollback_do_not_grow_with_traffic() {
    // Two workers take turns at full speed, with no tick in between: each
    // error is merged into the shared window as it happens, so the canary
    // serves minRequests errors, plus at most one per other worker.
    for seed in [1, 2, 3] {
        let mut a = Proxy::start_with(LogLevel::Info, seed);
        assert!(a.configure(&rollback_config("0.1")));
        let mut b = Proxy::start_sharing_with(&a, seed + 100);
        assert!(b.configure(&rollback_config("0.1")));
        let mut served = 0;
        for _ in 0..2_000 {
            served += failing_canary(&mut a, 1);
            served += failing_canary(&mut b, 1);
        }
        assert!((20..=21).contains(&served), "seed {seed}: {served} canary errors before the rollback");
    }
}
