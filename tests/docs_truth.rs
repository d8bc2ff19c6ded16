//! Pages that describe what the code does, held to it: each test reads a
//! page and the code (or the files) it describes, so a change to one
//! without the other fails here. tests/readme.rs does the same for the
//! reference tables, links and the README's configs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "harness/built.rs"]
mod built;
mod pages;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use canary_router_core::config;
use pages::{anchor, read, root};

/// The first fenced block after the line starting with `heading`.
fn block_after(page: &str, heading: &str) -> String {
    let text = read(page);
    let at = text.find(heading).unwrap_or_else(|| panic!("{page} has no {heading:?}"));
    let rest = &text[at..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

/// The row of a Markdown table whose first cell is `` `key` ``, in the
/// table after `caption`.
fn row(page: &str, caption: &str, key: &str) -> String {
    let text = read(page);
    let at = text.find(caption).unwrap_or_else(|| panic!("{page} has no {caption:?}"));
    text[at..]
        .lines()
        .find(|line| line.starts_with(&format!("| `{key}` |")))
        .unwrap_or_else(|| panic!("{page}: no row for `{key}` after {caption:?}"))
        .to_string()
}

/// The split table summarises each object a split holds: its row names
/// every key of that object and links to its table, so a new key (a gate,
/// a hold, a latency) cannot be left out of the summary.
#[test]
fn the_split_table_names_every_key_of_the_objects_a_split_holds() {
    let mut checked = 0;
    for key in config::shape::SPLIT.keys {
        let config::shape::Kind::Object(object) = key.kind else { continue };
        let Some((page, caption)) = object.doc else { continue };
        let summary = row("docs/config.md", "## Split (`rules[j].split`)", key.name);
        let heading = caption.trim_start_matches('#').trim();
        let link = format!("({}#{})", page.trim_start_matches("docs/"), anchor(heading));
        assert!(summary.contains(&link), "the `{}` row does not link to {link}: {summary}", key.name);
        for inner in object.keys {
            assert!(
                summary.contains(&format!("`{}`", inner.name)),
                "the `{}` row does not name `{}`: {summary}",
                key.name,
                inner.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} objects of a split checked");
}

/// docs/config.md's example errors are what the filter says, word for word.
#[test]
fn the_documented_config_errors_are_the_filter_s() {
    let route = |name: &str, rest: &str| {
        format!(r#"{{"name": "{name}", "hosts": ["{name}.example.com"], "default": "s"{rest}}}"#)
    };
    let configs = [
        format!(
            r#"{{"routes": [{}, {}]}}"#,
            route("a", ""),
            route("b", r#", "rules": [{"split": {"weights": [{"target": "c", "weight": 0}]}}]"#)
        ),
        format!(
            r#"{{"routes": [{}]}}"#,
            route(
                "a",
                r#", "rules": [{"match": [{"header": "h", "exact": "1"}], "target": "c"},
                   {"match": [{"header": "h", "exact": "1", "regex": "2"}], "target": "c"}]"#
            )
        ),
        format!(
            r#"{{"routes": [{}]}}"#,
            route("a", r#", "rules": [{"match": [{"header": "h", "exect": "1"}], "target": "c"}]"#)
        ),
        format!(r#"{{"routes": [{}, {}]}}"#, route("r", ""), route("r", "")),
        r#"{"routes": [{"name": "a", "hosts": ["a.com", "a.com:80"], "default": "s"}]}"#.to_string(),
    ];
    let said: Vec<String> = configs
        .iter()
        .map(|json| config::parse(json.as_bytes()).err().unwrap_or_else(|| panic!("accepted: {json}")))
        .map(|e| e.to_string())
        .collect();
    let documented: Vec<String> =
        block_after("docs/config.md", "## Errors").lines().map(str::to_string).collect();
    assert_eq!(documented, said, "docs/config.md's example errors");
}

/// Run `canary-router` with `args`; its stdout.
fn cli(args: &[&str]) -> String {
    let output = Command::new(built::require_fresh_cli()).args(args).current_dir(root()).output().unwrap();
    assert!(output.status.success(), "canary-router {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Each `curl` of docs/envoy-gateway.md's walkthrough reaches the version
/// its comment names, by the shipped policy's config.
#[test]
fn the_envoy_gateway_walkthrough_s_curls_reach_what_they_say() {
    let page = read("docs/envoy-gateway.md");
    let curls: Vec<&str> = page.lines().map(str::trim).filter(|l| l.starts_with("curl ")).collect();
    assert!(curls.len() >= 3, "{curls:?}");
    assert!(page.contains("GATEWAY=$(kubectl get gateway canary-gateway"), "GATEWAY is never set");
    for curl in curls {
        let (command, comment) = curl.split_once("   # ").unwrap_or_else(|| panic!("no comment: {curl}"));
        let expected = if comment.starts_with("B'") { "fixed" } else { "stable" };
        let mut args = vec!["explain".to_string(), "envoy-gateway/extension-policy.yaml".to_string()];
        for header in command.split("-H '").skip(1).map(|h| h.split('\'').next().unwrap()) {
            args.push("-H".into());
            args.push(header.to_string());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&argv);
        let target = out.lines().find_map(|l| l.strip_prefix("target:")).unwrap_or("").trim();
        assert_eq!(target, expected, "`{curl}` reaches {target}:\n{out}");
    }
}

fn yaml_documents(file: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(file).unwrap();
    text.split("\n---")
        .filter_map(|doc| serde_norway::from_str::<serde_json::Value>(doc).ok())
        .filter(|doc| doc.is_object())
        .collect()
}

/// istio/README.md: its table lists each directory's files, and its
/// commands make what the manifests assume: their namespaces, the Gateway
/// API CRDs for the Gateway API kinds, the ambient label for a waypoint.
#[test]
fn the_istio_walkthrough_makes_what_its_manifests_need() {
    let readme = read("istio/README.md");
    let mut namespaces = BTreeSet::new();
    let mut gateway_api = false;
    let mut waypoint = false;
    let mut dirs: Vec<_> =
        std::fs::read_dir(root().join("istio")).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let table_row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}/` |")))
            .unwrap_or_else(|| panic!("istio/README.md has no row for {name}/"));
        for file in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            let file_name = file.file_name().unwrap().to_str().unwrap().to_string();
            assert!(table_row.contains(&format!("`{file_name}`")), "the {name}/ row omits {file_name}");
            for doc in yaml_documents(&file) {
                if let Some(ns) = doc["metadata"]["namespace"].as_str() {
                    namespaces.insert(ns.to_string());
                }
                let api = doc["apiVersion"].as_str().unwrap_or("");
                gateway_api |= api.starts_with("gateway.networking.k8s.io/");
                waypoint |= doc["spec"]["gatewayClassName"] == "istio-waypoint";
            }
        }
    }
    for ns in namespaces.iter().filter(|ns| !["default", "istio-system"].contains(&ns.as_str())) {
        assert!(
            readme.contains(&format!("kubectl create namespace {ns}")),
            "istio/README.md never creates {ns}"
        );
    }
    if gateway_api {
        assert!(
            readme.contains("gateway-api/releases/download/") && readme.contains("standard-install.yaml"),
            "istio/README.md does not install the Gateway API CRDs its manifests use"
        );
    }
    if waypoint {
        assert!(
            readme.contains("istio.io/dataplane-mode=ambient"),
            "istio/README.md does not put the waypoint's namespace in the ambient mesh"
        );
    }
    assert!(gateway_api && waypoint && namespaces.contains("istio-ingress"), "{namespaces:?}");
}

/// docs/migration.md's "needs already there" for Envoy Gateway names what
/// envoy-gateway/gateway.yaml writes and what its GatewayClass refers to.
#[test]
fn the_migration_guide_names_what_envoy_gateway_needs_already_there() {
    let row = row("docs/migration.md", "| `--to` | Writes | Needs already there |", "envoy-gateway");
    let needs = row.rsplit(" | ").nth(1).unwrap_or("").to_string() + row.rsplit('|').nth(1).unwrap_or("");
    for doc in yaml_documents(&root().join("envoy-gateway/gateway.yaml")) {
        let kind = doc["kind"].as_str().unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap();
        assert!(
            needs.contains(&format!("{kind} `{name}`")) || needs.contains(&format!("{kind} {name}")),
            "the envoy-gateway row does not say what gateway.yaml's {kind} {name} is for: {needs}"
        );
        if let Some(reference) = doc["spec"]["parametersRef"].as_object() {
            let kind = reference["kind"].as_str().unwrap();
            assert!(needs.contains(&format!("`{kind}`")), "the row omits the {kind} the GatewayClass names");
            assert!(needs.contains("envoy-gateway/envoy-proxy.yaml"), "the row omits envoy-proxy.yaml");
        }
    }
}

/// Every metric the filter defines has its row in docs/metrics.md.
#[test]
fn every_metric_the_filter_defines_is_documented() {
    let source = read("crates/core/src/rollout/metrics.rs");
    let doc = read("docs/metrics.md");
    let names: Vec<&str> = source
        .split('"')
        .filter(|s| s.starts_with("canary_router_") && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        assert!(doc.contains(&format!("| `{name}` |")), "docs/metrics.md has no row for {name}");
    }
}

/// A number after `label` in `text`, commas allowed (`290,576`).
fn number_after(text: &str, label: &str) -> u64 {
    let at = text.find(label).unwrap_or_else(|| panic!("no {label:?}")) + label.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {label:?}"))
}

/// docs/performance.md's sizes are this build's, within 3%: the `.wasm`
/// `make build` writes, and cargo's own module before wasm-opt.
#[test]
fn the_documented_size_is_the_build_s() {
    let page = read("docs/performance.md");
    let optimized = number_after(&page, "320 KiB (327,680 bytes) budget: **");
    let cargo = number_after(&page, "Cargo's own build is ");
    let wasm = built::require_fresh_wasm();
    let linked = built::linked_wasm();
    let size = |p: &Path| p.metadata().unwrap().len();
    let near = |built: u64, documented: u64| built.abs_diff(documented) * 100 <= documented * 3;
    if linked == wasm {
        // Built without wasm-opt: the `.wasm` is cargo's.
        assert!(
            near(size(&wasm), cargo),
            "{} bytes; docs/performance.md says cargo's is {cargo}",
            size(&wasm)
        );
    } else {
        assert!(near(size(&wasm), optimized), "{} bytes; docs/performance.md says {optimized}", size(&wasm));
        assert!(
            near(size(&linked), cargo),
            "cargo's {} bytes; docs/performance.md says {cargo}",
            size(&linked)
        );
    }
}
