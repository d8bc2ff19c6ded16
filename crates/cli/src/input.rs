//! Reading configs from what users have: the filter's JSON; Istio
//! WasmPlugins (alone, several per file, or in a `kind: List` from
//! `kubectl get -o yaml`); Envoy ECDS resources and bootstraps (every wasm
//! filter of this project in them); several files, a directory, or `-` for
//! standard input. Each config found keeps where it came from, so an error
//! names the file and, in YAML, the line the user edits.

use std::io::Read;
use std::path::{Path, PathBuf};

use canary_router_core::config;
use canary_router_core::routing::router::Router;
use serde::Deserialize;
use serde_json::Value;

use crate::yaml_locate::{self, Step};
use crate::Failure;

/// One config found in a file, with where it came from.
pub struct Source {
    /// `FILE`, `FILE (WasmPlugin NAME)` or `FILE (Envoy filter NAME)`.
    pub origin: String,
    pub json: String,
    /// Where the config sits in a YAML file, to point errors at its lines.
    place: Place,
    /// Things worth a warning about the manifest around the config.
    pub warnings: Vec<String>,
}

enum Place {
    /// A JSON file: the parser's own line and column are the user's.
    Json,
    /// A YAML mapping turned into JSON (`pluginConfig`): errors are placed
    /// by their path under `base`, in the document at `first_line`.
    YamlMapping { text: String, first_line: usize, base: Vec<Step> },
    /// A JSON string inside YAML (`configuration.value`): its lines start
    /// after `line`, indented by `indent` when it is a block scalar.
    YamlString { line: usize, block_indent: Option<usize> },
}

impl Source {
    /// The filter's verdict on this config, with the error placed in the
    /// user's file.
    pub fn parse(&self) -> Result<Router, String> {
        config::parse(self.json.as_bytes()).map_err(|err| {
            let message = crate::hints::did_you_mean(&err.to_string());
            format!("{}: {}", self.origin, self.place(&message))
        })
    }

    fn place(&self, message: &str) -> String {
        let (body, json_at) = split_position(message);
        match &self.place {
            Place::Json => message.to_string(),
            Place::YamlMapping { text, first_line, base } => {
                let path = body.split(": ").next().unwrap_or_default();
                let mut steps = base.clone();
                steps.extend(yaml_locate::parse_path(path).unwrap_or_default());
                match yaml_locate::locate(text, *first_line, &steps) {
                    Some((line, column)) => format!("{body} (line {line} column {column})"),
                    None => body.to_string(),
                }
            }
            Place::YamlString { line, block_indent } => {
                // A meaning error names a path, not a position: find it.
                let at = json_at.or_else(|| json_position(&self.json, body.split(": ").next()?));
                match (at, block_indent) {
                    (Some((l, c)), Some(indent)) => {
                        format!("{body} (line {} column {})", line + l, indent + c)
                    }
                    _ => format!("{body} (in the value at line {line})"),
                }
            }
        }
    }
}

/// Where the value at `path` (`routes[0].rules[1].split`) starts in the
/// JSON text: its line and column.
fn json_position(json: &str, path: &str) -> Option<(usize, usize)> {
    let document = canary_router_core::text::json::parse(json.as_bytes()).ok()?;
    let mut at = document.root();
    for step in yaml_locate::parse_path(path)? {
        at = match step {
            yaml_locate::Step::Key(key) => at.get(&key)?,
            yaml_locate::Step::Index(i) => at.items().nth(i)?,
        };
    }
    let position = at.at();
    Some((position.line as usize, position.column as usize))
}

/// `message at line L column C` into the message and (L, C).
fn split_position(message: &str) -> (&str, Option<(usize, usize)>) {
    let Some((body, at)) = message.rsplit_once(" at line ") else {
        return (message, None);
    };
    let mut numbers = at.split(" column ").map(|n| n.trim().parse::<usize>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(line)), Some(Ok(column))) => (body, Some((line, column))),
        _ => (message, None),
    }
}

/// The text of a file, or of standard input for `-`.
pub fn read(path: &Path) -> Result<String, Failure> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

/// The files a path names: itself, or every `.json`, `.yaml` and `.yml`
/// below a directory, in order.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json" || e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(Failure::Usage(format!("{}: no .json, .yaml or .yml file in it", path.display())));
    }
    Ok(found)
}

/// Every config in every file the paths name.
pub fn sources_of(paths: &[PathBuf]) -> Result<Vec<Source>, Failure> {
    let mut all = Vec::new();
    for path in paths {
        let before = all.len();
        for file in files(path)? {
            // In a directory, manifests without a config (a VirtualService
            // next to its WasmPlugin) are passed over; a file named alone
            // must hold one.
            match sources(&file) {
                Err(Failure::Invalid(why)) if path.is_dir() && why.contains(NONE_FOUND) => {}
                other => all.extend(other?),
            }
        }
        if path.is_dir() && all.len() == before {
            return Err(Failure::Invalid(format!(
                "{}: no file in it holds a canary-router config",
                path.display()
            )));
        }
    }
    Ok(all)
}

const NONE_FOUND: &str = "no canary-router config in it";

/// Every config in one file.
pub fn sources(path: &Path) -> Result<Vec<Source>, Failure> {
    let text = read(path)?;
    let file = if path == Path::new("-") { "<stdin>".to_string() } else { path.display().to_string() };
    let meaningful = text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#') && l != "---"
    });
    if !meaningful {
        return Err(Failure::Invalid(format!("{file}: empty: no config in it")));
    }
    if text.trim_start().starts_with('{') {
        return Ok(vec![Source { origin: file, json: text, place: Place::Json, warnings: Vec::new() }]);
    }
    // Parse the whole stream first: serde's YAML errors then carry the
    // file's own line numbers.
    for document in serde_norway::Deserializer::from_str(&text) {
        Value::deserialize(document).map_err(|e| Failure::Invalid(format!("{file}: not valid YAML: {e}")))?;
    }
    let mut found = Vec::new();
    for (document, first_line) in documents(&text) {
        let value: Value = serde_norway::from_str(&document).unwrap_or(Value::Null);
        let mut here = Here { file: &file, text: &document, first_line, found: &mut found };
        if value["kind"] == "List" {
            for (i, item) in value["items"].as_array().into_iter().flatten().enumerate() {
                here.object(item, vec![Step::Key("items".into()), Step::Index(i)])?;
            }
        } else {
            here.object(&value, Vec::new())?;
        }
    }
    if found.is_empty() {
        return Err(Failure::Invalid(format!(
            "{file}: {NONE_FOUND}: neither a JSON config, a WasmPlugin, a TrafficExtension, an EnvoyExtensionPolicy, nor an Envoy wasm filter with root_id canary-router or dynamic module filter of libcanary_router.so"
        )));
    }
    Ok(found)
}

/// The documents of a YAML stream with the line each starts on.
fn documents(text: &str) -> Vec<(String, usize)> {
    let mut documents = vec![(String::new(), 1)];
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") || line.starts_with("...") {
            documents.push((String::new(), i + 2));
        } else if let Some((document, _)) = documents.last_mut() {
            document.push_str(line);
            document.push('\n');
        }
    }
    documents
}

/// Where the configs of one document are collected.
struct Here<'a> {
    file: &'a str,
    text: &'a str,
    first_line: usize,
    found: &'a mut Vec<Source>,
}

impl Here<'_> {
    fn object(&mut self, value: &Value, at: Vec<Step>) -> Result<(), Failure> {
        if value["kind"] == "WasmPlugin" {
            return self.istio_plugin(value, at, &[]);
        }
        if value["kind"] == "TrafficExtension" {
            return self.istio_plugin(value, at, &["wasm"]);
        }
        if value["kind"] == "EnvoyExtensionPolicy" {
            return self.extension_policy(value, at);
        }
        self.envoy_filters(value, at);
        Ok(())
    }

    /// Envoy Gateway's policy: each `spec.wasm[i]` of this filter (its
    /// `rootID` is canary-router) carries the config as `config`.
    fn extension_policy(&mut self, value: &Value, at: Vec<Step>) -> Result<(), Failure> {
        let name = value["metadata"]["name"].as_str().unwrap_or("?");
        for (i, wasm) in value["spec"]["wasm"].as_array().into_iter().flatten().enumerate() {
            if wasm["rootID"] != "canary-router" {
                continue;
            }
            let origin = format!("{} (EnvoyExtensionPolicy {name}, wasm[{i}])", self.file);
            let Some(config) = wasm.get("config") else {
                return Err(Failure::Invalid(format!(
                    "{origin}: spec.wasm[{i}].config is missing: the filter would get no config"
                )));
            };
            let mut warnings: Vec<String> = underscore_warning(&origin, config).into_iter().collect();
            if wasm["failOpen"] == true {
                warnings.push(fail_open(
                    &origin,
                    &format!("spec.wasm[{i}].failOpen: true"),
                    "failOpen: false",
                ));
            }
            // The digest sits with the code's source: `code.http.sha256`
            // or `code.image.sha256`.
            let source = wasm["code"]["type"].as_str().unwrap_or_default().to_ascii_lowercase();
            let digest_at = format!("spec.wasm[{i}].code.{source}.sha256");
            let digest = &wasm["code"][source.as_str()]["sha256"];
            if let Some(warning) = digest_problem(&origin, &digest_at, digest, "Envoy Gateway")? {
                warnings.push(warning);
            }
            self.policy_config(origin, config, &at, "wasm", i, warnings);
        }
        for (i, module) in value["spec"]["dynamicModule"].as_array().into_iter().flatten().enumerate() {
            if module["name"] != "canary-router" && module["filterName"] != "canary-router" {
                continue;
            }
            let origin = format!("{} (EnvoyExtensionPolicy {name}, dynamicModule[{i}])", self.file);
            let Some(config) = module.get("config") else {
                return Err(Failure::Invalid(format!(
                    "{origin}: spec.dynamicModule[{i}].config is missing: the filter would get no config"
                )));
            };
            let warnings = underscore_warning(&origin, config).into_iter().collect();
            self.policy_config(origin, config, &at, "dynamicModule", i, warnings);
        }
        Ok(())
    }

    /// The config of an EnvoyExtensionPolicy's `spec.LIST[i]`, placed at its
    /// YAML lines.
    fn policy_config(
        &mut self,
        origin: String,
        config: &Value,
        at: &[Step],
        list: &str,
        i: usize,
        warnings: Vec<String>,
    ) {
        let mut steps = at.to_vec();
        steps.extend([
            Step::Key("spec".into()),
            Step::Key(list.into()),
            Step::Index(i),
            Step::Key("config".into()),
        ]);
        self.found.push(Source {
            origin,
            json: serde_json::to_string(config).unwrap_or_default(),
            place: Place::YamlMapping {
                text: self.text.to_string(),
                first_line: self.first_line,
                base: steps,
            },
            warnings,
        });
    }

    /// Istio's plugin objects: a WasmPlugin holds the module's fields in
    /// `spec`, a TrafficExtension (Istio's newer API) in `spec.wasm`
    /// (`inner`).
    fn istio_plugin(&mut self, value: &Value, mut at: Vec<Step>, inner: &[&str]) -> Result<(), Failure> {
        let name = value["metadata"]["name"].as_str().unwrap_or("?");
        let kind = value["kind"].as_str().unwrap_or("?");
        let origin = format!("{} ({kind} {name})", self.file);
        let fields = inner.iter().fold(&value["spec"], |v, k| &v[*k]);
        let place: String =
            std::iter::once("spec").chain(inner.iter().copied()).collect::<Vec<_>>().join(".");
        let Some(plugin_config) = fields.get("pluginConfig") else {
            let near = fields.as_object().into_iter().flatten().map(|(k, _)| k.as_str()).find(|k| {
                k.eq_ignore_ascii_case("pluginConfig") || crate::hints::distance(k, "pluginConfig") <= 3
            });
            return Err(Failure::Invalid(match near {
                Some(key) => format!("{origin}: {place}.{key}: did you mean `pluginConfig`? Istio ignores `{key}` and the filter gets no config"),
                None => format!("{origin}: {place}.pluginConfig is missing: the filter would get no config"),
            }));
        };
        let mut warnings = Vec::new();
        if fields["failStrategy"] == "FAIL_OPEN" {
            warnings.push(fail_open(&origin, &format!("{place}.failStrategy: FAIL_OPEN"), "FAIL_RELOAD"));
        }
        if let Some(warning) =
            digest_problem(&origin, &format!("{place}.sha256"), &fields["sha256"], "Istio")?
        {
            warnings.push(warning);
        }
        at.push(Step::Key("spec".into()));
        at.extend(inner.iter().map(|k| Step::Key((*k).into())));
        at.push(Step::Key("pluginConfig".into()));
        self.found.push(Source {
            origin,
            json: serde_json::to_string(plugin_config).unwrap_or_default(),
            place: Place::YamlMapping { text: self.text.to_string(), first_line: self.first_line, base: at },
            warnings,
        });
        Ok(())
    }

    /// Every Envoy wasm filter config of this project below `value`: an
    /// ECDS resource, a bootstrap, or anything else that holds one.
    fn envoy_filters(&mut self, value: &Value, at: Vec<Step>) {
        match value {
            Value::Object(map) => {
                let is_wasm = map
                    .get("@type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"));
                let ours = |config: &Value| {
                    config["root_id"] == "canary-router"
                        || config["vm_config"]["code"]["local"]["filename"]
                            .as_str()
                            .is_some_and(|f| f.contains("canary_router"))
                };
                // `map[key]` on a map panics when the key is missing; a
                // Value answers Null.
                let config = map.get("config").unwrap_or(&Value::Null);
                if is_wasm && ours(config) {
                    if let Some(json) = config["configuration"]["value"].as_str() {
                        let name = config["name"].as_str().or(config["root_id"].as_str()).unwrap_or("?");
                        let origin = format!("{} (Envoy wasm filter {name})", self.file);
                        let mut steps = at.clone();
                        steps.extend(["config", "configuration", "value"].map(|k| Step::Key(k.into())));
                        let fail_open =
                            config["fail_open"] == true || config["failure_policy"] == "FAIL_OPEN";
                        self.envoy_filter(origin, json, &steps, fail_open);
                    }
                    return;
                }
                if is_our_module(map) {
                    if let Some(json) = map["filter_config"]["value"].as_str() {
                        let name = map.get("filter_name").and_then(Value::as_str).unwrap_or("?");
                        let origin = format!("{} (Envoy dynamic module filter {name})", self.file);
                        let mut steps = at.clone();
                        steps.extend(["filter_config", "value"].map(|k| Step::Key(k.into())));
                        self.envoy_filter(origin, json, &steps, false);
                    }
                    return;
                }
                for (key, child) in map {
                    let mut here = at.clone();
                    here.push(Step::Key(key.clone()));
                    self.envoy_filters(child, here);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let mut here = at.clone();
                    here.push(Step::Index(i));
                    self.envoy_filters(child, here);
                }
            }
            _ => {}
        }
    }

    /// A filter's JSON config held as a string at `steps`.
    fn envoy_filter(&mut self, origin: String, json: &str, steps: &[Step], fail_open: bool) {
        let line = yaml_locate::locate(self.text, self.first_line, steps).map_or(self.first_line, |(l, _)| l);
        // A `value: |` block: its lines follow, indented like its first one.
        let line_text = self.text.lines().nth(line - self.first_line).unwrap_or_default();
        let block = line_text.trim_end().ends_with('|') || line_text.trim_end().ends_with("|-");
        let block_indent = block
            .then(|| self.text.lines().nth(line - self.first_line + 1))
            .flatten()
            .map(|next| next.len() - next.trim_start().len());
        let mut warnings = Vec::new();
        if fail_open {
            warnings.push(self::fail_open(&origin, "failure_policy FAIL_OPEN", "FAIL_RELOAD"));
        }
        self.found.push(Source {
            origin,
            json: json.to_string(),
            place: Place::YamlString { line, block_indent },
            warnings,
        });
    }
}

/// An Envoy `DynamicModuleFilter` that loads this project's module, by
/// name (`libcanary_router.so` from the search path) or by path.
fn is_our_module(map: &serde_json::Map<String, Value>) -> bool {
    let is_module = map
        .get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"));
    let Some(loads) = map.get("dynamic_module_config") else { return false };
    let by_path =
        loads["module"]["local"]["filename"].as_str().is_some_and(|f| f.ends_with("libcanary_router.so"));
    is_module && (loads["name"] == "canary_router" || by_path)
}

/// Envoy Gateway refuses a header name with `_` in an HTTPRoute match.
fn underscore_warning(origin: &str, config: &Value) -> Option<String> {
    config["targetHeader"].as_str().is_some_and(|h| h.contains('_')).then(|| {
        format!("{origin}: targetHeader has a `_`: Envoy Gateway refuses such a header name in an HTTPRoute match, so nothing can route on it")
    })
}

/// A digest the shipped manifests carry until the user sets the real one:
/// 64 times the same character.
/// A plugin's digest at `at`: a warning for a placeholder (one digit 64
/// times), an error for anything that is not 64 hex digits (the proxy
/// could never load the module), nothing when absent or well formed.
fn digest_problem(origin: &str, at: &str, sha: &Value, home: &str) -> Result<Option<String>, Failure> {
    let Some(sha) = sha.as_str() else {
        return match sha {
            Value::Null => Ok(None),
            other => Err(Failure::Invalid(format!("{origin}: {at} is {other}, not 64 hex digits"))),
        };
    };
    if !is_sha256(sha) {
        return Err(Failure::Invalid(format!(
            "{origin}: {at} `{sha}` is not a sha256 (64 hex digits): {home} could never load the module"
        )));
    }
    Ok(sha.bytes().all(|b| b == sha.as_bytes()[0]).then(|| {
        format!("{origin}: {at} is a placeholder: set the digest `make oci` printed, or {home} refuses the module")
    }))
}

/// 64 lower-case hex digits, as both homes want a sha256.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The warning for a plugin or filter that fails open: `setting` as the
/// file spells it, `instead` the safe value there.
fn fail_open(origin: &str, setting: &str, instead: &str) -> String {
    format!(
        "{origin}: {setting} lets requests through unrouted when the filter fails, so a client's own \
         target header reaches the upstream; use {instead} (docs/envoy.md#failure-policy)"
    )
}

/// The one config the paths hold, compiled (`explain`, `simulate`).
pub fn router(path: &Path) -> Result<(String, Router), Failure> {
    let mut sources = sources_of(&[path.to_path_buf()])?;
    if sources.len() > 1 {
        let names: Vec<&str> = sources.iter().map(|s| s.origin.as_str()).collect();
        return Err(Failure::Usage(format!(
            "{}: holds {} configs ({}); put the one to use in its own file",
            path.display(),
            sources.len(),
            names.join(", ")
        )));
    }
    let source = sources.remove(0);
    let router = source.parse().map_err(Failure::Invalid)?;
    Ok((source.origin, router))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_positions_move_into_the_yaml_block_that_holds_the_json() {
        assert_eq!(
            split_position("routes: expected a list at line 3 column 7"),
            ("routes: expected a list", Some((3, 7)))
        );
        assert_eq!(
            split_position("routes[0].name: must be unique"),
            ("routes[0].name: must be unique", None)
        );
        let source = Source {
            origin: "f".into(),
            json: String::new(),
            place: Place::YamlString { line: 20, block_indent: Some(10) },
            warnings: Vec::new(),
        };
        assert_eq!(source.place("x: bad at line 3 column 7"), "x: bad (line 23 column 17)");
        // An error of meaning names a path: it is found in the JSON.
        let source = Source {
            json: "{\n  \"routes\": [\n    {\"name\": \"r\", \"default\": \"a b\"}\n  ]\n}".into(),
            ..source
        };
        assert_eq!(
            source.place("routes[0].default: `a b` must be visible ASCII"),
            "routes[0].default: `a b` must be visible ASCII (line 23 column 40)"
        );
    }

    #[test]
    fn documents_keep_their_first_line() {
        let docs = documents("a: 1\n---\nb: 2\nc: 3\n---\nd: 4\n");
        let starts: Vec<usize> = docs.iter().map(|(_, l)| *l).collect();
        assert_eq!(starts, vec![1, 3, 6]);
    }
}
