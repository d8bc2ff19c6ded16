//! The hostile tier: what attackers and unlucky operators do to a real
//! Envoy running the filter. Each test asserts that no live request gets a
//! 5xx, that the VMs' memory stays within its budget (read from Envoy's
//! `/proc/PID/smaps`, as Envoy has no wasm memory stat), and that the
//! counters say what happened. `make soak` runs longer variants
//! (`CANARY_ROUTER_SOAK=1`).

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::envoy::{ecds_file, Envoy, EnvoyConfig, ECDS_FILE};
use super::http::Connection;
use super::load::{self, Load};

const MIB: u64 = 1024 * 1024;

/// Whether this is `make soak`, which runs each scenario longer.
fn soaking() -> bool {
    std::env::var_os("CANARY_ROUTER_SOAK").is_some()
}

/// `short` in `make test`, `long` in `make soak`.
fn scaled(short: u64, long: u64) -> u64 {
    if soaking() {
        long
    } else {
        short
    }
}

fn start(filter_config: &str) -> Envoy {
    Envoy::start(EnvoyConfig::inline(filter_config))
}

/// Opens a connection and sends a POST's headers and the start of its
/// body; the caller holds the stream open by keeping it.
fn stalled_upload(port: u16, host: &str, sent: usize, announced: usize) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!("POST /upload HTTP/1.1\r\nhost: {host}\r\ncontent-length: {announced}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'u'; sent]).unwrap();
    stream
}

fn skipped(envoy: &Envoy, route: &str, cluster: &str, reason: &str) -> u64 {
    envoy.sample(&format!(
        r#"canary_router_shadow_skipped_total{{route="{route}",cluster="{cluster}",reason="{reason}"}}"#
    ))
}

#[test]
fn stalled_mirrored_uploads_stay_within_the_mirror_budget() {
    let envoy = Envoy::start(stalled_uploads(EnvoyConfig::from_repo("envoy/envoy.yaml")));
    // Two workers, a budget each.
    stalled_uploads_stay_within(&envoy, 2, true);
}

#[test]
fn the_dynamic_module_s_stalled_mirrored_uploads_stay_within_the_mirror_budget() {
    let envoy = Envoy::start(stalled_uploads(EnvoyConfig::dynamic_module()));
    // One budget for the process.
    stalled_uploads_stay_within(&envoy, 1, false);
}

/// Uploads go to a backend that answers after a minute, so a stalled
/// upload keeps its stream, and its copy, open.
fn stalled_uploads(home: EnvoyConfig) -> EnvoyConfig {
    let config = r#"{"routes": [
        {"name": "uploads", "hosts": ["uploads.example.com"], "default": "slow-backend",
         "mirror": {"cluster": "service-a-shadow", "percent": 100, "maxBodyBytes": 1048576}},
        {"name": "service-a", "hosts": ["a.example.com"], "default": "service-a"}]}"#;
    home.with_filter_config(config).replace("fixed_delay: 5s", "fixed_delay: 60s")
}

/// 60 uploads announcing 60 MiB stall after 900 KiB each, against
/// `budgets` budgets of 8 MiB: the copies beyond them are skipped (and a
/// VM's memory, with `vm_memory`, grows by no more than a budget), the
/// budget comes back when the clients give up, and complete uploads are
/// copied again; no live request fails meanwhile.
fn stalled_uploads_stay_within(envoy: &Envoy, budgets: u64, vm_memory: bool) {
    let live = Load::start(envoy.ingress_port(), 4, 100, load::get("a.example.com"));
    thread::sleep(Duration::from_millis(300));
    let before = if vm_memory { envoy.largest_wasm_memory() } else { 0 };

    let stalled: Vec<TcpStream> = (0..scaled(60, 200) as usize)
        .map(|_| stalled_upload(envoy.ingress_port(), "uploads.example.com", 900 * 1024, 60 * MIB as usize))
        .collect();
    let held_at_most = budgets * (8 * MIB / (900 * 1024)); // copies that fit in the budgets
    let over_budget = stalled.len() as u64 - held_at_most;
    envoy.wait_until("the copies over the budget to be skipped", || {
        skipped(envoy, "uploads", "service-a-shadow", "over_budget") >= over_budget
    });
    let grown = if vm_memory { envoy.largest_wasm_memory().saturating_sub(before) } else { 0 };
    assert!(grown <= 10 * MIB, "a VM's memory grew by {} MiB for stalled uploads", grown / MIB);

    // The clients give up: their streams reset and the budget comes back.
    drop(stalled);
    envoy.wait_until("the unfinished copies to be dropped", || {
        skipped(envoy, "uploads", "service-a-shadow", "incomplete") >= 1
    });
    thread::sleep(Duration::from_millis(500));
    // 8 complete uploads now fit in a budget: all are copied.
    let complete: Vec<TcpStream> = (0..8)
        .map(|_| stalled_upload(envoy.ingress_port(), "uploads.example.com", 900 * 1024, 900 * 1024))
        .collect();
    let sent = r#"canary_router_shadow_requests_total{route="uploads",cluster="service-a-shadow"}"#;
    envoy.wait_until("the complete uploads to be copied", || envoy.sample(sent) == 8);
    drop(complete);

    let (samples, _) = live.stop();
    load::assert_all_ok("during stalled uploads", &samples);
    eprintln!(
        "stalled uploads: VM memory +{} KiB, {} copies over budget, {} incomplete",
        grown / 1024,
        skipped(envoy, "uploads", "service-a-shadow", "over_budget"),
        skipped(envoy, "uploads", "service-a-shadow", "incomplete")
    );
}

#[test]
fn a_regex_bomb_cookie_costs_the_attacker_its_match_not_the_proxy_its_workers() {
    let config = r#"{"routes": [{"name": "service-a", "hosts": ["a.example.com"], "default": "service-a",
        "rules": [{"name": "bomb", "match": [{"cookie": "session", "regex": "[a-z0-9]{8,64}-[0-9]{1,16}x"}],
                   "target": "service-a-canary"}]}]}"#;
    let envoy = start(config);
    // One 90 KB value, or 120 values of 700 bytes under the same name.
    let big = Arc::new(format!("session={}-1x", "a".repeat(90_000)));
    let many =
        Arc::new((0..120).map(|_| format!("session={}", "b".repeat(700))).collect::<Vec<_>>().join("; "));
    let attack: Arc<load::Request> = Arc::new(move |c: &mut Connection, n| {
        let cookie = if n % 2 == 0 { big.as_str() } else { many.as_str() };
        c.get("a.example.com", "/", &[(b"cookie", cookie.as_bytes())])
    });
    let baseline = Load::start(envoy.ingress_port(), 4, 200, load::get("a.example.com"));
    thread::sleep(Duration::from_secs(2));
    let (_, baseline_rate) = baseline.stop();
    let normal = Load::start(envoy.ingress_port(), 4, 200, load::get("a.example.com"));
    let attackers = Load::start(envoy.ingress_port(), 4, 10_000, attack);
    thread::sleep(Duration::from_secs(scaled(3, 60)));
    let (attacks, attack_rate) = attackers.stop();
    let (samples, normal_rate) = normal.stop();

    load::assert_all_ok("normal traffic under the regex bomb", &samples);
    load::assert_all_ok("the attackers' own requests", &attacks);
    assert!(attacks.iter().all(|s| s.body() == "service-a"), "a value over the budget matched the regex");
    let skipped = r#"canary_router_regex_skipped_total{route="service-a"}"#;
    envoy.wait_until("every attacking request to be counted once", || {
        envoy.sample(skipped) == attacks.len() as u64
    });
    eprintln!(
        "regex bomb: {} attacking requests ({attack_rate:.0}/s) alongside {normal_rate:.0} normal requests/s \
         ({baseline_rate:.0}/s before the attack; the clients share the machine's cores with Envoy)",
        attacks.len()
    );
}

#[test]
fn slow_closed_and_failing_shadows_never_touch_live_traffic() {
    bad_shadows_never_touch_live_traffic(EnvoyConfig::from_repo("envoy/envoy.yaml"), true);
}

#[test]
fn the_dynamic_module_s_slow_closed_and_failing_shadows_never_touch_live_traffic() {
    bad_shadows_never_touch_live_traffic(EnvoyConfig::dynamic_module(), false);
}

/// Live traffic beside a slow, a closed and a failing shadow: every live
/// request answered, copies to the slow one capped at `maxInFlight`, file
/// descriptors (and, with `vm_memory`, a VM's memory) bounded, and the bad
/// shadows' copies counted as failures.
fn bad_shadows_never_touch_live_traffic(home: EnvoyConfig, vm_memory: bool) {
    let config = r#"{"routes": [
        {"name": "slow", "hosts": ["slow.example.com"], "default": "service-a",
         "mirror": {"cluster": "slow-backend", "percent": 100, "timeoutMs": 10000}},
        {"name": "closed", "hosts": ["closed.example.com"], "default": "service-a",
         "mirror": {"cluster": "unreachable-shadow", "percent": 100}},
        {"name": "failing", "hosts": ["failing.example.com"], "default": "service-a",
         "mirror": {"cluster": "broken-canary", "percent": 100}}]}"#;
    let envoy = Envoy::start(home.with_filter_config(config));
    let wasm_memory = || if vm_memory { envoy.largest_wasm_memory() } else { 0 };
    let (fds_before, memory_before, rss_before) = (envoy.open_fds(), wasm_memory(), envoy.rss());
    let loads: Vec<Load> = ["slow.example.com", "closed.example.com", "failing.example.com"]
        .into_iter()
        .map(|host| Load::start(envoy.ingress_port(), 4, 150, load::get(host)))
        .collect();
    let mut peak_fds = 0;
    for _ in 0..scaled(40, 600) {
        thread::sleep(Duration::from_millis(100));
        peak_fds = peak_fds.max(envoy.open_fds());
    }
    let samples: Vec<load::Sample> = loads.into_iter().flat_map(|l| l.stop().0).collect();
    load::assert_all_ok("live traffic next to bad shadows", &samples);
    assert!(samples.iter().all(|s| s.body() == "service-a"));

    // At most 128 copies per worker wait on the slow shadow: the rest are
    // skipped, not queued, so connections and memory stay bounded.
    assert!(skipped(&envoy, "slow", "slow-backend", "too_many_in_flight") > 0);
    // Each copy in flight holds two descriptors (Envoy's connection to the
    // shadow and the shadow listener's end of it): 128 per worker, 2 workers.
    let extra_fds = peak_fds.saturating_sub(fds_before);
    assert!(extra_fds <= 2 * 128 * 2 + 128, "{extra_fds} more file descriptors at the peak");
    let grown = wasm_memory().saturating_sub(memory_before);
    assert!(grown <= 8 * MIB, "a VM's memory grew by {} MiB", grown / MIB);
    // Copies that were sent and failed are failures; none were skipped for it.
    let failures = |route: &str, cluster: &str| {
        envoy
            .sample(&format!(r#"canary_router_shadow_failures_total{{route="{route}",cluster="{cluster}"}}"#))
    };
    let counted = "the closed and failing shadows' copies to be counted";
    envoy.wait_until_requested(counted, "nowhere.test", || {
        failures("closed", "unreachable-shadow") > 0 && failures("failing", "broken-canary") > 0
    });
    let sent = |route: &str, cluster: &str| {
        envoy
            .sample(&format!(r#"canary_router_shadow_requests_total{{route="{route}",cluster="{cluster}"}}"#))
    };
    assert!(failures("failing", "broken-canary") <= sent("failing", "broken-canary"));
    assert!(failures("closed", "unreachable-shadow") <= sent("closed", "unreachable-shadow"));
    eprintln!(
        "bad shadows: {} live requests, all 200; peak +{extra_fds} fds, VM memory +{} KiB, RSS +{} MiB; \
         slow: {} sent, {} skipped too_many_in_flight",
        samples.len(),
        grown / 1024,
        envoy.rss().saturating_sub(rss_before) / MIB,
        sent("slow", "slow-backend"),
        skipped(&envoy, "slow", "slow-backend", "too_many_in_flight"),
    );
}

/// A rollback split between a canary answering 503 and the stable service.
const ROLLBACK: &str = r#"{"routes": [{"name": "service-b", "hosts": ["b.example.com"], "default": "service-b",
    "rules": [{"split": {
        "weights": [{"target": "broken-canary", "weight": 50}, {"target": "service-b", "weight": 50}],
        "rollback": {"target": "broken-canary", "maxErrorRate": 0.1, "minRequests": 20, "window": "60s"}}}]}]}"#;

#[test]
fn at_two_thousand_requests_a_second_a_rollback_serves_about_min_requests_errors() {
    let envoy = start(ROLLBACK);
    // 8 connections at 250 requests/s each: 2,000 requests/s.
    let traffic = Load::start(envoy.ingress_port(), 8, 250, load::get("b.example.com"));
    thread::sleep(Duration::from_secs(scaled(2, 30)));
    let (samples, rate) = traffic.stop();
    let errors = samples.iter().filter(|s| s.status() == Some(503)).count();
    let others: Vec<_> = samples.iter().filter(|s| s.status() != Some(503)).collect();
    assert!(others.iter().all(|s| s.status() == Some(200) && s.body() == "service-b"));
    // minRequests (20), plus requests already on their way to the canary
    // when the 20th error came back (at most one per connection).
    assert!((20..=20 + 8 + 2).contains(&errors), "{errors} errors served at {rate:.0} requests/s");
    assert!(rate >= 1_000.0, "the load ran at only {rate:.0} requests/s");
    eprintln!("rollback at {rate:.0} requests/s: {errors} errors served before it took effect");
}

/// `routes` routes named after `generation`, for config pushes.
fn generated(routes: usize, generation: &str) -> String {
    let routes: Vec<String> = (0..routes)
        .map(|i| {
            format!(
                r#"{{ "name": "r{i}-{generation}", "hosts": ["h{i}.example.com"], "default": "service-a",
                    "rules": [{{ "match": [{{ "header": "x-v", "exact": "{generation}" }}], "target": "service-a-canary" }}] }}"#
            )
        })
        .collect();
    format!(r#"{{"routes": [{}, {{ "name": "service-a", "default": "service-a" }}]}}"#, routes.join(",\n"))
}

/// Pushes two 500-route configs in turn through ECDS, `pushes` times in
/// all; returns how much Envoy's memory grew after the first `warmup`
/// pushes, and its RSS. Memory here is what Envoy's allocator holds plus
/// the VMs' linear memories (RSS also moves with pages the allocator keeps
/// cached).
/// Memory growth over `pushes` alternating configs after `warmup`: the
/// median of the last five readings against the median of the first five
/// after warm-up, so that a reading taken while the live load holds a
/// request's buffers (other tests share the machine) does not decide.
fn push_churn(envoy: &Envoy, template: &str, warmup: u64, pushes: u64) -> (u64, u64) {
    let success = "extension_config_discovery.http_filter.canary-router.update_success";
    let configs =
        [ecds_file(template, &generated(500, "blue")), ecds_file(template, &generated(500, "green"))];
    let footprint = || envoy.allocated() + envoy.wasm_memories().iter().sum::<u64>();
    let mut readings: Vec<(u64, u64)> = Vec::new();
    for push in 0..pushes {
        envoy.replace_file(ECDS_FILE, &configs[push as usize % 2]);
        envoy.wait_until("Envoy to apply the push", || envoy.stat(success) == Some(push + 2));
        if push + 1 >= warmup {
            readings.push((footprint(), envoy.rss()));
        }
    }
    let median = |part: &[(u64, u64)], pick: fn(&(u64, u64)) -> u64| {
        let mut values: Vec<u64> = part.iter().map(pick).collect();
        values.sort_unstable();
        values[values.len() / 2]
    };
    let (first, last) = (&readings[..5], &readings[readings.len() - 5..]);
    (
        median(last, |r| r.0).saturating_sub(median(first, |r| r.0)),
        median(last, |r| r.1).saturating_sub(median(first, |r| r.1)),
    )
}

#[test]
fn config_pushes_under_mirror_load_never_stop_the_shadowing() {
    // Each push deletes the root that sent the copies in flight; Envoy
    // never answers those calls. Copies must not hold their budget for it.
    let mirrored = |generation: u32| {
        format!(
            r#"{{"routes": [{{"name": "service-a", "default": "service-a",
                "mirror": {{"cluster": "slow-backend", "percent": 100, "timeoutMs": 5000}}}},
                {{"name": "push-{generation}", "hosts": ["push.example.com"], "default": "service-a"}}]}}"#
        )
    };
    let template = std::fs::read_to_string(super::envoy::repo().join(ECDS_FILE)).unwrap();
    let config = EnvoyConfig::over_ecds(&mirrored(0)).replace("fixed_delay: 5s", "fixed_delay: 2s");
    let envoy = Envoy::start(config);
    let sent =
        || envoy.sample(r#"canary_router_shadow_requests_total{route="service-a",cluster="slow-backend"}"#);
    let live = Load::start(envoy.ingress_port(), 4, 100, load::get("a.example.com"));
    let success = "extension_config_discovery.http_filter.canary-router.update_success";
    let pushes = scaled(32, 400);
    for push in 1..=pushes {
        envoy.replace_file(ECDS_FILE, &ecds_file(&template, &mirrored(push as u32)));
        envoy.wait_until("Envoy to apply the push", || envoy.stat(success) == Some(push + 1));
        thread::sleep(Duration::from_millis(250));
    }
    thread::sleep(Duration::from_secs(2));
    let after_pushes = sent();
    thread::sleep(Duration::from_secs(5));
    let later = sent();
    let (samples, rate) = live.stop();
    load::assert_all_ok("live traffic during pushes under mirror load", &samples);
    // The slow shadow answers in 2 s, so at most 128 copies per worker are
    // in flight at once: some 128 copies a second at full budget.
    let copies = later - after_pushes;
    assert!(copies >= 200, "{copies} copies sent in the 5 s after {pushes} pushes at {rate:.0} requests/s");
    eprintln!("pushes under mirror load: {copies} copies sent in the 5 s after {pushes} pushes ({rate:.0} requests/s)");
}

#[test]
fn config_pushes_do_not_grow_memory_and_every_rejection_is_counted() {
    // Each VM's allocator settles after some twenty pushes of alternating
    // 500-route configs (its linear memory grows by a page or two, and wasm
    // memory never shrinks); growth is measured from there.
    let (warmup, pushes) = (30, scaled(80, 1_000));
    // Envoy itself keeps about a kilobyte per ECDS push of any Wasm filter,
    // one that does nothing included: that is the floor, measured the same
    // way with a module whose every callback returns at once (its request
    // callback would trap, but it sees no requests here).
    let noop = std::env::temp_dir().join(format!("canary-router-noop-{}.wasm", std::process::id()));
    std::fs::write(&noop, super::wasm_fixtures::crashing()).unwrap();
    let noop_template = std::fs::read_to_string(super::envoy::repo().join(ECDS_FILE))
        .unwrap()
        .replace("target/wasm32-wasip1/release/canary_router.wasm", &noop.display().to_string());
    let floor = {
        let mut config = EnvoyConfig::from_repo("envoy/live.yaml");
        config.files.push((ECDS_FILE.to_string(), noop_template.clone()));
        let envoy = Envoy::start(config);
        push_churn(&envoy, &noop_template, warmup, pushes).0
    };
    let _ = std::fs::remove_file(&noop);

    let envoy = Envoy::start(EnvoyConfig::from_repo("envoy/live.yaml").with_file(ECDS_FILE));
    let template = std::fs::read_to_string(envoy.dir.join(ECDS_FILE)).unwrap();
    let live = Load::start(envoy.ingress_port(), 2, 100, load::get("a.example.com"));
    let (grown, rss_grown) = push_churn(&envoy, &template, warmup, pushes);
    // Rejected pushes: each distinct bad config is counted once by the
    // filter; Envoy does not run a config it already rejected again.
    let rejected = "extension_config_discovery.http_filter.canary-router.update_rejected";
    for bad in 0..5 {
        let json =
            generated(2, &format!("bad{bad}")).replace(r#""default": "service-a" }]"#, r#""default": "" }]"#);
        envoy.replace_file(ECDS_FILE, &ecds_file(&template, &json));
        envoy.wait_until("Envoy to reject the push", || envoy.stat(rejected) == Some(bad + 1));
    }
    let (samples, _) = live.stop();
    load::assert_all_ok("during config pushes", &samples);
    assert_eq!(envoy.sample("canary_router_config_rejected_total{}"), 5);
    let ours = grown.saturating_sub(floor);
    assert!(
        ours <= MIB,
        "memory grew by {} KiB over {} pushes of 500 routes, {} KiB with a no-op filter",
        grown / 1024,
        pushes - warmup,
        floor / 1024
    );
    eprintln!(
        "config pushes: memory +{} KiB (RSS +{} KiB) over {} pushes of 500 routes; a no-op filter: +{} KiB",
        grown / 1024,
        rss_grown / 1024,
        pushes - warmup,
        floor / 1024
    );
}
