#!/usr/bin/env python3
"""`make bench`: canary-router against the alternatives, on one real Envoy.

Four ingress configurations, each Envoy 1.40 with --concurrency 1 pinned to
CPU 0, in front of the same backend Envoy (direct_response) on CPU 1, loaded
by wrk (keep-alive, fixed connections) also on CPU 1:

  native     Envoy's own route table: header, cookie and query matches and
             weighted_clusters; no wasm (the physical limit)
  lua        the same rules in Envoy's Lua filter
  wasm-1     canary-router with a one-rule config (the floor of any wasm filter)
  wasm-real  canary-router with bench/realistic.json (10 routes x 5 rules,
             header/cookie/query, one sticky split)

Every request carries bench/request-headers.txt (20 headers with cookies)
and, for the realistic config, walks all five rules of the last route to its
split. Rounds alternate the four configurations; medians are reported.

usage: run.py [--rounds N] [--seconds S] [--connections C] [--out BENCHMARKS-results.md]
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVOY = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv", "bin", "envoy")
WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "canary_router.wasm")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hcm(stat_prefix, filters, route_config):
    return f"""
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {stat_prefix}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
          route_config:
{route_config}"""


def bootstrap(admin, port, filters, route_config, clusters=""):
    return f"""admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  listeners:
  - name: ingress
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:{hcm("ingress", filters, route_config)}
  clusters:
{clusters}"""


def clusters(backend_port):
    out = ""
    for i in range(10):
        for name in (f"svc{i}", f"svc{i}-canary"):
            out += f"""  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {backend_port} }} }} }} }}] }}]
"""
    return out


def native_routes():
    vhosts = ""
    for i in range(10):
        last = (f"              - match: {{ prefix: \"/\" }}\n"
                f"                route: {{ weighted_clusters: {{ clusters: [{{ name: svc{i}-canary, weight: 10 }}, {{ name: svc{i}, weight: 90 }}] }} }}\n"
                if i == 9 else
                f"              - match: {{ prefix: \"/\", headers: [{{ name: user-agent, string_match: {{ safe_regex: {{ regex: \"(?i).*(bot|crawler).*\" }} }} }}] }}\n"
                f"                route: {{ cluster: svc{i} }}\n"
                f"              - match: {{ prefix: \"/\" }}\n"
                f"                route: {{ cluster: svc{i} }}\n")
        vhosts += f"""            - name: svc{i}
              domains: ["svc{i}.example.com"]
              routes:
              - match: {{ prefix: "/", headers: [{{ name: x-beta, string_match: {{ exact: "on" }} }}] }}
                route: {{ cluster: svc{i}-canary }}
              - match: {{ prefix: "/", headers: [{{ name: cookie, string_match: {{ contains: "canary=always" }} }}] }}
                route: {{ cluster: svc{i}-canary }}
              - match: {{ prefix: "/", query_parameters: [{{ name: version, string_match: {{ safe_regex: {{ regex: "v2|v3" }} }} }}] }}
                route: {{ cluster: svc{i}-canary }}
              - match: {{ prefix: "/", headers: [{{ name: x-user-group, string_match: {{ prefix: "internal-" }} }}] }}
                route: {{ cluster: svc{i}-canary }}
{last}"""
    return "            virtual_hosts:\n" + vhosts


CLUSTER_HEADER_ROUTES = """            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/", headers: [{ name: x-route-target, present_match: true }] }
                route: { cluster_header: x-route-target }
              - match: { prefix: "/" }
                direct_response: { status: 404 }
"""

LUA = r"""
function envoy_on_request(handle)
  local headers = handle:headers()
  local host = headers:get(":authority") or ""
  local n = string.match(host, "^svc(%d)%.example%.com")
  if n == nil then
    headers:remove("x-route-target")
    handle:clearRouteCache()
    return
  end
  local svc = "svc" .. n
  local target = svc
  local path = headers:get(":path") or ""
  local cookies = ""
  for key, value in pairs(headers) do
    if key == "cookie" then cookies = cookies .. ";" .. value end
  end
  local group = headers:get("x-user-group") or ""
  if headers:get("x-beta") == "on" then
    target = svc .. "-canary"
  elseif string.find(cookies, "canary=always", 1, true) then
    target = svc .. "-canary"
  elseif string.find(path, "[?&]version=v[23]") then
    target = svc .. "-canary"
  elseif string.sub(group, 1, 9) == "internal-" then
    target = svc .. "-canary"
  elseif n == "9" then
    local uid = string.match(cookies, "[; ]uid=([^;]*)")
    local bucket
    if uid ~= nil and uid ~= "" then
      local h = 5381
      for i = 1, #uid do h = (h * 33 + string.byte(uid, i)) % 4294967296 end
      bucket = h % 100
    else
      bucket = math.random(0, 99)
    end
    if bucket < 10 then target = svc .. "-canary" end
  else
    local agent = string.lower(headers:get("user-agent") or "")
    if string.find(agent, "bot", 1, true) or string.find(agent, "crawler", 1, true) then target = svc end
  end
  headers:replace("x-route-target", target)
  handle:clearRouteCache()
end
"""


def lua_filter():
    code = "\n".join("                  " + line for line in LUA.strip("\n").split("\n"))
    return f"""          - name: envoy.filters.http.lua
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
              default_source_code:
                inline_string: |
{code}"""


def wasm_filter(config_json):
    value = json.dumps(json.loads(config_json)).replace("'", "''")
    return f"""          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: canary-router
                root_id: canary-router
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: canary-router
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: {WASM} }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{value}'"""


def backend_config(admin, port):
    route = """            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: "ok" } }
"""
    return bootstrap(admin, port, "", route)


class Envoy:
    def __init__(self, name, yaml, cpu, workdir):
        self.admin = int(re.search(r"admin:\n  address: \{ socket_address: \{ address: 127.0.0.1, port_value: (\d+)", yaml).group(1))
        path = os.path.join(workdir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(yaml)
        self.log = open(os.path.join(workdir, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), ENVOY, "-c", path, "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{name}: Envoy exited; see {self.log.name}")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"{name}: Envoy not ready in 60 s")
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def request_headers():
    with open(os.path.join(ROOT, "bench", "request-headers.txt")) as f:
        return [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]


def wrk(port, seconds, connections):
    args = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-H", "Host: svc9.example.com"]
    for header in request_headers():
        args += ["-H", header]
    args.append(f"http://127.0.0.1:{port}/catalog/items?page=2&sort=price")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return rps, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0, errors.group(1) if errors else ""


def ingress_configs(admin, port, backend_port):
    with open(os.path.join(ROOT, "bench", "one-rule.json")) as f:
        one = f.read()
    with open(os.path.join(ROOT, "bench", "realistic.json")) as f:
        real = f.read()
    c = clusters(backend_port)
    return {
        "native": bootstrap(admin, port, "", native_routes(), c),
        "lua": bootstrap(admin, port, lua_filter(), CLUSTER_HEADER_ROUTES, c),
        "wasm-1": bootstrap(admin, port, wasm_filter(one), CLUSTER_HEADER_ROUTES, c),
        "wasm-real": bootstrap(admin, port, wasm_filter(real), CLUSTER_HEADER_ROUTES, c),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench-results.json"))
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: `make bench` installs wrk with apt-get; or install it yourself")
    workdir = tempfile.mkdtemp(prefix="canary-router-bench-")
    backend_port, backend_admin = free_port(), free_port()
    backend = Envoy("backend", backend_config(backend_admin, backend_port), 1, workdir)
    results = {name: [] for name in ("native", "lua", "wasm-1", "wasm-real")}
    try:
        for round_ in range(args.rounds):
            for name in results:
                port, admin = free_port(), free_port()
                envoy = Envoy(name, ingress_configs(admin, port, backend_port)[name], 0, workdir)
                try:
                    wrk(port, 2, args.connections)  # warm-up: JIT, connections
                    rps, p99, non2xx, errors = wrk(port, args.seconds, args.connections)
                finally:
                    envoy.stop()
                if non2xx or errors:
                    sys.exit(f"{name}: {non2xx} non-2xx responses, socket errors {errors!r}; logs in {workdir}")
                results[name].append({"rps": rps, "p99_ms": p99})
                print(f"round {round_ + 1} {name:9s} {rps:10.0f} req/s  p99 {p99:.3f} ms", flush=True)
    finally:
        backend.stop()
    median = {n: {"rps": statistics.median(r["rps"] for r in runs), "p99_ms": statistics.median(r["p99_ms"] for r in runs)}
              for n, runs in results.items()}
    summary = {"median": median, "runs": results, "rounds": args.rounds, "seconds": args.seconds,
               "connections": args.connections}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    m = median
    print()
    for n in m:
        print(f"median {n:9s} {m[n]['rps']:10.0f} req/s  p99 {m[n]['p99_ms']:.3f} ms")
    print(f"wasm-real / wasm-1 throughput: {m['wasm-real']['rps'] / m['wasm-1']['rps']:.3f}")
    print(f"wasm-real / native throughput: {m['wasm-real']['rps'] / m['native']['rps']:.3f}")
    print(f"wasm-real / lua throughput:    {m['wasm-real']['rps'] / m['lua']['rps']:.3f}")
    print(f"p99 added over native: wasm-real {m['wasm-real']['p99_ms'] - m['native']['p99_ms']:+.3f} ms, "
          f"lua {m['lua']['p99_ms'] - m['native']['p99_ms']:+.3f} ms")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
