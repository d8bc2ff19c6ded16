//! Reading a config: a JSON file, or the `pluginConfig` of the WasmPlugin
//! documents in a YAML file (as Istio would hand it to the filter).

use std::path::Path;

use canary_router::config;
use canary_router::router::Router;
use serde::Deserialize;
use serde_json::Value;

use crate::Failure;

/// One config found in a file, with where it came from.
pub struct Source {
    /// `FILE`, or `FILE (WasmPlugin NAME)`.
    pub origin: String,
    pub json: String,
}

pub fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

/// Every config in the file: the file itself if it is JSON, else each
/// WasmPlugin's `pluginConfig`.
pub fn sources(path: &Path) -> Result<Vec<Source>, Failure> {
    let text = read(path)?;
    let file = path.display().to_string();
    if text.trim_start().starts_with('{') {
        return Ok(vec![Source { origin: file, json: text }]);
    }
    let mut found = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let value = Value::deserialize(document)
            .map_err(|e| Failure::Usage(format!("{file}: not JSON or YAML: {e}")))?;
        if value["kind"] != "WasmPlugin" {
            continue;
        }
        let name = value["metadata"]["name"].as_str().unwrap_or("?").to_string();
        let plugin_config = value["spec"].get("pluginConfig").cloned().unwrap_or(Value::Null);
        found.push(Source {
            origin: format!("{file} (WasmPlugin {name})"),
            json: serde_json::to_string(&plugin_config).unwrap_or_default(),
        });
    }
    if found.is_empty() {
        return Err(Failure::Usage(format!("{file}: neither a JSON config nor YAML with a WasmPlugin")));
    }
    Ok(found)
}

/// The one config of a file, compiled.
pub fn router(path: &Path) -> Result<(String, Router), Failure> {
    let mut sources = sources(path)?;
    if sources.len() > 1 {
        return Err(Failure::Usage(format!(
            "{}: holds {} WasmPlugins; put the one to use in its own file",
            path.display(),
            sources.len()
        )));
    }
    let source = sources.remove(0);
    let router = config::parse(source.json.as_bytes())
        .map_err(|e| Failure::Invalid(format!("{}: {e}", source.origin)))?;
    Ok((source.origin, router))
}
