//! The bench's big configs (bench/big_config.py) for the tests that load
//! them: the harness's memory bound and the end-to-end push from a JSON
//! ECDS file.

/// The config at `fraction` of the documented limits, as JSON.
pub fn big_config(fraction: &str) -> Vec<u8> {
    let output = std::process::Command::new("python3")
        .args([concat!(env!("CARGO_MANIFEST_DIR"), "/bench/big_config.py"), "--fraction", fraction])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}
