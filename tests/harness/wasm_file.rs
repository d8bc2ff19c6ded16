//! Finding the built filter and compiling it once per test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use wasmtime::{Config, Engine, Module};

/// The `.wasm` under test: `$CANARY_ROUTER_WASM`, or the release build in
/// the cargo target directory.
pub fn wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("CANARY_ROUTER_WASM") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("wasm32-wasip1/release/canary_router.wasm")
}

/// The newest source the `.wasm` was built from, read from the dep-info
/// file cargo writes beside it, so a stale build fails loudly instead of
/// testing yesterday's code.
fn newest_source(wasm: &Path) -> Option<(PathBuf, SystemTime)> {
    let dep_info = std::fs::read_to_string(wasm.with_extension("d")).ok()?;
    let (_, sources) = dep_info.lines().next()?.split_once(": ")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    sources
        .replace("\\ ", "\u{0}")
        .split(' ')
        .map(|p| PathBuf::from(p.replace('\u{0}', " ")))
        .filter(|p| p.starts_with(root))
        .filter_map(|p| Some((p.metadata().and_then(|m| m.modified()).ok()?, p)))
        .max()
        .map(|(t, p)| (p, t))
}

/// The engine and the compiled filter, shared by every test of a binary.
pub fn compiled() -> &'static (Engine, Module) {
    static COMPILED: OnceLock<(Engine, Module)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let path = wasm_path();
        let built = match path.metadata().and_then(|m| m.modified()) {
            Ok(built) => built,
            Err(_) => panic!(
                "the filter is not built: {} is missing.\nBuild it with `make build` (or `cargo wasm`).",
                path.display()
            ),
        };
        if std::env::var_os("CANARY_ROUTER_WASM").is_none() {
            if let Some((source, changed)) = newest_source(&path) {
                assert!(
                    changed <= built,
                    "{} is older than {}: rebuild it with `make build` (or `cargo wasm`).",
                    path.display(),
                    source.display()
                );
            }
        }
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
