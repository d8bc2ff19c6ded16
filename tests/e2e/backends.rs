//! Backends for configs a test writes itself: an Envoy listener per
//! Service answering `status` with its own name, and a STATIC cluster to it.

/// A listener on `port` that answers every request `status`, body `name`.
pub fn listener(name: &str, port: u16, status: u16) -> String {
    format!(
        r#"  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
          route_config:
            virtual_hosts:
            - {{ name: {name}, domains: ["*"], routes: [{{ match: {{ prefix: "/" }}, direct_response: {{ status: {status}, body: {{ inline_string: "{name}" }} }} }}] }}
"#
    )
}

/// A cluster named `name` sending to 127.0.0.1:`port`.
pub fn cluster(name: &str, port: u16) -> String {
    format!(
        r#"  - name: "{name}"
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: "{name}"
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }} }}] }}]
"#
    )
}
