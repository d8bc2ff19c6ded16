//! The `canary-router` binary, run as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/istio/mod.rs"]
mod istio;
#[path = "../../../tests/json_schema/mod.rs"]
mod json_schema;

use std::path::Path;
use std::process::Command;

use canary_router_core::config;
use canary_router_core::request::Request;
use canary_router_core::routing::split::Moment;
use serde_json::Value;

/// The repository, where a user runs the command.
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let output =
        Command::new(env!("CARGO_BIN_EXE_canary-router")).args(args).current_dir(REPO).output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

impl Run {
    /// Exit code 0 with each of `lines` in stdout.
    fn assert_ok_printing(&self, lines: &[&str]) {
        assert_eq!(self.code, 0, "{}", self.stderr);
        for line in lines {
            assert!(self.stdout.contains(line), "{line:?} not in\n{}", self.stdout);
        }
    }

    /// Exit code 0 with each of `warnings` in stderr.
    fn assert_ok_warning(&self, warnings: &[&str]) {
        assert_eq!(self.code, 0, "{}", self.stderr);
        for warning in warnings {
            assert!(self.stderr.contains(warning), "{warning:?} not in\n{}", self.stderr);
        }
    }

    /// Exit code 1 (the input was rejected) with `message` in stderr.
    fn assert_rejected_with(&self, message: &str) {
        assert_eq!(self.code, 1, "{}", self.stderr);
        assert!(self.stderr.contains(message), "{message:?} not in\n{}", self.stderr);
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
        &include_str!("../../../examples/config.json")
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
        &std::fs::read_to_string(Path::new(REPO).join("schema/canary-router.schema.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn the_schema_file_is_current() {
    let r = run(&["schema"]);
    assert_eq!(r.code, 0);
    let file = std::fs::read_to_string(Path::new(REPO).join("schema/canary-router.schema.json")).unwrap();
    assert_eq!(r.stdout, file, "schema/canary-router.schema.json is stale: run `make schema`");
}

#[test]
fn every_example_config_validates_against_the_schema() {
    let schema = schema();
    let root = Path::new(REPO);
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
    r.assert_ok_warning(&["warning: Ingress service-a: annotation nginx.ingress.kubernetes.io/proxy-body-size is not carried over"]);
    let target = |headers: &[(&str, &str)], roll: u32| decide(&r.stdout, "a.example.com", "/", headers, roll);
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
    r.assert_rejected_with("canary-by-header-pattern \"^(?!old).*\" uses PCRE features regex-lite lacks");

    let no_canary =
        temp_file("plain.yaml", &pair("").replace("    nginx.ingress.kubernetes.io/canary: \"true\"\n", ""));
    assert_eq!(run(&["from-nginx", &no_canary]).code, 1);
}

/// Every transcript in docs/cli.md runs as shown, in a scratch directory
/// that sees the repository's `examples/`, `envoy/`, `istio/` and
/// `traffic/`, and
/// prints what the page says it prints (`...` stands for lines left out).
/// Only `status` needs a running fleet; tests/e2e/fleet.rs runs it.
#[test]
fn the_transcripts_in_docs_cli_md_print_what_they_show() {
    let root = Path::new(REPO);
    let page = std::fs::read_to_string(root.join("docs/cli.md")).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_canary-router")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut checked = 0;
    for block in page.split("\n```\n$ ").skip(1).map(|b| b.split("\n```").next().unwrap()) {
        let scratch =
            std::env::temp_dir().join(format!("canary-router-docs-{}-{checked}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        for dir in ["examples", "envoy", "istio", "traffic"] {
            let link = scratch.join(dir);
            if !link.exists() {
                std::os::unix::fs::symlink(root.join(dir), &link).unwrap();
            }
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
            // `status` needs a running fleet: tests/e2e/fleet.rs runs it.
            if !command.starts_with("canary-router ") || command.starts_with("canary-router status") {
                last_code = None;
                continue;
            }
            for file in command.split_whitespace().filter(|w| w.ends_with(".json") || w.ends_with(".yaml")) {
                let file = file.trim_matches('\'');
                assert!(
                    scratch.join(file).exists() || command.contains(&format!("> {file}")),
                    "docs/cli.md: `{command}` names {file}, which the repository does not ship"
                );
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
    assert!(checked >= 10, "only {checked} transcripts of docs/cli.md ran");
}

/// The decision a translated config makes for a request.
fn decide(config_json: &str, host: &str, path: &str, headers: &[(&str, &str)], roll: u32) -> String {
    let router = config::parse(config_json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{config_json}"));
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":authority", host.as_bytes()), (b":path", path.as_bytes())];
    pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    router.decide(&Request::new(pairs), &Moment::roll(roll)).map_or("-".into(), |d| d.target.to_string())
}

#[test]
fn from_nginx_converts_acks_service_match_and_service_weight() {
    let r = run(&["from-nginx", "examples/nginx/ack.yaml"]);
    r.assert_ok_warning(&[
        "ACK marks service-match and service-weight deprecated",
        "Service new-shop is reached on port 8080",
    ]);
    for host in ["shop.example.com", "www.shop.example.com"] {
        // Matching requests are split 20/80; the rest go to old-shop.
        assert_eq!(decide(&r.stdout, host, "/cart", &[("foo", "bar")], 199_999), "new-shop");
        assert_eq!(decide(&r.stdout, host, "/cart", &[("foo", "bar")], 200_000), "old-shop");
        assert_eq!(decide(&r.stdout, host, "/cart", &[("foo", "baz")], 0), "old-shop");
        assert_eq!(decide(&r.stdout, host, "/cart", &[], 0), "old-shop");
    }

    let ack = |annotations: &str| {
        temp_file(
            "ack.yaml",
            &format!(
                "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n{annotations}spec:\n  rules:\n  - host: w.test\n    http:\n      paths:\n      - {{ path: /, backend: {{ serviceName: new, servicePort: 80 }} }}\n      - {{ path: /, backend: {{ serviceName: old, servicePort: 80 }} }}\n"
            ),
        )
    };
    // A match alone sends every matching request to the matched Service.
    let r = run(&[
        "from-nginx",
        &ack("    nginx.ingress.kubernetes.io/service-match: 'new: cookie(\"foo\", \"bar\")'\n"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(decide(&r.stdout, "w.test", "/", &[("cookie", "foo=bar")], 999_999), "new");
    assert_eq!(decide(&r.stdout, "w.test", "/", &[("cookie", "foo=baz")], 0), "old");
    let r = run(&[
        "from-nginx",
        &ack("    nginx.ingress.kubernetes.io/service-match: 'new: query(\"v\", /^2/)'\n"),
    ]);
    assert_eq!(decide(&r.stdout, "w.test", "/?v=2.1", &[], 0), "new");
    assert_eq!(decide(&r.stdout, "w.test", "/?v=1", &[], 0), "old");
    // Weights alone: w / (sum of w) each.
    let r = run(&["from-nginx", &ack("    nginx.ingress.kubernetes.io/service-weight: 'new: 1, old: 3'\n")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(decide(&r.stdout, "w.test", "/", &[], 249_999), "new");
    assert_eq!(decide(&r.stdout, "w.test", "/", &[], 250_000), "old");
    // A broken annotation names itself.
    let r = run(&[
        "from-nginx",
        &ack("    nginx.ingress.kubernetes.io/service-match: 'new: body(\"x\", \"y\")'\n"),
    ]);
    r.assert_rejected_with("Ingress web: service-match");
    r.assert_rejected_with("unknown match type `body`");
}

/// A main Ingress at x.test/api (with extra main annotations) and a canary
/// one with the given annotations.
fn nginx_pair(main_annotations: &str, canary_annotations: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: main\n  annotations:\n    x: y\n{main_annotations}spec:\n  rules:\n  - host: x.test\n    http:\n      paths:\n      - {{ path: /api, pathType: Prefix, backend: {{ service: {{ name: api, port: {{ number: 80 }} }} }} }}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: canary\n  annotations:\n    nginx.ingress.kubernetes.io/canary: \"true\"\n{canary_annotations}spec:\n  rules:\n  - host: x.test\n    http:\n      paths:\n      - {{ path: /api, pathType: Prefix, backend: {{ service: {{ name: api-v2, port: {{ number: 80 }} }} }} }}\n"
    )
}

#[test]
fn from_nginx_behaves_like_ingress_nginx_where_it_used_to_differ() {
    const N: &str = "    nginx.ingress.kubernetes.io/";
    let translate =
        |main: &str, canary: &str| run(&["from-nginx", &temp_file("pair.yaml", &nginx_pair(main, canary))]);

    // An empty annotation is unset: no rule on an empty header name.
    let r = translate("", &format!("{N}canary-by-header: \"\"\n{N}canary-weight: \"10\"\n"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(config["routes"][0]["rules"].as_array().unwrap().len(), 1, "{}", r.stdout);

    // canary-weight-total at or below 100 is not used: 10 of 100, not of 50.
    let r = translate("", &format!("{N}canary-weight: \"10\"\n{N}canary-weight-total: \"50\"\n"));
    assert_eq!(decide(&r.stdout, "x.test", "/api", &[], 99_999), "api-v2");
    assert_eq!(decide(&r.stdout, "x.test", "/api", &[], 100_000), "api");
    // pathType Prefix matches whole path elements, as Kubernetes says.
    assert_eq!(decide(&r.stdout, "x.test", "/api/items", &[], 0), "api-v2");
    assert_eq!(decide(&r.stdout, "x.test", "/apiary", &[], 0), "-", "/api must not take /apiary");
    assert!(r.stderr.contains("canary-weight-total 50 is not above 100"), "{}", r.stderr);
    let implementation_specific = nginx_pair("", &format!("{N}canary-weight: \"10\"\n"))
        .replace("pathType: Prefix", "pathType: ImplementationSpecific");
    let r = run(&["from-nginx", &temp_file("pair.yaml", &implementation_specific)]);
    assert_eq!(decide(&r.stdout, "x.test", "/apiary", &[], 0), "api-v2", "ingress-nginx's own prefix is raw");

    // Cookie affinity on the main Ingress: the canary inherits it, so a
    // user keeps their version: an assignment cookie.
    let affinity =
        format!("{N}affinity: cookie\n{N}session-cookie-name: route\n{N}session-cookie-max-age: \"3600\"\n");
    let r = translate(&affinity, &format!("{N}canary-weight: \"20\"\n"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config: Value = serde_json::from_str(&r.stdout).unwrap();
    let weight_rule = |config: &Value| {
        config["routes"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "nginx canary-weight")
            .cloned()
            .unwrap()
    };
    assert_eq!(
        weight_rule(&config)["split"]["assignCookie"],
        serde_json::json!({"name": "route", "maxAge": 3600, "httpOnly": true})
    );
    assert!(!r.stderr.contains("affinity is not carried over"), "{}", r.stderr);
    assert_eq!(decide(&r.stdout, "x.test", "/api", &[("cookie", "route=api-v2")], 999_999), "api-v2");
    let r = translate(&affinity, &format!("{N}canary-weight: \"20\"\n{N}affinity-canary-behavior: legacy\n"));
    let config: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(weight_rule(&config)["split"].get("assignCookie").is_none(), "{}", r.stdout);

    // A pattern that is no regex at all: ingress-nginx sends requests with
    // the header to mainline, skipping cookie and weight.
    let r = translate(
        "",
        &format!("{N}canary-by-header: x-ver\n{N}canary-by-header-pattern: \"v[2\"\n{N}canary-by-cookie: c\n{N}canary-weight: \"100\"\n"),
    );
    r.assert_ok_warning(&["is not a valid regex"]);
    assert!(!r.stderr.contains("PCRE"), "{}", r.stderr);
    assert_eq!(decide(&r.stdout, "x.test", "/api", &[("x-ver", "v2"), ("cookie", "c=always")], 0), "api");
    assert_eq!(decide(&r.stdout, "x.test", "/api", &[("cookie", "c=always")], 0), "api-v2");
    assert_eq!(decide(&r.stdout, "x.test", "/api", &[], 999_999), "api-v2");
}

#[test]
fn from_nginx_attaches_a_default_backend_canary_to_the_default_server() {
    let main = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: main }\nspec:\n  defaultBackend: { service: { name: web, port: { number: 80 } } }\n  rules:\n  - host: x.test\n    http:\n      paths:\n      - { path: /, pathType: Prefix, backend: { service: { name: x, port: { number: 80 } } } }\n";
    let canary = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: canary\n  annotations:\n    nginx.ingress.kubernetes.io/canary: \"true\"\n    nginx.ingress.kubernetes.io/canary-by-header: x-canary\nspec:\n  defaultBackend: { service: { name: web-v2, port: { number: 80 } } }\n";
    let r = run(&["from-nginx", &temp_file("default.yaml", &format!("{main}---\n{canary}"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Any host no route names: mainline, unless the header picks the canary.
    assert_eq!(decide(&r.stdout, "other.test", "/", &[], 0), "web");
    assert_eq!(decide(&r.stdout, "other.test", "/", &[("x-canary", "always")], 0), "web-v2");

    let r = run(&["from-nginx", &temp_file("default-alone.yaml", canary)]);
    r.assert_rejected_with(
        "has only spec.defaultBackend, so ingress-nginx attaches it to the default server",
    );
}

#[test]
fn check_reads_every_form_users_have() {
    // An Envoy bootstrap, an ECDS resource, a directory of Istio manifests
    // (a VirtualService in it is passed over) and standard input, at once.
    let r = run(&["check", "envoy/envoy.yaml", "envoy/live/canary-router.yaml", "istio/service-b"]);
    r.assert_ok_printing(&[
        "ok: envoy/envoy.yaml (Envoy wasm filter canary-router): ",
        "ok: envoy/live/canary-router.yaml (Envoy wasm filter canary-router): ",
        "ok: istio/service-b/wasm-plugin-20.yaml (WasmPlugin canary-router-service-b): ",
        "ok: istio/service-b/wasm-plugin-rollback.yaml (WasmPlugin canary-router-service-b): ",
    ]);
    // A `kind: List`, as `kubectl get wasmplugins -o yaml` prints it.
    let plugin = std::fs::read_to_string(Path::new(REPO).join("istio/service-a/wasm-plugin.yaml")).unwrap();
    let indented: String =
        plugin.lines().filter(|l| !l.starts_with('#')).map(|l| format!("  {l}\n")).collect();
    let list = temp_file("list.yaml", &format!("apiVersion: v1\nkind: List\nitems:\n-{}", &indented[1..]));
    let r = run(&["check", &list]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(WasmPlugin canary-router-service-a): 1 route(s)"), "{}", r.stdout);

    let output = Command::new(env!("CARGO_BIN_EXE_canary-router"))
        .args(["check", "-"])
        .current_dir(REPO)
        .stdin(std::fs::File::open(Path::new(REPO).join("examples/config.json")).unwrap())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("ok: <stdin>: 2 route(s)"));

    let empty = temp_file("empty.yaml", "# nothing yet\n---\n");
    let r = run(&["check", &empty]);
    r.assert_rejected_with("empty: no config in it");
}

/// Envoy Gateway's policies are read as they are: the config under
/// `spec.wasm[i].config`, an error placed on the user's line, a
/// `failOpen: true` warned about.
#[test]
fn check_reads_envoy_gateway_policies() {
    let r = run(&["check", "envoy-gateway"]);
    r.assert_ok_printing(&[
        "ok: envoy-gateway/extension-policy-dynmod.yaml (EnvoyExtensionPolicy canary-router-native, dynamicModule[0]): 1 route(s)",
        "ok: envoy-gateway/extension-policy-http.yaml (EnvoyExtensionPolicy canary-router, wasm[0]): 1 route(s)",
        "ok: envoy-gateway/extension-policy.yaml (EnvoyExtensionPolicy canary-router, wasm[0]): 1 route(s)",
    ]);
    let policy =
        std::fs::read_to_string(Path::new(REPO).join("envoy-gateway/extension-policy.yaml")).unwrap();
    let line = policy.lines().position(|l| l.contains("percent: 5 }")).unwrap() + 1;
    let broken = policy
        .replace("percent: 5 }", "percent: 500 }")
        .replace("failOpen: false", "failOpen: true")
        .replace("targetHeader: x-service-b-version", "targetHeader: x_service_b_version");
    let r = run(&["check", &temp_file("policy.yaml", &broken)]);
    r.assert_rejected_with(&format!(
        "routes[0].mirror.percent: must be between 0 and 100, got 500 (line {line} "
    ));
    assert!(r.stderr.contains("spec.wasm[0].failOpen: true lets requests through unrouted"), "{}", r.stderr);
    assert!(r.stderr.contains("targetHeader has a `_`: Envoy Gateway refuses"), "{}", r.stderr);
}

/// A config bound for the dynamic module (its Envoy filter, its Envoy
/// Gateway policy) is checked as the module reads it: what the module does
/// not do yet is refused at the key's line, where the .wasm would take it.
#[test]
fn check_reads_the_dynamic_module_s_config_where_envoy_and_envoy_gateway_hold_it() {
    let r = run(&["check", "envoy/dynmod.yaml"]);
    r.assert_ok_printing(&["ok: envoy/dynmod.yaml (Envoy dynamic module filter canary-router): 2 route(s)"]);
    let policy =
        std::fs::read_to_string(Path::new(REPO).join("envoy-gateway/extension-policy-dynmod.yaml")).unwrap();
    let r = run(&["check", "envoy-gateway/extension-policy-dynmod.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The module does what the .wasm does: a comparison with the baseline
    // and the fleet's Prometheus checks are accepted.
    let window = "              window: 2m\n";
    let line = policy.lines().position(|l| l == window.trim_end()).unwrap() + 2;
    let checks = "{ cluster: prometheus, checks: [{ name: e, query: \"vector(0)\", max: 1 }] }";
    let both = policy.replace(
        window,
        &format!("{window}              compare: {{ maxErrorRateIncrease: 0.01 }}\n              prometheus: {checks}\n"),
    );
    let r = run(&["check", &temp_file("module-policy.yaml", &both)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // And its errors are placed at the policy's line, as the .wasm's are.
    let bad =
        policy.replace(window, &format!("{window}              compare: {{ maxErrorRateIncrease: 2 }}\n"));
    let r = run(&["check", &temp_file("module-policy.yaml", &bad)]);
    assert!(r.code != 0 && r.stderr.contains(&format!("(line {line} column")), "{}", r.stderr);
}

#[test]
fn check_errors_point_at_the_users_yaml_line_and_name_the_near_key() {
    let plugin = "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: { name: b }\nspec:\n  pluginConfig:\n    routes:\n    - name: b\n      default: stable\n      rules:\n      - split:\n          weights:\n          - { target: fixed, weight: -20 }\n";
    let r = run(&["check", &temp_file("bad-plugin.yaml", plugin)]);
    r.assert_rejected_with(
        "routes[0].rules[0].split.weights[0].weight: must be a non-negative number, got -20 (line 12 column 30)",
    );
    let misspelled = plugin.replace("pluginConfig", "pluginconfig");
    let r = run(&["check", &temp_file("misspelled.yaml", &misspelled)]);
    assert!(r.stderr.contains("spec.pluginconfig: did you mean `pluginConfig`?"), "{}", r.stderr);
    let typo = plugin.replace("default: stable", "defualt: stable");
    let r = run(&["check", &temp_file("typo.yaml", &typo)]);
    assert!(r.stderr.contains("unknown field `defualt`: did you mean `default`?"), "{}", r.stderr);
    assert!(r.stderr.contains("(line 8 column 7)"), "{}", r.stderr);
    // In an Envoy bootstrap the JSON sits in a `value: |` block: its line.
    let envoy = std::fs::read_to_string(Path::new(REPO).join("envoy/live/canary-router.yaml")).unwrap();
    let broken = envoy.replacen("\"routes\": [", "\"routes\": 7, [", 1);
    let r = run(&["check", &temp_file("broken-ecds.yaml", &broken)]);
    assert_eq!(r.code, 1);
    let line = broken.lines().position(|l| l.contains("\"routes\": 7")).unwrap() + 1;
    assert!(r.stderr.contains(&format!("(line {line} column")), "want line {line}: {}", r.stderr);
    // An error of meaning (no JSON position of its own) is placed at its key's
    // value inside the block, not at the `value: |` line.
    let meaning = envoy.replacen("\"default\": \"service-a\"", "\"default\": \"service a\"", 1);
    let r = run(&["check", &temp_file("meaning-ecds.yaml", &meaning)]);
    let line = meaning.lines().position(|l| l.contains("\"service a\"")).unwrap() + 1;
    let column = meaning.lines().nth(line - 1).unwrap().find("\"service a\"").unwrap() + 1;
    r.assert_rejected_with(&format!(
        "routes[0].default: `service a` must be visible ASCII without spaces (it is sent as a header value) (line {line} column {column})"
    ));
}

#[test]
fn check_warns_about_valid_configs_that_are_likely_mistakes() {
    let config = r#"{"routes": [{"name": "r", "default": "a", "rules": [{"split": {"weights": [{"target": "a", "weight": 50}, {"target": "b", "weight": 30}, {"target": "c", "weight": 0.00001}]}}]}]}"#;
    let r = run(&["check", &temp_file("warn.json", config)]);
    r.assert_ok_warning(&[
        "routes[0].rules[0].split.weights: the weights sum to 80.00001, not 100",
        "c has weight 0.00001 but its share rounds to 0 of 1,000,000",
    ]);
    let plugin = std::fs::read_to_string(Path::new(REPO).join("istio/service-b/wasm-plugin-20.yaml"))
        .unwrap()
        .replace("FAIL_RELOAD", "FAIL_OPEN");
    let r = run(&["check", &temp_file("open.yaml", &plugin)]);
    r.assert_ok_warning(&[
        "spec.failStrategy: FAIL_OPEN lets requests through unrouted",
        "spec.sha256 is a placeholder",
    ]);
}

#[test]
fn check_warns_about_a_ramp_past_its_last_step_and_a_rollback_only_one_proxy_remembers() {
    let config = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
        "weights": [{"target": "canary", "weight": 5}, {"target": "stable", "weight": 95}],
        "ramp": {"target": "canary", "start": "2020-01-01T00:00:00Z", "every": "10m", "steps": [5, 100]},
        "rollback": {"target": "canary", "maxErrorRate": 0.1, "minRequests": 20, "window": "1m"}}}]}]}"#;
    let r = run(&["check", &temp_file("past.json", config)]);
    r.assert_ok_warning(&[
        "routes[0].rules[0].split.ramp.start: 2020-01-01T00:00:00Z puts this ramp past its last step already: applying it sends 100% to canary at once",
        "routes[0].rules[0].split.rollback: judged by each proxy's own window only",
    ]);
    assert!(
        r.stdout.contains("(now); now canary 100% / stable 0%"),
        "the live step beside the weights: {}",
        r.stdout
    );
    // The shipped examples and Istio manifests apply cleanly: no ramp past
    // its end, and only the demo (which runs without Prometheus) has
    // rollbacks a restart forgets.
    let r = run(&["check", "examples", "istio"]);
    assert!(!r.stderr.contains("past its last step"), "{}", r.stderr);
    assert!(!r.stderr.contains("on no evidence"), "{}", r.stderr);
    let local_only: Vec<&str> = r.stderr.lines().filter(|l| l.contains("own window only")).collect();
    assert!(local_only.iter().all(|l| l.contains("examples/demo.json")), "{local_only:?}");
}

/// A gate that would take, hold or roll back a step on no evidence.
#[test]
fn check_warns_where_a_gate_would_move_hold_or_roll_back_without_evidence() {
    let config = |rollback: &str, gate: &str| {
        format!(
            r#"{{"routes": [{{"name": "b", "default": "stable", "rules": [{{"split": {{
            "weights": [{{"target": "canary", "weight": 5}}, {{"target": "stable", "weight": 95}}],
            "ramp": {{"target": "canary", "start": "2020-01-01T00:00:00Z", "every": "1m", "steps": [5, 100], "gate": {gate}}},
            "rollback": {rollback}}}}}]}}]}}"#
        )
    };
    let nothing = config(r#"{"target": "canary", "prometheus": {"cluster": "prometheus"}}"#, "{}");
    let r = run(&["check", &temp_file("nothing.json", &nothing)]);
    r.assert_ok_warning(&[
        "routes[0].rules[0].split.ramp.gate: nothing judges canary: no local window and no Prometheus checks, so each step is taken after `every` on no evidence at all",
    ]);
    assert!(r.stdout.contains("step 1 begins when a proxy first applies this config (`start`, 2020-01-01T00:00:00Z, is past), once the fleet's latches answered"), "{}", r.stdout);
    let checked = r#"{"target": "canary", "prometheus": {"cluster": "prometheus", "every": "30s",
        "checks": [{"name": "errors", "query": "e", "max": 0.1}]}}"#;
    let r = run(&[
        "check",
        &temp_file("early.json", &config(checked, r#"{"maxWait": "70s", "onMaxWait": "rollback"}"#)),
    ]);
    r.assert_ok_warning(&[
        "routes[0].rules[0].split.ramp.gate.maxWait: 70s may pass before a Prometheus poll judged the step once (a step lasts `every`, 60s, and its first poll can take 34s): the step would then roll back on no evidence",
        "routes[0].rules[0].split.ramp.gate.onMaxWait: `rollback` takes canary out when a step could not be judged in time",
    ]);
    let r = run(&["check", &temp_file("fine.json", &config(checked, r#"{"maxWait": "10m"}"#))]);
    assert!(!r.stderr.contains("gate"), "{}", r.stderr);
    // A Prometheus-only gate is earned by a poll, not by "0 responses".
    r.assert_ok_printing(&["a passed judgement (a Prometheus poll that passes during the step, judged for at most 600s then hold)"]);
    assert!(!r.stdout.contains("0 responses"), "{}", r.stdout);
}

#[test]
fn check_prints_what_each_split_and_mirror_does() {
    let r = run(&["check", "examples/ramp.json", "examples/fleet.json", "examples/clock-ramp.json"]);
    r.assert_ok_printing(&[
        "rules[0] gated ramp of canary: 10%, 25%, 50%, each step after at least 600s and a passed judgement (100 responses within the window's limits and a passing Prometheus poll, judged for at most 3600s then hold); step 1 begins when a proxy first applies this config (`start`, 2026-11-24T10:00:00Z, is past), once the fleet's latches answered",
        "rules[0] ramp of canary: 10% from 2030-01-07T10:00:00Z, 25% from 2030-01-07T10:10:00Z, 50% from 2030-01-07T10:20:00Z (now: before the start, the listed weights)",
        "rules[0] assignment cookie: version=TARGET; Max-Age=86400; Path=/",
        "rules[0] rollback of canary: this proxy's window: more than 5% errors or p99 above 500 ms over 60s with at least 20 responses",
        "mirror: 10% of requests copied to cluster shadow",
        "rules[0] rollback of broken-canary: this proxy's window",
        "Prometheus via cluster prometheus every 2s: checks error-rate <= 0.05, p99-ms <= 500, 2 failing polls in a row",
    ]);
    let secured = r#"{"routes": [{"name": "b", "default": "s", "rules": [{"split": {
        "weights": [{"target": "c", "weight": 50}, {"target": "s", "weight": 50}],
        "rollback": {"target": "c", "prometheus": {"cluster": "prometheus", "pathPrefix": "/prom",
            "headers": [{"name": "Authorization", "value": "Bearer SECRET"}]}}}}]}]}"#;
    let r = run(&["check", &temp_file("secured.json", secured)]);
    r.assert_ok_printing(&[
        "Prometheus via cluster prometheus under /prom with headers authorization (values not shown) every 10s",
    ]);
    assert!(!r.stdout.contains("SECRET") && !r.stderr.contains("SECRET"), "check shows a header's value");
}

#[test]
fn explain_routes_by_the_host_header_as_curl_sends_it() {
    let r = run(&["explain", "examples/config.json", "-H", "host: b.example.com", "--cookie", "uid=alice"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("request: host b.example.com path /"), "{}", r.stdout);
    assert!(r.stdout.contains("route:   service-b"), "{}", r.stdout);
    let r = run(&["explain", "examples/config.json", "-H", ":authority: a.example.com", "-H", "foo: bar"]);
    assert!(
        r.stdout.contains("route:   service-a") && r.stdout.contains("target:  service-a-canary"),
        "{}",
        r.stdout
    );
}

/// Broken manifests (a character deleted, a stray `-`, `:` or tab, a cut
/// document) get an error and exit 1 or 2, never a panic: the CLI reads
/// whatever users point it at. A wasm filter without `config` once did.
#[test]
fn the_cli_never_panics_on_broken_manifests() {
    let root = Path::new(REPO);
    let sources: Vec<String> = [
        "istio/service-b/wasm-plugin-rollback.yaml",
        "istio/service-a/wasm-plugin.yaml",
        "envoy/live/canary-router.yaml",
        "envoy/demo.yaml",
        "examples/nginx/ack.yaml",
        "examples/nginx/ingress.yaml",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
    .collect();
    let regression = "resources:\n- \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n  name: x\n";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let inserts = [" ", "-", ":", "\t", "{", "}", "[", "]", "\"", "é", "\n", "  - ", "#", "|", "\r", "---\n"];
    for round in 0..120 {
        let mut text: Vec<char> = if round == 0 {
            regression.chars().collect()
        } else {
            sources[next(sources.len())].chars().collect()
        };
        for _ in 0..(round % 6) + 1 {
            let at = next(text.len());
            if next(2) == 0 {
                text.remove(at);
            } else {
                for (i, c) in inserts[next(inserts.len())].chars().enumerate() {
                    text.insert(at + i, c);
                }
            }
        }
        let file = temp_file("broken.yaml", &text.iter().collect::<String>());
        for args in [vec!["check", &file], vec!["from-nginx", &file], vec!["explain", &file]] {
            let r = run(&args);
            assert!(
                (0..=2).contains(&r.code) && !r.stderr.contains("panicked"),
                "{args:?} on\n{}\nexit {}: {}",
                text.iter().collect::<String>(),
                r.code,
                r.stderr
            );
        }
    }
}

/// Every flag of `status` is in docs/cli.md's synopsis line, and no other.
#[test]
fn the_status_synopsis_lists_exactly_its_flags() {
    let help = run(&["status", "--help"]).stdout;
    let flags: std::collections::BTreeSet<String> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && *w != "--help")
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string())
        .collect();
    let doc = std::fs::read_to_string(Path::new(REPO).join("docs/cli.md")).unwrap();
    let synopsis = doc.lines().find(|l| l.starts_with("**`canary-router status")).unwrap();
    let documented: std::collections::BTreeSet<String> = synopsis
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .filter(|w| w.starts_with("--"))
        .map(str::to_string)
        .collect();
    assert_eq!(flags, documented, "{help}");
}

/// A pair in namespace `shop`: main `api` on port 8080, canary `api-v2` on
/// 8081, at x.test/api, with the given canary annotations.
fn shop_pair(canary_annotations: &str) -> String {
    nginx_pair("", canary_annotations)
        .replace("  name: main\n", "  name: main\n  namespace: shop\n")
        .replace("  name: canary\n", "  name: canary\n  namespace: shop\n")
        .replace("name: api, port: { number: 80 }", "name: api, port: { number: 8080 }")
        .replace("name: api-v2, port: { number: 80 }", "name: api-v2, port: { number: 8081 }")
}

/// tests/k8s/check_manifests.py over one file: the API server's reading.
fn valid_as_the_api_server_reads(file: &str) {
    let output = istio::check_as_the_api_server_reads(&[file.into()]);
    let printed =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{file}:\n{printed}");
}

/// `from-nginx --to HOME` writes what the home needs: objects valid as the
/// API server reads them, the plugin's config accepted by `check`, the
/// Ingress's namespace, host, path and Service ports kept, each value of
/// the target header routed to its Service and the rest of the path to
/// the main one.
#[test]
fn from_nginx_writes_what_each_home_needs_to_route() {
    const N: &str = "    nginx.ingress.kubernetes.io/";
    let pair = temp_file(
        "shop-pair.yaml",
        &shop_pair(&format!("{N}canary-by-header: x-ver\n{N}canary-weight: \"20\"\n")),
    );
    let digest = "ab".repeat(32);
    for home in ["envoy-gateway", "istio", "istio-gateway-api"] {
        let r = run(&[
            "from-nginx",
            "--to",
            home,
            "--image",
            "oci://r.example/canary-router:1",
            "--sha256",
            &digest,
            &pair,
        ]);
        assert_eq!(r.code, 0, "{home}: {}", r.stderr);
        assert!(!r.stderr.contains("is reached on port"), "{home}: the objects carry the port: {}", r.stderr);
        let file = temp_file(&format!("{home}.yaml"), &r.stdout);
        valid_as_the_api_server_reads(&file);
        let checked = run(&["check", &file]);
        assert_eq!(checked.code, 0, "{home}: {}{}", checked.stdout, checked.stderr);
        assert!(!checked.stderr.contains("placeholder"), "{home}: --sha256 is used: {}", checked.stderr);
        assert!(checked.stdout.contains("1 route(s), target header x-route-target"), "{}", checked.stdout);

        let docs = istio::yaml_documents(&r.stdout);
        let of = |kind: &str| docs.iter().filter(|d| d["kind"] == kind).collect::<Vec<_>>();
        let gateway = of("Gateway")[0];
        if home == "istio" {
            let [vs] = of("VirtualService")[..] else { panic!("{home}: want one VirtualService") };
            assert_eq!(vs["metadata"]["namespace"], "shop");
            assert_eq!(vs["spec"]["hosts"], serde_json::json!(["x.test"]));
            let gateway_ref = format!(
                "{}/{}",
                gateway["metadata"]["namespace"].as_str().unwrap(),
                gateway["metadata"]["name"].as_str().unwrap()
            );
            assert_eq!(vs["spec"]["gateways"][0], gateway_ref.as_str());
            let http = vs["spec"]["http"].as_array().unwrap();
            assert_eq!(http.len(), 2);
            // Kubernetes' Prefix /api: /api itself and /api/..., not /apiary.
            for m in http[0]["match"].as_array().unwrap() {
                assert_eq!(m["headers"]["x-route-target"]["exact"], "api-v2");
            }
            let uris: Vec<&Value> = http[1]["match"].as_array().unwrap().iter().map(|m| &m["uri"]).collect();
            assert_eq!(
                uris,
                [&serde_json::json!({"exact": "/api"}), &serde_json::json!({"prefix": "/api/"})]
            );
            assert_eq!(
                http[0]["route"][0]["destination"],
                serde_json::json!({"host": "api-v2.shop.svc.cluster.local", "port": {"number": 8081}})
            );
            assert_eq!(
                http[1]["route"][0]["destination"],
                serde_json::json!({"host": "api.shop.svc.cluster.local", "port": {"number": 8080}})
            );
            let plugin = of("WasmPlugin")[0];
            assert_eq!(plugin["spec"]["selector"]["matchLabels"]["istio"], "ingressgateway");
            assert_eq!(plugin["spec"]["sha256"], digest.as_str());
            continue;
        }
        let class = if home == "istio-gateway-api" { "istio" } else { "envoy-gateway" };
        assert_eq!(gateway["spec"]["gatewayClassName"], class);
        assert_eq!(gateway["spec"]["listeners"][0]["hostname"], "x.test");
        let [route] = of("HTTPRoute")[..] else { panic!("{home}: want one HTTPRoute") };
        assert_eq!(route["metadata"]["namespace"], "shop");
        assert_eq!(route["spec"]["hostnames"], serde_json::json!(["x.test"]));
        assert_eq!(route["spec"]["parentRefs"][0]["name"], gateway["metadata"]["name"]);
        let rules = route["spec"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        let path = serde_json::json!({"type": "PathPrefix", "value": "/api"});
        assert_eq!(rules[0]["matches"][0]["path"], path);
        assert_eq!(
            rules[0]["matches"][0]["headers"][0],
            serde_json::json!({"type": "Exact", "name": "x-route-target", "value": "api-v2"})
        );
        assert_eq!(rules[0]["backendRefs"][0], serde_json::json!({"name": "api-v2", "port": 8081}));
        assert_eq!(
            rules[1]["matches"][0],
            serde_json::json!({"path": path}),
            "the rest of the path: the catch-all"
        );
        assert_eq!(rules[1]["backendRefs"][0], serde_json::json!({"name": "api", "port": 8080}));
        let plugin =
            if home == "envoy-gateway" { of("EnvoyExtensionPolicy")[0] } else { of("WasmPlugin")[0] };
        assert_eq!(plugin["spec"]["targetRefs"][0]["kind"], "Gateway", "{home}: attached to the Gateway");
        assert_eq!(plugin["metadata"]["namespace"], gateway["metadata"]["namespace"]);
    }

    // Plain Envoy: a bootstrap with a cluster per Service at its DNS name
    // and port, and the filter's stats tags as envoy/envoy.yaml has them.
    let r = run(&["from-nginx", "--to", "envoy", &pair]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bootstrap = &istio::yaml_documents(&r.stdout)[0];
    let clusters = bootstrap["static_resources"]["clusters"].as_array().unwrap();
    let address = |name: &str| {
        let c = clusters.iter().find(|c| c["name"] == name).unwrap();
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
            .clone()
    };
    assert_eq!(
        address("api-v2"),
        serde_json::json!({"address": "api-v2.shop.svc.cluster.local", "port_value": 8081})
    );
    assert_eq!(
        address("api"),
        serde_json::json!({"address": "api.shop.svc.cluster.local", "port_value": 8080})
    );
    let envoy_yaml = std::fs::read_to_string(Path::new(REPO).join("envoy/envoy.yaml")).unwrap();
    assert_eq!(bootstrap["stats_config"], istio::yaml_documents(&envoy_yaml)[0]["stats_config"]);
    let checked = run(&["check", &temp_file("bootstrap.yaml", &r.stdout)]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);

    // What the objects leave out is said: a main path without a canary,
    // and TLS.
    let wider = shop_pair(&format!("{N}canary-weight: \"20\"\n"))
        .replacen(
            "      - { path: /api, pathType: Prefix, backend: { service: { name: api, port: { number: 8080 } } } }\n",
            "      - { path: /api, pathType: Prefix, backend: { service: { name: api, port: { number: 8080 } } } }\n      - { path: /static, pathType: Prefix, backend: { service: { name: files, port: { number: 80 } } } }\n  tls: [{ hosts: [x.test], secretName: x-test }]\n",
            1,
        );
    let r = run(&["from-nginx", "--to", "istio", &temp_file("wider.yaml", &wider)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Ingress main: host \"x.test\" path /static has no canary: it is not converted here"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Ingress main: spec.tls is not carried over"), "{}", r.stderr);

    // A Service port given by name cannot go into a routing object.
    let named = shop_pair(&format!("{N}canary-weight: \"20\"\n"))
        .replace("port: { number: 8081 }", "port: { name: http }");
    let r = run(&["from-nginx", "--to", "envoy-gateway", &temp_file("named.yaml", &named)]);
    r.assert_rejected_with(
        "Service shop/api-v2 is reached on port \"http\": routing objects need its number",
    );
}

/// ingress-nginx's affinity pins a user the header (or cookie) sent to
/// the canary: later requests without it stay there (its e2e "always
/// routes traffic to canary if first request was affinitized to canary");
/// and its balancer reads the affinity cookie before the header and the
/// cookie, so a pinned user stays pinned whatever they send.
#[test]
fn from_nginx_keeps_users_forced_to_the_canary_there_under_affinity() {
    const N: &str = "    nginx.ingress.kubernetes.io/";
    let pair = nginx_pair(
        &format!("{N}affinity: cookie\n{N}session-cookie-name: route\n"),
        &format!("{N}canary-by-header: x-ver\n{N}canary-by-cookie: beta\n{N}canary-weight: \"10\"\n"),
    );
    let r = run(&["from-nginx", &temp_file("affinity.yaml", &pair)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let router = config::parse(r.stdout.as_bytes()).unwrap();
    let decide = |headers: &[(&str, &str)], roll: u32| {
        let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":authority", b"x.test"), (b":path", b"/api")];
        pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        let decision = router.decide(&Request::new(pairs), &Moment::roll(roll)).unwrap();
        (decision.target.to_string(), decision.assign_cookie().map(|c| c.name.clone()))
    };
    for forced in [[("x-ver", "always")], [("cookie", "beta=always")]] {
        // Forced to the canary, the answer sets the affinity cookie...
        assert_eq!(decide(&forced, 999_999), ("api-v2".to_string(), Some("route".to_string())));
    }
    // ...so the next request, without the header, stays on the canary.
    assert_eq!(decide(&[("cookie", "route=api-v2")], 999_999).0, "api-v2");
    // `never` pins the main version the same way.
    assert_eq!(decide(&[("x-ver", "never")], 0), ("api".to_string(), Some("route".to_string())));
    assert_eq!(decide(&[("cookie", "route=api")], 999_999).0, "api");
    // The affinity cookie first: `never` does not un-pin a canary user,
    // `always` does not re-pin a stable one.
    assert_eq!(decide(&[("x-ver", "never"), ("cookie", "route=api-v2")], 0), ("api-v2".to_string(), None));
    assert_eq!(decide(&[("x-ver", "always"), ("cookie", "route=api")], 999_999), ("api".to_string(), None));
    assert_eq!(decide(&[("cookie", "beta=always; route=api")], 999_999).0, "api");
}

/// The affinity cookie's SameSite goes with it: a page that reaches the
/// service from another site keeps sending it. None is made Secure, or
/// browsers would drop the cookie and re-assign the user on every visit.
#[test]
fn from_nginx_keeps_the_affinity_cookie_s_same_site() {
    const N: &str = "    nginx.ingress.kubernetes.io/";
    let cookie_for = |same_site: &str, secure: &str| {
        let pair = nginx_pair(
            &format!("{N}affinity: cookie\n{N}session-cookie-samesite: {same_site}\n{secure}"),
            &format!("{N}canary-weight: \"10\"\n"),
        );
        let r = run(&["from-nginx", &temp_file(&format!("samesite-{same_site}.yaml"), &pair)]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let router = config::parse(r.stdout.as_bytes()).unwrap();
        let split = router.routes[0].rules.iter().find_map(|rule| rule.split()).unwrap().clone();
        (split.assign_cookie().unwrap().set_cookie("api"), r.stderr)
    };
    let (strict, _) = cookie_for("Strict", "");
    assert_eq!(strict, "INGRESSCOOKIE=api; HttpOnly; SameSite=Strict");
    let (none, warned) = cookie_for("None", "");
    assert_eq!(none, "INGRESSCOOKIE=api; Secure; HttpOnly; SameSite=None");
    assert!(warned.contains("made Secure"), "{warned}");
    let (secured, quiet) = cookie_for("none", &format!("{N}session-cookie-secure: \"true\"\n"));
    assert_eq!(secured, "INGRESSCOOKIE=api; Secure; HttpOnly; SameSite=None");
    assert!(!quiet.contains("made Secure"), "{quiet}");
}

/// The plugin options are checked before anything is written: a digest is
/// 64 hex digits; the image's scheme picks Envoy Gateway's source (an
/// `https://` .wasm, or an OCI image) and the digest goes with it; an
/// option a home does not use is said to be ignored; the Envoy bootstrap
/// says where it loads the module from, or loads it from `--wasm`.
#[test]
fn from_nginx_checks_its_plugin_options() {
    let pair = "examples/nginx/ingress.yaml";
    let r = run(&["from-nginx", "--to", "envoy-gateway", "--sha256", "abc", pair]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--sha256 \"abc\" is not a sha256: 64 hex digits"), "{}", r.stderr);
    let r = run(&["from-nginx", "--to", "istio", "--image", "file:///tmp/x.wasm", pair]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("a `file://` URL is no place a gateway fetches a module from"), "{}", r.stderr);

    let digest = "AB".repeat(32);
    let http = run(&[
        "from-nginx",
        "--to",
        "envoy-gateway",
        "--image",
        "https://downloads.example.com/canary_router.wasm",
        "--sha256",
        &digest,
        pair,
    ]);
    assert_eq!(http.code, 0, "{}", http.stderr);
    let docs = istio::yaml_documents(&http.stdout);
    let policy = docs.iter().find(|d| d["kind"] == "EnvoyExtensionPolicy").unwrap();
    assert_eq!(
        policy["spec"]["wasm"][0]["code"],
        serde_json::json!({"type": "HTTP", "http": {"url": "https://downloads.example.com/canary_router.wasm",
            "sha256": "ab".repeat(32)}})
    );
    let image =
        run(&["from-nginx", "--to", "envoy-gateway", "--image", "oci://r.example/canary-router:1", pair]);
    let docs = istio::yaml_documents(&image.stdout);
    let policy = docs.iter().find(|d| d["kind"] == "EnvoyExtensionPolicy").unwrap();
    assert_eq!(policy["spec"]["wasm"][0]["code"]["type"], "Image");
    assert_eq!(policy["spec"]["wasm"][0]["code"]["image"]["url"], "oci://r.example/canary-router:1");
    assert!(
        policy["spec"]["wasm"][0]["code"]["image"]["sha256"].is_string(),
        "the digest goes with its source"
    );

    let json = run(&["from-nginx", "--image", "oci://r.example/x:1", "--sha256", &digest, pair]);
    json.assert_ok_warning(&["--image is ignored with --to json", "--sha256 is ignored with --to json"]);
    let envoy = run(&["from-nginx", "--to", "envoy", pair]);
    envoy.assert_ok_warning(&[
        "the bootstrap loads the filter from target/wasm32-wasip1/release/canary_router.wasm",
    ]);
    let envoy = run(&["from-nginx", "--to", "envoy", "--wasm", "/etc/envoy/canary_router.wasm", pair]);
    assert!(!envoy.stderr.contains("the bootstrap loads the filter from"), "{}", envoy.stderr);
    assert!(envoy.stdout.contains("filename: /etc/envoy/canary_router.wasm"), "{}", envoy.stdout);

    // Istio's newer API: the same filter as a TrafficExtension.
    for home in ["istio", "istio-gateway-api"] {
        let r = run(&[
            "from-nginx",
            "--to",
            home,
            "--istio-plugin",
            "traffic-extension",
            "--sha256",
            &digest,
            pair,
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let docs = istio::yaml_documents(&r.stdout);
        assert!(docs.iter().all(|d| d["kind"] != "WasmPlugin"), "{home}: one plugin object, not both");
        let extension = docs.iter().find(|d| d["kind"] == "TrafficExtension").unwrap();
        assert_eq!(extension["spec"]["wasm"]["sha256"], "ab".repeat(32).as_str());
        assert_eq!(extension["spec"]["phase"], "AUTHN");
        let file = temp_file(&format!("{home}-te.yaml"), &r.stdout);
        valid_as_the_api_server_reads(&file);
        let checked = run(&["check", &file]);
        assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
        assert!(checked.stdout.contains("(TrafficExtension canary-router)"), "{}", checked.stdout);
    }
}

/// `simulate --rollout` plays a traffic file through the filter's judge:
/// seeded, as text or JSON; a traffic file it cannot read is refused by
/// key, and the two kinds of simulate do not mix.
#[test]
fn simulate_rollout_rehearses_with_the_filter_s_judge_and_refuses_bad_traffic() {
    let rehearse = || {
        run(&[
            "simulate",
            "--rollout",
            "examples/compare.json",
            "--traffic",
            "traffic/bad-canary.json",
            "--seed",
            "3",
            "--json",
        ])
    };
    let json = rehearse();
    assert_eq!(json.code, 0, "{}", json.stderr);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let rolled = value["events"].as_array().unwrap().iter().find(|e| e["kind"] == "rolled_back").unwrap();
    assert_eq!(rolled["reason"], "compare:errors");
    let detail = rolled["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("canary ")
            && detail.ends_with("more than 1 percentage point worse at 95% confidence"),
        "the numbers behind the verdict: {detail}"
    );
    assert!(rolled["at_seconds"].as_f64().unwrap() > 300.0, "rolled back before the errors rose: {rolled}");
    assert_eq!(value["seed"], 3);
    let again = rehearse();
    assert_eq!(again.stdout, json.stdout, "the same seed, the same rehearsal");

    let traffic = |text: &str| {
        run(&[
            "simulate",
            "--rollout",
            "examples/compare.json",
            "--traffic",
            &temp_file("traffic.json", text),
        ])
    };
    let arm = r#"{"errorRate": 0.01, "latency": {"median": 50, "p99": 200}}"#;
    for (text, says) in [
        (
            format!(r#"{{"duration": "1m", "rate": 10, "canary": {arm}, "baseline": {arm}, "sped": 1}}"#),
            "unknown field `sped`",
        ),
        (
            format!(
                r#"{{"duration": "1m", "rate": 10, "canary": {{"errorRate": 2, "latency": {{"median": 5}}}}, "baseline": {arm}}}"#
            ),
            "canary.errorRate: must be a fraction from 0 to 1, got 2",
        ),
        (
            format!(r#"{{"duration": "soon", "rate": 10, "canary": {arm}, "baseline": {arm}}}"#),
            "duration: `soon` is not a duration",
        ),
        (
            format!(r#"{{"duration": "1m", "rate": 0, "canary": {arm}, "baseline": {arm}}}"#),
            "rate: must be requests per second",
        ),
        (
            format!(
                r#"{{"duration": "1m", "rate": 10, "canary": {arm}, "baseline": {arm}, "events": [{{"at": "2m"}}, {{"at": "1m"}}]}}"#
            ),
            "events: must be listed in time order",
        ),
    ] {
        let r = traffic(&text);
        assert_eq!(r.code, 1, "{text}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{text}: {}", r.stderr);
    }
    let r = run(&[
        "simulate",
        "examples/config.json",
        "--rollout",
        "examples/compare.json",
        "--traffic",
        "traffic/quiet.json",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(&["simulate", "--rollout", "examples/compare.json"]);
    assert_eq!(r.code, 2, "--traffic is needed: {}", r.stderr);
}
