#!/usr/bin/env python3
"""`make demo`: start Envoy with envoy/envoy.yaml and show each scenario
routing live, printing the curl command equivalent to every request made.

Uses only the standard library. Envoy is $ENVOY (the Makefile installs it
into .venv when unset). Envoy is always stopped, Ctrl-C included.
"""
import collections
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVOY = os.environ.get("ENVOY") or os.path.join(ROOT, ".venv", "bin", "envoy")
ADMIN, INGRESS = 9901, 10000
BOLD, DIM, GREEN, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[0m") if sys.stdout.isatty() else ("",) * 4


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


def curl(host, path="/", headers=None):
    parts = ["curl", "-s", f"-H 'host: {host}'"]
    parts += [f"-H '{k}: {v}'" for k, v in (headers or {}).items()]
    parts.append(f"'http://127.0.0.1:{INGRESS}{path}'")
    return " ".join(parts)


def show(title, host, path="/", headers=None):
    status, body = request(host, path, headers)
    print(f"{BOLD}{title}{RESET}")
    print(f"  {DIM}$ {curl(host, path, headers)}{RESET}")
    print(f"  -> {status} {GREEN}{body}{RESET}\n")


def wait_ready(envoy, log_path):
    deadline = time.time() + 60
    while time.time() < deadline:
        if envoy.poll() is not None:
            sys.exit(f"Envoy exited ({envoy.returncode}); see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", ADMIN, timeout=1)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"Envoy was not ready within 60 s; see {log_path}")


def scenarios():
    print(f"{BOLD}Service A: header, cookie or query foo=bar goes to A' (service-a-canary){RESET}\n")
    show("header foo: bar", "a.example.com", headers={"foo": "bar"})
    show("cookie foo=bar", "a.example.com", headers={"cookie": "session=1; foo=bar"})
    show("query foo=bar", "a.example.com", "/?foo=bar")
    show("no match: stays on A", "a.example.com")
    show("a client cannot pick the canary itself", "a.example.com", headers={"x-route-target": "service-a-canary"})
    show("a host no route covers: the filter removes the header, Envoy answers 404", "nowhere.org",
         headers={"x-route-target": "service-a-canary"})

    print(f"{BOLD}Service B: 20% to B' (service-b-canary), sticky by cookie uid{RESET}\n")
    conn = http.client.HTTPConnection("127.0.0.1", INGRESS, timeout=10)
    counts = collections.Counter(request("b.example.com", conn=conn)[1] for _ in range(1000))
    conn.close()
    print(f"  {DIM}$ for i in $(seq 1000); do {curl('b.example.com')}; done | sort | uniq -c{RESET}")
    for backend, n in sorted(counts.items()):
        print(f"  {n:5d} {GREEN}{backend}{RESET}  ({n / 10:.1f}%)")
    print()
    headers = {"cookie": "uid=alice"}
    answers = collections.Counter(request("b.example.com", headers=headers)[1] for _ in range(10))
    print(f"{BOLD}the same user ten times{RESET}")
    print(f"  {DIM}$ for i in $(seq 10); do {curl('b.example.com', headers=headers)}; done | sort | uniq -c{RESET}")
    for backend, n in answers.items():
        print(f"  {n:5d} {GREEN}{backend}{RESET}")
    print()
    print(f"{BOLD}what Prometheus sees{RESET}")
    print(f"  {DIM}$ curl -s http://127.0.0.1:{ADMIN}/stats/prometheus | grep '^canary_router_requests_total'{RESET}")
    conn = http.client.HTTPConnection("127.0.0.1", ADMIN, timeout=10)
    conn.request("GET", "/stats/prometheus")
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith("canary_router_requests_total"):
            print(f"  {line}")
    conn.close()
    print()
    print("Change weights without a restart: `make run-live`, then edit envoy/live/canary-router.yaml (README).")


def main():
    if not os.path.exists(ENVOY):
        sys.exit(f"Envoy not found at {ENVOY}: run `make envoy` or set ENVOY=/path/to/envoy")
    busy = [p for p in (ADMIN, INGRESS, 10101, 10102, 10103, 10104) if port_in_use(p)]
    if busy:
        sys.exit(f"port(s) {busy} already in use on 127.0.0.1 (is `make run` still running?)")
    log_path = os.path.join(ROOT, ".tmp", "demo-envoy.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as log:
        envoy = subprocess.Popen(
            [ENVOY, "-c", "envoy/envoy.yaml", "--disable-hot-restart", "--concurrency", "2"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(*_):
        if envoy.poll() is None:
            envoy.terminate()
            try:
                envoy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                envoy.kill()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        print(f"{DIM}starting {ENVOY} -c envoy/envoy.yaml (log: {log_path}){RESET}")
        wait_ready(envoy, log_path)
        print(f"{DIM}Envoy is ready: ingress 127.0.0.1:{INGRESS}, admin 127.0.0.1:{ADMIN}{RESET}\n")
        scenarios()
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        stop()
        print(f"{DIM}Envoy stopped.{RESET}")


if __name__ == "__main__":
    main()
