#!/usr/bin/env python3
"""A config at a fraction of the documented limits (docs/config.md, "Limits"):
at 1.0, 2,000 routes, 10,000 rules, 1,000 regexes and just under 4 MiB of
JSON, the shape a big gateway's route table takes (hosts, a path, header,
cookie, query and regex conditions, a sticky split with a rollback).
`make bench` measures what such a config costs each VM and how long it takes
to apply; tests/config_memory.rs holds the filter to its bound natively.

usage: big_config.py [--fraction 1.0] > config.json
"""
import argparse
import json

ROUTES, RULES, REGEXES, BYTES = 2000, 10_000, 1000, 4 * 1024 * 1024


def route(i, regex):
    service = f"svc-{i:04d}"
    rules = [
        {"name": "beta-users", "match": [{"header": "x-beta", "exact": f"enrolled-{i:04d}"},
                                         {"header": "x-group", "prefix": f"internal-engineering-{i % 50:02d}"}],
         "target": f"{service}-canary"},
        {"name": "canary-cookie", "match": [{"cookie": "canary", "exact": "always"}],
         "target": f"{service}-canary"},
        {"name": "api-versions", "match": [{"query": "api-version", "oneOf": [f"2026-{m:02d}-01" for m in range(1, 9)]}],
         "target": f"{service}-canary"},
    ]
    if regex:
        rules.append({"name": "bots", "match": [{"header": "user-agent", "regex": f"(?i)(bot|crawler|spider)-{i:04d}"}],
                      "target": service})
    else:
        rules.append({"name": "mobile", "match": [{"header": "x-platform", "oneOf": ["ios-app", "android-app", "tv-app"]}],
                      "target": service})
    rules.append({"name": "ten-percent", "split": {
        "weights": [{"target": f"{service}-canary", "weight": 10}, {"target": service, "weight": 90}],
        "stickyBy": {"cookie": "uid"},
        "rollback": {"target": f"{service}-canary", "maxErrorRate": 0.05, "minRequests": 20, "window": "60s"}}})
    return {"name": f"route-{i:04d}",
            "hosts": [f"{service}.internal.example.com", f"{service}.public.example.com"],
            "pathPrefix": f"/api/catalogue/{i:04d}", "pathElements": True,
            "default": service, "rules": rules}


def config(fraction):
    routes = max(1, int(ROUTES * fraction))
    rules_each = RULES // ROUTES
    doc = {"routes": [route(i, i * REGEXES // ROUTES != (i + 1) * REGEXES // ROUTES) for i in range(routes)]}
    text = json.dumps(doc, separators=(",", ":"))
    # Fill up to the fraction of the byte limit: half in longer API
    # version lists (many small values), half in longer host names.
    target = int(BYTES * fraction) - 1024
    versions = max(0, (target - len(text)) // 2 // routes // len('"2026-01-01-r0000",'))
    for i, r in enumerate(doc["routes"]):
        r["rules"][2]["match"][0]["oneOf"] += [f"2026-{v % 12 + 1:02d}-01-r{v:04d}" for v in range(versions)]
    text = json.dumps(doc, separators=(",", ":"))
    pad = max(0, (target - len(text)) // (2 * routes) - 1)
    if pad:
        for r in doc["routes"]:
            r["hosts"] = [h.replace(".example.com", "-" + "x" * pad + ".example.com") for h in r["hosts"]]
        text = json.dumps(doc, separators=(",", ":"))
    assert len(text) <= BYTES and all(len(r["rules"]) == rules_each for r in doc["routes"]), len(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraction", type=float, default=1.0)
    print(config(parser.parse_args().fraction))
