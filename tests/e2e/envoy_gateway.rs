//! What Envoy Gateway's translator makes of a Gateway's HTTPRoutes and an
//! EnvoyExtensionPolicy, run in the real Envoy:
//! - the policy's wasm entry becomes an HCM filter named
//!   `envoy.filters.http.wasm/envoyextensionpolicy/NS/NAME/wasm/0`,
//!   disabled, and enabled on each route of the Gateway by a per-route
//!   `FilterConfig`; its VM has that name as `vm_id` (no VM shared with
//!   another policy), the V8 runtime, `root_id` = `rootID`, `fail_open` =
//!   `failOpen`, and `config` as a `StringValue` of the JSON stored;
//! - the code is fetched over HTTP from Envoy Gateway's own wasm server
//!   (the `wasm_cluster`), checked against its sha256;
//! - each HTTPRoute rule becomes a route per match (a virtual host per
//!   hostname, the most specific match first) and a cluster named
//!   `httproute/NS/NAME/rule/R`;
//! - its dynamicModule entry becomes an HCM filter named
//!   `envoy.filters.http.dynamic_modules/envoyextensionpolicy/NS/NAME/dynamicmodule/0`,
//!   enabled per route the same way: a `DynamicModuleFilter` loading the
//!   module by the path the EnvoyProxy's allowlist gives (`module.local`),
//!   `filter_name` = `filterName`, and `config` as a `StringValue`;
//! - a policy change reaches the proxies as a new listener (LDS).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::backends;
use super::envoy::{unique_listener, wasm, Envoy, EnvoyConfig};

pub const LDS_FILE: &str = "envoy-gateway/lds.yaml";

/// A Service behind the gateway: its port in this run's config, and the
/// status its Envoy listener answers (`None`: no listener; the test runs
/// a server there itself).
pub struct Backend {
    pub service: &'static str,
    pub port: u16,
    pub status: Option<u16>,
}

/// Envoy Gateway's wasm HTTP server: serves the built .wasm to whoever
/// asks, counting the fetches.
pub struct WasmServer {
    pub port: u16,
    pub fetches: Arc<AtomicUsize>,
}

impl WasmServer {
    pub fn start() -> WasmServer {
        let listener = unique_listener();
        let port = listener.local_addr().unwrap().port();
        let module = std::fs::read(wasm()).unwrap();
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    module.len()
                );
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&module));
            }
        });
        WasmServer { port, fetches }
    }
}

fn sha256_of_wasm() -> String {
    let output = std::process::Command::new("sha256sum").arg(wasm()).output().unwrap();
    String::from_utf8(output.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn name_of(object: &Value) -> (&str, &str) {
    (object["metadata"]["namespace"].as_str().unwrap(), object["metadata"]["name"].as_str().unwrap())
}

/// How specific a match is: exact path, then longer prefixes, then more
/// headers (Envoy Gateway tries the most specific first).
type Specificity = (u8, usize, usize);

/// An HTTPRoute match as Envoy Gateway writes it, and how specific it is.
fn route_match(m: &Value) -> (String, Specificity) {
    let value = m["path"]["value"].as_str().unwrap_or("/");
    let (path, rank) = match m["path"]["type"].as_str() {
        Some("Exact") => (format!(r#"path: "{value}""#), 2),
        _ if value != "/" => (format!(r#"path_separated_prefix: "{}""#, value.trim_end_matches('/')), 1),
        _ => (r#"prefix: "/""#.to_string(), 0),
    };
    let headers: Vec<String> = m["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            format!(
                r#"{{ name: "{}", string_match: {{ exact: "{}" }} }}"#,
                h["name"].as_str().unwrap(),
                h["value"].as_str().unwrap()
            )
        })
        .collect();
    let text = match headers.len() {
        0 => format!("{{ {path} }}"),
        _ => format!("{{ {path}, headers: [{}] }}", headers.join(", ")),
    };
    (text, (rank, value.len(), headers.len()))
}

/// The Gateway's listener as Envoy Gateway pushes it (LDS): the policy's
/// filter with `config` (the JSON a user would apply) and the `routes`.
pub fn listener(policy: &Value, routes: &[Value], config: &Value, wasm_port: u16, sha256: &str) -> String {
    let (filter, typed_config) = match policy["spec"].get("dynamicModule") {
        Some(module) => module_filter(policy, &module[0], config),
        None => wasm_filter(policy, config, wasm_port, sha256),
    };
    // hostname → its routes, each with how specific it is.
    let mut hosts: Vec<(String, Vec<(Specificity, String)>)> = Vec::new();
    for route in routes {
        let (namespace, name) = name_of(route);
        let hostnames: Vec<String> = match route["spec"]["hostnames"].as_array() {
            Some(list) => list.iter().map(|h| h.as_str().unwrap().to_string()).collect(),
            None => vec!["*".to_string()],
        };
        for host in hostnames {
            let mut entries = Vec::new();
            for (r, rule) in route["spec"]["rules"].as_array().unwrap().iter().enumerate() {
                let matches = rule["matches"].as_array().cloned().unwrap_or_else(|| vec![Value::Null]);
                for (m, one) in matches.iter().enumerate() {
                    let (text, rank) = route_match(one);
                    entries.push((
                        rank,
                        format!(
                            r#"            - name: "httproute/{namespace}/{name}/rule/{r}/match/{m}/{host_name}"
              match: {text}
              route: {{ cluster: "httproute/{namespace}/{name}/rule/{r}" }}
              typed_per_filter_config:
                "{filter}": {{ "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: {{}} }}
"#,
                            host_name = host.replace(['.', '*'], "_"),
                        ),
                    ));
                }
            }
            match hosts.iter_mut().find(|(h, _)| *h == host) {
                Some((_, list)) => list.extend(entries),
                None => hosts.push((host, entries)),
            }
        }
    }
    let mut virtual_hosts = String::new();
    for (host, mut entries) in hosts {
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        let domains = if host == "*" { r#"["*"]"#.to_string() } else { format!(r#"["{host}", "{host}:*"]"#) };
        virtual_hosts += &format!(
            "          - name: \"gateway/{}\"\n            domains: {domains}\n            routes:\n{}",
            host.replace(['.', '*'], "_"),
            entries.into_iter().map(|(_, e)| e).collect::<String>()
        );
    }
    format!(
        r#"resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: gateway/http
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 10000 }} }}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: http-10000
        http_filters:
        - name: "{filter}"
          disabled: true
          typed_config:
{typed_config}
        - name: envoy.filters.http.router
          typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
        route_config:
          name: gateway/http
          virtual_hosts:
{virtual_hosts}"#
    )
}

/// The policy's wasm entry: the filter's name and its `typed_config`.
fn wasm_filter(policy: &Value, config: &Value, wasm_port: u16, sha256: &str) -> (String, String) {
    let (policy_namespace, policy_name) = name_of(policy);
    let vm_id = format!("envoyextensionpolicy/{policy_namespace}/{policy_name}/wasm/0");
    let wasm = &policy["spec"]["wasm"][0];
    let json = serde_json::to_string(config).unwrap().replace('\'', "''");
    let typed_config = format!(
        r#"            "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
            config:
              name: {wasm_name}
              root_id: {root_id}
              fail_open: {fail_open}
              vm_config:
                vm_id: "{vm_id}"
                runtime: envoy.wasm.runtime.v8
                code:
                  remote:
                    http_uri: {{ uri: "http://127.0.0.1:{wasm_port}/{sha256}.wasm", cluster: wasm_cluster, timeout: 10s }}
                    sha256: "{sha256}"
              configuration:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{json}'"#,
        wasm_name = wasm["name"].as_str().unwrap(),
        root_id = wasm["rootID"].as_str().unwrap(),
        fail_open = wasm["failOpen"].as_bool().unwrap(),
    );
    (format!("envoy.filters.http.wasm/{vm_id}"), typed_config)
}

/// The policy's dynamic-module entry: the filter's name and its
/// `typed_config`, the module loaded by path as the EnvoyProxy's allowlist
/// gives it (here the one `make dynmod` built, where the manifest names the
/// proxy image's path).
fn module_filter(policy: &Value, module: &Value, config: &Value) -> (String, String) {
    let (policy_namespace, policy_name) = name_of(policy);
    let name = format!("envoyextensionpolicy/{policy_namespace}/{policy_name}/dynamicmodule/0");
    let path = super::built::require_fresh_dynmod_dir().join("libcanary_router.so");
    let json = serde_json::to_string(config).unwrap().replace('\'', "''");
    let typed_config = format!(
        r#"            "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
            dynamic_module_config: {{ module: {{ local: {{ filename: "{path}" }} }} }}
            filter_name: {filter_name}
            filter_config:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: '{json}'"#,
        path = path.display(),
        filter_name = module["filterName"].as_str().unwrap(),
    );
    (format!("envoy.filters.http.dynamic_modules/{name}"), typed_config)
}

/// The bootstrap: `merged` (what an EnvoyProxy merges into it), the
/// Gateway's listener from LDS, a cluster per rule of each HTTPRoute to
/// its Service's backend, and the wasm server's cluster.
fn bootstrap(routes: &[Value], backends_: &[Backend], wasm_port: u16, merged: &str) -> String {
    let port_of = |service: &str| {
        backends_
            .iter()
            .find(|b| b.service == service)
            .unwrap_or_else(|| panic!("no backend for {service}"))
            .port
    };
    let mut clusters = String::new();
    for route in routes {
        let (namespace, name) = name_of(route);
        for (r, rule) in route["spec"]["rules"].as_array().unwrap().iter().enumerate() {
            let service = rule["backendRefs"][0]["name"].as_str().unwrap();
            clusters +=
                &backends::cluster(&format!("httproute/{namespace}/{name}/rule/{r}"), port_of(service));
        }
    }
    let mut listeners = String::new();
    for backend in backends_ {
        if let Some(status) = backend.status {
            listeners += &backends::listener(backend.service, backend.port, status);
        }
    }
    format!(
        r#"{merged}node: {{ id: envoy-gateway-test, cluster: envoy-gateway-test }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 9901 }} }}
dynamic_resources:
  lds_config: {{ path_config_source: {{ path: {LDS_FILE} }}, resource_api_version: V3 }}
static_resources:
  listeners:
{listeners}  clusters:
{clusters}  - name: wasm_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: wasm_cluster
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {wasm_port} }} }} }} }}] }}]
"#
    )
}

/// An Envoy Gateway proxy for one policy and its Gateway's HTTPRoutes.
pub struct Gateway {
    pub envoy: Envoy,
    pub server: WasmServer,
    policy: Value,
    routes: Vec<Value>,
    sha256: String,
    pushes: u64,
}

impl Gateway {
    /// Starts it with the policy's config replaced by `config`; `merged`
    /// is what an EnvoyProxy merges into the bootstrap.
    pub fn start(
        policy: Value,
        routes: Vec<Value>,
        config: &Value,
        backends_: &[Backend],
        merged: &str,
    ) -> Gateway {
        let server = WasmServer::start();
        let sha256 = sha256_of_wasm();
        let mut envoy_config = EnvoyConfig::from_text(bootstrap(&routes, backends_, server.port, merged));
        envoy_config
            .files
            .push((LDS_FILE.to_string(), listener(&policy, &routes, config, server.port, &sha256)));
        let envoy = Envoy::start(envoy_config);
        Gateway { envoy, server, policy, routes, sha256, pushes: 1 }
    }

    /// Applies a changed policy `config`: Envoy Gateway pushes the
    /// listener anew; returns once Envoy took it and its filter is up.
    pub fn push(&mut self, config: &Value) {
        let listener = listener(&self.policy, &self.routes, config, self.server.port, &self.sha256);
        self.envoy.replace_file(LDS_FILE, &listener);
        self.pushes += 1;
        let want = self.pushes;
        self.envoy.wait_until("the new listener", || {
            self.envoy.stat("listener_manager.lds.update_success") == Some(want)
        });
        self.envoy.wait_until("the new listener to warm", || {
            self.envoy.stat("listener_manager.total_listeners_warming") == Some(0)
        });
    }
}
