//! The manifests in `istio/` are what users apply, so they are tested like
//! code: each parses and carries the fields Istio requires, each
//! `pluginConfig` passes the filter's validation in the JSON form Istio
//! hands over, and each VirtualService routes exactly the targets its
//! WasmPlugin can produce, so the two can never drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod istio;

use std::collections::BTreeSet;

use canary_router_core::config;
use istio::{
    all_documents, check_as_the_api_server_reads, plugin_config_json, reachable_targets, Document,
    NumberStyle,
};
use serde_json::Value;

/// The documents of `kind` in `istio/DIR/`.
fn of_kind_in<'a>(documents: &'a [Document], dir: &str, kind: &str) -> Vec<&'a Document> {
    documents.iter().filter(|d| d.file.starts_with(&format!("{dir}/")) && d.value["kind"] == kind).collect()
}

fn str_at<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(doc, |v, key| v.get(key)).and_then(Value::as_str)
}

#[test]
fn every_manifest_parses_and_has_what_istio_requires() {
    let documents = all_documents();
    assert!(documents.len() >= 12, "found only {} documents in istio/", documents.len());
    for Document { file, value } in &documents {
        let kind = str_at(value, &["kind"]).unwrap_or_else(|| panic!("{file}: no kind"));
        assert!(str_at(value, &["metadata", "name"]).is_some(), "{file}: no metadata.name");
        let spec = value.get("spec").unwrap_or_else(|| panic!("{file}: no spec"));
        match kind {
            "WasmPlugin" => {
                assert_eq!(str_at(value, &["apiVersion"]), Some("extensions.istio.io/v1alpha1"), "{file}");
                assert!(
                    spec.get("selector").is_some() || spec.get("targetRefs").is_some(),
                    "{file}: no selector/targetRefs"
                );
                let url = str_at(spec, &["url"]).unwrap_or_else(|| panic!("{file}: no url"));
                assert!(
                    ["oci://", "file://", "https://", "http://"].iter().any(|s| url.starts_with(s)),
                    "{file}: url {url}"
                );
                let sha = str_at(spec, &["sha256"]).unwrap_or_else(|| panic!("{file}: no sha256"));
                assert!(
                    sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{file}: sha256 {sha}"
                );
                assert!(
                    matches!(str_at(spec, &["phase"]), Some("AUTHN" | "AUTHZ" | "STATS")),
                    "{file}: phase"
                );
                assert_eq!(str_at(spec, &["pluginName"]), Some("canary-router"), "{file}: pluginName");
                assert_eq!(
                    str_at(spec, &["failStrategy"]),
                    Some("FAIL_RELOAD"),
                    "{file}: failStrategy must be FAIL_RELOAD (docs/envoy.md#failure-policy)"
                );
                assert!(spec.get("pluginConfig").is_some_and(Value::is_object), "{file}: no pluginConfig");
            }
            "VirtualService" => {
                assert_eq!(str_at(value, &["apiVersion"]), Some("networking.istio.io/v1"), "{file}");
                assert!(spec["hosts"].as_array().is_some_and(|h| !h.is_empty()), "{file}: hosts");
                assert!(spec["gateways"].as_array().is_some_and(|g| !g.is_empty()), "{file}: gateways");
                for route in spec["http"].as_array().unwrap_or_else(|| panic!("{file}: no http routes")) {
                    for destination in route["route"].as_array().unwrap() {
                        assert!(
                            str_at(destination, &["destination", "host"]).is_some(),
                            "{file}: destination host"
                        );
                        assert!(
                            str_at(destination, &["destination", "subset"]).is_some(),
                            "{file}: destination subset"
                        );
                    }
                }
            }
            "DestinationRule" => {
                assert_eq!(str_at(value, &["apiVersion"]), Some("networking.istio.io/v1"), "{file}");
                assert!(str_at(spec, &["host"]).is_some(), "{file}: host");
                for subset in spec["subsets"].as_array().unwrap_or_else(|| panic!("{file}: no subsets")) {
                    assert!(
                        str_at(subset, &["name"]).is_some() && subset["labels"].is_object(),
                        "{file}: subset"
                    );
                }
            }
            "Gateway" if str_at(value, &["apiVersion"]) == Some("gateway.networking.k8s.io/v1") => {
                assert!(
                    matches!(str_at(spec, &["gatewayClassName"]), Some("istio" | "istio-waypoint")),
                    "{file}: one of Istio's classes"
                );
                assert!(spec["listeners"].as_array().is_some_and(|l| !l.is_empty()), "{file}: listeners");
            }
            "Gateway" => {
                assert!(
                    spec["selector"].is_object() && spec["servers"].is_array(),
                    "{file}: selector/servers"
                );
            }
            "HTTPRoute" => {
                assert!(spec["parentRefs"].as_array().is_some_and(|p| !p.is_empty()), "{file}: parentRefs");
                let rules = spec["rules"].as_array().unwrap_or_else(|| panic!("{file}: no rules"));
                assert!(
                    rules.last().is_some_and(|r| r.get("matches").is_none()),
                    "{file}: the last rule must catch every request, or unmatched ones never reach the filter's routing"
                );
            }
            // Its WasmPlugin twin's (each_traffic_extension_is_its_wasm_plugin_in_istio_s_newer_api).
            "TrafficExtension" => {
                assert!(spec["wasm"]["pluginConfig"].is_object(), "{file}: no pluginConfig")
            }
            "IstioOperator" => {
                assert_eq!(str_at(value, &["apiVersion"]), Some("install.istio.io/v1alpha1"), "{file}");
                let tags = spec["meshConfig"]["defaultConfig"]["extraStatTags"].as_array();
                assert!(tags.is_some_and(|t| t.iter().all(Value::is_string)), "{file}: extraStatTags");
            }
            other => panic!("{file}: unexpected kind {other}"),
        }
    }
}

#[test]
fn every_plugin_config_passes_validation_as_istio_delivers_it() {
    let plugins: Vec<Document> =
        all_documents().into_iter().filter(|d| d.value["kind"] == "WasmPlugin").collect();
    assert!(plugins.len() >= 6);
    for plugin in &plugins {
        for style in [NumberStyle::Protojson, NumberStyle::Doubles] {
            let json = plugin_config_json(&plugin.value, style);
            if let Err(err) = config::parse(json.as_bytes()) {
                panic!("{}: pluginConfig rejected ({style:?}): {err}\n{json}", plugin.file);
            }
        }
    }
    let doubles = plugin_config_json(
        &plugins.iter().find(|p| p.file.contains("wasm-plugin-20")).unwrap().value,
        NumberStyle::Doubles,
    );
    assert!(doubles.contains("\"weight\":20.0"), "{doubles}");
}

#[test]
fn each_virtual_service_routes_exactly_what_its_plugins_produce() {
    let documents = all_documents();
    for dir in ["service-a", "service-b", "shop"] {
        let in_dir = |kind: &str| of_kind_in(&documents, dir, kind);
        let [vs] = in_dir("VirtualService")[..] else { panic!("{dir}: want one VirtualService") };
        let [dr] = in_dir("DestinationRule")[..] else { panic!("{dir}: want one DestinationRule") };
        let subsets: BTreeSet<&str> = dr.value["spec"]["subsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        let http = vs.value["spec"]["http"].as_array().unwrap();

        for plugin in in_dir("WasmPlugin") {
            let (header, targets) =
                reachable_targets(&plugin_config_json(&plugin.value, NumberStyle::Protojson));
            for target in &targets {
                // The first VirtualService route the request would take.
                let route = http
                    .iter()
                    .find(|r| match r.get("match") {
                        None => true,
                        Some(matches) => matches.as_array().unwrap().iter().any(|m| {
                            let headers = m["headers"].as_object().unwrap();
                            assert_eq!(headers.keys().collect::<Vec<_>>(), vec![&header], "{}: VirtualService matches another header than the plugin's targetHeader `{header}`", vs.file);
                            headers[&header]["exact"].as_str() == Some(target)
                        }),
                    })
                    .unwrap_or_else(|| panic!("{}: no route takes target `{target}`", vs.file));
                let subset = route["route"][0]["destination"]["subset"].as_str().unwrap();
                assert_eq!(
                    subset, target,
                    "{}: target `{target}` of {} lands on subset `{subset}`",
                    vs.file, plugin.file
                );
                assert!(subsets.contains(subset), "{}: subset `{subset}` is not in {}", vs.file, dr.file);
            }
        }
        // And no VirtualService match waits for a value no plugin writes.
        for route in http {
            for m in route.get("match").and_then(Value::as_array).into_iter().flatten() {
                for (_, test) in m["headers"].as_object().unwrap() {
                    let value = test["exact"].as_str().unwrap();
                    let produced = in_dir("WasmPlugin").iter().any(|p| {
                        reachable_targets(&plugin_config_json(&p.value, NumberStyle::Protojson))
                            .1
                            .contains(value)
                    });
                    assert!(
                        produced,
                        "{}: matches `{value}`, which no WasmPlugin in istio/{dir} writes",
                        vs.file
                    );
                }
            }
        }
    }
}

/// Every Kubernetes document the project ships, as `kubectl apply` reads
/// it: YAML 1.1 types (an unquoted digest of digits is a number), each
/// field's type and the required fields of its kind, explicit namespaces.
#[test]
fn every_shipped_manifest_is_valid_as_the_api_server_reads_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "istio",
        "istio/service-a",
        "istio/service-b",
        "istio/shop",
        "istio/gateway-api",
        "istio/ambient",
        "envoy-gateway",
        "examples/nginx",
        "dashboards",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let path = entry.path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let yaml = path.extension().is_some_and(|e| e == "yaml");
            if yaml && text.contains("apiVersion:") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 18, "found only {} manifests", files.len());
    let output = check_as_the_api_server_reads(&files);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), files.len(), "{stdout}");
}

/// The checker sees what a YAML 1.2 reader does not and what only the
/// CRD says: the digest the WasmPlugins once carried unquoted, a boolean
/// where a string belongs, an unknown field (the EnvoyExtensionPolicies'
/// `code.sha256` once), a missing namespace, the CRDs' CEL rules, a
/// duplicate key of a list-type map, a version the CRD does not serve.
#[test]
fn the_manifest_check_refuses_what_the_api_server_refuses() {
    let dir = std::env::temp_dir().join(format!("canary-router-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |file: &str| std::fs::read_to_string(root.join(file)).unwrap();
    let plugin = read("istio/service-b/wasm-plugin-20.yaml");
    let digest = "0000000000000000000000000000000000000000000000000000000000000000";
    let broken_plugin = plugin
        .replace(&format!("\"{digest}\""), digest)
        .replace("pluginName: canary-router", "pluginName: on\n  verbose: true")
        .replace("  namespace: istio-system\n", "");
    let policy = read("envoy-gateway/extension-policy-http.yaml");
    // The digest beside `http`, as the shipped policies had it; the code's
    // type and source disagreeing (a CEL rule of the CRD).
    let broken_policy = policy
        .replace("        # Replace with", "      # Replace with")
        .replace("        sha256: \"", "      sha256: \"")
        .replace("type: HTTP", "type: Image");
    let route = read("envoy-gateway/http-route.yaml");
    // A filter without its settings (a CEL rule of the CRD).
    let broken_route = route.replacen(
        "    backendRefs: [{ name: service-b-v2, port: 80 }]",
        "    filters: [{ type: RequestHeaderModifier }]\n    backendRefs: [{ name: service-b-v2, port: 80 }]",
        1,
    );
    let old_version = read("istio/service-b/virtual-service.yaml")
        .replace("networking.istio.io/v1\n", "networking.istio.io/v1alpha2\n");
    let mut files = Vec::new();
    for (name, text, original) in [
        ("wasm-plugin.yaml", &broken_plugin, &plugin),
        ("extension-policy.yaml", &broken_policy, &policy),
        ("http-route.yaml", &broken_route, &route),
        ("virtual-service.yaml", &old_version, &old_version),
    ] {
        assert!(name == "virtual-service.yaml" || text != original, "{name} was not broken");
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        files.push(file);
    }
    let output = check_as_the_api_server_reads(&files);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    for problem in [
        "wasm-plugin.yaml document 1 spec.sha256: 0 is not of type 'string' (YAML 1.1: quote it)",
        "wasm-plugin.yaml document 1 spec.pluginName: True is not of type 'string'",
        "wasm-plugin.yaml document 1 spec: unknown field `verbose`",
        "wasm-plugin.yaml document 1 metadata: no namespace",
        "extension-policy.yaml document 1 spec.wasm[0].code: unknown field `sha256`",
        "extension-policy.yaml document 1 spec.wasm[0].code: If type is HTTP, http field needs to be set.",
        "http-route.yaml document 1 spec.rules[0].filters[0]: filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type",
        "virtual-service.yaml document 1: networking.istio.io/v1alpha2 does not serve VirtualService",
    ] {
        assert!(stdout.contains(problem), "{problem} not in:\n{stdout}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Gateway API form: the HTTPRoute's header rules name only targets
/// the plugin writes, and every other target it writes takes the
/// catch-all rule (Gateway API has no subsets: one target, one Service).
#[test]
fn each_http_route_routes_what_its_plugin_writes() {
    for dir in ["gateway-api", "ambient"] {
        http_route_routes_what_its_plugin_writes(dir);
    }
}

/// In `istio/DIR/`: one Gateway, its plugin and its HTTPRoute.
fn http_route_routes_what_its_plugin_writes(dir: &str) {
    let documents = all_documents();
    let of = |kind: &str| of_kind_in(&documents, dir, kind);
    let [route] = of("HTTPRoute")[..] else { panic!("want one HTTPRoute") };
    let [plugin] = of("WasmPlugin")[..] else { panic!("want one WasmPlugin") };
    let refs = plugin.value["spec"]["targetRefs"].as_array().unwrap();
    let gateway = of("Gateway")[0];
    assert!(
        refs.iter().any(|r| r["kind"] == "Gateway" && r["name"] == gateway.value["metadata"]["name"]),
        "the plugin targets the Gateway"
    );
    assert_eq!(
        plugin.value["metadata"]["namespace"], gateway.value["metadata"]["namespace"],
        "in its namespace"
    );
    let (header, targets) = reachable_targets(&plugin_config_json(&plugin.value, NumberStyle::Protojson));
    let mut matched = BTreeSet::new();
    for rule in route.value["spec"]["rules"].as_array().unwrap() {
        for m in rule["matches"].as_array().into_iter().flatten() {
            for h in m["headers"].as_array().into_iter().flatten() {
                assert_eq!(h["name"].as_str(), Some(header.as_str()), "a rule on another header");
                matched.insert(h["value"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(
        matched.is_subset(&targets),
        "rules for targets the plugin never writes: {matched:?} vs {targets:?}"
    );
    assert_eq!(targets.difference(&matched).count(), 1, "one target takes the catch-all: {targets:?}");
}

/// Istio's newer API: beside each WasmPlugin, its TrafficExtension form
/// (Istio 1.30 and later turn every WasmPlugin into one): the module's
/// fields under `wasm`, the attachment and phase where they were, so the
/// two load the same filter with the same config.
#[test]
fn each_traffic_extension_is_its_wasm_plugin_in_istio_s_newer_api() {
    const MODULE: [&str; 5] = ["url", "sha256", "pluginName", "failStrategy", "pluginConfig"];
    let documents = all_documents();
    let plugins: Vec<&Document> = documents.iter().filter(|d| d.value["kind"] == "WasmPlugin").collect();
    let extensions: Vec<&Document> =
        documents.iter().filter(|d| d.value["kind"] == "TrafficExtension").collect();
    assert_eq!(plugins.len(), extensions.len(), "a TrafficExtension beside every WasmPlugin");
    for plugin in plugins {
        let twin = plugin.file.replace("wasm-plugin", "traffic-extension");
        let extension = extensions.iter().find(|e| e.file == twin).unwrap_or_else(|| panic!("no {twin}"));
        assert_eq!(extension.value["metadata"], plugin.value["metadata"], "{twin}");
        let (spec, extension_spec) = (&plugin.value["spec"], &extension.value["spec"]);
        for (key, value) in spec.as_object().unwrap() {
            let theirs = if MODULE.contains(&key.as_str()) {
                &extension_spec["wasm"][key]
            } else {
                &extension_spec[key]
            };
            assert_eq!(theirs, value, "{twin}: {key}");
        }
        let mut keys: Vec<&String> = extension_spec.as_object().unwrap().keys().collect();
        keys.extend(extension_spec["wasm"].as_object().unwrap().keys());
        assert_eq!(keys.len(), spec.as_object().unwrap().len() + 1, "{twin}: nothing more, nothing less");
    }
}
