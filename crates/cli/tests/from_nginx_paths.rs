//! `from-nginx` routes every path of a host where ingress-nginx would
//! (issue #27): an exact path before prefixes, the longest prefix first, by
//! whole elements, whatever order the Ingresses list them in, through
//! every home. The filter's config is asked directly; each home's routing
//! objects are read as their controller matches them: an Istio
//! VirtualService's entries in order, first match wins; Gateway API
//! HTTPRoutes by the spec's precedence (an Exact path, then the longest
//! prefix, then the most header matches), across routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/istio/mod.rs"]
mod istio;

use std::process::Command;

use canary_router_core::config;
use canary_router_core::request::Request;
use canary_router_core::routing::split::Moment;
use serde_json::Value;

/// The repository, where a user runs the command.
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

const HOST: &str = "shop.example.com";

/// Each request path, and the Service it reaches with `x-canary: always`
/// and without: as nginx picks the location.
const TABLE: &[(&str, &str)] = &[
    ("/", "web"),
    ("/x", "web"),
    ("/status", "status"),
    ("/status/x", "web"),
    ("/statusx", "web"),
    ("/api", "api"),
    ("/api/", "api"),
    ("/api/x", "api"),
    ("/apix", "web"),
    ("/api/v2", "api-v2"),
    ("/api/v2/x", "api-v2"),
    ("/api/v20", "api"),
];

fn from_nginx(args: &[&str], file: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_canary-router"))
        .arg("from-nginx")
        .args(args)
        .arg(file)
        .current_dir(REPO)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// examples/nginx/paths.yaml as given, and with every Ingress's paths in
/// the reverse order.
fn variants() -> Vec<String> {
    let root = std::path::Path::new(REPO);
    let text = std::fs::read_to_string(root.join("examples/nginx/paths.yaml")).unwrap();
    let reversed: Vec<String> = text
        .split("---\n")
        .map(|doc| {
            let (head, paths) = doc.split_once("      paths:\n").unwrap();
            let mut entries: Vec<String> =
                paths.split("      - path:").skip(1).map(|e| format!("      - path:{e}")).collect();
            entries.reverse();
            format!("{head}      paths:\n{}", entries.concat())
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("canary-router-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("reversed.yaml");
    std::fs::write(&file, reversed.join("---\n")).unwrap();
    vec!["examples/nginx/paths.yaml".to_string(), file.display().to_string()]
}

/// The filter's decision: the target it writes (the Service's name).
fn filter_target(config_json: &str, path: &str, canary: bool) -> String {
    let router = config::parse(config_json.as_bytes()).unwrap();
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":authority", HOST.as_bytes()), (b":path", path.as_bytes())];
    if canary {
        pairs.push((b"x-canary", b"always"));
    }
    router.decide(&Request::new(pairs), &Moment::roll(0)).map_or("-".into(), |d| d.target.to_string())
}

/// The Service a request reaches: the path's, or its canary version.
fn expect(service: &str, canary: bool) -> String {
    if canary {
        format!("{service}-canary")
    } else {
        service.to_string()
    }
}

#[test]
fn the_filter_config_routes_every_path_where_ingress_nginx_would() {
    for file in variants() {
        let config = from_nginx(&[], &file);
        for (path, service) in TABLE {
            for canary in [false, true] {
                assert_eq!(filter_target(&config, path, canary), expect(service, canary), "{file} {path}");
            }
        }
        // The Envoy bootstrap routes by that decision (`cluster_header`).
        let bootstrap = istio::yaml_documents(&from_nginx(&["--to", "envoy"], &file)).remove(0);
        let filter = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"][0]["typed_config"]["config"]["configuration"]["value"];
        assert_eq!(
            serde_json::from_str::<Value>(filter.as_str().unwrap()).unwrap(),
            serde_json::from_str::<Value>(&config).unwrap()
        );
    }
}

/// An Istio URI match: `exact`, or a raw `prefix`.
fn uri_matches(uri: &Value, path: &str) -> bool {
    match (uri["exact"].as_str(), uri["prefix"].as_str()) {
        (Some(exact), _) => path == exact,
        (_, Some(prefix)) => path.starts_with(prefix),
        _ => true,
    }
}

#[test]
fn the_istio_virtual_service_lists_a_hosts_paths_in_nginx_s_order() {
    for file in variants() {
        let config = from_nginx(&[], &file);
        let documents = istio::yaml_documents(&from_nginx(&["--to", "istio"], &file));
        let services: Vec<&Value> = documents.iter().filter(|d| d["kind"] == "VirtualService").collect();
        assert_eq!(services.len(), 1, "one VirtualService per host, so istiod cannot reorder its entries");
        let http = services[0]["spec"]["http"].as_array().unwrap();
        for (path, service) in TABLE {
            for canary in [false, true] {
                // The gateway runs the filter first: the header is its decision.
                let header = filter_target(&config, path, canary);
                let chosen = http
                    .iter()
                    .find(|entry| {
                        entry["match"].as_array().unwrap().iter().any(|m| {
                            uri_matches(&m["uri"], path)
                                && m["headers"].as_object().is_none_or(|headers| {
                                    headers.values().all(|h| h["exact"].as_str() == Some(header.as_str()))
                                })
                        })
                    })
                    .unwrap_or_else(|| panic!("{path}: no entry"));
                let host = chosen["route"][0]["destination"]["host"].as_str().unwrap();
                let want = expect(service, canary);
                assert!(
                    host.starts_with(&format!("{want}.")),
                    "{file} {path} canary={canary}: {host}, want {want}"
                );
            }
        }
    }
}

/// A Gateway API path match, as the spec defines PathPrefix (whole
/// elements, a trailing `/` aside) and Exact.
fn gateway_path_matches(path_match: &Value, path: &str) -> Option<(bool, usize)> {
    let value = path_match["value"].as_str().unwrap_or("/");
    match path_match["type"].as_str().unwrap_or("PathPrefix") {
        "Exact" => (path == value).then_some((true, value.len())),
        _ => {
            let prefix = value.trim_end_matches('/');
            let ok = prefix.is_empty()
                || path == prefix
                || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
            ok.then_some((false, prefix.len()))
        }
    }
}

#[test]
fn the_gateway_api_routes_send_each_path_where_ingress_nginx_would_and_may_reach_other_namespaces() {
    for home in ["envoy-gateway", "istio-gateway-api"] {
        for file in variants() {
            let config = from_nginx(&[], &file);
            let documents = istio::yaml_documents(&from_nginx(&["--to", home], &file));
            let routes: Vec<&Value> = documents.iter().filter(|d| d["kind"] == "HTTPRoute").collect();
            for (path, service) in TABLE {
                for canary in [false, true] {
                    let header = filter_target(&config, path, canary);
                    // Every rule match of every route that matches, ranked as
                    // the spec ranks them: Exact, longest prefix, most headers.
                    let mut best: Option<((bool, usize, usize), &Value, &Value)> = None;
                    for route in &routes {
                        for rule in route["spec"]["rules"].as_array().unwrap() {
                            for m in rule["matches"].as_array().unwrap() {
                                let Some((exact, length)) = gateway_path_matches(&m["path"], path) else {
                                    continue;
                                };
                                let headers = m["headers"].as_array().map_or(&[][..], Vec::as_slice);
                                if !headers.iter().all(|h| h["value"].as_str() == Some(header.as_str())) {
                                    continue;
                                }
                                let rank = (exact, length, headers.len());
                                if best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
                                    best = Some((rank, rule, route));
                                }
                            }
                        }
                    }
                    let (_, rule, route) = best.unwrap_or_else(|| panic!("{path}: no rule"));
                    let backend = &rule["backendRefs"][0];
                    let want = expect(service, canary);
                    assert_eq!(backend["name"], want.as_str(), "{home} {file} {path} canary={canary}");
                    // A canary Service lives in the canary Ingress's namespace:
                    // the route names it, and that namespace grants it.
                    let namespace = backend["namespace"]
                        .as_str()
                        .unwrap_or(route["metadata"]["namespace"].as_str().unwrap());
                    assert_eq!(namespace, if canary { "canary" } else { "prod" });
                    if canary {
                        let granted = documents.iter().any(|d| {
                            d["kind"] == "ReferenceGrant"
                                && d["metadata"]["namespace"] == "canary"
                                && d["spec"]["from"][0]["namespace"] == route["metadata"]["namespace"]
                                && d["spec"]["to"]
                                    .as_array()
                                    .unwrap()
                                    .iter()
                                    .any(|t| t["name"] == want.as_str())
                        });
                        assert!(granted, "{home}: no ReferenceGrant lets the route reach canary/{want}");
                    }
                }
            }
            let file_out =
                std::env::temp_dir().join(format!("canary-router-{home}-{}.yaml", std::process::id()));
            std::fs::write(&file_out, from_nginx(&["--to", home], &file)).unwrap();
            let output = istio::check_as_the_api_server_reads(&[file_out]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
        }
    }
}
