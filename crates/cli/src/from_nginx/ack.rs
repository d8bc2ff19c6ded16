//! Alibaba Cloud ACK's own canary annotations: one Ingress lists two (or
//! more) Services on the same host and path, and picks between them with
//! `service-match` (`<service>: header("name", /regex/ or "exact")`, also
//! `cookie(...)` and `query(...)`) and/or `service-weight`
//! (`<service>: <w>, <service>: <w>`). A matching request goes to the
//! matched Service, or, with weights too, is split by them; every other
//! request goes to the Service that is not matched.

use serde_json::{json, Map, Value};

use super::ingress::{Ingress, Path};
use crate::Failure;

pub fn is_ack(ingress: &Ingress) -> bool {
    ingress.annotation("service-match").is_some() || ingress.annotation("service-weight").is_some()
}

/// `svc: header("foo", /^bar$/)` into the Service and a condition.
fn parse_match(line: &str, ingress: &str) -> Result<(String, Value), Failure> {
    let bad = |why: &str| Failure::Invalid(format!("Ingress {ingress}: service-match {line:?}: {why}"));
    let (service, rule) = line.split_once(':').ok_or_else(|| bad("expected `<service>: <rule>`"))?;
    let rule = rule.trim();
    let (kind, rest) =
        rule.split_once('(').ok_or_else(|| bad("expected header(...), cookie(...) or query(...)"))?;
    let kind = kind.trim();
    if !matches!(kind, "header" | "cookie" | "query") {
        return Err(bad(&format!("unknown match type `{kind}`: ACK knows header, cookie and query")));
    }
    let inner = rest.trim_end().strip_suffix(')').ok_or_else(|| bad("missing `)`"))?;
    let (name, pattern) = inner.split_once(',').ok_or_else(|| bad("expected (\"name\", pattern)"))?;
    let name = name.trim().trim_matches('"');
    let pattern = pattern.trim();
    let condition = if let Some(regex) = pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
        regex_lite::Regex::new(regex)
            .map_err(|e| bad(&format!("/{regex}/ is not a regex this filter can run: {e}")))?;
        json!({ kind: name, "regex": regex })
    } else if let Some(exact) = pattern.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        json!({ kind: name, "exact": exact })
    } else {
        return Err(bad("the pattern must be /regex/ or \"exact\""));
    };
    Ok((service.trim().to_string(), condition))
}

/// `svc: 20, svc: 80` into (Service, weight) pairs.
fn parse_weights(text: &str, ingress: &str) -> Result<Vec<(String, f64)>, Failure> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (service, weight) = part.split_once(':').unwrap_or((part, ""));
            let weight = weight.trim().parse::<f64>().ok().filter(|w| *w >= 0.0 && w.is_finite());
            weight.map(|w| (service.trim().to_string(), w)).ok_or_else(|| {
                Failure::Invalid(format!(
                    "Ingress {ingress}: service-weight {part:?}: expected `<service>: <non-negative number>`"
                ))
            })
        })
        .collect()
}

/// One route per host and path that holds two Services or more.
pub fn routes(
    ingress: &Ingress,
    regex_hosts: &[&str],
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>, Failure> {
    let matches: Vec<(String, Value)> = ingress
        .annotation("service-match")
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| parse_match(l, &ingress.name))
                .collect()
        })
        .transpose()?
        .unwrap_or_default();
    let weights =
        ingress.annotation("service-weight").map(|w| parse_weights(w, &ingress.name)).transpose()?;
    warnings.push(format!(
        "Ingress {}: ACK marks service-match and service-weight deprecated; its NGINX Ingress controller 1.12 and later no longer reads them",
        ingress.name
    ));

    // The Services of each host and path, in the order listed.
    let mut groups: Vec<(&str, &str, Vec<&Path>)> = Vec::new();
    for path in &ingress.paths {
        match groups.iter_mut().find(|(h, p, _)| *h == path.host && *p == path.path) {
            Some((_, _, members)) if members.iter().any(|m| m.backend.service == path.backend.service) => {}
            Some((_, _, members)) => members.push(path),
            None => groups.push((&path.host, &path.path, vec![path])),
        }
    }
    let mut routes = Vec::new();
    for (host, path, members) in groups {
        let services: Vec<&str> = members.iter().map(|m| m.backend.service.as_str()).collect();
        if services.len() < 2 {
            continue;
        }
        let matched: Vec<&(String, Value)> =
            matches.iter().filter(|(s, _)| services.contains(&s.as_str())).collect();
        let unmatched: Vec<&str> =
            services.iter().copied().filter(|s| !matched.iter().any(|(m, _)| m == s)).collect();
        let Some(&default) = unmatched.first() else {
            return Err(Failure::Invalid(format!(
                "Ingress {}: host {host:?} path {path:?}: every Service has a service-match, so none takes the other requests",
                ingress.name
            )));
        };
        if unmatched.len() > 1 && weights.is_none() {
            warnings.push(format!(
                "Ingress {}: host {host:?} path {path:?}: requests that match nothing go to {default}, the first Service not matched",
                ingress.name
            ));
        }
        let split = weights.as_ref().map(|weights| {
            let listed: Vec<Value> = services
                .iter()
                .map(|service| {
                    let weight = weights.iter().find(|(s, _)| s == service).map_or(0.0, |(_, w)| *w);
                    if !weights.iter().any(|(s, _)| s == service) {
                        warnings.push(format!(
                            "Ingress {}: Service {service} is not in service-weight: it gets weight 0",
                            ingress.name
                        ));
                    }
                    json!({ "target": service, "weight": weight })
                })
                .collect();
            json!({ "weights": listed })
        });
        let mut rules = Vec::new();
        for (service, condition) in &matched {
            let mut rule = Map::new();
            rule.insert("name".into(), json!(format!("ack service-match {service}")));
            rule.insert("match".into(), json!([condition]));
            match &split {
                // Both: the matching requests are split by the weights.
                Some(split) => rule.insert("split".into(), split.clone()),
                None => rule.insert("target".into(), json!(service)),
            };
            rules.push(Value::Object(rule));
        }
        if matched.is_empty() {
            if let Some(split) = &split {
                rules.push(json!({ "name": "ack service-weight", "split": split }));
            }
        }
        let regex_host = regex_hosts.contains(&host);
        if regex_host {
            super::order::check_regex_path(&ingress.name, host, path)?;
        }
        let keys = super::order::path_keys(path, &members[0].path_type, regex_host);
        routes.push(super::route(host, Some(keys), default, rules));
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_weights_parse_as_ack_writes_them() {
        let Ok((service, condition)) = parse_match(r#"new-nginx: header("foo", /^bar$/)"#, "i") else {
            panic!()
        };
        assert_eq!(service, "new-nginx");
        assert_eq!(condition, json!({"header": "foo", "regex": "^bar$"}));
        let Ok((_, condition)) = parse_match(r#"new-nginx: cookie("foo", "bar")"#, "i") else { panic!() };
        assert_eq!(condition, json!({"cookie": "foo", "exact": "bar"}));
        let Ok((_, condition)) = parse_match(r#"new-nginx: query("foo", "bar")"#, "i") else { panic!() };
        assert_eq!(condition, json!({"query": "foo", "exact": "bar"}));
        assert!(parse_match(r#"new-nginx: body("foo", "bar")"#, "i").is_err());
        let Ok(weights) = parse_weights("new-nginx: 20, old-nginx: 60", "i") else { panic!() };
        assert_eq!(weights, vec![("new-nginx".to_string(), 20.0), ("old-nginx".to_string(), 60.0)]);
        assert!(parse_weights("new-nginx: lots", "i").is_err());
    }
}
