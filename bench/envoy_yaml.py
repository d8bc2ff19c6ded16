"""The Envoy YAML every bench Envoy is built from: a bootstrap, an HTTP
listener around a filter chain, and the route table that sends a request to
the cluster its filter named in x-route-target (503 for a cluster that does
not exist, Envoy's default). Shared by bench/run.py and bench/config_cost.py.
"""


def listener(name, port, filters, route_config):
    return f"""  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
          route_config:
{route_config}"""


def bootstrap(admin, listeners, clusters="", head=""):
    """`head`: top-level keys placed before admin (node, stats_config)."""
    return f"""{head}admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  listeners:
{listeners}
  clusters:
{clusters}"""


CLUSTER_HEADER_ROUTES = """            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/", headers: [{ name: x-route-target, present_match: true }] }
                route: { cluster_header: x-route-target }
              - match: { prefix: "/" }
                direct_response: { status: 404 }
"""
