"""BENCHMARKS.md from the results `make bench` measured (target/bench-results.json)."""


def fmt_spread(s, digits=3):
    return f"**{s['median']:.{digits}f}** ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def verdict(value, target):
    return "met" if value >= target else "**not met**"


def markdown(results):
    m = results["machine"]
    settings = results["settings"]
    summary = results["summary"]
    variants = summary["variants"]
    ratios = summary["ratios"]
    cpu = summary["cpu_ratios"]
    out = []
    out.append("# Benchmarks\n")
    out.append(
        "Written by `make bench` (`python3 bench/run.py --write BENCHMARKS.md` after the harness\n"
        "micro-benchmark); every figure below comes from that one run. Ratios compare variants\n"
        "measured in the same Envoy process, round by round.\n")
    out.append("## Where and how\n")
    out.append(f"- commit `{m['commit']}`, `.wasm` {m['wasm_bytes']:,} bytes")
    out.append(f"- {m['cpus']} CPUs ({m['cpu']}), Linux {m['kernel']}, Envoy {m['envoy']}, {m['wrk']}")
    out.append(
        f"- {settings['runs']} runs; each starts one ingress Envoy (`--concurrency 1`, pinned to CPU 0) with every\n"
        f"  variant as a listener, warms them, then measures {settings['rounds']} rounds of {settings['seconds']} s per variant in a new\n"
        f"  shuffled order each round; wrk (1 thread, {settings['connections']} connections) and the backend Envoy\n"
        "  (`direct_response`) share CPU 1. A ratio is the median over a run's rounds of the two\n"
        "  variants' figures in the same round (the machine's speed drifts over minutes); the\n"
        "  spread is over runs.")
    out.append(
        "- every request carries the 20 headers of [bench/request-headers.txt](bench/request-headers.txt)\n"
        "  and matches no rule, so the realistic config walks all five rules of its route to the split\n")
    out.append("## Variants\n")
    out.append("| Variant | What | Requests/s (median, runs' spread) | CPU µs per request | p99 added over native |")
    out.append("|---|---|---|---|---|")
    what = {
        "native": "Envoy's route table does the routing itself (header, cookie, query, regex, weighted clusters)",
        "lua": "the same rules in Envoy's Lua filter",
        "floor": "a raw-ABI Rust filter: one callback, read one header, set one header ([bench/floor](bench/floor))",
        "floor-5": "the floor, also exporting the three callbacks canary-router needs (context create, response "
                   "headers, delete), empty: five calls per request",
        "floor-read": "floor-5 reading every request header, as canary-router must before it decides: what any "
                      "filter doing this job pays",
        "floor-sdk": "floor-read's filter on the proxy-wasm SDK ([bench/floor-sdk](bench/floor-sdk)): what the SDK "
                     "adds per request",
        "wasm-1": "canary-router, [one rule](bench/one-rule.json)",
        "wasm-real": "canary-router, [10 routes × 5 rules](bench/realistic.json)",
        "wasm-1000": "canary-router, the realistic routes repeated to 1,000, the request hitting the last",
        "wasm-compare": "wasm-real whose splits judge the canary against its baseline (`rollback.compare`, errors "
                        "and p99): each response of either arm counted",
        "floor-dynmod": "a dynamic module that reads every request header, sets the target header and has Envoy "
                        "select the route again ([bench/floor-dynmod](bench/floor-dynmod)): the least a dynamic "
                        "module doing this job costs",
        "dynmod-real": "canary-router as an Envoy dynamic module ([crates/dynmod](crates/dynmod)), "
                       "the realistic config",
        "dynmod-1000": "dynmod-real with the 1,000 routes",
    }
    for name, v in variants.items():
        added = v.get("p99_added_ms", {}).get("median", 0.0)
        out.append(f"| {name} | {what.get(name, name)} | {v['rps']['median']:,.0f} ({v['rps']['min']:,.0f}–{v['rps']['max']:,.0f}) "
                   f"| {v['cpu_us']['median']:.1f} | {added:+.2f} ms |")
    out.append("")
    out.append("## Targets\n")
    out.append("| Ratio | Throughput | From CPU per request | Target |")
    out.append("|---|---|---|---|")
    targets = {"wasm-real / native": 0.85, "wasm-real / lua": 1.0, "wasm-1000 / wasm-real": 0.95,
               "wasm-compare / wasm-real": 0.95, "dynmod-real / native": 0.97, "dynmod-real / lua": 1.05,
               "dynmod-1000 / dynmod-real": 0.95}
    for name, r in ratios.items():
        target = targets.get(name)
        target_text = f"≥ {target} ({verdict(r['median'], target)})" if target else "reported"
        out.append(f"| {name} | {fmt_spread(r)} | {fmt_spread(cpu[name])} | {target_text} |")
    out.append("")
    floors = [name for name in ("floor", "floor-5", "floor-read") if f"{name} / native" in ratios]
    if floors and "wasm-real / native" in ratios:
        def share(name):
            return f"{name} {ratios[f'{name} / native']['median']:.3f}"
        kept = ", ".join(f"{ratios[f'wasm-real / {name}']['median']:.3f} of {name}" for name in floors
                         if f"wasm-real / {name}" in ratios)
        out.append(
            "Reading it: the floors are what a wasm filter pays in this Envoy before it does any routing: "
            + ", ".join(share(name) for name in floors)
            + " of native. floor reads one header in its one callback (two calls into the VM with the "
            "allocation for that header); floor-5 makes the five calls canary-router needs (context create, "
            "request headers, the allocation, response headers, delete); floor-read also reads every request header, as canary-router must before it decides. "
            "Where the floors' spreads overlap, their order is noise. The realistic config keeps "
            f"{kept}: the rest is its parsing, decision and counters, counted below in wasm instructions.\n")
    if "floor-sdk / floor-read" in ratios:
        out.append(
            "floor-sdk is floor-read's filter on the proxy-wasm SDK: it keeps "
            f"{ratios['floor-sdk / floor-read']['median']:.3f} of floor-read's throughput (the SDK's context "
            "machinery and the callbacks it exports that Envoy then calls on every stream).\n")
    if "floor-dynmod / native" in ratios and "dynmod-real / floor-dynmod" in ratios:
        out.append(
            "floor-dynmod is what a dynamic module pays in this Envoy before it does any routing (Envoy's hooks, "
            "reading the headers, setting one, selecting the route again): "
            f"{ratios['floor-dynmod / native']['median']:.3f} of native. The realistic config as a dynamic module "
            f"keeps {ratios['dynmod-real / floor-dynmod']['median']:.3f} of it: the rest is canary-router's "
            "parsing, decision and counters.\n")
    micro = results.get("micro")
    if micro:
        out.append("## Inside the VM (harness, counted)\n")
        out.append(
            "`cargo bench --bench request_headers` runs the built `.wasm` in the wasmtime harness and\n"
            "counts, per request (a full exchange, 24 request headers), the wasm instructions it executes\n"
            "and the calls the proxy makes into it. These counts are the same on every machine.\n")
        out.append("| Config | wasm instructions | calls into the guest |")
        out.append("|---|---|---|")
        for name in ("one-rule", "realistic", "1000-routes"):
            c = micro[name]
            out.append(f"| {name} | {c['instructions']:,} | {c['calls']:.0f} |")
        out.append("")
        worst = micro["worst_regex"]
        out.append(
            "The worst regex on the worst request (the regex budget at its heaviest): "
            + ", ".join(f"{k}: {v:,} instructions" for k, v in worst.items())
            + f". Guest memory: {micro['memory_warm']:,} bytes after 10,000 requests, "
              f"{micro['memory_after_1m']:,} after 1,010,000.\n")
    memory = results.get("memory")
    if memory:
        out.append("## Memory in Envoy\n")
        out.append(
            f"wasm-real served {memory['requests']:,} requests in a fresh Envoy; its VMs' linear memory "
            f"(from `/proc/PID/smaps`) was {', '.join(f'{b:,}' for b in memory['before'])} bytes before and "
            f"{', '.join(f'{b:,}' for b in memory['after'])} after.\n")
    cost = results.get("config_cost")
    if cost:
        import config_cost
        out.append("## What a config costs\n")
        out.append(
            "[bench/config_cost.py](bench/config_cost.py): an Envoy with `--concurrency 2` reads the filter's "
            "config through ECDS; [bench/big_config.py](bench/big_config.py) makes the configs at a tenth of the "
            "documented limits and at them (2,000 routes, 10,000 rules, 1,000 regexes, 4 MiB). Memory is the "
            "largest VM's linear memory from `/proc/PID/smaps` (wasm memory never shrinks); apply is from the "
            "ECDS file's move to the first request the new config routed.\n")
        out += config_cost.table(cost)
        out.append("")
    out.append("## Reproduce\n")
    out.append("```sh\nmake bench                       # all of the above, writes BENCHMARKS.md\n"
               "python3 bench/run.py --runs 5    # more runs for tighter spreads\n```\n")
    return "\n".join(out)
