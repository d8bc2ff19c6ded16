//! `from-nginx --to HOME`: what each home needs besides the filter's config
//! for the converted canaries to route, ready for `kubectl apply -f -` (or,
//! for plain Envoy, a bootstrap to start). The filter writes the Service's
//! name into the target header; each home's routing objects send each
//! value to its Service, keeping the Ingress's namespace, host, path and
//! Service port, and send everything else on that host and path to the
//! main Service.

use serde_json::{json, Map, Value};

use canary_router::route::{Action, Route};
use canary_router::router::Router;

use crate::Failure;

/// Where the converted canaries are to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Home {
    /// The filter's JSON config alone.
    Json,
    /// An Envoy bootstrap: the filter, `cluster_header` routing, a cluster
    /// per Service.
    Envoy,
    /// Envoy Gateway: Gateway, HTTPRoutes, EnvoyExtensionPolicy.
    EnvoyGateway,
    /// Istio's classic ingress gateway: Gateway, VirtualServices,
    /// WasmPlugin.
    Istio,
    /// Istio with the Gateway API: Gateway (class istio), HTTPRoutes,
    /// WasmPlugin.
    IstioGatewayApi,
}

/// A Service a route sends to, as its Ingress names it.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    /// A number or a port name, as written; `None` when not given.
    pub port: Option<String>,
    /// The Ingress that names it.
    pub ingress: String,
}

/// One route of the config and where it lives in Kubernetes.
pub struct Placement {
    /// The route as the config has it (`name`, `hosts`, `pathPrefix`,
    /// `pathElements`, `default`).
    pub route: Value,
    pub namespace: String,
    /// `Prefix`, `Exact` or `ImplementationSpecific`; `None` for the
    /// default server (every path).
    pub path_type: Option<String>,
    /// Every Service the route's targets name, the main one among them.
    pub services: Vec<Service>,
}

/// The filter's image (or module URL) and digest for the plugin objects.
pub struct Image {
    pub url: String,
    pub sha256: String,
}

/// What the translation made: the config, compiled, and where each of
/// its routes lives (`placements[i]` is `router.routes[i]`).
pub struct Converted<'a> {
    pub config: &'a Value,
    pub router: &'a Router,
    pub placements: &'a [Placement],
    pub image: &'a Image,
}

impl Converted<'_> {
    /// Each placement with its compiled route.
    fn routes(&self) -> impl Iterator<Item = (&Placement, &Route)> {
        self.placements.iter().zip(&self.router.routes)
    }

    /// Where the gateway and its plugin go: the first route's namespace.
    fn gateway_namespace(&self) -> String {
        self.placements.first().map_or("default", |p| p.namespace.as_str()).to_string()
    }

    /// Every host the routes name, once each (`None`: any host).
    fn hosts(&self) -> Vec<Option<&str>> {
        let mut hosts = Vec::new();
        for placement in self.placements {
            let host = host_of(&placement.route);
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        hosts
    }
}

/// The gateway every generated route attaches to.
const GATEWAY: &str = "canary-router";

/// Everything the home needs, as one YAML stream (`---` between objects).
pub fn manifests(
    home: Home,
    converted: &Converted<'_>,
    warnings: &mut Vec<String>,
) -> Result<String, Failure> {
    let objects = match home {
        Home::Json => return Ok(serde_json::to_string_pretty(converted.config).unwrap_or_default()),
        Home::Envoy => return envoy_bootstrap(converted),
        Home::EnvoyGateway | Home::IstioGatewayApi => gateway_api(home, converted, warnings)?,
        Home::Istio => istio_classic(converted)?,
    };
    let documents: Vec<String> =
        objects.iter().map(|o| serde_norway::to_string(o).unwrap_or_default()).collect();
    Ok(documents.join("---\n"))
}

/// The Service's port as a number: Gateway API and Istio destinations
/// want one; 80 when the Ingress gives none.
fn port_number(service: &Service) -> Result<u16, Failure> {
    match &service.port {
        None => Ok(80),
        Some(port) => port.parse().map_err(|_| {
            Failure::Invalid(format!(
                "Service {}/{} is reached on port {port:?}: routing objects need its number; write the number in the Ingress",
                service.namespace, service.name
            ))
        }),
    }
}

fn service<'a>(placement: &'a Placement, name: &str) -> Result<&'a Service, Failure> {
    placement.services.iter().find(|s| s.name == name).ok_or_else(|| {
        Failure::Invalid(format!(
            "route {}: target {name} is no Service of its Ingresses",
            placement.route["name"]
        ))
    })
}

/// Every target of the route other than its default, in rule order.
fn canary_targets(route: &Route) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for rule in &route.rules {
        let targets = match &rule.action {
            Action::Target(target) => std::slice::from_ref(target),
            Action::Split(split) => split.targets(),
        };
        for target in targets {
            if *target != route.default && !out.contains(&target.as_str()) {
                out.push(target);
            }
        }
    }
    out
}

/// Where a route's traffic goes: each canary Service with the target
/// header's value that selects it, in rule order, then the main Service
/// (`None`) for the rest of the route's path.
fn destinations<'a>(
    placement: &'a Placement,
    route: &'a Route,
) -> Result<Vec<(Option<&'a str>, &'a Service)>, Failure> {
    let mut out = Vec::new();
    for target in canary_targets(route) {
        out.push((Some(target), service(placement, target)?));
    }
    out.push((None, service(placement, &route.default)?));
    Ok(out)
}

/// A DNS-1123 label from `text`, `canary-router-` first.
fn object_name(text: &str, taken: &mut Vec<String>) -> String {
    let mut name = String::from("canary-router-");
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c != '-' || !name.ends_with('-') {
            name.push(c);
        }
    }
    name.truncate(56);
    let base = name.trim_end_matches('-').to_string();
    let mut unique = base.clone();
    let mut n = 2;
    while taken.contains(&unique) {
        unique = format!("{base}-{n}");
        n += 1;
    }
    taken.push(unique.clone());
    unique
}

fn host_of(route: &Value) -> Option<&str> {
    route["hosts"][0].as_str()
}

/// Gateway API: a Gateway with a listener per host, an HTTPRoute per
/// route (a rule per target by the header, then the main Service for the
/// rest of its path), and the plugin attached to the Gateway so every
/// route runs it.
fn gateway_api(
    home: Home,
    converted: &Converted<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>, Failure> {
    let gateway_namespace = converted.gateway_namespace();
    let target_header = &converted.router.target_header;
    let class = if home == Home::EnvoyGateway { "envoy-gateway" } else { "istio" };
    let listeners: Vec<Value> = converted
        .hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let mut listener = Map::new();
            listener.insert("name".into(), json!(format!("http-{i}")));
            listener.insert("port".into(), json!(80));
            listener.insert("protocol".into(), json!("HTTP"));
            if let Some(host) = host {
                listener.insert("hostname".into(), json!(host));
            }
            listener.insert("allowedRoutes".into(), json!({ "namespaces": { "from": "All" } }));
            Value::Object(listener)
        })
        .collect();
    let mut objects = vec![json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": { "name": GATEWAY, "namespace": gateway_namespace },
        "spec": { "gatewayClassName": class, "listeners": listeners },
    })];
    let mut taken = Vec::new();
    for (placement, compiled) in converted.routes() {
        let route = &placement.route;
        let path = route["pathPrefix"].as_str().unwrap_or("/");
        let path_match = match placement.path_type.as_deref() {
            Some("Exact") => json!({ "type": "Exact", "value": path }),
            Some("ImplementationSpecific") if path != "/" => {
                warnings.push(format!(
                    "route {}: path {path} is ImplementationSpecific (a raw prefix in ingress-nginx); the HTTPRoute matches it by whole path elements",
                    route["name"]
                ));
                json!({ "type": "PathPrefix", "value": path })
            }
            _ => json!({ "type": "PathPrefix", "value": path }),
        };
        // A backend in the route's own namespace needs no namespace (nor
        // a ReferenceGrant).
        let backend = |service: &Service| -> Result<Value, Failure> {
            let mut backend = json!({ "name": service.name, "port": port_number(service)? });
            if service.namespace != placement.namespace {
                backend["namespace"] = json!(service.namespace);
            }
            Ok(backend)
        };
        let mut rules = Vec::new();
        for (value, service) in destinations(placement, compiled)? {
            let mut matched = json!({ "path": path_match });
            if let Some(value) = value {
                matched["headers"] = json!([{ "type": "Exact", "name": target_header, "value": value }]);
            }
            rules.push(json!({ "matches": [matched], "backendRefs": [backend(service)?] }));
        }
        let mut spec = Map::new();
        spec.insert(
            "parentRefs".into(),
            json!([{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY, "namespace": gateway_namespace }]),
        );
        if let Some(host) = host_of(route) {
            spec.insert("hostnames".into(), json!([host]));
        }
        spec.insert("rules".into(), Value::Array(rules));
        objects.push(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": { "name": object_name(route["name"].as_str().unwrap_or_default(), &mut taken), "namespace": placement.namespace },
            "spec": spec,
        }));
    }
    let target_ref = json!({ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY });
    objects.push(match home {
        Home::EnvoyGateway => json!({
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "EnvoyExtensionPolicy",
            "metadata": { "name": GATEWAY, "namespace": gateway_namespace },
            "spec": {
                "targetRefs": [target_ref],
                "wasm": [{
                    "name": "canary-router",
                    "rootID": "canary-router",
                    "code": { "type": "Image", "image": { "url": converted.image.url }, "sha256": converted.image.sha256 },
                    "failOpen": false,
                    "config": converted.config,
                }],
            },
        }),
        _ => wasm_plugin(&gateway_namespace, json!({ "targetRefs": [target_ref] }), converted),
    });
    Ok(objects)
}

/// Istio's WasmPlugin in `namespace`, attached by `attach`.
fn wasm_plugin(namespace: &str, attach: Value, converted: &Converted<'_>) -> Value {
    let (config, image) = (converted.config, converted.image);
    let mut spec = attach;
    let fields = [
        ("url", json!(image.url)),
        ("sha256", json!(image.sha256)),
        ("phase", json!("AUTHN")),
        ("pluginName", json!("canary-router")),
        ("failStrategy", json!("FAIL_RELOAD")),
        ("pluginConfig", config.clone()),
    ];
    if let Some(map) = spec.as_object_mut() {
        map.extend(fields.map(|(k, v)| (k.to_string(), v)));
    }
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": { "name": GATEWAY, "namespace": namespace },
        "spec": spec,
    })
}

/// Istio's classic ingress gateway: a Gateway on `istio: ingressgateway`,
/// a VirtualService per route, the WasmPlugin on the same pods.
fn istio_classic(converted: &Converted<'_>) -> Result<Vec<Value>, Failure> {
    let gateway_namespace = converted.gateway_namespace();
    let target_header = &converted.router.target_header;
    let hosts: Vec<&str> = converted.hosts().into_iter().map(|h| h.unwrap_or("*")).collect();
    let mut objects = vec![json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": { "name": GATEWAY, "namespace": gateway_namespace },
        "spec": {
            "selector": { "istio": "ingressgateway" },
            "servers": [{ "port": { "number": 80, "name": "http", "protocol": "HTTP" }, "hosts": hosts }],
        },
    })];
    let mut taken = Vec::new();
    for (placement, compiled) in converted.routes() {
        let route = &placement.route;
        let path = route["pathPrefix"].as_str().unwrap_or("/");
        // Istio's prefix is raw; Kubernetes' Prefix takes whole elements.
        let uris: Vec<Value> = match placement.path_type.as_deref() {
            Some("Exact") => vec![json!({ "exact": path })],
            Some("Prefix") if path != "/" => {
                let dir = format!("{}/", path.trim_end_matches('/'));
                vec![json!({ "exact": path.trim_end_matches('/') }), json!({ "prefix": dir })]
            }
            _ => vec![json!({ "prefix": path })],
        };
        let destination = |service: &Service| -> Result<Value, Failure> {
            Ok(json!({ "destination": {
                "host": format!("{}.{}.svc.cluster.local", service.name, service.namespace),
                "port": { "number": port_number(service)? },
            } }))
        };
        let mut http = Vec::new();
        for (value, service) in destinations(placement, compiled)? {
            let matches: Vec<Value> = uris
                .iter()
                .map(|uri| match value {
                    Some(value) => {
                        json!({ "uri": uri, "headers": { target_header.as_str(): { "exact": value } } })
                    }
                    None => json!({ "uri": uri }),
                })
                .collect();
            http.push(json!({ "name": service.name, "match": matches, "route": [destination(service)?] }));
        }
        objects.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": { "name": object_name(route["name"].as_str().unwrap_or_default(), &mut taken), "namespace": placement.namespace },
            "spec": {
                "hosts": [host_of(route).unwrap_or("*")],
                "gateways": [format!("{gateway_namespace}/{GATEWAY}")],
                "http": http,
            },
        }));
    }
    objects.push(wasm_plugin(
        "istio-system",
        json!({ "selector": { "matchLabels": { "istio": "ingressgateway" } } }),
        converted,
    ));
    Ok(objects)
}

/// The filter's stats tags, as envoy/envoy.yaml declares them (a test
/// keeps the two equal).
const STATS_TAGS: [&str; 10] =
    ["route", "target", "rule", "status_class", "cluster", "reason", "split", "check", "query", "result"];

/// A whole Envoy bootstrap: listener 0.0.0.0:10000, the filter inline
/// (`make build`'s .wasm), routing by `cluster_header`, a cluster per
/// Service at its cluster DNS name and port.
fn envoy_bootstrap(converted: &Converted<'_>) -> Result<String, Failure> {
    let (config, placements) = (converted.config, converted.placements);
    let target_header = &converted.router.target_header;
    let mut clusters: Vec<Value> = Vec::new();
    for service in placements.iter().flat_map(|p| &p.services) {
        if clusters.iter().any(|c| c["name"] == service.name.as_str()) {
            continue;
        }
        let address = format!("{}.{}.svc.cluster.local", service.name, service.namespace);
        clusters.push(json!({
            "name": service.name,
            "type": "STRICT_DNS",
            "connect_timeout": "1s",
            "load_assignment": { "cluster_name": service.name, "endpoints": [{ "lb_endpoints": [{ "endpoint": {
                "address": { "socket_address": { "address": address, "port_value": port_number(service)? } },
            } }] }] },
        }));
    }
    let stats_tags: Vec<Value> = STATS_TAGS
        .iter()
        .map(|tag| json!({ "tag_name": tag, "regex": format!("({tag}=\\.=(.*?);\\.;)") }))
        .collect();
    let configuration = serde_json::to_string_pretty(config).unwrap_or_default();
    let bootstrap = json!({
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 9901 } } },
        "stats_config": { "stats_tags": stats_tags },
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": { "socket_address": { "address": "0.0.0.0", "port_value": 10000 } },
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "http_filters": [
                            { "name": "envoy.filters.http.wasm", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "config": {
                                    "name": "canary-router",
                                    "root_id": "canary-router",
                                    "failure_policy": "FAIL_RELOAD",
                                    "vm_config": {
                                        "runtime": "envoy.wasm.runtime.v8",
                                        "code": { "local": { "filename": "target/wasm32-wasip1/release/canary_router.wasm" } },
                                    },
                                    "configuration": {
                                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                                        "value": configuration,
                                    },
                                },
                            } },
                            { "name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                            } },
                        ],
                        "route_config": { "virtual_hosts": [{
                            "name": "ingress", "domains": ["*"],
                            "routes": [{ "match": { "prefix": "/" }, "route": { "cluster_header": target_header } }],
                        }] },
                    },
                }] }],
            }],
            "clusters": clusters,
        },
    });
    Ok(serde_norway::to_string(&bootstrap).unwrap_or_default())
}
