//! What a big config costs each VM, in the built `.wasm` (wasmtime's
//! linear memory, as Envoy's V8 grows it): a config at the documented
//! limits (bench/big_config.py: 2,000 routes, 10,000 rules, 1,000
//! regexes, 4 MiB of JSON) and one at a tenth of them, the first push and
//! ten more alternating with a small config. Wasm memory never shrinks, so
//! what a VM holds is the largest it ever needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::Proxy;

fn big_config(fraction: &str) -> Vec<u8> {
    let output = std::process::Command::new("python3")
        .args([concat!(env!("CARGO_MANIFEST_DIR"), "/bench/big_config.py"), "--fraction", fraction])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// The memory a VM grows by for `config`: after its first push, and after
/// ten more alternating with a small one.
fn cost(config: &[u8]) -> (usize, usize) {
    let small = br#"{"routes": [{"name": "r", "default": "d"}]}"#;
    let mut proxy = Proxy::start();
    let base = proxy.memory_size();
    assert!(proxy.configure_bytes(config));
    let first = proxy.memory_size() - base;
    for _ in 0..10 {
        assert!(proxy.configure_bytes(small));
        assert!(proxy.configure_bytes(config));
    }
    (first, proxy.memory_size() - base)
}

#[test]
fn a_big_config_costs_a_bounded_multiple_of_its_json_and_pushes_do_not_grow_it() {
    for fraction in ["1", "0.1"] {
        let config = big_config(fraction);
        let (first, settled) = cost(&config);
        let ratio = first as f64 / config.len() as f64;
        eprintln!(
            "config at {fraction} of the limits: {} bytes of JSON; the VM grew {first} bytes ({ratio:.1}x) on the \
             first push, {settled} after ten more alternating with a small one",
            config.len()
        );
        assert!(ratio <= 5.0, "{ratio:.1}x the JSON");
        assert!(settled as f64 <= first as f64 * 1.05, "pushes grew the VM: {first} then {settled}");
    }
}
