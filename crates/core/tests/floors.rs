//! The core reads bottom-up: each folder uses only the floors below it
//! (tests aside), so a change to routing never reaches back into the text
//! readers, and the rollout's judges never depend on how a request is
//! routed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// The floors, lowest first; a module may use its own floor and those
/// before it.
const FLOORS: [&str; 7] = ["text", "hashing", "request", "rollout", "routing", "config", "rehearsal"];

fn floor(name: &str) -> Option<usize> {
    FLOORS.iter().position(|f| *f == name)
}

/// Every `.rs` file under `dir`, with its path from `src`.
fn sources(dir: &Path, from: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, from, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.strip_prefix(from).unwrap().to_string_lossy().into_owned();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn no_module_uses_a_floor_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    let mut checked = 0;
    for (name, text) in &files {
        let top = name.split('/').next().unwrap().trim_end_matches(".rs");
        let Some(own) = floor(top) else {
            assert_eq!(name, "lib.rs", "{name} is on no floor: add its folder to FLOORS");
            continue;
        };
        // A test module may build what it needs from any floor.
        let code = text.split("#[cfg(test)]").next().unwrap();
        let code = if name.ends_with("/tests.rs") { "" } else { code };
        for used in code.split("crate::").skip(1) {
            let module: String =
                used.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if let Some(theirs) = floor(&module) {
                assert!(theirs <= own, "{name} uses crate::{module}, a floor above its own ({top})");
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} files checked");
}
