#!/usr/bin/env python3
"""`make bench`: canary-router against the alternatives, in one real Envoy.

One ingress Envoy 1.40 (--concurrency 1) pinned to CPU 0 holds every
variant as its own listener; a backend Envoy (direct_response) and wrk share
CPU 1. Every request carries bench/request-headers.txt (20 headers with
cookies) to svc9.example.com, and matches no rule, so the filter walks all
five rules of its route to the split.

  native      Envoy's own route table: header, cookie, query and regex
              matches and weighted_clusters; no filter (the physical limit)
  lua         the same rules in Envoy's Lua filter
  floor       a raw-ABI Rust filter (bench/floor): one callback, read one
              header, set one header (the least any wasm filter costs)
  floor-5     the floor exporting, empty, the three other callbacks
              canary-router needs (context create, response headers,
              delete): five calls per request, as canary-router makes
  floor-read  floor-5 reading every request header (as canary-router
              must before it decides): what any filter doing this job pays
  floor-sdk   floor-read's filter on the proxy-wasm SDK (bench/floor-sdk):
              what the SDK adds per request
  wasm-1      canary-router with bench/one-rule.json
  wasm-real   canary-router with bench/realistic.json (10 routes x 5 rules)
  wasm-1000   canary-router with the realistic routes repeated to 1,000,
              the request hitting the last
  wasm-compare  wasm-real whose split judges its canary against the
              baseline (rollback.compare, errors and p99): every request
              to either arm is counted for the comparison
  floor-dynmod  a dynamic module (bench/floor-dynmod) that reads every
              request header, sets the target header and has Envoy select
              the route again: the least a dynamic module doing this job
              costs
  dynmod-real canary-router as an Envoy dynamic module (crates/dynmod,
              `make dynmod`), the realistic config
  dynmod-1000 dynmod-real with the 1,000 routes

A run starts a fresh ingress Envoy, warms every variant, then measures
ROUNDS rounds, each in a new shuffled order: throughput, p99 latency and the
ingress Envoy's CPU time per request (from /proc/PID/task/*/schedstat).
RUNS runs give the spread. Afterwards one more Envoy serves 1,000,000
requests through wasm-real while its VMs' linear memory is read from
/proc/PID/smaps, and bench/config_cost.py measures what a small config, one
at a tenth of the limits and one at the limits cost each VM and how long
each takes to apply through ECDS. Writes target/bench-results.json and,
with --write, BENCHMARKS.md.

usage: run.py [--runs 3] [--rounds 5] [--seconds 5] [--connections 32]
              [--variants native,lua,...] [--extra NAME=PATH.wasm]
              [--memory-requests N] [--write BENCHMARKS.md]
"""
import argparse
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import config_cost  # noqa: E402
from envoy_yaml import CLUSTER_HEADER_ROUTES, bootstrap, listener  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVOY = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv", "bin", "envoy")
WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "canary_router.wasm")
# Where `make dynmod` puts the dynamic module (libcanary_router.so).
DYNMOD_DIR = os.path.join(ROOT, "target", "dynmod")
# What the config cost's Envoy-alone figures give the config to.
FLOORS_FOR_COST = "floor"
# Each floor variant: a crate under bench/ built with these cargo features.
FLOORS = {"floor": ("floor", []), "floor-5": ("floor", ["callbacks"]),
          "floor-read": ("floor", ["callbacks", "read-all"]), "floor-sdk": ("floor-sdk", [])}
VARIANTS = ["native", "lua", "floor", "floor-5", "floor-read", "floor-sdk", "wasm-1", "wasm-real", "wasm-1000",
            "wasm-compare", "floor-dynmod", "dynmod-real", "dynmod-1000"]
# Envoy's search path for dynamic modules: canary-router's (DYNMOD_DIR)
# and the floor's, side by side.
MODULES_DIR = os.path.join(ROOT, "target", "bench-modules")
PATH = "/catalog/items?page=2&sort=price"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


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


def single_quoted(config_json):
    """A filter config on one line, for a YAML single-quoted scalar."""
    return json.dumps(json.loads(config_json)).replace("'", "''")


def wasm_filter(wasm, config_json, vm_id="canary-router"):
    value = single_quoted(config_json) if config_json else "{}"
    return f"""          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {vm_id}
                root_id: {vm_id}
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: {vm_id}
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: {wasm} }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{value}'"""


def dynmod_filter(config_json):
    """canary-router as an Envoy dynamic module (crates/dynmod), the same
    config: Envoy finds libcanary_router.so in DYNMOD_DIR."""
    value = single_quoted(config_json)
    return f"""          - name: canary-router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
              dynamic_module_config: {{ name: canary_router }}
              filter_name: canary-router
              filter_config:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{value}'"""


def floor_dynmod_filter():
    """bench/floor-dynmod, which Envoy finds as libfloor_dynmod.so."""
    return """          - name: floor-dynmod
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
              dynamic_module_config: { name: floor_dynmod }
              filter_name: floor"""


def build_floor_dynmod():
    """Builds the floor module and lays it beside canary-router's."""
    target = floor_target("floor-dynmod")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target-dir", target],
                   cwd=os.path.join(ROOT, "bench", "floor-dynmod"), check=True)
    os.makedirs(MODULES_DIR, exist_ok=True)
    for name, source in [("libcanary_router.so", os.path.join(DYNMOD_DIR, "libcanary_router.so")),
                         ("libfloor_dynmod.so", os.path.join(target, "release", "libfloor_dynmod.so"))]:
        link = os.path.join(MODULES_DIR, name)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(source, link)


def thousand_routes():
    """The realistic routes repeated to 1,000: 999 others, then svc9's."""
    real = json.loads(read("bench/realistic.json"))
    template, last = real["routes"][0], real["routes"][-1]
    routes = []
    for i in range(999):
        route = json.loads(json.dumps(template).replace("svc0.example.com", f"r{i}.example.com"))
        route["name"] = f"r{i}"
        routes.append(route)
    routes.append(last)
    return json.dumps({"routes": routes})


def compare_routes():
    """The realistic routes, each split judging its canary against its
    baseline (the request's route, svc9, among them)."""
    real = json.loads(read("bench/realistic.json"))
    for route in real["routes"]:
        for rule in route["rules"]:
            split = rule.get("split")
            if split:
                split["rollback"] = {
                    "target": split["weights"][0]["target"], "minRequests": 20, "window": "60s",
                    "compare": {"maxErrorRateIncrease": 0.01, "latency": {"percentile": 99, "maxRatio": 1.5}}}
    return json.dumps(real)


def ingress_config(admin, ports, backend_port, extra):
    one, real = read("bench/one-rule.json"), read("bench/realistic.json")
    filters = {
        "native": ("", native_routes()),
        "lua": (lua_filter(), CLUSTER_HEADER_ROUTES),
        "wasm-1": (wasm_filter(WASM, one), CLUSTER_HEADER_ROUTES),
        "wasm-real": (wasm_filter(WASM, real), CLUSTER_HEADER_ROUTES),
        "wasm-1000": (wasm_filter(WASM, thousand_routes()), CLUSTER_HEADER_ROUTES),
        "wasm-compare": (wasm_filter(WASM, compare_routes()), CLUSTER_HEADER_ROUTES),
        "floor-dynmod": (floor_dynmod_filter(), CLUSTER_HEADER_ROUTES),
        "dynmod-real": (dynmod_filter(real), CLUSTER_HEADER_ROUTES),
        "dynmod-1000": (dynmod_filter(thousand_routes()), CLUSTER_HEADER_ROUTES),
    }
    for name in FLOORS:
        filters[name] = (wasm_filter(floor_wasm(name), None, name), CLUSTER_HEADER_ROUTES)
    for name, path in extra.items():
        filters[name] = (wasm_filter(path, real, name), CLUSTER_HEADER_ROUTES)
    listeners = "\n".join(listener(name, port, *filters[name]) for name, port in ports.items())
    return bootstrap(admin, listeners, clusters(backend_port))


def backend_config(admin, port):
    route = """            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: "ok" } }
"""
    return bootstrap(admin, listener("backend", port, "", route))


class Envoy:
    def __init__(self, name, yaml, cpu, workdir, concurrency=1):
        self.admin = int(re.search(r"admin:\n  address: \{ socket_address: \{ address: 127.0.0.1, port_value: (\d+)", yaml).group(1))
        path = os.path.join(workdir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(yaml)
        self.log = open(os.path.join(workdir, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), ENVOY, "-c", path, "--concurrency", str(concurrency), "--disable-hot-restart",
             "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": MODULES_DIR})
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{name}: Envoy exited; see {self.log.name}")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"{name}: Envoy not ready in 120 s")
            time.sleep(0.05)

    def cpu_ns(self):
        """CPU time of every thread of the process so far, in ns."""
        total = 0
        task_dir = f"/proc/{self.proc.pid}/task"
        for task in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
        return total

    def wasm_memories(self):
        """Each V8 linear memory's size: a rw mapping right before a >= 4 GiB guard."""
        regions = []
        with open(f"/proc/{self.proc.pid}/smaps") as f:
            for line in f:
                m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
                if m:
                    regions.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
        return sorted(a[1] - a[0] for a, b in zip(regions, regions[1:])
                      if a[2].startswith("rw") and b[2].startswith("---") and a[1] == b[0] and b[1] - b[0] >= 4 << 30)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def request_headers():
    return [line.rstrip("\n") for line in read("bench/request-headers.txt").splitlines()
            if line.strip() and not line.startswith("#")]


def wrk(port, seconds, connections):
    args = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-H", "Host: svc9.example.com"]
    for header in request_headers():
        args += ["-H", header]
    args.append(f"http://127.0.0.1:{port}{PATH}")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if non2xx or errors:
        sys.exit(f"port {port}: {non2xx.group(1) if non2xx else 0} non-2xx responses, socket errors "
                 f"{errors.group(1) if errors else ''!r}")
    return {"rps": rps, "requests": total, "p99_ms": float(p99.group(1)) * scale}


def measure(envoy, port, seconds, connections):
    before = envoy.cpu_ns()
    result = wrk(port, seconds, connections)
    result["cpu_us"] = (envoy.cpu_ns() - before) / 1000 / result["requests"]
    return result


def one_run(run, args, variants, extra, backend_port, workdir):
    ports = {name: free_port() for name in variants}
    admin = free_port()
    ingress = Envoy(f"ingress-{run}", ingress_config(admin, ports, backend_port, extra), 0, workdir)
    rounds = {name: [] for name in variants}
    try:
        for name in variants:  # warm-up: JIT tiers, connections
            wrk(ports[name], 2, args.connections)
        for round_ in range(args.rounds):
            order = random.sample(variants, len(variants))
            for name in order:
                r = measure(ingress, ports[name], args.seconds, args.connections)
                rounds[name].append(r)
                print(f"run {run + 1} round {round_ + 1} {name:10s} {r['rps']:9.0f} req/s  "
                      f"{r['cpu_us']:6.1f} us CPU/req  p99 {r['p99_ms']:.3f} ms", flush=True)
    finally:
        ingress.stop()
    return rounds


def memory_run(args, backend_port, workdir):
    """Guest memory of wasm-real's VM before and after N requests."""
    port, admin = free_port(), free_port()
    ingress = Envoy("ingress-memory", ingress_config(admin, {"wasm-real": port}, backend_port, {}), 0, workdir)
    try:
        wrk(port, 2, args.connections)
        before = ingress.wasm_memories()
        served = 0
        while served < args.memory_requests:
            served += wrk(port, 10, args.connections)["requests"]
        after = ingress.wasm_memories()
    finally:
        ingress.stop()
    return {"requests": served, "before": before, "after": after}


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_median(run, name, key):
    return statistics.median(r[key] for r in run[name])


def round_ratio(run, a, b, key):
    """The median over the run's rounds of a's value over b's in the same
    round: the machine's speed drifts over minutes, rounds take seconds."""
    return statistics.median(ra[key] / rb[key] for ra, rb in zip(run[a], run[b]))


def summarize(runs, variants):
    out = {"variants": {}, "ratios": {}, "cpu_ratios": {}}
    for name in variants:
        out["variants"][name] = {key: spread([run_median(run, name, key) for run in runs])
                                 for key in ("rps", "cpu_us", "p99_ms")}
    pairs = [("wasm-real", "native"), ("wasm-real", "lua"), ("wasm-1000", "wasm-real"), ("floor", "native"),
             ("floor-5", "native"), ("floor-read", "native"), ("wasm-real", "floor"), ("wasm-real", "floor-5"),
             ("wasm-real", "floor-read"), ("lua", "native"), ("wasm-1", "native"), ("floor-sdk", "floor-read"),
             ("wasm-real", "floor-sdk"), ("wasm-compare", "wasm-real"), ("dynmod-real", "native"),
             ("dynmod-real", "lua"), ("dynmod-real", "wasm-real"), ("dynmod-1000", "dynmod-real"),
             ("floor-dynmod", "native"), ("dynmod-real", "floor-dynmod")]
    pairs += [(name, "wasm-real") for name in variants if name not in VARIANTS]
    for a, b in pairs:
        if a in variants and b in variants:
            out["ratios"][f"{a} / {b}"] = spread([round_ratio(run, a, b, "rps") for run in runs])
            # CPU per request, inverted: what throughput ratio the CPU cost alone predicts.
            out["cpu_ratios"][f"{a} / {b}"] = spread([round_ratio(run, b, a, "cpu_us") for run in runs])
    if "native" in variants:
        for name in variants:
            out["variants"][name]["p99_added_ms"] = spread(
                [statistics.median(r["p99_ms"] - n["p99_ms"] for r, n in zip(run[name], run["native"])) for run in runs])
    return out


def command(*args, empty="unknown"):
    """A command's output (wrk -v exits 1 after printing its version), or
    `empty` when it prints nothing or cannot run."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
        return (done.stdout + done.stderr).strip() or empty
    except OSError:
        return empty


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
    except OSError:
        pass
    # The report this run writes does not make the tree it measured dirty.
    changed = command("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md", empty="")
    dirty = "-dirty" if changed else ""
    return {
        "commit": command("git", "rev-parse", "--short=12", "HEAD") + dirty,
        "cpus": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "envoy": (re.findall(r"version: [0-9a-f]+/([0-9.]+)/", command(ENVOY, "--version")) or ["unknown"])[0],
        "wrk": " ".join(command("wrk", "-v").splitlines()[0].split()[:2]),
        "wasm_bytes": os.path.getsize(WASM),
    }


def floor_target(name):
    return os.path.join(ROOT, "target", "bench-" + name)


def floor_wasm(name):
    crate, _ = FLOORS[name]
    return os.path.join(floor_target(name), "wasm32-wasip1", "release", crate.replace("-", "_") + ".wasm")


def build_floor(name):
    crate, features = FLOORS[name]
    features = ["--features", ",".join(features)] if features else []
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", *features,
                    "--target-dir", floor_target(name)], cwd=os.path.join(ROOT, "bench", crate), check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--extra", action="append", default=[], help="NAME=PATH: wasm-real with another .wasm")
    parser.add_argument("--memory-requests", type=int, default=1_000_000)
    parser.add_argument("--config-cost", type=int, default=1, help="0: skip what configs cost (memory, apply time)")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench-results.json"))
    parser.add_argument("--write", help="write the report (BENCHMARKS.md) here")
    parser.add_argument("--report-only", action="store_true", help="only write the report from --out's results")
    args = parser.parse_args()
    if args.report_only:
        with open(args.out) as f:
            write_report(json.load(f), args.write or os.path.join(ROOT, "BENCHMARKS.md"))
        return
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: `make bench` installs wrk with apt-get; or install it yourself")
    if os.cpu_count() < 2:
        sys.exit("make bench pins Envoy and the load generator to separate cores: it needs 2 CPUs")
    variants = [v for v in args.variants.split(",") if v]
    extra = dict(e.split("=", 1) for e in args.extra)
    variants += list(extra)
    for name in FLOORS:
        if name in variants:
            build_floor(name)
    # Every Envoy here finds its modules in MODULES_DIR.
    build_floor_dynmod()
    workdir = tempfile.mkdtemp(prefix="canary-router-bench-")
    backend_port, backend_admin = free_port(), free_port()
    backend = Envoy("backend", backend_config(backend_admin, backend_port), 1, workdir)
    try:
        runs = [one_run(run, args, variants, extra, backend_port, workdir) for run in range(args.runs)]
        memory = memory_run(args, backend_port, workdir) if args.memory_requests else None
        if args.config_cost:
            build_floor(FLOORS_FOR_COST)
        cost = config_cost.run(Envoy, WASM, clusters(backend_port), free_port, workdir,
                               floor_wasm(FLOORS_FOR_COST)) if args.config_cost else None
    finally:
        backend.stop()
    summary = summarize(runs, variants)
    results = {"machine": machine(), "settings": vars(args), "runs": runs, "summary": summary, "memory": memory,
               "config_cost": cost}
    micro = os.path.join(ROOT, "target", "bench-micro.json")
    if os.path.exists(micro):
        with open(micro) as f:
            results["micro"] = json.load(f)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print()
    for name, v in summary["variants"].items():
        print(f"{name:10s} {v['rps']['median']:9.0f} req/s ({v['rps']['min']:.0f}-{v['rps']['max']:.0f})  "
              f"{v['cpu_us']['median']:6.1f} us CPU/req  p99 {v['p99_ms']['median']:.3f} ms")
    for name, r in summary["ratios"].items():
        c = summary["cpu_ratios"][name]
        print(f"{name:22s} throughput {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f})  "
              f"CPU-based {c['median']:.3f} ({c['min']:.3f}-{c['max']:.3f})")
    if memory:
        print(f"wasm-real VM memory: {memory['before']} before, {memory['after']} after {memory['requests']} requests")
    if cost:
        print("\n".join(config_cost.table(cost)))
    print(f"results: {args.out}")
    if args.write:
        write_report(results, args.write)


def write_report(results, path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report
    with open(path, "w") as f:
        f.write(report.markdown(results))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
