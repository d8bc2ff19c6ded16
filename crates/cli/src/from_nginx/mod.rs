//! `canary-router from-nginx`: Ingresses to a config, behaving as the
//! source did. ingress-nginx canary pairs keep ingress-nginx's order:
//! `canary-by-header` (`always`/`never`, or `-value`, or `-pattern`)
//! before `canary-by-cookie` (`always`/`never`) before `canary-weight` (of
//! `canary-weight-total`). ACK's `service-match` / `service-weight` are in
//! `ack.rs`. What cannot carry over is a warning naming the Ingress.

mod ack;
mod homes;
mod ingress;
mod order;
mod plugin;

use std::path::PathBuf;

use canary_router_core::config;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::input;
use crate::Failure;
pub use homes::Home;
use homes::{Placement, Service};
use ingress::{Backend, Ingress, PREFIX};
pub use plugin::{IstioPlugin, Options};

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
    "session-cookie-samesite",
    "service-match",
    "service-weight",
    "use-regex",
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
    let path = route_path(&route).unwrap_or("/");
    let on_path: Vec<&ingress::Path> =
        ingress.paths.iter().filter(|p| p.host == host && p.path == path).collect();
    let mut services: Vec<Service> = Vec::new();
    for p in &on_path {
        if !services.iter().any(|s| s.name == p.backend.service) {
            services.push(service_of(ingress, &p.backend));
        }
    }
    Placement { route, namespace: ingress.namespace.clone(), services }
}

pub fn run(files: &[PathBuf], home: Home, options: &Options) -> Result<(), Failure> {
    let mut warnings = Vec::new();
    let plugin = plugin::Plugin::new(home, options, &mut warnings)?;
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
    // ingress-nginx turns every path of a host into a regex when any of
    // its Ingresses asks for use-regex.
    let regex_hosts: Vec<&str> = ingresses
        .iter()
        .filter(|i| i.annotation("use-regex") == Some("true"))
        .flat_map(|i| i.paths.iter().map(|p| p.host.as_str()))
        .collect();
    for host in regex_hosts.iter().collect::<std::collections::BTreeSet<_>>() {
        warnings.push(order::regex_host_warning(host));
    }
    let mut placements = Vec::new();
    for ingress in &acks {
        for route in ack::routes(ingress, &regex_hosts, &mut warnings)? {
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
            let regex_host = regex_hosts.contains(&path.host.as_str());
            if regex_host {
                order::check_regex_path(&main.name, &path.host, &path.path)?;
            }
            let rules = rules(canary, main, &found.backend, &path.backend, &mut warnings)?;
            let keys = order::path_keys(&path.path, &path.path_type, regex_host);
            let route = route(&path.host, Some(keys), &found.backend.service, rules);
            placements.push(Placement {
                route,
                namespace: main.namespace.clone(),
                services: vec![service_of(canary, &path.backend), service_of(main, &found.backend)],
            });
        }
    }
    order::as_nginx_orders(&mut placements);
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
    let converted =
        homes::Converted { config: &config, router: &router, placements: &placements, plugin: &plugin };
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
                    && route_path(&p.route) == Some(&path.path)
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
        services: vec![service_of(canary, canary_backend), service_of(main, stable)],
    })
}

/// A route's path, exact or prefix.
fn route_path(route: &Value) -> Option<&str> {
    route["path"].as_str().or(route["pathPrefix"].as_str())
}

/// A route of the translated config, keys in the order a reader expects.
/// `host` empty: any host; `path` (`order::path_keys`) none: every path
/// (the default server).
fn route(host: &str, path: Option<Map<String, Value>>, default: &str, rules: Vec<Value>) -> Value {
    let shown =
        path.as_ref().and_then(|keys| keys.get("path").or(keys.get("pathPrefix"))).and_then(Value::as_str);
    let name = match shown {
        Some(path) => format!("{}{path}", if host.is_empty() { "*" } else { host }),
        None => "default-server".to_string(),
    };
    let mut route = Map::new();
    route.insert("name".into(), json!(name));
    if !host.is_empty() {
        route.insert("hosts".into(), json!([host]));
    }
    if let Some(keys) = path {
        route.extend(keys);
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

/// The rules of a canary pair, in ingress-nginx's balancer's order: the
/// affinity cookie (a user pinned to a version stays there), then header,
/// cookie, weight.
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
    // or cookie too: later requests without them stay there. And a pinned
    // user stays pinned whatever header or cookie they send: its balancer
    // reads the affinity cookie first.
    let mut rules: Vec<Value> = match &affinity {
        Some(cookie) => {
            let name = cookie["name"].as_str().unwrap_or_default();
            let mut rules: Vec<Value> = [canary_service, stable]
                .map(|target| {
                    rule(
                        &format!("nginx affinity {target}"),
                        json!({ "cookie": name, "exact": target }),
                        target,
                    )
                })
                .into();
            rules.extend(forced.into_iter().map(|rule| pinned(rule, canary_service, stable, cookie)));
            rules
        }
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
    if let Some(same_site) = main.annotation("session-cookie-samesite") {
        match same_site.to_ascii_lowercase().as_str() {
            "strict" => cookie["sameSite"] = json!("Strict"),
            "lax" => cookie["sameSite"] = json!("Lax"),
            "none" => {
                cookie["sameSite"] = json!("None");
                if cookie.get("secure").is_none() {
                    cookie["secure"] = json!(true);
                    warnings.push(format!(
                        "Ingress {}: session-cookie-samesite None without session-cookie-secure: the assignment \
                         cookie is made Secure, as browsers drop a SameSite=None cookie that is not",
                        main.name
                    ));
                }
            }
            other => warnings.push(format!(
                "Ingress {}: session-cookie-samesite `{other}` is not None, Lax or Strict: left out (the browser's \
                 default applies)",
                main.name
            )),
        }
    }
    warnings.push(format!(
        "Ingress {}: affinity cookie {name} becomes the assignment cookie: it keeps each user on one version \
         (not one pod), also after a header or cookie sent them there; its value is the version's name, and stable \
         users get it too; users holding ingress-nginx's cookie are assigned once more",
        main.name
    ));
    Some(cookie)
}
