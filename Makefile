# Every entry point of canary-router. `make demo` and `make test` need only
# rustup, Python 3 and make; each sets up what it uses.

SHELL := /bin/bash
WASM := target/wasm32-wasip1/release/canary_router.wasm

.PHONY: help toolchain build test unit harness lint size clean

help:
	@echo "make build    build the filter: $(WASM)"
	@echo "make test     every test tier: lint, unit, harness"
	@echo "make lint     rustfmt and clippy (-D warnings) for the host and the wasm target"
	@echo "make size     the size of the built .wasm"

# The wasm target and lint components, installed only when missing.
toolchain:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

build: toolchain
	cargo wasm

lint: toolchain
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-wasip1 --release --lib -- -D warnings

# Native unit tests of the pure decision modules.
unit:
	cargo test --lib

# The built .wasm in the wasmtime proxy-wasm host (tests/harness/).
harness: build
	cargo test --test '*'

test: lint build
	cargo test --lib
	cargo test --test '*'

size: build
	@bytes=$$(stat -c %s $(WASM)); echo "$(WASM): $$bytes bytes ($$((bytes / 1024)) KiB)"

clean:
	cargo clean
