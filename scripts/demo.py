#!/usr/bin/env python3
"""`make demo`: start Envoy with the filter and show every capability live,
in order, with the curl line for each request and the backend that answered:
header, cookie and query rules; a weighted split and its measured share;
sticky users; a blue/green switch made by editing the live config while
requests flow; a shadow copy reaching the shadow backend; a gated ramp
taking each step only once judged; a broken canary rolled back by itself;
the metrics of all of it.

Envoy runs envoy/demo.yaml with its config from examples/demo.json, both
copied into .tmp/demo/ (edits go there; the repository's files never
change). Uses only the standard library and runs without a terminal.
Envoy is always stopped, Ctrl-C included. $ENVOY names the binary.
"""
import collections
import datetime
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVOY = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv", "bin", "envoy")
ADMIN, INGRESS = 9901, 10000
BACKENDS = (10101, 10102, 10103, 10104, 10105, 10107, 10109, 10110)
WORK = os.path.join(ROOT, ".tmp", "demo")
ECDS = os.path.join(WORK, "ecds", "canary-router.yaml")
TTY = sys.stdout.isatty()
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if TTY else ("",) * 5


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def request(host, path="/", headers=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", INGRESS, timeout=10)
    conn.request("GET", path, headers={"host": host, **(headers or {})})
    response = conn.getresponse()
    body = response.read().decode(errors="replace").strip()
    if own:
        conn.close()
    return response.status, body


def many(host, n, headers_of=lambda i: None):
    """n requests on one connection: Counter of (status, backend)."""
    conn = http.client.HTTPConnection("127.0.0.1", INGRESS, timeout=10)
    counts = collections.Counter(request(host, headers=headers_of(i), conn=conn) for i in range(n))
    conn.close()
    return counts


def curl(host, path="/", headers=None):
    parts = ["curl", "-s", f"-H 'host: {host}'"]
    parts += [f"-H '{k}: {v}'" for k, v in (headers or {}).items()]
    parts.append(f"'http://127.0.0.1:{INGRESS}{path}'")
    return " ".join(parts)


def title(text):
    print(f"\n{BOLD}== {text}{RESET}")


def show(what, host, path="/", headers=None):
    status, body = request(host, path, headers)
    color = GREEN if status < 500 else RED
    print(f"  {what}")
    print(f"    {DIM}$ {curl(host, path, headers)}{RESET}")
    print(f"    -> {status} {color}{body}{RESET}")
    return status, body


def tally(counts, n):
    for (status, backend), k in sorted(counts.items(), key=lambda kv: -kv[1]):
        color = GREEN if status < 500 else RED
        print(f"    {k:5d}  {status} {color}{backend}{RESET}  ({100 * k / n:.1f}%)")


def admin(path):
    conn = http.client.HTTPConnection("127.0.0.1", ADMIN, timeout=10)
    conn.request("GET", path)
    text = conn.getresponse().read().decode(errors="replace")
    conn.close()
    return text


def stat(name):
    for line in admin(f"/stats?filter=^{name}$").splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    return 0


RELOADS = "extension_config_discovery.http_filter.canary-router.config_reload"


def ramp_step():
    """The gated ramp's step, 1-based, as its gauge says (the split the
    push replaced reads 0)."""
    steps = [int(float(line.rsplit(" ", 1)[1])) for line in admin("/stats/prometheus").splitlines()
             if line.startswith("canary_router_ramp_step{") and 'route="ramp"' in line]
    return max(steps, default=0)


def push(config, why=None, running=True):
    """Replace the live config atomically, as envoy/live.yaml's users do,
    and (when Envoy runs) wait until it has applied it."""
    before = stat(RELOADS) if running else None
    # The shipped resource (envoy/demo/canary-router.yaml) around the new
    # JSON: everything up to its `value: |` block stays as it is.
    with open(os.path.join(ROOT, "envoy", "demo", "canary-router.yaml")) as f:
        head = f.read().split("value: |\n")[0]
    indent = " " * (len(head) - len(head.rstrip(" ")) + 2)
    value = json.dumps(config, indent=2)
    resource = head + "value: |\n" + "".join(f"{indent}{line}\n" for line in value.splitlines())
    staged = ECDS + ".new"
    with open(staged, "w") as f:
        f.write(resource)
    os.replace(staged, ECDS)
    if why:
        print(f"    {DIM}{why}: wrote .tmp/demo/ecds/canary-router.yaml (mv over the old file){RESET}")
    if before is not None:
        deadline = time.time() + 10
        while stat(RELOADS) <= before:
            if time.time() > deadline:
                sys.exit("Envoy did not apply the new config within 10 s")
            time.sleep(0.05)


def rfc3339(seconds):
    return datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def scenarios(config):
    title("1. Rules: header, cookie or query foo=bar goes to A' (service-a-canary)")
    show("header foo: bar", "a.example.com", headers={"foo": "bar"})
    show("cookie foo=bar (among others)", "a.example.com", headers={"cookie": "session=1; foo=bar"})
    show("query foo=bar", "a.example.com", "/?foo=bar")
    show("no match: stays on A", "a.example.com")
    show("a client cannot pick the canary by sending the header itself", "a.example.com",
         headers={"x-route-target": "service-a-canary"})

    title("2. Weighted split: 20% of requests to B' (service-b-canary)")
    n = 2000
    print(f"    {DIM}$ for i in $(seq {n}); do {curl('b.example.com')}; done | sort | uniq -c{RESET}")
    tally(many("b.example.com", n), n)

    title("3. Sticky users: the same uid always lands on the same version (on every replica)")
    shown = set()
    for user in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"):
        answers = many("b.example.com", 20, lambda i: {"cookie": f"uid={user}"})
        versions = {backend for (_, backend) in answers}
        # Show two users on each version (the canary has 20% of them).
        if len(versions) == 1 and sum(1 for v in shown if v[1] == next(iter(versions))) >= 2:
            continue
        shown.add((user, next(iter(versions))))
        print(f"    {DIM}$ for i in $(seq 20); do {curl('b.example.com', headers={'cookie': f'uid={user}'})}; done | sort | uniq -c{RESET}")
        tally(answers, 20)
        if len(shown) == 4:
            break
    n = 4000
    users = many("b.example.com", n, lambda i: {"cookie": f"uid=user-{i}"})
    canary = sum(k for (_, b), k in users.items() if b == "service-b-canary")
    print(f"    {n} distinct users: {100 * canary / n:.1f}% of them on service-b-canary")

    title("4. Blue/green: switch shop.example.com from blue to green by editing the live config")
    stop = threading.Event()
    seen = collections.Counter()

    def traffic():
        conn = http.client.HTTPConnection("127.0.0.1", INGRESS, timeout=10)
        while not stop.is_set():
            seen[request("shop.example.com", conn=conn)] += 1
        conn.close()

    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(1)
    show("before", "shop.example.com")
    green = json.loads(json.dumps(config))
    shop = next(r for r in green["routes"] if r["name"] == "shop")
    shop["rules"][0]["split"]["weights"] = [{"target": "blue", "weight": 0}, {"target": "green", "weight": 100}]
    print(f'    {DIM}edit: "blue" weight 100 -> 0, "green" weight 0 -> 100{RESET}')
    push(green, "while requests flow")
    time.sleep(1)
    show("after", "shop.example.com")
    stop.set()
    worker.join()
    errors = sum(k for (status, _), k in seen.items() if status != 200)
    total = sum(seen.values())
    print(f"    during the switch: {total} requests, "
          + ", ".join(f"{k} {b}" for (s, b), k in sorted(seen.items()) if s == 200)
          + f", {RED if errors else GREEN}{errors} errors{RESET}")
    print(f"    {DIM}(rolling back is the same edit the other way){RESET}")

    title("5. Shadowing: every request to A is copied to service-a-shadow; its answers are ignored")
    before = stat("http.backend_service_a_shadow.downstream_rq_completed")
    for _ in range(10):
        request("a.example.com", "/shadowed")
    deadline = time.time() + 5
    while stat("http.backend_service_a_shadow.downstream_rq_completed") < before + 10 and time.time() < deadline:
        time.sleep(0.05)
    after = stat("http.backend_service_a_shadow.downstream_rq_completed")
    print(f"    {DIM}$ for i in $(seq 10); do {curl('a.example.com', '/shadowed')}; done{RESET}")
    print(f"    clients got their answers from service-a; the shadow backend received {GREEN}{after - before} copies{RESET}")
    print(f"    {DIM}$ curl -s 'http://127.0.0.1:{ADMIN}/stats?filter=backend_service_a_shadow.downstream_rq_completed'{RESET}")

    title("6. Gated ramp: B' on ramp.example.com takes each step (10% -> 50% -> 100%) only once judged")
    ramped = json.loads(json.dumps(green))
    ramp = next(r for r in ramped["routes"] if r["name"] == "ramp")["rules"][0]["split"]["ramp"]
    ramp["start"] = rfc3339(time.time())
    print(f'    {DIM}edit: ramp "start" -> "{ramp["start"]}" (now); each step lasts 2 s at least and needs '
          f'20 healthy responses from B\'{RESET}')
    push(ramped, "config pushed")
    time.sleep(3)
    print(f"    3 s later, no traffic yet: still step {ramp_step()} of 3 (B' was never judged, so it waits)")
    for _ in range(2):
        before, sent, started = ramp_step(), 0, time.time()
        while ramp_step() == before and time.time() - started < 15:
            many("ramp.example.com", 100)
            sent += 100
            time.sleep(0.3)
        took = time.time() - started
        # The worker that earned the step took it at once; Envoy's other
        # worker takes it from shared data on its next tick (within a second).
        time.sleep(1.1)
        n = 400
        counts = many("ramp.example.com", n)
        canary = sum(k for (_, b), k in counts.items() if b == "service-b-canary")
        print(f"    step {ramp_step()} of 3 earned after {sent} requests in {took:.1f} s; a second later "
              f"service-b-canary got {canary} of {n} requests ({100 * canary / n:.0f}%)")

    title("7. Rollback: broken-canary answers 503; the split takes it out by itself")
    n = 200
    counts = many("c.example.com", n)
    print(f"    {DIM}$ for i in $(seq {n}); do {curl('c.example.com')}; done | sort | uniq -c{RESET}")
    tally(counts, n)
    # The worker that saw the errors rolled back at once; Envoy's other
    # worker learns it from shared data on its next tick (within a second).
    time.sleep(1.5)
    counts = many("c.example.com", n)
    errors = sum(k for (s, _), k in counts.items() if s >= 500)
    print(f"    the next {n}, a second later (every worker knows by then): "
          f"{GREEN if errors == 0 else RED}{errors} errors{RESET}, all from "
          + ", ".join(sorted({b for (_, b) in counts})))
    for line in admin("/stats/prometheus").splitlines():
        if line.startswith("canary_router_rolled_back{") and 'route="broken"' in line:
            print(f"    {line}")

    title("8. Metrics: what Prometheus scrapes from Envoy's /stats/prometheus")
    # Each VM adds its counts to Envoy's counters once a second.
    time.sleep(1.5)
    print(f"    {DIM}$ curl -s http://127.0.0.1:{ADMIN}/stats/prometheus | grep -E "
          f"'^canary_router_(requests|responses|shadow_requests)_total' | grep -v ' 0$'{RESET}")
    for line in admin("/stats/prometheus").splitlines():
        wanted = ("canary_router_requests_total", "canary_router_responses_total", "canary_router_shadow_requests_total")
        if line.startswith(wanted) and not line.endswith(" 0"):
            print(f"    {line}")
    print(f"\n{BOLD}Done.{RESET} Run it yourself: `make run` (envoy/envoy.yaml), or `make run-live` and edit "
          "envoy/live/canary-router.yaml (docs/envoy.md).")


def wait_ready(envoy, log_path):
    deadline = time.time() + 60
    while time.time() < deadline:
        if envoy.poll() is not None:
            sys.exit(f"Envoy exited ({envoy.returncode}); see {log_path}")
        try:
            if admin("/ready").strip() == "LIVE":
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"Envoy was not ready within 60 s; see {log_path}")


def main():
    if not os.path.exists(ENVOY):
        sys.exit(f"Envoy not found at {ENVOY}: run `make envoy` or set ENVOY=/path/to/envoy")
    busy = [p for p in (ADMIN, INGRESS) + BACKENDS if port_in_use(p)]
    if busy:
        sys.exit(f"port(s) {busy} already in use on 127.0.0.1 (is `make run` still running?)")
    with open(os.path.join(ROOT, "examples", "demo.json")) as f:
        config = json.load(f)
    os.makedirs(os.path.dirname(ECDS), exist_ok=True)
    with open(os.path.join(ROOT, "envoy", "demo.yaml")) as f:
        bootstrap = f.read().replace("envoy/demo/", ".tmp/demo/ecds/").replace("path: envoy/demo }", "path: .tmp/demo/ecds }")
    with open(os.path.join(WORK, "envoy.yaml"), "w") as f:
        f.write(bootstrap)
    push(config, running=False)
    log_path = os.path.join(WORK, "envoy.log")
    with open(log_path, "w") as log:
        envoy = subprocess.Popen(
            [ENVOY, "-c", os.path.join(WORK, "envoy.yaml"), "--disable-hot-restart", "--concurrency", "2"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop():
        if envoy.poll() is None:
            envoy.terminate()
            try:
                envoy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                envoy.kill()
                envoy.wait()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        print(f"{DIM}starting {ENVOY} -c envoy/demo.yaml with examples/demo.json (log: {log_path}){RESET}")
        wait_ready(envoy, log_path)
        print(f"{DIM}Envoy is ready: ingress 127.0.0.1:{INGRESS}, admin 127.0.0.1:{ADMIN}{RESET}")
        scenarios(config)
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        stop()
        print(f"{DIM}Envoy stopped.{RESET}")


if __name__ == "__main__":
    main()
