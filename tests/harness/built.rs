//! Finding the built filter and the built CLI, and refusing a missing or
//! stale one. Shared by the harness and the end-to-end tests; no wasmtime
//! here.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The `.wasm` under test: `$CANARY_ROUTER_WASM`, or the release build in
/// the cargo target directory.
pub fn wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("CANARY_ROUTER_WASM") {
        return PathBuf::from(path);
    }
    target_dir().join("wasm32-wasip1/release/canary_router.wasm")
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, or the repository's.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The newest source an artifact was built from, read from the dep-info
/// file cargo writes beside it, so a stale build fails loudly instead of
/// testing yesterday's code.
fn newest_source(artifact: &Path) -> Option<(PathBuf, SystemTime)> {
    let dep_info = std::fs::read_to_string(artifact.with_extension("d")).ok()?;
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

/// `path`, after checking it exists and (unless `checked` is false) is
/// newer than every source it was built from. Fails with `build`, the
/// command that builds it.
fn require_fresh(path: PathBuf, what: &str, build: &str, checked: bool) -> PathBuf {
    let built = match path.metadata().and_then(|m| m.modified()) {
        Ok(built) => built,
        Err(_) => panic!("{what} is not built: {} is missing.\nBuild it with {build}.", path.display()),
    };
    if checked {
        if let Some((source, changed)) = newest_source(&path) {
            assert!(
                changed <= built,
                "{} is older than {}: rebuild it with {build}.",
                path.display(),
                source.display()
            );
        }
    }
    path
}

/// The `.wasm` under test, after checking it exists and is newer than every
/// source it was built from. Fails with the command that builds it.
pub fn require_fresh_wasm() -> PathBuf {
    let checked = std::env::var_os("CANARY_ROUTER_WASM").is_none();
    require_fresh(wasm_path(), "the filter", "`make build` (or `cargo wasm`)", checked)
}

/// The `canary-router` command, from the same cargo build as this test
/// (its own crate, crates/cli, builds it; `make test` does first).
#[allow(dead_code)] // Only the tests that run the CLI read it.
pub fn require_fresh_cli() -> PathBuf {
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug"));
    require_fresh(profile_dir.join("canary-router"), "the CLI", "`cargo build -p canary-router-cli`", true)
}

/// The linker's own module, before `make build`'s wasm-opt (which inlines
/// away what the linker wrapped around exports): its copy beside the
/// `.wasm` when it is from the latest cargo build (newer than the dep-info
/// file cargo writes), else the `.wasm` itself (cargo's own module, when
/// wasm-opt did not run).
#[allow(dead_code)] // The end-to-end tests read only the `.wasm`.
pub fn linked_wasm() -> PathBuf {
    let wasm = require_fresh_wasm();
    let linked = wasm.with_extension("linked.wasm");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    match (modified(&linked), modified(&wasm.with_extension("d"))) {
        (Some(copied), Some(built)) if copied >= built => linked,
        _ => wasm,
    }
}

/// The directory holding the dynamic module (`make dynmod`:
/// target/dynmod/libcanary_router.so), after checking the module exists
/// and is newer than its sources: what Envoy's
/// `ENVOY_DYNAMIC_MODULES_SEARCH_PATH` names.
#[allow(dead_code)] // Only the end-to-end tests load it.
pub fn require_fresh_dynmod_dir() -> PathBuf {
    let dir = target_dir().join("dynmod");
    require_fresh(dir.join("libcanary_router.so"), "the dynamic module", "`make dynmod`", true);
    dir
}
