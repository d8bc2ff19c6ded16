//! Micro-benchmark (`make bench`): one `on_http_request_headers` call of the
//! built `.wasm` in the wasmtime harness, one-rule vs realistic config, the
//! native decision alone (what the call spends deciding), and the guest's
//! memory after 1,000,000 requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use canary_router::config;
use canary_router::request::Request;
use canary_router::split::Moment;
use harness::{HeaderMap, Proxy};

fn request() -> HeaderMap {
    let text = include_str!("../bench/request-headers.txt");
    let mut map = HeaderMap::from_pairs([
        (":authority", "svc9.example.com"),
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

fn ns_per(total: Duration, n: usize) -> f64 {
    total.as_nanos() as f64 / n as f64
}

/// The median of five timed batches, in ns per call.
fn per_call(proxy: &mut Proxy, request: &HeaderMap, n: usize) -> f64 {
    proxy.time_request_headers(request, n / 10);
    let mut samples: Vec<f64> = (0..5).map(|_| ns_per(proxy.time_request_headers(request, n), n)).collect();
    samples.sort_by(f64::total_cmp);
    samples[2]
}

fn main() {
    let request = request();
    let one = include_str!("../bench/one-rule.json");
    let real = include_str!("../bench/realistic.json");
    let n = 50_000;

    let mut one_rule = Proxy::configured(one);
    let mut realistic = Proxy::configured(real);
    let one_ns = per_call(&mut one_rule, &request, n);
    let real_ns = per_call(&mut realistic, &request, n);

    // The decision alone, natively: what the call spends deciding.
    let router = config::parse(real.as_bytes()).unwrap();
    let pairs: Vec<(&[u8], &[u8])> =
        request.pairs().iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    let started = Instant::now();
    let mut sink = 0usize;
    for i in 0..n {
        let view = Request::new(pairs.clone());
        sink += router.decide(&view, &Moment::roll(i as u32)).map_or(0, |d| d.target.len());
    }
    let native_ns = ns_per(started.elapsed(), n);

    // Memory: warm up, then a million full request/response exchanges.
    for _ in 0..10_000 {
        realistic.send_map(request.clone());
    }
    let warm = realistic.memory_size();
    for _ in 0..1_000_000 {
        realistic.send_map(request.clone());
    }
    let after = realistic.memory_size();

    println!("on_http_request_headers, wasmtime 48, 24 request headers (median of 5 x {n} calls):");
    println!("  one-rule config      {one_ns:8.0} ns/call");
    println!("  realistic config     {real_ns:8.0} ns/call   ({:.2}x the one-rule call)", real_ns / one_ns);
    println!("  native decide only   {native_ns:8.0} ns/call   (realistic; {sink} bytes of targets)");
    println!("guest linear memory: {warm} bytes after 10,000 requests, {after} bytes after 1,010,000");
    let json = format!(
        r#"{{"one_rule_ns": {one_ns:.0}, "realistic_ns": {real_ns:.0}, "native_decide_ns": {native_ns:.0}, "memory_warm": {warm}, "memory_after_1m": {after}}}"#
    );
    std::fs::create_dir_all("target").unwrap();
    std::fs::write("target/bench-micro.json", json).unwrap();
    assert_eq!(warm, after, "guest memory grew after warm-up");
}
