//! A bounded-time fuzzer of the config parser and the request path, run in
//! CI: mutated configs and hostile header, cookie and query bytes, through
//! the native decision code (no panic) and through the built `.wasm` in the
//! harness (no trap, the same decisions as native, no memory growth).
//!
//! `FUZZ_SECONDS` sets the time per target (default 4; `make fuzz` runs
//! longer). Known crashers live in `tests/fuzz_regressions/` and are
//! replayed first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use canary_router_core::config;
use canary_router_core::hashing::rng::Rng;
use canary_router_core::request::Request;
use canary_router_core::routing::router::Reason;
use canary_router_core::routing::split::{Choice, Moment};
use harness::{HeaderMap, Proxy};

const EXAMPLE: &str = include_str!("../examples/config.json");

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    Duration::from_secs(seconds)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x00c0_ffee)
}

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

/// Keeps a failing input and fails the test with where it is.
fn report(kind: &str, input: &[u8], why: &str) -> ! {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{kind}-{:016x}.txt",
        canary_router_core::hashing::hash::Fingerprint::default().field("input", input).finish()
    ));
    std::fs::write(&path, input).unwrap();
    panic!("{why}\ninput kept in {} (copy it to tests/fuzz_regressions/)", path.display());
}

/// Bytes that matter to parsers: separators, quotes, escapes, controls,
/// non-UTF-8, and the words the configs use.
const PIECES: &[&[u8]] = &[
    b";",
    b"=",
    b"&",
    b"?",
    b"#",
    b"%",
    b"%zz",
    b"%4",
    b"%00",
    b"%ff",
    b"+",
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b",",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\xc3\x28",
    b"\xe2\x82",
    b"foo",
    b"bar",
    b"baz",
    b"uid",
    b"a",
    b"service-a-canary",
    b"x-route-target",
    b"cookie",
    b"[",
    b"]",
    b"{",
    b"}",
    b":",
    b"/",
    b"*",
    b".example.com",
];

fn junk(rng: &mut Rng, max_pieces: u64) -> Vec<u8> {
    let n = rng.next_u64() % (max_pieces + 1);
    let mut out = Vec::new();
    for _ in 0..n {
        if rng.next_u64().is_multiple_of(4) {
            out.push((rng.next_u64() % 256) as u8);
        } else {
            out.extend_from_slice(PIECES[(rng.next_u64() % PIECES.len() as u64) as usize]);
        }
    }
    out
}

/// A hostile request: random headers, cookies, path and query.
fn hostile_request(rng: &mut Rng) -> Vec<(Vec<u8>, Vec<u8>)> {
    let hosts: [&[u8]; 5] = [b"a.example.com", b"b.example.com", b"x.example.com:443", b"", b"[::1]:80"];
    let mut path = b"/".to_vec();
    path.extend(junk(rng, 6));
    path.push(b'?');
    path.extend(junk(rng, 30));
    let mut headers = vec![
        (b":authority".to_vec(), hosts[(rng.next_u64() % 5) as usize].to_vec()),
        (b":path".to_vec(), path),
        (b":method".to_vec(), b"GET".to_vec()),
    ];
    for _ in 0..rng.next_u64() % 6 {
        headers.push((b"cookie".to_vec(), junk(rng, 25)));
    }
    let names: [&[u8]; 5] = [b"foo", b"x-canary", b"x-route-target", b"x-fuzz", b"uid"];
    for _ in 0..rng.next_u64() % 6 {
        headers.push((names[(rng.next_u64() % 5) as usize].to_vec(), junk(rng, 12)));
    }
    if rng.next_u64().is_multiple_of(50) {
        headers.push((b"cookie".to_vec(), vec![b'x'; 64 * 1024]));
    }
    headers
}

/// A request from a regression file: `name: value` lines, `\xNN` escapes.
fn parse_request_file(text: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let unescape = |s: &str| -> Vec<u8> {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\x") && i + 4 <= bytes.len() {
                if let Ok(b) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    };
    text.lines()
        .filter_map(|line| {
            let split = if let Some(rest) = line.strip_prefix(':') {
                rest.find(": ").map(|i| i + 1)
            } else {
                line.find(": ")
            };
            split.map(|i| (unescape(&line[..i]), unescape(&line[i + 2..])))
        })
        .collect()
}

/// The native decision, if it does not depend on a random roll.
fn deterministic_target(
    router: &config_router::Router,
    headers: &[(Vec<u8>, Vec<u8>)],
) -> Option<Option<String>> {
    let request = Request::new(headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect());
    match router.decide(&request, &Moment::roll(0)) {
        None => Some(None),
        Some(d) if matches!(d.reason, Reason::Split(Choice::Random { .. })) => None,
        Some(d) => Some(Some(d.target.to_string())),
    }
}

mod config_router {
    pub use canary_router_core::routing::router::Router;
}

/// Mutates a config: flips, inserts, deletes, duplicates, number swaps.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.next_u64() % 4 {
        let at = if out.is_empty() { 0 } else { (rng.next_u64() % out.len() as u64) as usize };
        match rng.next_u64() % 6 {
            0 if !out.is_empty() => out[at] = (rng.next_u64() % 256) as u8,
            1 => {
                let piece = junk(rng, 3);
                out.splice(at..at, piece);
            }
            2 if !out.is_empty() => {
                let end = (at + 1 + (rng.next_u64() % 16) as usize).min(out.len());
                out.drain(at..end);
            }
            3 if !out.is_empty() => {
                let end = (at + 1 + (rng.next_u64() % 40) as usize).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            4 => {
                let numbers: [&[u8]; 8] =
                    [b"-1", b"0", b"1e309", b"0.5", b"100.0", b"18446744073709551616", b"-0", b"1e-300"];
                let n = numbers[(rng.next_u64() % 8) as usize];
                out.splice(at..at, n.iter().copied());
            }
            _ => {
                let keys: [&[u8]; 8] = [
                    b"\"ramp\": {\"target\": \"a\", \"start\": \"2026-01-01T00:00:00Z\", \"every\": \"1s\", \"steps\": [1, 100]},",
                    b"\"rollback\": {\"target\": \"a\", \"maxErrorRate\": 0.5, \"minRequests\": 1, \"window\": \"1s\"},",
                    b"\"assignCookie\": {\"name\": \"v\"},",
                    b"\"mirror\": {\"cluster\": \"c\", \"percent\": 50},",
                    b"\"stickyBy\": {\"cookie\": \"uid\"},",
                    b"\"not\": true,",
                    b"\"regex\": \"(a|b)*c{2,}\",",
                    b"\"oneOf\": [],",
                ];
                let k = keys[(rng.next_u64() % 8) as usize];
                out.splice(at..at, k.iter().copied());
            }
        }
    }
    out
}

const SEED_CONFIGS: &[&str] = &[
    EXAMPLE,
    r#"{"routes": [{"name": "b", "default": "stable", "mirror": {"cluster": "c", "percent": 50}, "rules": [{"split": {"weights": [{"target": "canary", "weight": 20}, {"target": "stable", "weight": 80}], "stickyBy": {"cookie": "uid"}, "assignCookie": {"name": "v", "maxAge": 60}, "ramp": {"target": "canary", "start": "2026-01-01T00:00:00Z", "every": "1m", "steps": [5, 50]}, "rollback": {"target": "canary", "maxErrorRate": 0.1, "minRequests": 5, "window": "10s"}}}]}]}"#,
];

#[test]
fn configs_never_panic_the_parser_or_trap_the_filter() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(regressions()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("config-") {
            inputs.push(std::fs::read(entry.path()).unwrap());
        }
    }
    assert!(inputs.len() >= 3, "the regression configs are missing");
    let mut proxy = Proxy::start();
    let mut rng = Rng::new(seed());
    let started = Instant::now();
    let (mut tried, mut accepted) = (0u64, 0u64);
    loop {
        let input = if let Some(input) = inputs.pop() {
            input
        } else {
            if started.elapsed() > budget() {
                break;
            }
            let base = SEED_CONFIGS[(rng.next_u64() % SEED_CONFIGS.len() as u64) as usize];
            mutate(&mut rng, base.as_bytes())
        };
        let native = catch_unwind(AssertUnwindSafe(|| config::parse(&input).is_ok()))
            .unwrap_or_else(|_| report("config", &input, "config::parse panicked"));
        // The filter must agree with the native parser (every 4th input:
        // configuring the VM is the slow part).
        if tried.is_multiple_of(4) {
            let in_wasm = proxy.configure_bytes(&input);
            if in_wasm != native {
                report("config", &input, &format!("native accepted={native}, the .wasm accepted={in_wasm}"));
            }
        }
        tried += 1;
        accepted += u64::from(native);
    }
    eprintln!("config fuzz: {tried} configs, {accepted} accepted, in {:?}", started.elapsed());
    assert!(tried > 100 && accepted > 0, "the fuzzer barely ran: {tried} tried, {accepted} accepted");
}

#[test]
fn hostile_requests_never_trap_and_match_the_native_decision() {
    let router = config::parse(EXAMPLE.as_bytes()).unwrap();
    let mut proxy = Proxy::configured(EXAMPLE);
    let mut progressive = Proxy::configured(SEED_CONFIGS[1]);
    let mut requests: Vec<Vec<(Vec<u8>, Vec<u8>)>> = Vec::new();
    for entry in std::fs::read_dir(regressions()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("request-") {
            requests.push(parse_request_file(&std::fs::read_to_string(entry.path()).unwrap()));
        }
    }
    let mut rng = Rng::new(seed() ^ 0x5151);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut warm_memory = None;
    loop {
        let headers = match requests.pop() {
            Some(headers) => headers,
            None if started.elapsed() > budget() => break,
            None => hostile_request(&mut rng),
        };
        let serialized: Vec<u8> =
            headers.iter().flat_map(|(k, v)| [k.as_slice(), b": ", v.as_slice(), b"\n"].concat()).collect();
        let native = catch_unwind(AssertUnwindSafe(|| deterministic_target(&router, &headers)))
            .unwrap_or_else(|_| report("request", &serialized, "Router::decide panicked"));
        let map = HeaderMap::from_pairs(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let exchange = proxy.send_map(map.clone());
        progressive.exchange_with_body(map, &[b"body"], HeaderMap::from_pairs([(":status", "503")]));
        if let Some(want) = native {
            let got = exchange
                .upstream
                .get_bytes(b"x-route-target")
                .map(|v| String::from_utf8_lossy(v).into_owned());
            if got != want {
                report("request", &serialized, &format!("native decided {want:?}, the .wasm wrote {got:?}"));
            }
        }
        sent += 1;
        if sent.is_multiple_of(200) {
            progressive.tick();
        }
        if sent == 2_000 {
            warm_memory = Some(proxy.memory_size());
        }
    }
    eprintln!("request fuzz: {sent} requests in {:?}", started.elapsed());
    assert!(sent > 2_000, "the fuzzer barely ran: {sent} requests");
    let (warm, end) = (warm_memory.unwrap(), proxy.memory_size());
    assert!(end <= warm + (1 << 20), "guest memory grew from {warm} to {end} bytes under fuzzing");
}

/// Number texts where readers differ: halfway cases, subnormals, long
/// mantissas, huge exponents.
fn number_text(rng: &mut Rng) -> String {
    const EDGES: [&str; 10] = [
        "2.2250738585072011e-308",
        "4.9e-324",
        "2.4703282292062328e-324",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "0e99999999999",
        "1e-99999999999",
        "9007199254740993",
        "1.00000000000000011102230246251565404236316680908203125",
        "-0",
    ];
    if rng.next_u64().is_multiple_of(4) {
        return EDGES[(rng.next_u64() % EDGES.len() as u64) as usize].to_string();
    }
    let digits = 1 + rng.next_u64() % 30;
    let mut text: String = (0..digits).map(|_| char::from(b'0' + (rng.next_u64() % 10) as u8)).collect();
    if text.len() > 1 && text.starts_with('0') {
        text.replace_range(0..1, "7");
    }
    if rng.next_u64().is_multiple_of(2) {
        text.push('.');
        text.extend((0..1 + rng.next_u64() % 20).map(|_| char::from(b'0' + (rng.next_u64() % 10) as u8)));
    }
    if rng.next_u64().is_multiple_of(2) {
        text += &format!("e{}", (rng.next_u64() % 700) as i64 - 350);
    }
    text
}

/// `config` with one of its numbers (a weight, a percentage) replaced.
fn with_number(config: &str, number: &str, rng: &mut Rng) -> Vec<u8> {
    let bytes = config.as_bytes();
    let starts: Vec<usize> = (1..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && matches!(bytes[i - 1], b' ' | b'[' | b':' | b','))
        .collect();
    let start = starts[(rng.next_u64() % starts.len() as u64) as usize];
    let end = start + bytes[start..].iter().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
    [&bytes[..start], number.as_bytes(), &bytes[end..]].concat()
}

/// Walks both documents together; the first difference, if any.
fn differs(
    ours: canary_router_core::text::json::Json<'_>,
    theirs: &serde_json::Value,
    at: &str,
) -> Option<String> {
    use canary_router_core::text::json::Kind as K;
    match (ours.kind(), theirs) {
        (K::Null, serde_json::Value::Null) => None,
        (K::Bool, serde_json::Value::Bool(b)) if ours.bool() == Some(*b) => None,
        (K::String, serde_json::Value::String(b)) if ours.str() == Some(b.as_str()) => None,
        (K::Number, serde_json::Value::Number(b)) => {
            let (a, b) = (ours.number().unwrap_or(f64::NAN), b.as_f64().unwrap());
            let text = ours.number_text().unwrap_or("");
            (a.to_bits() != b.to_bits()).then(|| format!("{at}: `{text}` read as {a:e}, serde_json {b:e}"))
        }
        (K::Array, serde_json::Value::Array(b)) if ours.items().count() == b.len() => {
            ours.items().zip(b).enumerate().find_map(|(i, (x, y))| differs(x, y, &format!("{at}[{i}]")))
        }
        (K::Object, serde_json::Value::Object(b)) if ours.entries().count() == b.len() => {
            ours.entries().zip(b).find_map(|((k, x), (l, y))| {
                if k.str() != Some(l.as_str()) {
                    return Some(format!("{at}: key `{:?}` vs `{l}`", k.str()));
                }
                differs(x, y, &format!("{at}.{l}"))
            })
        }
        (kind, _) => Some(format!("{at}: {} vs {theirs}", kind.words())),
    }
}

/// Documented differences (src/json.rs): a key given twice and nesting
/// beyond 64 levels are refused; serde_json keeps the last value and nests
/// to 128.
fn refused_on_purpose(error: &canary_router_core::text::json::SyntaxError) -> bool {
    error.message.starts_with("duplicate field") || error.message.starts_with("nested deeper than")
}

#[test]
fn the_json_reader_agrees_with_serde_json_on_mutated_configs() {
    let mut rng = Rng::new(seed() ^ 0x1507);
    let (mut accepted, mut numbers_seen) = (0, 0);
    for round in 0..100_000u32 {
        let base = SEED_CONFIGS[(rng.next_u64() % SEED_CONFIGS.len() as u64) as usize];
        let input = if round.is_multiple_of(2) {
            mutate(&mut rng, base.as_bytes())
        } else {
            // The config with one of its numbers written another way.
            numbers_seen += 1;
            with_number(base, &number_text(&mut rng), &mut rng)
        };
        let ours = canary_router_core::text::json::parse(&input);
        let theirs = serde_json::from_slice::<serde_json::Value>(&input);
        match (&ours, &theirs) {
            (Ok(ours), Ok(theirs)) => {
                accepted += 1;
                if let Some(difference) = differs(ours.root(), theirs, "config") {
                    report("json", &input, &difference);
                }
            }
            (Err(error), Ok(_)) if refused_on_purpose(error) => {}
            (Err(_), Err(_)) => {}
            (ours, theirs) => report(
                "json",
                &input,
                &format!("ours: {:?}, serde_json: {:?}", ours.as_ref().err(), theirs.as_ref().err()),
            ),
        }
    }
    eprintln!(
        "json differential: 100000 configs, {accepted} accepted by both, {numbers_seen} numbers rewritten"
    );
    assert!(accepted > 40_000, "too few valid configs to compare: {accepted}");
}
