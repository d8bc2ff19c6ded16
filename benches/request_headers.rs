//! Micro-benchmark (`make bench`): what one request costs inside the built
//! `.wasm`, run in the wasmtime harness. Counted, not timed: wasm
//! instructions (wasmtime's fuel) and calls into the guest per request are
//! the same on every machine and run, so they compare configs and builds
//! exactly; the time per call is printed for scale only. Also: the worst
//! regex on the worst request (bounded by the regex budget), and the
//! guest's memory over 1,000,000 requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::Instant;

use harness::{HeaderMap, Proxy};

fn request(host: &str) -> HeaderMap {
    let text = include_str!("../bench/request-headers.txt");
    let mut map = HeaderMap::from_pairs([
        (":authority", host),
        (":path", "/catalog/items?page=2&sort=price"),
        (":method", "GET"),
        (":scheme", "http"),
    ]);
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, value) = line.split_once(": ").unwrap();
        map.add(name.as_bytes(), value.as_bytes());
    }
    map
}

/// The realistic routes repeated to 1,000, the request's route last (as
/// bench/run.py builds them).
fn thousand_routes() -> String {
    let real: serde_json::Value = serde_json::from_str(include_str!("../bench/realistic.json")).unwrap();
    let routes = real["routes"].as_array().unwrap();
    let mut out: Vec<serde_json::Value> = (0..999)
        .map(|i| {
            let mut route = routes[0].clone();
            route["name"] = format!("r{i}").into();
            route["hosts"] = serde_json::json!([format!("r{i}.example.com")]);
            route
        })
        .collect();
    out.push(routes.last().unwrap().clone());
    serde_json::json!({ "routes": out }).to_string()
}

struct Cost {
    instructions: u64,
    calls: f64,
    ns_per_request: f64,
}

/// Per request, over `n` full exchanges after a warm-up.
fn cost(proxy: &mut Proxy, request: &HeaderMap, n: u64) -> Cost {
    for _ in 0..200 {
        proxy.send_map(request.clone());
    }
    let (instructions, calls) = (proxy.guest_instructions(), proxy.guest_calls());
    let started = Instant::now();
    for _ in 0..n {
        proxy.send_map(request.clone());
    }
    Cost {
        instructions: (proxy.guest_instructions() - instructions) / n,
        calls: (proxy.guest_calls() - calls) as f64 / n as f64,
        ns_per_request: started.elapsed().as_nanos() as f64 / n as f64,
    }
}

fn main() {
    let n = 20_000;
    let configs = [
        ("one-rule", include_str!("../bench/one-rule.json").to_string(), "svc9.example.com"),
        ("realistic", include_str!("../bench/realistic.json").to_string(), "svc9.example.com"),
        ("1000-routes", thousand_routes(), "svc9.example.com"),
    ];
    println!("per request, built .wasm in wasmtime 48 (24 request headers, full exchange):");
    let mut json = Vec::new();
    for (name, config, host) in &configs {
        let mut proxy = Proxy::configured(config);
        let c = cost(&mut proxy, &request(host), n);
        println!(
            "  {name:12} {:6} wasm instructions  {:.0} calls into the guest  ({:.0} ns in wasmtime)",
            c.instructions, c.calls, c.ns_per_request
        );
        json.push(format!(
            r#""{name}": {{"instructions": {}, "calls": {}, "ns": {:.0}}}"#,
            c.instructions, c.calls, c.ns_per_request
        ));
    }

    // The worst a regex condition can cost a request: a pattern at the
    // regex budget's heaviest, on a request whose cookies could feed it far
    // more than the budget pays for.
    let mut worst = Vec::new();
    for (label, pattern) in [("84 states", "[a-z0-9]{8,64}-[0-9]{1,16}x"), ("254 states", "(a|aa){1,84}b")] {
        let states = canary_router_core::text::regex_cost::states(pattern);
        // Values just small enough for the budget to pay for the first.
        let len = (canary_router_core::text::regex_cost::BUDGET / states) as usize;
        let config = format!(
            r#"{{"routes": [{{"name": "r", "default": "d", "rules": [{{"match": [{{"cookie": "s", "regex": "{pattern}"}}], "target": "t"}}]}}]}}"#
        );
        let mut proxy = Proxy::configured(&config);
        let mut hostile = request("svc9.example.com");
        let cookies: Vec<String> = (0..60).map(|_| format!("s={}", "a".repeat(len))).collect();
        hostile.add(b"cookie", cookies.join("; ").as_bytes());
        let c = cost(&mut proxy, &hostile, 2_000);
        println!(
            "  worst regex ({label:10}, 60 values of {len} bytes) {:7} wasm instructions per request",
            c.instructions
        );
        worst.push(format!(r#""{label}": {}"#, c.instructions));
    }

    // Memory: warm up, then a million full request/response exchanges.
    let mut realistic = Proxy::configured(include_str!("../bench/realistic.json"));
    let req = request("svc9.example.com");
    for _ in 0..10_000 {
        realistic.send_map(req.clone());
    }
    let warm = realistic.memory_size();
    for _ in 0..1_000_000 {
        realistic.send_map(req.clone());
    }
    let after = realistic.memory_size();
    println!("guest linear memory: {warm} bytes after 10,000 requests, {after} bytes after 1,010,000");
    let json = format!(
        r#"{{{}, "worst_regex": {{{}}}, "memory_warm": {warm}, "memory_after_1m": {after}}}"#,
        json.join(", "),
        worst.join(", ")
    );
    std::fs::create_dir_all("target").unwrap();
    std::fs::write("target/bench-micro.json", json).unwrap();
    assert_eq!(warm, after, "guest memory grew after warm-up");
}
