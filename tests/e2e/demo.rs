//! `make demo` is what a newcomer runs first: it must show every capability
//! working in the real Envoy, without a terminal, and leave nothing behind.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::envoy;

#[test]
fn make_demo_shows_every_capability_without_a_terminal_and_stops_everything() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let mut demo = Command::new("python3")
        .arg("scripts/demo.py")
        .current_dir(root)
        .env("ENVOY", envoy::binary())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut output = String::new();
    demo.stdout.take().unwrap().read_to_string(&mut output).unwrap();
    let mut errors = String::new();
    demo.stderr.take().unwrap().read_to_string(&mut errors).unwrap();
    let status = demo.wait().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "make demo failed ({status}):\n{output}\n{errors}");
    assert!(took < Duration::from_secs(120), "make demo took {took:?}");
    assert!(!output.contains('\x1b'), "colour codes without a terminal:\n{output}");
    for expected in [
        "header foo: bar",
        "-> 200 service-a-canary",
        "no match: stays on A",
        "-> 200 service-a\n",
        "200 service-b-canary",
        "200 service-b  (100.0%)",
        "200 service-b-canary  (100.0%)",
        "-> 200 blue",
        "-> 200 green",
        " green, 0 errors",
        "the shadow backend received 10 copies",
        "no traffic yet: still step 1 of 3",
        "step 2 of 3 earned after",
        "step 3 of 3 earned after",
        "service-b-canary got 400 of 400 requests (100%)",
        "503 broken-canary",
        "(every worker knows by then): 0 errors, all from service-b",
        "canary_router_rolled_back{route=\"broken\"",
        "canary_router_shadow_requests_total{route=\"service-a\",cluster=\"service-a-shadow\"}",
        "Envoy stopped.",
    ] {
        assert!(output.contains(expected), "{expected:?} not in the demo's output:\n{output}");
    }
    // The measured 20% split, within a few points.
    let share: f64 = output
        .lines()
        .find(|l| l.contains("200 service-b-canary  (") && !l.contains("100.0%"))
        .and_then(|l| l.split('(').nth(1)?.split('%').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no measured share:\n{output}"));
    assert!((15.0..25.0).contains(&share), "canary share {share}%:\n{output}");
    // Nothing left listening.
    for port in [9901, 10000, 10101, 10110] {
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still open after the demo");
    }
}

/// The config the demo's Envoy validates with is the demo's own example.
#[test]
fn the_demos_shipped_ecds_resource_holds_examples_demo_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let resource = std::fs::read_to_string(root.join("envoy/demo/canary-router.yaml")).unwrap();
    let value: serde_json::Value = serde_norway::from_str(&resource).unwrap();
    let embedded =
        value["resources"][0]["typed_config"]["config"]["configuration"]["value"].as_str().unwrap();
    let embedded: serde_json::Value = serde_json::from_str(embedded).unwrap();
    let example: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("examples/demo.json")).unwrap()).unwrap();
    assert_eq!(embedded, example);
}
