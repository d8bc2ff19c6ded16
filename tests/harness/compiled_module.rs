//! Compiling the built filter once per test binary.

use std::sync::OnceLock;

use wasmtime::{Config, Engine, Module};

use super::built::require_fresh_wasm;

/// The engine and the compiled filter, shared by every test of a binary.
pub fn compiled() -> &'static (Engine, Module) {
    static COMPILED: OnceLock<(Engine, Module)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let path = require_fresh_wasm();
        let mut config = Config::new();
        // A guest stuck in a loop fails its test instead of hanging it.
        config.consume_fuel(true);
        let engine = Engine::new(&config).unwrap();
        let module = Module::from_file(&engine, &path)
            .unwrap_or_else(|e| panic!("{} is not a valid wasm module: {e:?}", path.display()));
        assert!(
            module.exports().any(|e| e.name() == "proxy_abi_version_0_2_1"),
            "{} does not export proxy_abi_version_0_2_1: not a proxy-wasm 0.2.1 module",
            path.display()
        );
        (engine, module)
    })
}
