//! The `canary-router` binary, run as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod istio;
mod json_schema;

use std::path::Path;
use std::process::Command;

use canary_router::config;
use canary_router::request::Request;
use canary_router::split::Moment;
use harness::{HeaderMap, Proxy};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_canary-router"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn temp_file(name: &str, contents: &str) -> String {
    let path = std::env::temp_dir().join(format!("canary-router-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[test]
fn check_accepts_the_example_with_a_line_per_route() {
    let r = run(&["check", "examples/config.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "ok: examples/config.json: 2 route(s), target header x-route-target\n  \
         route service-a: a.example.com, *.example.com /*; beta -> service-a-canary; rules[1] -> service-a-canary; \
         rules[2] -> service-a-canary; rules[3] -> service-a; default -> service-a\n  \
         route service-b: b.example.com; rules[0] -> split service-b-canary 20% / service-b 80%, sticky by cookie uid; \
         default -> service-b\n"
    );
}

#[test]
fn check_prints_the_filters_own_error_and_exits_1() {
    let bad = temp_file(
        "bad.json",
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"split": {"weights": [{"target": "a", "weight": 0}]}}]}]}"#,
    );
    let r = run(&["check", &bad]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!("canary-router: {bad}: routes[0].rules[0].split.weights: sum must be > 0\n")
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn check_reads_a_wasm_plugins_plugin_config() {
    let r = run(&["check", "istio/service-b/wasm-plugin-20.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("ok: istio/service-b/wasm-plugin-20.yaml (WasmPlugin canary-router-service-b): 1 route(s), target header x-service-b-version\n"), "{}", r.stdout);
}

#[test]
fn unreadable_input_and_bad_arguments_exit_2() {
    let r = run(&["check", "no/such/file.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("canary-router: no/such/file.json: "), "{}", r.stderr);
    let r = run(&["explain", "examples/config.json", "-H", "no-colon"]);
    assert_eq!((r.code, r.stderr.as_str()), (2, "canary-router: -H \"no-colon\": expected `name: value`\n"));
    assert_eq!(run(&["frobnicate"]).code, 2);
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["check", "explain", "simulate", "schema", "from-nginx"] {
        let r = run(&[sub, "--help"]);
        assert_eq!(r.code, 0, "{sub}");
        assert!(r.stdout.contains("Usage: canary-router"), "{sub}: {}", r.stdout);
    }
}

#[test]
fn explain_names_the_route_rule_conditions_and_header() {
    let r = run(&[
        "explain",
        "examples/config.json",
        "--url",
        "http://a.example.com/?foo=baz",
        "-H",
        "foo: nope",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "request: host a.example.com path /?foo=baz\nroute:   service-a\n\
         rule:    beta\n           header foo == \"bar\": does not hold\n\
         rule:    rules[1]\n           cookie foo == \"bar\": does not hold\n\
         rule:    rules[2]\n           query foo ~ /^ba[rz]$/: holds\n           -> this rule decides\n\
         target:  service-a-canary\nheader:  x-route-target: service-a-canary\n"
    );
    let sticky =
        run(&["explain", "examples/config.json", "--url", "http://b.example.com/", "--cookie", "uid=alice"]);
    assert!(
        sticky.stdout.contains("sticky:  cookie uid -> bucket 237645 of 1000000: always service-b\n"),
        "{}",
        sticky.stdout
    );
    let random = run(&["explain", "examples/config.json", "--url", "http://b.example.com/"]);
    assert!(random.stdout.contains("random:  no cookie uid in the request"), "{}", random.stdout);
    let none = run(&["explain", "examples/config.json", "--url", "http://nowhere.org/x"]);
    assert!(none.stdout.ends_with("route:   none matches this host and path\nheader:  x-route-target removed (a client cannot choose the upstream)\n"));
}

/// The CLI and the built filter run the same decision code: for the same
/// requests, `explain`'s target is the header the .wasm writes.
#[test]
fn explain_agrees_with_the_built_filter() {
    let mut proxy = Proxy::configured(include_str!("../examples/config.json"));
    let cases: [(&str, &[&str]); 6] = [
        ("http://a.example.com/", &["-H", "foo: bar"]),
        ("http://a.example.com/", &["--cookie", "foo=bar"]),
        ("http://shop.example.com/?foo=bar", &[]),
        ("http://a.example.com/", &["-H", "x-canary: never"]),
        ("http://b.example.com/", &["--cookie", "uid=alice"]),
        ("http://b.example.com/", &["--cookie", "uid=user-3"]),
    ];
    for (url, extra) in cases {
        let mut args = vec!["explain", "examples/config.json", "--url", url];
        args.extend_from_slice(extra);
        let r = run(&args);
        let cli_target = r.stdout.lines().find_map(|l| l.strip_prefix("target:  ")).unwrap().to_string();
        let host = url.trim_start_matches("http://").split('/').next().unwrap();
        let path = &url[url.find(host).unwrap() + host.len()..];
        let mut headers = HeaderMap::from_pairs([(":authority", host), (":path", path)]);
        match extra {
            ["-H", h] => {
                let (k, v) = h.split_once(": ").unwrap();
                headers.add(k.as_bytes(), v.as_bytes());
            }
            ["--cookie", c] => headers.add(b"cookie", c.as_bytes()),
            _ => {}
        }
        assert_eq!(proxy.send_map(headers).target().unwrap(), cli_target, "{url} {extra:?}");
    }
}

#[test]
fn simulate_shows_each_targets_share_and_ids_that_move() {
    let r = run(&["simulate", "examples/config.json", "--requests", "20000", "--sticky-ids", "5000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let share = |target: &str, from: &str| -> f64 {
        let line = from.lines().find(|l| l.trim_start().starts_with(&format!("{target} "))).unwrap();
        line.split('%').next().unwrap().rsplit(' ').next().unwrap().parse().unwrap()
    };
    let route_b = r.stdout.split("route service-b").nth(1).unwrap();
    let (requests, ids) = route_b.split_once("sticky ids").unwrap();
    assert!((share("service-b-canary", requests) - 20.0).abs() < 1.0, "{route_b}");
    assert!((share("service-b-canary", ids) - 20.0).abs() < 1.5, "{route_b}");
    assert!(r.stdout.contains("route service-a (host a.example.com, path /)\n  service-a  ########################################  100.0%  (20000)"));

    let thirty = temp_file(
        "thirty.json",
        &include_str!("../examples/config.json")
            .replace("\"weight\": 20 }", "\"weight\": 30 }")
            .replace("\"weight\": 80 }", "\"weight\": 70 }"),
    );
    let r = run(&[
        "simulate",
        "examples/config.json",
        "--requests",
        "100",
        "--sticky-ids",
        "5000",
        "--compare",
        &thirty,
    ]);
    let moved = r.stdout.lines().find(|l| l.contains("ids change target")).unwrap();
    let n: f64 = moved.split(" of ").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!((n / 5000.0 * 100.0 - 10.0).abs() < 1.5, "{moved}");
    // Raising the canary's weight only moves users onto it.
    assert!(r.stdout.contains("    service-b -> service-b-canary: "), "{}", r.stdout);
    assert!(!r.stdout.contains("service-b-canary -> service-b"), "{}", r.stdout);
}

#[test]
fn explain_and_simulate_show_a_ramps_step_and_a_rolled_back_split() {
    let config = temp_file(
        "progressive.json",
        r#"{"routes": [{"name": "b", "hosts": ["b.test"], "default": "stable", "rules": [{"split": {
            "weights": [{"target": "canary", "weight": 0}, {"target": "stable", "weight": 100}],
            "ramp": {"target": "canary", "start": "2026-11-24T10:00:00Z", "every": "10m", "steps": [5, 25, 100]},
            "rollback": {"target": "canary", "maxErrorRate": 0.05, "minRequests": 50, "window": "60s"},
            "assignCookie": {"name": "v", "maxAge": 60}}}]}]}"#,
    );
    let at = |time: &str, extra: &[&str]| {
        let mut args = vec!["explain", &config, "--url", "http://b.test/", "--at", time];
        args.extend_from_slice(extra);
        run(&args).stdout
    };
    assert!(at("2026-11-24T09:00:00Z", &[]).contains(
        "ramp:    not started: the listed weights apply until its start
"
    ));
    let step2 = at("2026-11-24T10:15:00Z", &[]);
    assert!(
        step2.contains(
            "split:   canary 25% / stable 75%
ramp:    canary at step 2 of 3 (25%)
"
        ),
        "{step2}"
    );
    assert!(step2.contains("response: set-cookie: v="), "{step2}");
    let back = at("2026-11-24T10:15:00Z", &["--rolled-back"]);
    assert!(
        back.contains(
            "split:   canary 0% / stable 100%
"
        ),
        "{back}"
    );
    assert!(
        back.contains(
            "rollback: rolled back: canary gets no traffic
"
        ),
        "{back}"
    );
    assert!(
        back.contains(
            "target:  stable
"
        ),
        "{back}"
    );

    let simulate = |extra: &[&str]| {
        let mut args = vec!["simulate", &config, "--requests", "10000", "--at", "2026-11-24T10:25:00Z"];
        args.extend_from_slice(extra);
        run(&args).stdout
    };
    assert!(
        simulate(&[]).contains("canary  ########################################  100.0%"),
        "{}",
        simulate(&[])
    );
    assert!(simulate(&["--rolled-back"]).contains("stable  ########################################  100.0%"));
    assert_eq!(run(&["explain", &config, "--at", "noon"]).code, 2);
}

fn schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/canary-router.schema.json"),
        )
        .unwrap(),
    )
    .unwrap()
}

#[test]
fn the_schema_file_is_current() {
    let r = run(&["schema"]);
    assert_eq!(r.code, 0);
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/canary-router.schema.json"),
    )
    .unwrap();
    assert_eq!(r.stdout, file, "schema/canary-router.schema.json is stale: run `make schema`");
}

#[test]
fn every_example_config_validates_against_the_schema() {
    let schema = schema();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut configs: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(root.join("examples")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            configs.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    let live = std::fs::read_to_string(root.join("envoy/live/canary-router.yaml")).unwrap();
    let live: Value = serde_norway::from_str(&live).unwrap();
    let json = live["resources"][0]["typed_config"]["config"]["configuration"]["value"].as_str().unwrap();
    configs.push(("envoy/live/canary-router.yaml".into(), json.to_string()));
    for doc in istio::all_documents().into_iter().filter(|d| d.value["kind"] == "WasmPlugin") {
        configs.push((
            format!("istio/{}", doc.file),
            istio::plugin_config_json(&doc.value, istio::NumberStyle::Doubles),
        ));
    }
    assert!(configs.len() >= 8);
    for (origin, json) in configs {
        let value: Value = serde_json::from_str(&json).unwrap();
        json_schema::validate(&schema, &value).unwrap_or_else(|e| panic!("{origin}: {e}"));
        config::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{origin}: {e}"));
    }
}

#[test]
fn the_schema_rejects_what_the_filter_rejects() {
    let schema = schema();
    let invalid = [
        r#"{"routes": [{"name": "r", "default": "a", "tagret": "x"}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"match": [{"header": "f", "exact": "b", "regex": "c"}], "target": "x"}]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"match": [{"header": "f", "cookie": "b", "exact": "c"}], "target": "x"}]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"target": "x", "split": {"weights": [{"target": "a", "weight": 1}]}}]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"split": {"weights": [{"target": "a", "weight": -1}]}}]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "hosts": ["a.com:80"]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a b"}]}"#,
        r#"{"routes": []}"#,
        r#"{"targetHeader": "X-Up", "routes": [{"name": "r", "default": "a"}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "mirror": {"cluster": "s", "percent": 120}}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "mirror": {"percent": 1}}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"split": {"weights": [{"target": "a", "weight": 1}, {"target": "b", "weight": 1}], "rollback": {"target": "b"}}}]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"split": {"weights": [{"target": "a", "weight": 1}, {"target": "b", "weight": 1}], "rollback": {"target": "b", "maxErrorRate": 0.1, "prometheus": {"cluster": "p"}}}}]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"split": {"weights": [{"target": "a", "weight": 1}, {"target": "b", "weight": 1}], "rollback": {"target": "b", "prometheus": {"cluster": "p", "checks": [{"name": "e", "query": "up"}]}}}}]}]}"#,
        r#"{"routes": [{"name": "r", "default": "a", "rules": [{"split": {"weights": [{"target": "a", "weight": 1}, {"target": "b", "weight": 1}], "rollback": {"target": "b", "prometheus": {"cluster": "p", "latchQuery": "max(x)"}}}}]}]}"#,
    ];
    for json in invalid {
        let value: Value = serde_json::from_str(json).unwrap();
        assert!(json_schema::validate(&schema, &value).is_err(), "the schema accepts {json}");
        assert!(config::parse(json.as_bytes()).is_err(), "the filter accepts {json}");
    }
}

#[test]
fn from_nginx_keeps_ingress_nginx_semantics() {
    let r = run(&["from-nginx", "examples/nginx/ingress.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("warning: Ingress service-a: annotation nginx.ingress.kubernetes.io/proxy-body-size is not carried over"), "{}", r.stderr);
    let router = config::parse(r.stdout.as_bytes()).unwrap();
    let target = |headers: &[(&str, &str)], roll: u32| -> String {
        let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":authority", b"a.example.com"), (b":path", b"/")];
        pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        router.decide(&Request::new(pairs), &Moment::roll(roll)).unwrap().target.to_string()
    };
    // Header before cookie before weight; `never` wins over a later `always`.
    assert_eq!(target(&[("x-canary", "always")], 999_999), "service-a-canary");
    assert_eq!(target(&[("x-canary", "never"), ("cookie", "canary=always")], 0), "service-a");
    assert_eq!(target(&[("cookie", "canary=always")], 999_999), "service-a-canary");
    assert_eq!(target(&[("cookie", "canary=never")], 0), "service-a");
    // Any other value is ignored and falls through to the weight: 20%.
    assert_eq!(target(&[("x-canary", "maybe")], 199_999), "service-a-canary");
    assert_eq!(target(&[("x-canary", "maybe")], 200_000), "service-a");
}

#[test]
fn from_nginx_translates_header_values_and_weight_totals() {
    let pair = |canary_annotations: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{ name: main }}\nspec:\n  rules:\n  - host: x.test\n    http:\n      paths:\n      - {{ path: /api, pathType: Prefix, backend: {{ service: {{ name: api, port: {{ number: 80 }} }} }} }}\n---\n\
             apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: canary\n  annotations:\n    nginx.ingress.kubernetes.io/canary: \"true\"\n{canary_annotations}spec:\n  rules:\n  - host: x.test\n    http:\n      paths:\n      - {{ path: /api, pathType: Prefix, backend: {{ service: {{ name: api-v2, port: {{ number: 80 }} }} }} }}\n"
        )
    };
    let file = temp_file("value.yaml", &pair("    nginx.ingress.kubernetes.io/canary-by-header: x-ver\n    nginx.ingress.kubernetes.io/canary-by-header-value: v2\n    nginx.ingress.kubernetes.io/canary-weight: \"5\"\n    nginx.ingress.kubernetes.io/canary-weight-total: \"1000\"\n"));
    let r = run(&["from-nginx", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config: Value = serde_json::from_str(&r.stdout).unwrap();
    let route = &config["routes"][0];
    assert_eq!(
        (route["name"].as_str(), route["pathPrefix"].as_str(), route["default"].as_str()),
        (Some("x.test/api"), Some("/api"), Some("api"))
    );
    assert_eq!(route["rules"][0]["match"][0], serde_json::json!({"header": "x-ver", "exact": "v2"}));
    assert_eq!(
        route["rules"][1]["split"]["weights"],
        serde_json::json!([{"target": "api-v2", "weight": 5.0}, {"target": "api", "weight": 995.0}])
    );

    let lookaround = temp_file("pcre.yaml", &pair("    nginx.ingress.kubernetes.io/canary-by-header: x-ver\n    nginx.ingress.kubernetes.io/canary-by-header-pattern: \"^(?!old).*\"\n"));
    let r = run(&["from-nginx", &lookaround]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("canary-by-header-pattern \"^(?!old).*\" uses PCRE syntax regex-lite lacks"),
        "{}",
        r.stderr
    );

    let no_canary =
        temp_file("plain.yaml", &pair("").replace("    nginx.ingress.kubernetes.io/canary: \"true\"\n", ""));
    assert_eq!(run(&["from-nginx", &no_canary]).code, 1);
}

/// Every transcript in docs/cli.md whose files ship with the repository is
/// run as shown, in a scratch directory that sees `examples/`, and prints
/// what the page says it prints (`...` stands for lines left out). The
/// others name files of the reader's own (`bad.json`, `ramp.json`) or a
/// running fleet (`status`, shown from tests/e2e/fleet.rs).
#[test]
fn the_transcripts_in_docs_cli_md_print_what_they_show() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/cli.md")).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_canary-router")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut checked = 0;
    for block in page.split("\n```\n$ ").skip(1).map(|b| b.split("\n```").next().unwrap()) {
        let scratch =
            std::env::temp_dir().join(format!("canary-router-docs-{}-{checked}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let link = scratch.join("examples");
        if !link.exists() {
            std::os::unix::fs::symlink(root.join("examples"), &link).unwrap();
        }
        let mut last_code = None;
        for step in format!("$ {block}").split("\n$ ").map(|s| s.trim_start_matches("$ ")) {
            let (command, shown) = step.split_once('\n').unwrap_or((step, ""));
            if command == "echo $?" {
                if let Some(code) = last_code {
                    assert_eq!(
                        shown.trim(),
                        format!("{code}"),
                        "docs/cli.md: exit code after the previous command"
                    );
                }
                continue;
            }
            let runnable = command.starts_with("canary-router ")
                && !command.starts_with("canary-router status")
                && command.split_whitespace().filter(|w| w.ends_with(".json") || w.ends_with(".yaml")).all(
                    |file| {
                        let file = file.trim_matches('\'');
                        scratch.join(file).exists() || command.contains(&format!("> {file}"))
                    },
                );
            if !runnable {
                last_code = None;
                continue;
            }
            let output = Command::new("bash")
                .args(["-c", command])
                .env("PATH", &path)
                .current_dir(&scratch)
                .output()
                .unwrap();
            last_code = output.status.code();
            let printed = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let printed: Vec<&str> = printed.lines().map(str::trim_end).collect();
            for line in shown.lines().filter(|l| *l != "...") {
                assert!(
                    printed.contains(&line.trim_end()),
                    "docs/cli.md: `{command}` does not print\n  {line}\nit prints:\n{}",
                    printed.join("\n")
                );
            }
            checked += 1;
        }
        std::fs::remove_dir_all(&scratch).unwrap();
    }
    assert!(checked >= 4, "only {checked} transcripts of docs/cli.md ran");
}
