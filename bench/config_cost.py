"""What a config costs, in Envoy: each VM's linear memory and the time from
the ECDS write to the first request routed by the new config, for a small
config, one at a tenth of the documented limits and one at the limits
(bench/big_config.py). An ingress Envoy (--concurrency 2) reads the filter's
config through ECDS from a file; each push writes a copy and moves it over
the file, as envoy/live.yaml documents, written as JSON (docs/envoy.md:
Envoy reads a 4 MiB resource as YAML in about twice the time). A probe route is the config's
first: it sends probe.example.com to a cluster that exists (200) or one
that does not (503), alternately, so the first request answered by the new
config is seen. Then ten more pushes alternate the config with a small one,
and the VMs' memory is read again. Wasm memory never shrinks: what a VM
holds after a push is the largest it needed.

What Envoy itself takes is measured apart: the same resources for a filter
that reads nothing (bench/floor), timed to Envoy's `config_reload` count.

Used by bench/run.py (`make bench`), which writes the table into
BENCHMARKS.md.
"""
import json
import os
import statistics
import time
import urllib.request

import big_config
import envoy_yaml

PROBE_HOST = "probe.example.com"
# Two clusters of the bench bootstrap: the probe's target is one or neither.
EXISTS, MISSING = "svc0", "no-such-cluster"


def with_probe(config_text, target):
    doc = json.loads(config_text)
    probe = {"name": "probe", "hosts": [PROBE_HOST], "default": target}
    # The probe takes the first route's place: the limits stay the limits.
    doc["routes"][0] = probe
    return json.dumps(doc, separators=(",", ":"))


def small_config(target):
    return json.dumps({"routes": [{"name": "probe", "hosts": [PROBE_HOST], "default": target}]})


MODULE = "module"
MODULE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def ecds_file(wasm, config_json, fmt="json"):
    """The ECDS resource for the .wasm at `wasm`, or for the dynamic module
    when `wasm` is MODULE (found by Envoy as libcanary_router.so)."""
    if wasm == MODULE:
        return json.dumps({"resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "canary-router",
            "typed_config": {
                "@type": MODULE_TYPE,
                "dynamic_module_config": {"name": "canary_router"},
                "filter_name": "canary-router",
                "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": config_json}}}]})
    if fmt == "json":
        return json.dumps({"resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "canary-router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "canary-router", "root_id": "canary-router", "failure_policy": "FAIL_CLOSED",
                    "vm_config": {"vm_id": "canary-router", "runtime": "envoy.wasm.runtime.v8",
                                  "code": {"local": {"filename": wasm}}},
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                      "value": config_json}}}}]})
    value = config_json.replace("\\", "\\\\").replace('"', '\\"')
    return f"""resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: canary-router
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: canary-router
      root_id: canary-router
      failure_policy: FAIL_CLOSED
      vm_config:
        vm_id: canary-router
        runtime: envoy.wasm.runtime.v8
        code: {{ local: {{ filename: {wasm} }} }}
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: "{value}"
"""


def stats_config():
    """The stats tags every config of envoy/ carries (docs/metrics.md): each
    new metric's name is matched against them, a cost a config's first
    push pays for every metric it defines."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "envoy", "envoy.yaml")) as f:
        text = f.read()
    start = text.index("stats_config:")
    end = text.index("\nstatic_resources:")
    return text[start:end].rstrip() + "\n"


def bootstrap(admin, port, workdir, clusters, fmt="json", filter_type=WASM_TYPE):
    ecds = f"""          - name: canary-router
            config_discovery:
              config_source:
                resource_api_version: V3
                path_config_source:
                  path: {workdir}/ecds/canary-router.{fmt}
                  watched_directory: {{ path: {workdir}/ecds }}
              type_urls: ["{filter_type}"]"""
    ingress = envoy_yaml.listener("ingress", port, ecds, envoy_yaml.CLUSTER_HEADER_ROUTES)
    return envoy_yaml.bootstrap(admin, ingress, clusters, head=f"node: {{ id: bench, cluster: bench }}\n{stats_config()}")


def push(workdir, wasm, config_json, fmt="json"):
    """Writes a copy of the ECDS file and moves it over the watched one."""
    path = os.path.join(workdir, "ecds", f"canary-router.{fmt}")
    with open(path + ".new", "w") as f:
        f.write(ecds_file(wasm, config_json, fmt))
    os.replace(path + ".new", path)


def probe_status(port):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": PROBE_HOST})
    try:
        return urllib.request.urlopen(request, timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def apply(workdir, wasm, port, config_json, expect):
    """Pushes and waits for the probe's answer to be `expect`; seconds."""
    start = time.monotonic()
    push(workdir, wasm, config_json)
    while probe_status(port) != expect:
        if time.monotonic() - start > 120:
            raise RuntimeError("the config was not applied within 120 s")
        time.sleep(0.002)
    return time.monotonic() - start


def settled_memories(envoy, quiet_s=3, limit_s=60):
    """Each VM's linear memory once it stops growing: a big config defines
    its split gauges over the ticks after its push (docs/metrics.md), so
    what a VM holds right after the push is not yet what it keeps."""
    last, same_since, start = None, time.monotonic(), time.monotonic()
    while time.monotonic() - start < limit_s:
        now = envoy.wasm_memories()
        if now != last:
            last, same_since = now, time.monotonic()
        elif time.monotonic() - same_since >= quiet_s:
            break
        time.sleep(0.5)
    return last


def pushes_of(workdir, filter_code, port, text, fraction, pushes, settled):
    """The first push of `text` (or of a small config when `fraction` is
    None), then `pushes` more alternating with a small config: the config
    pushed, the apply times and what `settled()` reads after the first push
    and after the rest."""
    config = with_probe(text, EXISTS) if fraction else text
    first = apply(workdir, filter_code, port, config, 200)
    after_first = settled()
    later = []
    for i in range(pushes):
        apply(workdir, filter_code, port, small_config(MISSING), 503)
        target = EXISTS if i % 2 == 0 else "svc1"
        later.append(apply(workdir, filter_code, port,
                           with_probe(text, target) if fraction else small_config(target), 200))
    return {"config": config, "first": first, "later": statistics.median(later),
            "after_first": after_first, "after_pushes": settled()}


def fresh_envoy(envoy_class, name, filter_code, clusters, free_port, workdir, filter_type=WASM_TYPE):
    """An Envoy reading the filter from an empty ECDS directory, holding a
    small config whose probe answers 503: its admin port, ingress port and
    the Envoy."""
    ecds = os.path.join(workdir, "ecds")
    os.makedirs(ecds, exist_ok=True)
    for name_ in os.listdir(ecds):
        os.remove(os.path.join(ecds, name_))
    admin, port = free_port(), free_port()
    push(workdir, filter_code, small_config(MISSING))
    envoy = envoy_class(name, bootstrap(admin, port, workdir, clusters, filter_type=filter_type), 0, workdir,
                        concurrency=2)
    while probe_status(port) != 503:
        time.sleep(0.05)
    return admin, port, envoy


def measure(envoy_class, wasm, clusters, free_port, workdir, label, fraction, pushes=10):
    """One size: a fresh Envoy, the first push, then `pushes` more
    alternating with a small config; each VM's memory."""
    admin, port, envoy = fresh_envoy(envoy_class, f"config-cost-{label}", wasm, clusters, free_port, workdir)
    try:
        empty = envoy.wasm_memories()
        text = big_config.config(fraction) if fraction else small_config(EXISTS)
        run = pushes_of(workdir, wasm, port, text, fraction, pushes, lambda: settled_memories(envoy))
    finally:
        envoy.stop()
    return {
        "label": label,
        "json_bytes": len(run["config"]),
        "vm_empty": max(empty),
        "vm_after_first": max(run["after_first"]),
        "vm_after_pushes": max(run["after_pushes"]),
        "vms": len(run["after_first"]),
        "apply_first_s": run["first"],
        "apply_later_s": run["later"],
    }


def allocated(admin):
    """Bytes Envoy's allocator holds for the whole process (the dynamic
    module allocates through it)."""
    url = f"http://127.0.0.1:{admin}/stats?filter=^server.memory_allocated$"
    text = urllib.request.urlopen(url, timeout=2).read().decode()
    return int(text.split(":", 1)[1])


def settled_allocated(admin, quiet_s=3, limit_s=60):
    """The process's allocated bytes once they stop moving by more than
    64 KiB for `quiet_s`."""
    last, same_since, start = allocated(admin), time.monotonic(), time.monotonic()
    while time.monotonic() - start < limit_s:
        time.sleep(0.5)
        now = allocated(admin)
        if abs(now - last) > 65536:
            last, same_since = now, time.monotonic()
        elif time.monotonic() - same_since >= quiet_s:
            break
    return last


def measure_module(envoy_class, clusters, free_port, workdir, pushes=10):
    """The dynamic module with the config at the limits: what the process
    holds for it after the first push and after `pushes` more alternating
    with a small config (one compiled config, whatever the workers), and the
    apply times, as `measure` takes them for the .wasm."""
    admin, port, envoy = fresh_envoy(envoy_class, "config-cost-module", MODULE, clusters, free_port, workdir,
                                     filter_type=MODULE_TYPE)
    try:
        empty = settled_allocated(admin)
        run = pushes_of(workdir, MODULE, port, big_config.config(1.0), 1.0, pushes, lambda: settled_allocated(admin))
    finally:
        envoy.stop()
    return {
        "json_bytes": len(run["config"]),
        "empty": empty,
        "after_first": run["after_first"],
        "after_pushes": run["after_pushes"],
        "apply_first_s": run["first"],
        "apply_later_s": run["later"],
    }


def reloads(admin):
    """Envoy's count of filter configs it took from the ECDS file."""
    url = f"http://127.0.0.1:{admin}/stats?filter=config_reload$"
    text = urllib.request.urlopen(url, timeout=2).read().decode()
    return sum(int(line.rsplit(":", 1)[1]) for line in text.splitlines() if "config_reload" in line)


def envoy_alone(envoy_class, floor_wasm, clusters, free_port, workdir, fmt, pushes=5):
    """Seconds from the ECDS write to Envoy's `config_reload` moving, for the
    config at the limits given to a filter that never reads it: what Envoy
    takes itself (median of `pushes`, each after a small config)."""
    ecds = os.path.join(workdir, "ecds")
    os.makedirs(ecds, exist_ok=True)
    for name in os.listdir(ecds):
        os.remove(os.path.join(ecds, name))
    admin, port = free_port(), free_port()
    push(workdir, floor_wasm, small_config(MISSING), fmt)
    envoy = envoy_class(f"envoy-alone-{fmt}", bootstrap(admin, port, workdir, clusters, fmt), 0, workdir,
                        concurrency=2)
    try:
        while probe_status(port) is None:
            time.sleep(0.05)
        text = big_config.config(1.0)
        times = []
        for i in range(pushes):
            for config in (small_config(f"x{i}"), text):
                before, start = reloads(admin), time.monotonic()
                push(workdir, floor_wasm, config, fmt)
                while reloads(admin) == before:
                    if time.monotonic() - start > 120:
                        raise RuntimeError("Envoy did not take the config within 120 s")
                    time.sleep(0.002)
            times.append(time.monotonic() - start)
    finally:
        envoy.stop()
    return statistics.median(times)


def run(envoy_class, wasm, clusters, free_port, workdir, floor_wasm=None):
    sizes = [measure(envoy_class, wasm, clusters, free_port, workdir, label, fraction)
             for label, fraction in (("small", None), ("10% of the limits", 0.1), ("at the limits", 1.0))]
    alone = None
    if floor_wasm:
        alone = {fmt: envoy_alone(envoy_class, floor_wasm, clusters, free_port, workdir, fmt)
                 for fmt in ("json", "yaml")}
    module = measure_module(envoy_class, clusters, free_port, workdir)
    return {"sizes": sizes, "envoy_alone": alone, "module": module}


def table(cost):
    # Results from before the Envoy-alone figures were a plain list.
    results = cost["sizes"] if isinstance(cost, dict) else cost
    out = ["| Config | JSON | VM memory after the first push (grown, over the JSON) | after 10 more, alternating | "
           "Apply, first push | Apply, later pushes (median) |",
           "|---|---|---|---|---|---|"]
    for r in results:
        def grown(after):
            grew = r[after] - r["vm_empty"]
            ratio = f", {grew / r['json_bytes']:.1f}x" if r["json_bytes"] > 10_000 else ""
            return f"{r[after] / 2**20:.1f} MiB ({grew / 2**20:.1f} MiB{ratio})"
        out.append(
            f"| {r['label']} | {r['json_bytes']:,} bytes | {grown('vm_after_first')} | {grown('vm_after_pushes')} | "
            f"{r['apply_first_s']:.2f} s | {r['apply_later_s']:.2f} s |")
    module = cost.get("module") if isinstance(cost, dict) else None
    if module:
        def grown(after):
            grew = module[after] - module["empty"]
            return f"{grew / 2**20:.1f} MiB ({grew / module['json_bytes']:.1f}x the JSON)"
        out.append("")
        out.append(f"The dynamic module (crates/dynmod), the config at the limits ({module['json_bytes']:,} bytes): "
                   f"the whole process holds {grown('after_first')} more after the first push (Envoy's "
                   f"`server.memory_allocated`: one compiled config for every worker, and Envoy's own copy of "
                   f"the resource), {grown('after_pushes')} after 10 more alternating with a small config; "
                   f"applied in {module['apply_first_s']:.2f} s first, {module['apply_later_s']:.2f} s later (median).")
    alone = cost.get("envoy_alone") if isinstance(cost, dict) else None
    if alone:
        out.append("")
        out.append(f"Envoy alone, the config at the limits for a filter that never reads it (bench/floor; to "
                   f"Envoy's `config_reload`, median of 5): {alone['json']:.2f} s from a JSON resource, "
                   f"{alone['yaml']:.2f} s from the same resource in YAML.")
    return out
