//! The `canary-router` command and the built filter run the same core, so
//! they decide alike: what `explain` says is what the `.wasm` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::process::Command;

use harness::{HeaderMap, Proxy};

/// The CLI and the built filter run the same decision code: for the same
/// requests, `explain`'s target is the header the .wasm writes.
#[test]
fn explain_agrees_with_the_built_filter() {
    let mut proxy = Proxy::configured(include_str!("../examples/config.json"));
    let cases: [(&str, &[&str]); 6] = [
        ("http://a.example.com/", &["-H", "foo: bar"]),
        ("http://a.example.com/", &["--cookie", "foo=bar"]),
        ("http://shop.example.com/?foo=bar", &[]),
        ("http://a.example.com/", &["-H", "x-canary: never"]),
        ("http://b.example.com/", &["--cookie", "uid=alice"]),
        ("http://b.example.com/", &["--cookie", "uid=user-3"]),
    ];
    for (url, extra) in cases {
        let mut args = vec!["explain", "examples/config.json", "--url", url];
        args.extend_from_slice(extra);
        let output = Command::new(harness::require_fresh_cli())
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let cli_target = stdout.lines().find_map(|l| l.strip_prefix("target:  ")).unwrap().to_string();
        let host = url.trim_start_matches("http://").split('/').next().unwrap();
        let path = &url[url.find(host).unwrap() + host.len()..];
        let mut headers = HeaderMap::from_pairs([(":authority", host), (":path", path)]);
        match extra {
            ["-H", h] => {
                let (k, v) = h.split_once(": ").unwrap();
                headers.add(k.as_bytes(), v.as_bytes());
            }
            ["--cookie", c] => headers.add(b"cookie", c.as_bytes()),
            _ => {}
        }
        assert_eq!(proxy.send_map(headers).target().unwrap(), cli_target, "{url} {extra:?}");
    }
}
