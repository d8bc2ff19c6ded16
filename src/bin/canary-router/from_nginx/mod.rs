//! `canary-router from-nginx`: Ingresses to a config, behaving as the
//! source did. ingress-nginx canary pairs keep ingress-nginx's order:
//! `canary-by-header` (`always`/`never`, or `-value`, or `-pattern`)
//! before `canary-by-cookie` (`always`/`never`) before `canary-weight` (of
//! `canary-weight-total`). ACK's `service-match` / `service-weight` are in
//! `ack.rs`. What cannot carry over is a warning naming the Ingress.

mod ack;
mod homes;
mod ingress;

use std::path::PathBuf;

use canary_router::config;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::input;
use crate::Failure;
pub use homes::{Home, Image};
use homes::{Placement, Service};
use ingress::{Backend, Ingress, PREFIX};

/// The annotations this translation reads (on the canary or main Ingress).
const UNDERSTOOD: &[&str] = &[
    "canary",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
    "affinity",
    "affinity-canary-behavior",
    "session-cookie-name",
    "session-cookie-max-age",
    "session-cookie-path",
    "session-cookie-secure",
    "service-match",
    "service-weight",
];

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

/// Every Ingress in the files (also inside a `kind: List`).
fn read_ingresses(files: &[PathBuf]) -> Result<Vec<Ingress>, Failure> {
    let mut ingresses = Vec::new();
    for file in files {
        let text = input::read(file)?;
        let origin = file.display().to_string();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .map_err(|e| Failure::Usage(format!("{origin}: not YAML: {e}")))?;
            let items = if value["kind"] == "List" {
                value["items"].as_array().cloned().unwrap_or_default()
            } else {
                vec![value]
            };
            for item in items.iter().filter(|v| v["kind"] == "Ingress") {
                ingresses.push(ingress::parse(item, &origin)?);
            }
        }
    }
    Ok(ingresses)
}

/// The Service a backend of `ingress` names.
fn service_of(ingress: &Ingress, backend: &Backend) -> Service {
    Service {
        name: backend.service.clone(),
        namespace: ingress.namespace.clone(),
        port: backend.port.clone(),
        ingress: ingress.name.clone(),
    }
}

/// Where an ACK route lives: the Ingress's namespace, and every Service on
/// its host and path.
fn ack_placement(ingress: &Ingress, route: Value) -> Placement {
    let host = route["hosts"][0].as_str().unwrap_or("");
    let path = route["pathPrefix"].as_str().unwrap_or("/");
    let on_path: Vec<&ingress::Path> =
        ingress.paths.iter().filter(|p| p.host == host && p.path == path).collect();
    let mut services: Vec<Service> = Vec::new();
    for p in &on_path {
        if !services.iter().any(|s| s.name == p.backend.service) {
            services.push(service_of(ingress, &p.backend));
        }
    }
    let path_type = on_path.first().map(|p| p.path_type.clone());
    Placement { route, namespace: ingress.namespace.clone(), path_type, services }
}

pub fn run(files: &[PathBuf], home: Home, image: &Image) -> Result<(), Failure> {
    let ingresses = read_ingresses(files)?;
    let (canaries, others): (Vec<&Ingress>, Vec<&Ingress>) = ingresses.iter().partition(|i| i.is_canary());
    let (acks, mains): (Vec<&Ingress>, Vec<&Ingress>) = others.into_iter().partition(|i| ack::is_ack(i));
    if canaries.is_empty() && acks.is_empty() {
        return Err(Failure::Invalid(format!(
            "no canary among {} Ingress(es): none has {PREFIX}canary: \"true\" (ingress-nginx) or \
             {PREFIX}service-match / service-weight (ACK)",
            ingresses.len()
        )));
    }
    let mut warnings = Vec::new();
    for ingress in &ingresses {
        for short in ingress.nginx_annotations() {
            if !UNDERSTOOD.contains(&short) {
                warnings.push(format!(
                    "Ingress {}: annotation {PREFIX}{short} is not carried over",
                    ingress.name
                ));
            }
        }
    }
    let mut placements = Vec::new();
    for ingress in &acks {
        for route in ack::routes(ingress, &mut warnings)? {
            placements.push(ack_placement(ingress, route));
        }
    }
    for canary in &canaries {
        if canary.paths.is_empty() {
            placements.push(default_server_route(canary, &mains, &mut warnings)?);
            continue;
        }
        for path in &canary.paths {
            let main = mains.iter().find_map(|m| {
                m.paths.iter().find(|p| p.host == path.host && p.path == path.path).map(|found| (m, found))
            });
            let Some((main, found)) = main else {
                return Err(Failure::Invalid(format!(
                    "canary Ingress {}: no main Ingress serves host {:?} path {:?}",
                    canary.name, path.host, path.path
                )));
            };
            if path.path_type == "Exact" {
                warnings.push(format!(
                    "Ingress {}: path {} is Exact; canary-router matches it as a prefix",
                    main.name, path.path
                ));
            }
            let rules = rules(canary, main, &found.backend, &path.backend, &mut warnings)?;
            let mut route = route(&path.host, Some(&path.path), &found.backend.service, rules);
            // Kubernetes matches a Prefix path by whole elements.
            if path.path_type == "Prefix" && path.path != "/" {
                route["pathElements"] = json!(true);
            }
            placements.push(Placement {
                route,
                namespace: main.namespace.clone(),
                path_type: Some(path.path_type.clone()),
                services: vec![service_of(canary, &path.backend), service_of(main, &found.backend)],
            });
        }
    }
    if home != Home::Json {
        homes_leave_out(&ingresses, &placements, &mut warnings);
    }
    if home == Home::Json {
        // A home's routing objects carry each Service's port; the bare
        // config names Services only, so the port is the user's to route to.
        for service in placements.iter().flat_map(|p| &p.services) {
            if let Some(port) = service.port.as_deref().filter(|p| *p != "80") {
                warnings.push(format!(
                    "Ingress {}: Service {} is reached on port {port}: the Envoy cluster (or Istio subset) named {} must send to that port",
                    service.ingress, service.name, service.name
                ));
            }
        }
        warnings.push(
            "targets are the Services' names: in Envoy, name the clusters after them; in Istio, make them subsets \
             (or let --to write the routing objects)"
                .to_string(),
        );
    }
    let routes: Vec<Value> = placements.iter().map(|p| p.route.clone()).collect();
    let config = json!({ "routes": routes });
    // What we print must be a config the filter accepts.
    let router = config::parse(serde_json::to_string(&config).unwrap_or_default().as_bytes())
        .map_err(|e| Failure::Invalid(format!("the translated config is invalid: {e}")))?;
    let converted = homes::Converted { config: &config, router: &router, placements: &placements, image };
    let text = homes::manifests(home, &converted, &mut warnings)?;
    let mut said = std::collections::HashSet::new();
    for warning in warnings.iter().filter(|w| said.insert(w.as_str())) {
        eprintln!("canary-router: warning: {warning}");
    }
    println!("{}", text.trim_end());
    Ok(())
}

/// What the routing objects of a home do not cover: main paths without a
/// canary, and TLS.
fn homes_leave_out(ingresses: &[Ingress], placements: &[Placement], warnings: &mut Vec<String>) {
    for ingress in ingresses {
        if ingress.tls {
            warnings.push(format!(
                "Ingress {}: spec.tls is not carried over: give the gateway's listener the certificate",
                ingress.name
            ));
        }
        if ingress.is_canary() {
            continue;
        }
        for path in &ingress.paths {
            let covered = placements.iter().any(|p| {
                p.route["hosts"][0].as_str().unwrap_or("") == path.host
                    && p.route["pathPrefix"].as_str() == Some(path.path.as_str())
            });
            if !covered {
                warnings.push(format!(
                    "Ingress {}: host {:?} path {} has no canary: it is not converted here (ingress2gateway converts it)",
                    ingress.name, path.host, path.path
                ));
            }
        }
    }
}

/// A canary Ingress with only `spec.defaultBackend`: ingress-nginx attaches
/// it to the default server, the catch-all for hosts no Ingress names,
/// whose mainline is a main Ingress's `spec.defaultBackend`.
fn default_server_route(
    canary: &Ingress,
    mains: &[&Ingress],
    warnings: &mut Vec<String>,
) -> Result<Placement, Failure> {
    let Some(canary_backend) = &canary.default_backend else {
        return Err(Failure::Invalid(format!(
            "canary Ingress {}: has neither rules nor spec.defaultBackend, so ingress-nginx attaches it to nothing",
            canary.name
        )));
    };
    let Some((main, stable)) = mains.iter().find_map(|m| m.default_backend.as_ref().map(|b| (m, b))) else {
        return Err(Failure::Invalid(format!(
            "canary Ingress {}: has only spec.defaultBackend, so ingress-nginx attaches it to the default \
             server (hosts no Ingress names), whose mainline is a main Ingress's spec.defaultBackend; \
             none of the Ingresses given has one: add the main Ingress with the default backend",
            canary.name
        )));
    };
    warnings.push(format!(
        "canary Ingress {}: only spec.defaultBackend: its rules apply to hosts no route names (the default server), as in ingress-nginx",
        canary.name
    ));
    let rules = rules(canary, main, stable, canary_backend, warnings)?;
    Ok(Placement {
        route: route("", None, &stable.service, rules),
        namespace: main.namespace.clone(),
        path_type: None,
        services: vec![service_of(canary, canary_backend), service_of(main, stable)],
    })
}

/// A route of the translated config, keys in the order a reader expects.
/// `host` empty: any host; `path` none: every path (the default server).
fn route(host: &str, path: Option<&str>, default: &str, rules: Vec<Value>) -> Value {
    let name = match path {
        Some(path) => format!("{}{path}", if host.is_empty() { "*" } else { host }),
        None => "default-server".to_string(),
    };
    let mut route = Map::new();
    route.insert("name".into(), json!(name));
    if !host.is_empty() {
        route.insert("hosts".into(), json!([host]));
    }
    if let Some(path) = path {
        route.insert("pathPrefix".into(), json!(path));
    }
    route.insert("default".into(), json!(default));
    route.insert("rules".into(), Value::Array(rules));
    Value::Object(route)
}

/// PCRE syntax regex-lite does not have: look-around, back-references,
/// atomic groups, possessive repetition.
fn uses_pcre_only(pattern: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!", "(?>", "*+", "++", "?+"].iter().any(|s| pattern.contains(s))
        || pattern.as_bytes().windows(2).any(|w| w[0] == b'\\' && w[1].is_ascii_digit() && w[1] != b'0')
}

/// The rules of a canary pair, in ingress-nginx's order: header, cookie,
/// weight.
fn rules(
    canary: &Ingress,
    main: &Ingress,
    stable: &Backend,
    canary_backend: &Backend,
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>, Failure> {
    let (stable, canary_service) = (stable.service.as_str(), canary_backend.service.as_str());
    let affinity = affinity_cookie(canary, main, warnings);
    let mut forced = Vec::new();
    if let Some(header) = canary.annotation("canary-by-header") {
        forced.extend(header_rules(canary, header, canary_service, stable, warnings)?);
    }
    if let Some(cookie) = canary.annotation("canary-by-cookie") {
        forced.extend(always_never("cookie", cookie, canary_service, stable));
    }
    // ingress-nginx's affinity pins a user forced to a version by header
    // or cookie too: later requests without them stay there.
    let mut rules: Vec<Value> = match &affinity {
        Some(cookie) => forced.into_iter().map(|rule| pinned(rule, canary_service, stable, cookie)).collect(),
        None => forced,
    };
    if let Some(mut split) = weight_split(canary, canary_service, stable, warnings)? {
        if let Some(cookie) = affinity {
            split["assignCookie"] = cookie;
        }
        rules.push(json!({ "name": "nginx canary-weight", "split": split }));
    }
    Ok(rules)
}

/// A rule to one target turned into a split that sends all to it and sets
/// the assignment cookie, so the user stays on that version after.
fn pinned(mut rule: Value, canary: &str, stable: &str, cookie: &Value) -> Value {
    let Some(map) = rule.as_object_mut() else { return rule };
    let Some(target) = map.remove("target") else { return rule };
    let other = if target == canary { stable } else { canary };
    map.insert(
        "split".into(),
        json!({
            "weights": [{ "target": target, "weight": 100 }, { "target": other, "weight": 0 }],
            "assignCookie": cookie,
        }),
    );
    rule
}

/// `canary-by-header` with its `-value` (exact), `-pattern` (regex) or
/// neither (`always` / `never`).
fn header_rules(
    canary: &Ingress,
    header: &str,
    canary_service: &str,
    stable: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>, Failure> {
    let value = canary.annotation("canary-by-header-value");
    let pattern = canary.annotation("canary-by-header-pattern");
    if let Some(value) = value {
        if pattern.is_some() {
            warnings.push(format!(
                "Ingress {}: canary-by-header-pattern is ignored when canary-by-header-value is set (as ingress-nginx does)",
                canary.name
            ));
        }
        let condition = json!({ "header": header, "exact": value });
        return Ok(vec![rule("nginx canary-by-header-value", condition, canary_service)]);
    }
    let Some(pattern) = pattern else {
        return Ok(always_never("header", header, canary_service, stable).into());
    };
    match regex_lite::Regex::new(pattern) {
        Ok(_) => {
            warnings.push(format!(
                "Ingress {}: canary-by-header-pattern is now a regex-lite pattern (no look-around or back-references); check it",
                canary.name
            ));
            let condition = json!({ "header": header, "regex": pattern });
            Ok(vec![rule("nginx canary-by-header-pattern", condition, canary_service)])
        }
        Err(_) if uses_pcre_only(pattern) => Err(Failure::Invalid(format!(
            "Ingress {}: canary-by-header-pattern {pattern:?} uses PCRE features regex-lite lacks \
             (look-around, back-references, atomic or possessive groups): rewrite it without them",
            canary.name
        ))),
        Err(err) => {
            // ingress-nginx accepts it, the match errors on every request,
            // and a request with the header goes to mainline without trying
            // cookie or weight. So does this rule.
            warnings.push(format!(
                "Ingress {}: canary-by-header-pattern {pattern:?} is not a valid regex ({}): as in ingress-nginx, \
                 requests with header {header} go to {stable}, skipping cookie and weight; fix the pattern",
                canary.name,
                err.to_string().lines().last().unwrap_or_default().trim()
            ));
            let condition = json!({ "header": header, "present": true });
            Ok(vec![rule("nginx canary-by-header-pattern (invalid: mainline)", condition, stable)])
        }
    }
}

/// A non-negative number annotation of the canary Ingress.
fn annotation_number(canary: &Ingress, key: &str) -> Result<Option<f64>, Failure> {
    canary
        .annotation(key)
        .map(|text| {
            text.parse::<f64>().ok().filter(|n| *n >= 0.0 && n.is_finite()).ok_or_else(|| {
                Failure::Invalid(format!(
                    "Ingress {}: {key} {text:?} is not a non-negative number",
                    canary.name
                ))
            })
        })
        .transpose()
}

/// `canary-weight` (of `canary-weight-total`) as a split; `None` at
/// weight 0.
fn weight_split(
    canary: &Ingress,
    canary_service: &str,
    stable: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, Failure> {
    // ingress-nginx divides by canary-weight-total only when it is above
    // 100; otherwise by 100.
    let total = match annotation_number(canary, "canary-weight-total")? {
        Some(total) if total > 100.0 => total,
        Some(total) => {
            if total != 100.0 {
                warnings.push(format!(
                    "Ingress {}: canary-weight-total {total} is not above 100, so ingress-nginx (and this config) divides by 100",
                    canary.name
                ));
            }
            100.0
        }
        None => 100.0,
    };
    let weight = annotation_number(canary, "canary-weight")?.unwrap_or(0.0).min(total);
    if weight <= 0.0 {
        return Ok(None);
    }
    Ok(Some(json!({ "weights": [
        { "target": canary_service, "weight": weight },
        { "target": stable, "weight": total - weight }
    ] })))
}

/// The main Ingress's cookie affinity, which the canary inherits unless
/// `affinity-canary-behavior: legacy`: a user the weight sent to the
/// canary keeps going there. Carried over as the split's assignment cookie.
fn affinity_cookie(canary: &Ingress, main: &Ingress, warnings: &mut Vec<String>) -> Option<Value> {
    if main.annotation("affinity") != Some("cookie") {
        return None;
    }
    if canary.annotation("affinity-canary-behavior") == Some("legacy") {
        warnings.push(format!(
            "Ingress {}: affinity-canary-behavior legacy: the canary does not inherit {}'s affinity, so no assignment cookie (each request is weighed anew)",
            canary.name, main.name
        ));
        return None;
    }
    let name = main.annotation("session-cookie-name").unwrap_or("INGRESSCOOKIE");
    let mut cookie = json!({ "name": name, "httpOnly": true });
    if let Some(max_age) = main.annotation("session-cookie-max-age").and_then(|m| m.parse::<u64>().ok()) {
        cookie["maxAge"] = json!(max_age);
    }
    if let Some(path) = main.annotation("session-cookie-path").filter(|p| p.starts_with('/')) {
        cookie["path"] = json!(path);
    }
    if main.annotation("session-cookie-secure") == Some("true") {
        cookie["secure"] = json!(true);
    }
    warnings.push(format!(
        "Ingress {}: affinity cookie {name} becomes the assignment cookie: it keeps each user on one version \
         (not one pod), also after a header or cookie sent them there; its value is the version's name, and stable \
         users get it too; users holding ingress-nginx's cookie are assigned once more",
        main.name
    ));
    Some(cookie)
}
