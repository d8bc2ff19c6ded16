//! The documentation is the spec: these tests keep it true. Each config
//! object's table in the reference lists exactly the keys the config's
//! declared shape (`config::shape`) has, every row of
//! CONTRIBUTING.md's scenario table names a test that exists, the pinned
//! sticky buckets are the code's, links resolve, and the README's configs
//! are valid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use canary_router_core::config;
use canary_router_core::hashing::hash::sticky_bucket;
use pages::{anchor, read};

mod pages;

fn readme() -> String {
    read("README.md")
}

/// The keys in the first table after the line starting with `caption`.
fn table_keys(page: &str, caption: &str) -> Vec<String> {
    let text = read(page);
    let start = text
        .lines()
        .position(|line| line.starts_with(caption))
        .unwrap_or_else(|| panic!("{page} has no line starting with {caption:?}"));
    text.lines()
        .skip(start + 1)
        .skip_while(|line| !line.starts_with("| Key"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|row| row.split('`').nth(1).unwrap_or_else(|| panic!("a row without a key: {row}")).to_string())
        .collect()
}

#[test]
fn each_config_object_s_table_lists_exactly_its_declared_keys() {
    let mut checked = 0;
    for object in config::shape::OBJECTS {
        let declared: Vec<&str> = object.keys.iter().map(|k| k.name).collect();
        match object.doc {
            Some((page, caption)) => {
                assert_eq!(table_keys(page, caption), declared, "{page}, the table after {caption:?}");
                checked += declared.len();
            }
            None => {
                // Described in the row of the key that holds it.
                let split = read("docs/config.md");
                let row = split.lines().find(|l| l.starts_with(&format!("| `{}` |", object.name))).unwrap();
                for key in &declared {
                    assert!(
                        row.contains(&format!("\"{key}\"")),
                        "the `{}` row does not show `{key}`",
                        object.name
                    );
                }
            }
        }
    }
    assert!(checked >= 50, "only {checked} keys checked");
}

#[test]
fn every_scenario_row_names_a_test_that_exists() {
    let contributing = read("CONTRIBUTING.md");
    let table =
        contributing.split("## Scenarios the tests check").nth(1).unwrap().split("\n## ").next().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    // Harness and e2e tests, the CLI's, and every crate's unit tests.
    let mut dirs = vec![root.join("tests"), root.join("src"), root.join("crates")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources += &std::fs::read_to_string(path).unwrap();
            }
        }
    }
    let mut names = 0;
    for row in table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Scenario")) {
        for name in row.split('`').skip(1).step_by(2).filter(|n| {
            n.contains('_') && n.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        }) {
            assert!(
                sources.contains(&format!("fn {name}(")),
                "CONTRIBUTING.md's scenario table names a test `{name}` that does not exist"
            );
            names += 1;
        }
    }
    assert!(names >= 20, "only {names} test names found in the scenario table");
}

#[test]
fn the_pinned_sticky_buckets_are_the_codes() {
    let page = read("docs/sticky-hash.md");
    let pins =
        page.split("Pinned examples").nth(1).unwrap().split("Random choices").next().unwrap().to_string();
    let mut found = 0;
    for piece in pins.split("+ `").skip(1) {
        let id = piece.split('`').next().unwrap();
        let bucket: u32 = piece
            .split("→ ")
            .nth(1)
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(sticky_bucket(b"service-b", id.as_bytes()), bucket, "docs/sticky-hash.md's pin for {id}");
        found += 1;
    }
    assert_eq!(found, 3);
}

/// What the `.wasm` links is what the design allows, held by cargo: the
/// filter crate depends on the core, `log` and (for wasm only) `getrandom`;
/// the core on `regex-lite` alone. The CLI's dependencies (clap, serde,
/// ureq) are its own crate's, where no build of the `.wasm` reaches them.
#[test]
fn the_wasm_links_only_what_the_design_allows() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let dependencies = |package: &str| -> Vec<(String, String)> {
        let package = metadata["packages"].as_array().unwrap().iter().find(|p| p["name"] == package).unwrap();
        let mut names: Vec<(String, String)> = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| (d["name"].as_str().unwrap().into(), d["target"].as_str().unwrap_or("").into()))
            .collect();
        names.sort();
        names
    };
    let wasm_only = r#"cfg(target_arch = "wasm32")"#.to_string();
    assert_eq!(
        dependencies("canary-router"),
        [
            ("canary-router-core".into(), String::new()),
            ("getrandom".into(), wasm_only),
            ("log".into(), String::new())
        ]
    );
    assert_eq!(dependencies("canary-router-core"), [("regex-lite".to_string(), String::new())]);
    // The dynamic module: the core alone (Envoy is its host).
    assert_eq!(dependencies("canary-router-dynmod"), [("canary-router-core".to_string(), String::new())]);
}

/// envoy/dynmod.yaml is envoy/envoy.yaml with the dynamic module in the
/// wasm filter's place: the same filter config, the same routes and
/// backends.
#[test]
fn the_dynamic_module_s_envoy_config_is_the_wasm_one_s_with_the_module() {
    // Its filter config, what follows the filters (routes, backends,
    // clusters) and what precedes them (comments aside).
    let parts = |path: &str| {
        let text = read(path);
        let (head, rest) = text.split_once("          - name: envoy.filters.http.router").unwrap();
        let json: serde_json::Value =
            serde_json::from_str(head.rsplit_once("value: |\n").unwrap().1).unwrap();
        let before = head.split_once("http_filters:").unwrap().0;
        let before: Vec<&str> = before.lines().filter(|l| !l.starts_with('#')).collect();
        (json, rest.to_string(), before.join("\n"))
    };
    let (wasm, module) = (parts("envoy/envoy.yaml"), parts("envoy/dynmod.yaml"));
    assert_eq!(module.0, wasm.0, "the filter config");
    assert_eq!(module.1, wasm.1, "the routes, backends and clusters");
    assert_eq!(module.2, wasm.2, "the bootstrap before the filters");
    assert!(read("envoy/dynmod.yaml").contains("dynamic_modules.v3.DynamicModuleFilter"));
}

/// Every test file runs in `make test`: a tier left out of it is a tier CI
/// never runs.
#[test]
fn every_test_file_runs_in_make_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let recipe = makefile.split("\ntest:").nth(1).unwrap().split("\n\n").next().unwrap().replace("\\\n", " ");
    let mut files = 0;
    for entry in std::fs::read_dir(root.join("tests")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(test) = name.strip_suffix(".rs") {
            assert!(recipe.contains(&format!("--test {test}")), "make test does not run tests/{name}");
            files += 1;
        }
    }
    assert!(recipe.contains("--lib"), "make test skips the glue's unit tests");
    // The other crates' tests, unit and integration, run by package.
    for package in ["canary-router-core", "canary-router-cli"] {
        assert!(recipe.contains(&format!("-p {package}")), "make test skips {package}'s tests");
    }
    assert!(recipe.contains("--test e2e"), "make test skips the e2e tier");
    assert!(files >= 10);
}

/// The tag names in the ```yaml block of docs/metrics.md's Labels section.
fn documented_stats_tags() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let metrics = std::fs::read_to_string(root.join("docs/metrics.md")).unwrap();
    let block = metrics.split("stats_tags:").nth(1).unwrap().split("```").next().unwrap();
    let tags = tag_names(block);
    assert!(tags.len() >= 10, "{tags:?}");
    tags
}

/// The `tag_name`s of `stats_tags` entries, in order.
fn tag_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|line| line.split("tag_name: ").nth(1))
        .map(|rest| rest.split(',').next().unwrap().trim().to_string())
        .collect()
}

/// The fleet latch reads the `split` label and `status` the others: a tag
/// missing from one shipped config leaves that setup's latch blind.
#[test]
fn the_stats_tags_are_the_same_in_the_docs_every_envoy_config_and_istio() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tags = documented_stats_tags();
    let mut configs = 0;
    for entry in std::fs::read_dir(root.join("envoy")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(tag_names(&text), tags, "{}: stats_tags differ from docs/metrics.md", path.display());
        for tag in &tags {
            let regex = format!("regex: \"({tag}=\\\\.=(.*?);\\\\.;)\"");
            assert!(text.contains(&regex), "{}: the regex of {tag} is not {regex}", path.display());
        }
        configs += 1;
    }
    assert!(configs >= 2);
    let mesh = std::fs::read_to_string(root.join("istio/mesh-config.yaml")).unwrap();
    let listed: Vec<String> = mesh
        .split("extraStatTags:")
        .nth(1)
        .unwrap()
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect();
    assert_eq!(listed, tags, "istio/mesh-config.yaml: extraStatTags differ from docs/metrics.md");
}

/// The rollback shown in docs/progressive-delivery.md is the one the fleet
/// test runs, so a user who copies it copies something proven.
#[test]
fn the_documented_fleet_rollback_is_examples_fleet_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/progressive-delivery.md")).unwrap();
    let snippet = page
        .split("a test keeps this\ncopy equal to the file):\n\n```json\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_str(snippet).unwrap();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("examples/fleet.json")).unwrap()).unwrap();
    assert_eq!(shown["rollback"], file["routes"][0]["rules"][0]["split"]["rollback"]);
}

/// Every relative link of the README, docs/ and the other pages users read
/// reaches a file, and its #anchor a heading of that file.
#[test]
fn every_relative_link_in_the_documentation_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md"), root.join("istio/README.md")];
    for optional in ["CONTRIBUTING.md", "BENCHMARKS.md"] {
        if root.join(optional).exists() {
            pages.push(root.join(optional));
        }
    }
    for entry in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
        pages.push(entry.path());
    }
    let mut links = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap();
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            assert!(path.exists(), "{}: link to {target}: no such file", page.display());
            if !fragment.is_empty() {
                let linked = std::fs::read_to_string(&path).unwrap();
                let found = linked
                    .lines()
                    .filter_map(|line| line.strip_prefix('#'))
                    .any(|heading| anchor(heading.trim_start_matches('#')) == fragment);
                assert!(found, "{}: link to {target}: no heading with that anchor", page.display());
            }
            links += 1;
        }
    }
    assert!(links >= 20, "only {links} relative links found");
}

/// The configs the README shows a newcomer are valid as shown.
#[test]
fn the_readme_s_configs_are_valid() {
    let readme = readme();
    let mut checked = 0;
    for block in readme.split("```json\n").skip(1).map(|b| b.split("```").next().unwrap()) {
        let json = if block.trim_start().starts_with("{ \"split\"") {
            format!(r#"{{"routes": [{{"name": "b", "default": "service-b", "rules": [{block}]}}]}}"#)
        } else {
            block.to_string()
        };
        config::parse(json.as_bytes()).unwrap_or_else(|e| panic!("README config rejected: {e}\n{json}"));
        checked += 1;
    }
    let yaml = readme.split("```yaml\n").nth(1).unwrap().split("```").next().unwrap();
    let plugin: serde_json::Value = serde_norway::from_str(yaml).unwrap();
    config::parse(plugin["spec"]["pluginConfig"].to_string().as_bytes()).unwrap();
    assert_eq!(checked, 2);
}

#[test]
fn the_limits_table_is_the_code_s() {
    use canary_router_core::config::limits;
    use canary_router_core::config::shape;
    let text = read("docs/config.md");
    let table = text.split("\n## Limits\n").nth(1).unwrap().split("\n## ").next().unwrap();
    let row = |what: &str| -> String {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("| {what} |")))
            .unwrap_or_else(|| panic!("docs/config.md's limits table has no row `{what}`"));
        line.split('|').nth(2).unwrap().trim().to_string()
    };
    let number = |what: &str| -> usize {
        let cell = row(what);
        let digits = match cell.split_once('(') {
            Some((_, inner)) if inner.chars().next().is_some_and(|c| c.is_ascii_digit()) => inner.to_string(),
            _ => cell,
        };
        digits.split_whitespace().next().unwrap().replace(',', "").parse().unwrap()
    };
    let mirror_max = |key: &str| match shape::MIRROR.keys.iter().find(|k| k.name == key).unwrap().kind {
        shape::Kind::Number(bounds) => bounds.max as usize,
        _ => unreachable!(),
    };
    for (what, code) in [
        ("the config document", limits::CONFIG_BYTES),
        ("routes", limits::ROUTES),
        ("`hosts` of a route", limits::HOSTS_PER_ROUTE),
        ("rules of a route", limits::RULES_PER_ROUTE),
        ("rules in all routes", limits::RULES),
        ("conditions of a rule", limits::CONDITIONS_PER_RULE),
        ("targets of a split", limits::TARGETS_PER_SPLIT),
        ("values of a `oneOf`", limits::ONE_OF_VALUES),
        ("regex conditions in the config", limits::REGEXES),
        ("states of one regex", canary_router_core::text::regex_cost::MAX_STATES as usize),
        ("steps of a ramp", limits::RAMP_STEPS),
        ("Prometheus checks of a rollback", limits::CHECKS_PER_ROLLBACK),
        ("headers of a Prometheus query", limits::PROMETHEUS_HEADERS),
        ("a mirror's `maxBodyBytes`", mirror_max("maxBodyBytes")),
        ("a mirror's `timeoutMs`", mirror_max("timeoutMs")),
    ] {
        assert_eq!(number(what), code, "docs/config.md's limit for {what}");
    }
}

#[test]
fn make_bench_is_described_the_same_everywhere() {
    let makefile = read("Makefile");
    let runs: usize = makefile
        .split("bench/run.py --runs ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("make bench passes --runs");
    let said = format!("{runs} runs, about 30 minutes");
    assert!(makefile.contains(&format!("({said})")), "make help says {said}");
    assert!(read("CONTRIBUTING.md").contains(&format!("`make bench` ({runs} runs, about\n30 minutes)")));
    assert!(
        read("BENCHMARKS.md").contains(&format!("- {runs} runs;")),
        "BENCHMARKS.md is a {runs}-run make bench"
    );
}

/// The per-pod way to set the stats tags is named as istio/mesh-config.yaml
/// names it, everywhere (Istio dropped the older per-tag annotation).
#[test]
fn the_stats_tags_annotation_is_named_the_same_everywhere() {
    let annotation = "proxy.istio.io/config";
    assert!(read("istio/mesh-config.yaml").contains(&format!("{annotation}: '{{\"extraStatTags\"")));
    for page in ["docs/metrics.md", "docs/progressive-delivery.md", "docs/istio.md", "istio/README.md"] {
        let text = read(page);
        assert!(!text.contains("sidecar.istio.io/extraStatTags"), "{page} names the retired annotation");
        if text.contains("annotation") && text.contains("extraStatTags") {
            assert!(
                text.contains(annotation),
                "{page} mentions a stats tags annotation but not {annotation}"
            );
        }
    }
}

/// The glue's modules (src/filter/) use each other without circles, as
/// CONTRIBUTING.md's layout describes them: each can be read knowing only
/// those it uses. `Active` and `Vm` count as their files' (active.rs and
/// the folder's own mod.rs, which every module may use).
#[test]
fn the_glue_s_modules_use_each_other_without_circles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/filter");
    let mut uses: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "mod") else { continue };
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let mut used: Vec<String> = code
            .split("super::")
            .skip(1)
            .map(|rest| {
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
            })
            .map(|used| if used == "Active" { "active".to_string() } else { used })
            .filter(|used| used != module && dir.join(format!("{used}.rs")).is_file())
            .collect();
        used.sort();
        used.dedup();
        uses.insert(module.to_string(), used);
    }
    assert!(uses.len() >= 15, "{uses:?}");
    // Depth-first from each module: reaching it again is a circle.
    for start in uses.keys() {
        let mut stack = vec![vec![start.clone()]];
        while let Some(path) = stack.pop() {
            for next in &uses[path.last().unwrap()] {
                assert!(next != start, "src/filter/ has a circle: {} -> {next}", path.join(" -> "));
                if !path.contains(next) {
                    stack.push([path.clone(), vec![next.clone()]].concat());
                }
            }
        }
    }
}
