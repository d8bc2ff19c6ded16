//! `canary-router from-nginx`: ingress-nginx canary Ingress pairs to a
//! config, keeping ingress-nginx's semantics: `canary-by-header` (with
//! `always`/`never`, or `-value`, or `-pattern`) before `canary-by-cookie`
//! (`always`/`never`) before `canary-weight` (of `canary-weight-total`).

use std::path::PathBuf;

use canary_router::config;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::input;
use crate::Failure;

const PREFIX: &str = "nginx.ingress.kubernetes.io/";
const CANARY_KEYS: &[&str] = &[
    "canary",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
];

struct Ingress {
    name: String,
    annotations: Map<String, Value>,
    /// (host, path, path type, service)
    paths: Vec<(String, String, String, String)>,
}

impl Ingress {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(&format!("{PREFIX}{key}")).and_then(Value::as_str)
    }

    fn is_canary(&self) -> bool {
        self.annotation("canary") == Some("true")
    }
}

fn parse(value: &Value, origin: &str) -> Result<Ingress, Failure> {
    let name = value["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let annotations = value["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    let mut paths = Vec::new();
    for rule in value["spec"]["rules"].as_array().into_iter().flatten() {
        let host = rule["host"].as_str().unwrap_or("").to_string();
        for path in rule["http"]["paths"].as_array().into_iter().flatten() {
            let service = path["backend"]["service"]["name"].as_str().ok_or_else(|| {
                Failure::Invalid(format!("{origin}: Ingress {name}: a path has no backend.service.name"))
            })?;
            paths.push((
                host.clone(),
                path["path"].as_str().unwrap_or("/").to_string(),
                path["pathType"].as_str().unwrap_or("Prefix").to_string(),
                service.to_string(),
            ));
        }
    }
    Ok(Ingress { name, annotations, paths })
}

fn rule(name: &str, condition: Value, target: &str) -> Value {
    json!({ "name": name, "match": [condition], "target": target })
}

/// ingress-nginx's `always` / `never` values of a `canary-by-header` or
/// `canary-by-cookie`: the first sends to the canary, the second never does.
fn always_never(source: &str, key: &str, canary: &str, stable: &str) -> [Value; 2] {
    [("always", canary), ("never", stable)].map(|(value, target)| {
        rule(&format!("nginx canary-by-{source} {value}"), json!({ source: key, "exact": value }), target)
    })
}

pub fn run(files: &[PathBuf]) -> Result<(), Failure> {
    let mut ingresses = Vec::new();
    for file in files {
        let text = input::read(file)?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .map_err(|e| Failure::Usage(format!("{}: not YAML: {e}", file.display())))?;
            if value["kind"] == "Ingress" {
                ingresses.push(parse(&value, &file.display().to_string())?);
            }
        }
    }
    let (canaries, mains): (Vec<&Ingress>, Vec<&Ingress>) = ingresses.iter().partition(|i| i.is_canary());
    if canaries.is_empty() {
        return Err(Failure::Invalid(format!(
            "no Ingress with annotation {PREFIX}canary: \"true\" among {} Ingress(es)",
            ingresses.len()
        )));
    }
    let mut warnings = Vec::new();
    for ingress in &ingresses {
        for key in ingress.annotations.keys() {
            if let Some(short) = key.strip_prefix(PREFIX) {
                if !CANARY_KEYS.contains(&short) {
                    warnings.push(format!("Ingress {}: annotation {key} is not carried over", ingress.name));
                }
            }
        }
    }
    let mut routes = Vec::new();
    for canary in &canaries {
        for (host, path, path_type, canary_service) in &canary.paths {
            let main = mains.iter().find_map(|m| {
                m.paths.iter().find(|(h, p, _, _)| h == host && p == path).map(|found| (m, found))
            });
            let Some((main, (_, _, _, stable))) = main else {
                return Err(Failure::Invalid(format!(
                    "canary Ingress {}: no main Ingress serves host {host:?} path {path:?}",
                    canary.name
                )));
            };
            if path_type == "Exact" {
                warnings.push(format!(
                    "Ingress {}: path {path} is Exact; canary-router matches it as a prefix",
                    main.name
                ));
            }
            routes.push(route(canary, host, path, stable, canary_service, &mut warnings)?);
        }
    }
    warnings.push(
        "targets are the Services' names: in Envoy, name the clusters after them; in Istio, make them subsets"
            .to_string(),
    );
    let config = json!({ "routes": routes });
    let text = serde_json::to_string_pretty(&config).unwrap_or_default();
    // What we print must be a config the filter accepts.
    config::parse(text.as_bytes())
        .map_err(|e| Failure::Invalid(format!("the translated config is invalid: {e}")))?;
    for warning in warnings {
        eprintln!("canary-router: warning: {warning}");
    }
    println!("{text}");
    Ok(())
}

fn route(
    canary: &Ingress,
    host: &str,
    path: &str,
    stable: &str,
    canary_service: &str,
    warnings: &mut Vec<String>,
) -> Result<Value, Failure> {
    let mut rules = Vec::new();
    if let Some(header) = canary.annotation("canary-by-header") {
        let value = canary.annotation("canary-by-header-value");
        let pattern = canary.annotation("canary-by-header-pattern");
        if let Some(value) = value {
            if pattern.is_some() {
                warnings.push(format!(
                    "Ingress {}: canary-by-header-pattern is ignored when canary-by-header-value is set (as ingress-nginx does)",
                    canary.name
                ));
            }
            rules.push(rule(
                "nginx canary-by-header-value",
                json!({ "header": header, "exact": value }),
                canary_service,
            ));
        } else if let Some(pattern) = pattern {
            if regex_lite::Regex::new(pattern).is_err() {
                return Err(Failure::Invalid(format!(
                    "Ingress {}: canary-by-header-pattern {pattern:?} uses PCRE syntax regex-lite lacks",
                    canary.name
                )));
            }
            warnings.push(format!(
                "Ingress {}: canary-by-header-pattern is now a regex-lite pattern (no look-around or backreferences); check it",
                canary.name
            ));
            rules.push(rule(
                "nginx canary-by-header-pattern",
                json!({ "header": header, "regex": pattern }),
                canary_service,
            ));
        } else {
            rules.extend(always_never("header", header, canary_service, stable));
        }
    }
    if let Some(cookie) = canary.annotation("canary-by-cookie") {
        rules.extend(always_never("cookie", cookie, canary_service, stable));
    }
    let number = |key: &str, default: f64| -> Result<f64, Failure> {
        match canary.annotation(key) {
            None => Ok(default),
            Some(text) => text.trim().parse::<f64>().ok().filter(|n| *n >= 0.0).ok_or_else(|| {
                Failure::Invalid(format!(
                    "Ingress {}: {key} {text:?} is not a non-negative number",
                    canary.name
                ))
            }),
        }
    };
    let total = number("canary-weight-total", 100.0)?;
    let weight = number("canary-weight", 0.0)?.min(total);
    if weight > 0.0 {
        rules.push(json!({
            "name": "nginx canary-weight",
            "split": { "weights": [
                { "target": canary_service, "weight": weight },
                { "target": stable, "weight": total - weight }
            ] }
        }));
    }
    let mut route = Map::new();
    route.insert("name".into(), json!(format!("{}{path}", if host.is_empty() { "*" } else { host })));
    if !host.is_empty() {
        route.insert("hosts".into(), json!([host]));
    }
    route.insert("pathPrefix".into(), json!(path));
    route.insert("default".into(), json!(stable));
    route.insert("rules".into(), Value::Array(rules));
    Ok(Value::Object(route))
}
