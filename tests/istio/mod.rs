//! Reading Kubernetes manifests (`istio/`, `envoy-gateway/`, generated
//! ones) as the tests and the API server do, and turning a WasmPlugin's
//! `pluginConfig` into the JSON Istio hands the filter.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

pub struct Document {
    /// Path under the directory read (`istio/`, `envoy-gateway/`).
    pub file: String,
    pub value: Value,
}

/// The repository: the workspace root above whichever crate's tests
/// include this module.
fn repo() -> std::path::PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|dir| dir.join("Cargo.lock").is_file()).unwrap_or(manifest).to_path_buf()
}

/// Every YAML document under `istio/`, in a stable order.
pub fn all_documents() -> Vec<Document> {
    documents_under("istio")
}

/// Every YAML document under the repo's directory `dir`, in a stable order.
pub fn documents_under(dir: &str) -> Vec<Document> {
    let root = repo().join(dir);
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut documents = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.strip_prefix(&root).unwrap().display().to_string();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{dir}/{file}: {e}"));
            if !value.is_null() {
                documents.push(Document { file: file.clone(), value });
            }
        }
    }
    documents
}

/// How numbers come out of a protobuf `Struct`, where every number is a double.
#[derive(Clone, Copy, Debug)]
pub enum NumberStyle {
    /// Go's protojson, as istiod marshals `pluginConfig`: `20`, `0.5`.
    Protojson,
    /// Every number written as a double: `20.0`, `0.5`.
    Doubles,
}

/// The plugin config as the `StringValue` JSON the filter receives.
pub fn plugin_config_json(wasm_plugin: &Value, style: NumberStyle) -> String {
    fn convert(value: &Value, style: NumberStyle) -> Value {
        match value {
            Value::Number(n) => {
                let double = n.as_f64().unwrap();
                match style {
                    // protojson prints a whole double without a fraction.
                    NumberStyle::Protojson if double.fract() == 0.0 && double.abs() < 1e15 => {
                        Value::Number((double as i64).into())
                    }
                    _ => Value::Number(serde_json::Number::from_f64(double).unwrap()),
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| convert(v, style)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), convert(v, style))).collect())
            }
            other => other.clone(),
        }
    }
    serde_json::to_string(&convert(&wasm_plugin["spec"]["pluginConfig"], style)).unwrap()
}

/// Every target a compiled config can send traffic to.
pub fn reachable_targets(json: &str) -> (String, BTreeSet<String>) {
    let router = canary_router_core::config::parse(json.as_bytes()).unwrap();
    let mut targets = BTreeSet::new();
    for route in &router.routes {
        targets.insert(route.default.clone());
        for rule in &route.rules {
            match &rule.action {
                canary_router_core::routing::route::Action::Target(t) => {
                    targets.insert(t.clone());
                }
                canary_router_core::routing::route::Action::Split(split) => {
                    for (t, w) in split.targets().iter().zip(split.weights()) {
                        if *w > 0.0 {
                            targets.insert(t.clone());
                        }
                    }
                }
            }
        }
    }
    (router.target_header, targets)
}

/// Runs tests/k8s/check_manifests.py (its packages from `make yaml11`) over
/// files: each as the API server reads it, against the upstream CRDs.
pub fn check_as_the_api_server_reads(files: &[std::path::PathBuf]) -> std::process::Output {
    let root = repo();
    let venv = root.join(".venv/bin/python");
    let python = if venv.exists() { venv } else { "python3".into() };
    let output = std::process::Command::new(&python)
        .arg(root.join("tests/k8s/check_manifests.py"))
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "a package of the manifest check is missing ({}): run `make yaml11`",
        stderr.lines().last().unwrap_or_default()
    );
    output
}

/// Every document of a YAML stream, as JSON values.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text).map(|d| Value::deserialize(d).unwrap()).collect()
}
