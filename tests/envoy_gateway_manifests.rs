//! The manifests in `envoy-gateway/` are what users apply to Envoy Gateway,
//! so they are tested like code: each policy's `config` passes the
//! filter's validation as Envoy Gateway hands it over (the JSON the API
//! server stored), the HTTPRoute routes exactly what the filter writes, and
//! the clusters the filter names (shadow, Prometheus) are rules of that
//! HTTPRoute no client can reach. (`istio_manifests.rs` checks every field
//! of every document as the API server reads it.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod istio;

use std::collections::BTreeSet;

use istio::{documents_under, reachable_targets, Document};
use serde_json::Value;

fn of_kind(documents: &[Document], kind: &str) -> Vec<Value> {
    documents.iter().filter(|d| d.value["kind"] == kind).map(|d| d.value.clone()).collect()
}

/// The JSON Envoy Gateway passes the filter: `config` as the API server
/// stored it (numbers as written, no protobuf `Struct` in between).
fn policy_config(policy: &Value) -> String {
    serde_json::to_string(&policy["spec"]["wasm"][0]["config"]).unwrap()
}

/// Every `cluster` the config names (`mirror`, `rollback.prometheus`).
fn named_clusters(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match item.as_str() {
                    Some(name) if key == "cluster" => out.push(name.to_string()),
                    _ => named_clusters(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| named_clusters(v, out)),
        _ => {}
    }
}

#[test]
fn each_envoy_gateway_policy_routes_through_its_http_route() {
    let documents = documents_under("envoy-gateway");
    let [gateway] = &of_kind(&documents, "Gateway")[..] else { panic!("want one Gateway") };
    let [route] = &of_kind(&documents, "HTTPRoute")[..] else { panic!("want one HTTPRoute") };
    let policies: Vec<Value> = of_kind(&documents, "EnvoyExtensionPolicy")
        .into_iter()
        .filter(|p| p["spec"].get("wasm").is_some())
        .collect();
    assert_eq!(policies.len(), 2, "one .wasm policy loading the image, one over HTTP");
    let sources: BTreeSet<&str> =
        policies.iter().map(|p| p["spec"]["wasm"][0]["code"]["type"].as_str().unwrap()).collect();
    assert_eq!(sources, BTreeSet::from(["HTTP", "Image"]));
    assert_eq!(policy_config(&policies[0]), policy_config(&policies[1]), "the two policies drifted apart");

    let namespace = route["metadata"]["namespace"].as_str().unwrap();
    let route_name = route["metadata"]["name"].as_str().unwrap();
    let rules = route["spec"]["rules"].as_array().unwrap();
    // rule index → the header value that selects it (None: the catch-all).
    let selectors: Vec<Option<String>> = rules
        .iter()
        .map(|rule| {
            let headers: Vec<&Value> = rule["matches"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["headers"].as_array().into_iter().flatten())
                .collect();
            assert!(headers.len() <= 1, "a rule matches one header value");
            headers.first().map(|h| h["value"].as_str().unwrap().to_string())
        })
        .collect();
    let catch_alls = selectors.iter().filter(|s| s.is_none()).count();
    assert_eq!(catch_alls, 1, "one catch-all rule, or requests matching no rule skip the filter");
    assert!(selectors.last().unwrap().is_none(), "the catch-all rule comes last");

    for policy in &policies {
        let refs = policy["spec"]["targetRefs"].as_array().unwrap();
        assert!(
            refs.iter().all(|r| r["kind"] == "Gateway" && r["name"] == gateway["metadata"]["name"]),
            "attached to the Gateway, so no route of it runs without the filter"
        );
        assert_eq!(policy["metadata"]["namespace"], gateway["metadata"]["namespace"]);
        assert_eq!(policy["spec"]["wasm"][0]["failOpen"], false, "a failed VM must not let clients choose");

        let (header, targets) = reachable_targets(&policy_config(policy));
        // Envoy Gateway refuses header names with `_`.
        assert!(!header.contains('_'), "{header}");
        for rule in rules {
            for m in rule["matches"].as_array().into_iter().flatten() {
                for h in m["headers"].as_array().into_iter().flatten() {
                    assert_eq!(h["name"].as_str(), Some(header.as_str()), "a rule on another header");
                }
            }
        }

        // Each cluster the filter calls is a rule of the HTTPRoute that
        // only the filter's own header values select, never a target.
        let mut clusters = Vec::new();
        named_clusters(&policy["spec"]["wasm"][0]["config"], &mut clusters);
        assert_eq!(clusters.len(), 2, "the shadow and Prometheus: {clusters:?}");
        let mut internal = BTreeSet::new();
        for cluster in &clusters {
            let prefix = format!("httproute/{namespace}/{route_name}/rule/");
            let index: usize = cluster
                .strip_prefix(&prefix)
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("{cluster} is not a cluster Envoy Gateway makes ({prefix}N)"));
            let selector = selectors.get(index).cloned().flatten();
            let selector = selector.unwrap_or_else(|| panic!("{cluster}: no such rule, or the catch-all"));
            assert!(
                !targets.contains(&selector),
                "{cluster}: the filter writes {selector}, so traffic takes it"
            );
            internal.insert(selector);
        }

        let routed: BTreeSet<String> = selectors.iter().flatten().cloned().collect();
        let by_header: BTreeSet<String> = routed.difference(&internal).cloned().collect();
        assert!(
            by_header.is_subset(&targets),
            "rules for targets never written: {by_header:?} vs {targets:?}"
        );
        assert_eq!(targets.difference(&by_header).count(), 1, "one target takes the catch-all: {targets:?}");
    }
}

/// The dynamic module's policy has the .wasm policies' config, attached to
/// the same Gateway, loading a module the EnvoyProxy allows.
#[test]
fn the_dynamic_module_policy_routes_as_the_wasm_ones_and_its_module_is_allowed() {
    let documents = documents_under("envoy-gateway");
    let policies = of_kind(&documents, "EnvoyExtensionPolicy");
    let wasm = policies.iter().find(|p| p["spec"].get("wasm").is_some()).unwrap();
    let [module] =
        &policies.iter().filter(|p| p["spec"].get("dynamicModule").is_some()).collect::<Vec<_>>()[..]
    else {
        panic!("want one dynamic-module policy")
    };
    assert_eq!(module["spec"]["targetRefs"], wasm["spec"]["targetRefs"]);
    let entry = &module["spec"]["dynamicModule"][0];
    let config = &wasm["spec"]["wasm"][0]["config"];
    assert_eq!(&entry["config"], config, "the module's config drifted from the .wasm policies'");

    let [proxy] = &of_kind(&documents, "EnvoyProxy")[..] else { panic!("want one EnvoyProxy") };
    let allowed = proxy["spec"]["dynamicModules"].as_array().unwrap();
    let listed = allowed.iter().find(|m| m["name"] == entry["name"]);
    let listed = listed.unwrap_or_else(|| panic!("the EnvoyProxy does not allow {}", entry["name"]));
    let path = listed["source"]["local"]["path"].as_str().unwrap();
    assert!(
        path.starts_with('/') && path.ends_with("/libcanary_router.so"),
        "{path}: not what `make dynmod` builds"
    );
}

/// The filter's own reference to a Service in another namespace needs
/// the ReferenceGrant that lets the HTTPRoute send there.
#[test]
fn a_backend_in_another_namespace_is_granted() {
    let documents = documents_under("envoy-gateway");
    let [route] = &of_kind(&documents, "HTTPRoute")[..] else { panic!("want one HTTPRoute") };
    let grants = of_kind(&documents, "ReferenceGrant");
    let namespace = &route["metadata"]["namespace"];
    for rule in route["spec"]["rules"].as_array().unwrap() {
        for backend in rule["backendRefs"].as_array().unwrap() {
            let Some(other) = backend["namespace"].as_str().filter(|n| *n != namespace) else { continue };
            let granted = grants.iter().any(|g| {
                g["metadata"]["namespace"] == other
                    && g["spec"]["from"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["kind"] == "HTTPRoute" && f["namespace"] == *namespace)
                    && g["spec"]["to"].as_array().unwrap().iter().any(|t| {
                        t["kind"] == "Service" && (t.get("name").is_none() || t["name"] == backend["name"])
                    })
            });
            assert!(granted, "no ReferenceGrant lets the HTTPRoute reach {other}/{}", backend["name"]);
        }
    }
}

/// Envoy Gateway's proxies label the filter's metrics as `envoy/envoy.yaml`
/// does: the EnvoyProxy the GatewayClass names merges the same stats tags.
#[test]
fn the_envoy_proxy_labels_the_filter_s_metrics_as_envoy_yaml_does() {
    let documents = documents_under("envoy-gateway");
    let [proxy] = &of_kind(&documents, "EnvoyProxy")[..] else { panic!("want one EnvoyProxy") };
    let [class] = &of_kind(&documents, "GatewayClass")[..] else { panic!("want one GatewayClass") };
    let reference = &class["spec"]["parametersRef"];
    assert_eq!(reference["kind"], "EnvoyProxy");
    assert_eq!(reference["name"], proxy["metadata"]["name"]);
    assert_eq!(reference["namespace"], proxy["metadata"]["namespace"]);
    assert_eq!(
        proxy["spec"]["bootstrap"]["type"], "Merge",
        "Replace would drop Envoy Gateway's own bootstrap"
    );

    let tags = |yaml: &str| -> Value {
        let value: Value = serde_norway::from_str(yaml).unwrap();
        value["stats_config"]["stats_tags"].clone()
    };
    let envoy_yaml =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/envoy.yaml"))
            .unwrap();
    let merged = tags(proxy["spec"]["bootstrap"]["value"].as_str().unwrap());
    assert!(merged.as_array().is_some_and(|t| t.len() >= 10), "{merged}");
    assert_eq!(merged, tags(&envoy_yaml));
}

/// docs/envoy-gateway.md applies every manifest of `envoy-gateway/` (one of
/// the two policies), in an order Kubernetes accepts, and nothing else.
#[test]
fn the_walkthrough_applies_every_envoy_gateway_manifest() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/envoy-gateway.md")).unwrap();
    let applied: Vec<&str> =
        page.lines().filter_map(|l| l.trim().strip_prefix("kubectl apply -f envoy-gateway/")).collect();
    let mut shipped: Vec<String> = std::fs::read_dir(root.join("envoy-gateway"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "extension-policy-http.yaml" && name != "extension-policy-dynmod.yaml")
        .collect();
    shipped.sort();
    let mut sorted = applied.clone();
    sorted.sort();
    assert_eq!(sorted, shipped, "the walkthrough applies: {applied:?}");
    // The GatewayClass names the EnvoyProxy: it goes first; the policy
    // targets the Gateway: it comes after it.
    let at = |file: &str| applied.iter().position(|f| *f == file).unwrap();
    assert!(at("envoy-proxy.yaml") < at("gateway.yaml") && at("gateway.yaml") < at("extension-policy.yaml"));
    for name in [
        "the_envoy_gateway_translation_routes_service_b",
        "the_envoy_gateway_translation_rolls_a_failing_canary_back",
        "each_envoy_gateway_policy_routes_through_its_http_route",
    ] {
        assert!(page.contains(name), "docs/envoy-gateway.md does not name {name}");
    }
}
