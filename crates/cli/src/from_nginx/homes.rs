//! `from-nginx --to HOME`: what each home needs besides the filter's config
//! for the converted canaries to route, ready for `kubectl apply -f -` (or,
//! for plain Envoy, a bootstrap to start). The filter writes the Service's
//! name into the target header; each home's routing objects send each
//! value to its Service, keeping the Ingress's namespace, host, path and
//! Service port, and send everything else on that host and path to the
//! main Service.

use serde_json::{json, Map, Value};

use canary_router_core::routing::route::{Action, Route};
use canary_router_core::routing::router::Router;

use super::plugin::Plugin;
use crate::Failure;

/// Where the converted canaries are to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Home {
    /// The filter's JSON config alone.
    Json,
    /// An Envoy bootstrap: the filter, `cluster_header` routing, a cluster
    /// per Service.
    Envoy,
    /// Envoy Gateway: Gateway, HTTPRoutes, ReferenceGrants,
    /// EnvoyExtensionPolicy.
    EnvoyGateway,
    /// Istio's classic ingress gateway: Gateway, a VirtualService per
    /// host, WasmPlugin (or TrafficExtension).
    Istio,
    /// Istio with the Gateway API: Gateway (class istio), HTTPRoutes,
    /// ReferenceGrants, WasmPlugin (or TrafficExtension).
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
    /// Every Service the route's targets name, the main one among them.
    pub services: Vec<Service>,
}

impl Home {
    /// As `--to` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Home::Json => "json",
            Home::Envoy => "envoy",
            Home::EnvoyGateway => "envoy-gateway",
            Home::Istio => "istio",
            Home::IstioGatewayApi => "istio-gateway-api",
        }
    }
}

/// What the translation made: the config, compiled, and where each of
/// its routes lives (`placements[i]` is `router.routes[i]`).
pub struct Converted<'a> {
    pub config: &'a Value,
    pub router: &'a Router,
    pub placements: &'a [Placement],
    pub plugin: &'a Plugin,
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

/// How a route of the config matches its path, for the routing objects.
enum PathMatch<'a> {
    /// `path`: this path only.
    Exact(&'a str),
    /// `pathPrefix` with `pathElements` (or `/`): whole path elements.
    Elements(&'a str),
    /// A plain `pathPrefix` (`ImplementationSpecific`, a use-regex host):
    /// `/api` takes `/apiary` too.
    Raw(&'a str),
}

fn path_match(route: &Value) -> PathMatch<'_> {
    if let Some(path) = route["path"].as_str() {
        return PathMatch::Exact(path);
    }
    match route["pathPrefix"].as_str().unwrap_or("/") {
        "/" => PathMatch::Elements("/"),
        prefix if route["pathElements"] == true => PathMatch::Elements(prefix),
        prefix => PathMatch::Raw(prefix),
    }
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
    let mut grants = Grants::default();
    for (placement, compiled) in converted.routes() {
        let route = &placement.route;
        let path_match = match path_match(route) {
            PathMatch::Exact(path) => json!({ "type": "Exact", "value": path }),
            PathMatch::Elements(prefix) => json!({ "type": "PathPrefix", "value": prefix }),
            PathMatch::Raw(prefix) => {
                warnings.push(format!(
                    "route {}: path {prefix} is a plain prefix in ingress-nginx (ImplementationSpecific, or a use-regex \
                     host); the HTTPRoute matches it by whole path elements",
                    route["name"]
                ));
                json!({ "type": "PathPrefix", "value": prefix })
            }
        };
        // A backend in the route's own namespace needs no namespace; one in
        // another needs that namespace's ReferenceGrant.
        let mut backend = |service: &Service| -> Result<Value, Failure> {
            let mut backend = json!({ "name": service.name, "port": port_number(service)? });
            if service.namespace != placement.namespace {
                backend["namespace"] = json!(service.namespace);
                grants.allow(&placement.namespace, service);
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
    objects.extend(grants.objects());
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
                    "code": converted.plugin.envoy_gateway_code(),
                    "failOpen": false,
                    "config": converted.config,
                }],
            },
        }),
        _ => converted.plugin.istio(
            GATEWAY,
            &gateway_namespace,
            json!({ "targetRefs": [target_ref] }),
            converted.config,
        ),
    });
    Ok(objects)
}

/// Istio's classic ingress gateway: a Gateway on `istio: ingressgateway`,
/// one VirtualService per host with its routes' entries in the order the
/// config lists them (ingress-nginx's), the plugin on the same pods. One
/// per host, not per route: istiod merges a host's VirtualServices in
/// creation order, which would undo the order.
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
    for host in converted.hosts() {
        let mut http = Vec::new();
        let mut namespace = None;
        for (placement, compiled) in converted.routes().filter(|(p, _)| host_of(&p.route) == host) {
            namespace.get_or_insert(placement.namespace.as_str());
            // Istio's prefix is raw; Kubernetes' Prefix takes whole elements.
            let uris: Vec<Value> = match path_match(&placement.route) {
                PathMatch::Exact(path) => vec![json!({ "exact": path })],
                PathMatch::Elements(prefix) if prefix != "/" => {
                    let bare = prefix.trim_end_matches('/');
                    vec![json!({ "exact": bare }), json!({ "prefix": format!("{bare}/") })]
                }
                PathMatch::Elements(prefix) | PathMatch::Raw(prefix) => vec![json!({ "prefix": prefix })],
            };
            let destination = |service: &Service| -> Result<Value, Failure> {
                Ok(json!({ "destination": {
                    "host": format!("{}.{}.svc.cluster.local", service.name, service.namespace),
                    "port": { "number": port_number(service)? },
                } }))
            };
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
                let name =
                    format!("{}-{}", placement.route["name"].as_str().unwrap_or_default(), service.name);
                http.push(json!({ "name": name, "match": matches, "route": [destination(service)?] }));
            }
        }
        objects.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {
                "name": object_name(host.unwrap_or("any-host"), &mut taken),
                "namespace": namespace.unwrap_or(gateway_namespace.as_str()),
            },
            "spec": {
                "hosts": [host.unwrap_or("*")],
                "gateways": [format!("{gateway_namespace}/{GATEWAY}")],
                "http": http,
            },
        }));
    }
    objects.push(converted.plugin.istio(
        GATEWAY,
        "istio-system",
        json!({ "selector": { "matchLabels": { "istio": "ingressgateway" } } }),
        converted.config,
    ));
    Ok(objects)
}

/// The ReferenceGrants the HTTPRoutes need: Gateway API refuses a
/// backend in another namespace unless that namespace grants it.
#[derive(Default)]
struct Grants {
    /// (Service's namespace, HTTPRoute's namespace) and the Services.
    grants: Vec<((String, String), Vec<String>)>,
}

impl Grants {
    fn allow(&mut self, from: &str, service: &Service) {
        let key = (service.namespace.clone(), from.to_string());
        match self.grants.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) if names.contains(&service.name) => {}
            Some((_, names)) => names.push(service.name.clone()),
            None => self.grants.push((key, vec![service.name.clone()])),
        }
    }

    /// One ReferenceGrant per (Service's namespace, HTTPRoute's namespace),
    /// naming each Service it lets the routes send to.
    fn objects(&self) -> Vec<Value> {
        self.grants
            .iter()
            .map(|((to, from), names)| {
                let services: Vec<Value> =
                    names.iter().map(|name| json!({ "group": "", "kind": "Service", "name": name })).collect();
                json!({
                    "apiVersion": "gateway.networking.k8s.io/v1beta1",
                    "kind": "ReferenceGrant",
                    "metadata": { "name": format!("canary-router-from-{from}"), "namespace": to },
                    "spec": {
                        "from": [{ "group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": from }],
                        "to": services,
                    },
                })
            })
            .collect()
    }
}

/// The filter's stats tags, as envoy/envoy.yaml declares them (a test
/// keeps the two equal).
const STATS_TAGS: [&str; 11] = [
    "route",
    "target",
    "rule",
    "status_class",
    "cluster",
    "reason",
    "split",
    "check",
    "query",
    "result",
    "arm",
];

/// A whole Envoy bootstrap: listener 0.0.0.0:10000, the filter inline
/// (`--wasm`, or `make build`'s .wasm), routing by `cluster_header`, a
/// cluster per Service at its cluster DNS name and port.
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
                                        "code": { "local": { "filename": converted.plugin.wasm } },
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
