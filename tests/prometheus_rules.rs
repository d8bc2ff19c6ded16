//! The PromQL users run, checked by the real `promtool` (from the Debian
//! package `prometheus`, as the fleet tests use it): the alerting rules of
//! dashboards/ pass `promtool check rules` and their unit tests, the
//! PrometheusRule carries the same rules, and the documented Istio queries
//! (docs/progressive-delivery.md, the shipped WasmPlugin's checks) find the
//! canary in series shaped as Istio labels them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `promtool` beside `$PROMETHEUS`, or on the PATH.
fn promtool() -> PathBuf {
    let beside = std::env::var_os("PROMETHEUS")
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(p).with_file_name("promtool"));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"));
    beside.into_iter().chain(on_path).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("promtool not found: run `make prometheus` (the Debian package `prometheus` has it)")
    })
}

fn run_promtool(args: &[&str], dir: &Path) {
    let output = Command::new(promtool()).args(args).current_dir(dir).output().unwrap();
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn yaml(path: &str) -> serde_json::Value {
    serde_norway::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    run_promtool(&["check", "rules", "dashboards/alerts.yaml"], root());
    run_promtool(&["test", "rules", "alerts.test.yaml"], &root().join("tests/alerts"));
    let rules = yaml("dashboards/alerts.yaml");
    let operator = yaml("dashboards/alerts-prometheusrule.yaml");
    assert_eq!(operator["kind"], "PrometheusRule");
    assert_eq!(operator["spec"]["groups"], rules["groups"], "the PrometheusRule has alerts.yaml's rules");
    // promtool reads a rule file; the PrometheusRule's spec is one.
    let spec = std::env::temp_dir().join(format!("canary-router-prometheusrule-{}.yaml", std::process::id()));
    std::fs::write(&spec, serde_json::to_string(&operator["spec"]).unwrap()).unwrap();
    run_promtool(&["check", "rules", spec.to_str().unwrap()], root());
    std::fs::remove_file(&spec).unwrap();
    let alerts: Vec<&str> = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    for alert in alerts {
        let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
        assert!(doc.contains(&format!("`{alert}`")), "docs/metrics.md does not describe the alert {alert}");
    }
}

/// The shipped scrape job is a config Prometheus loads (the e2e tier
/// scrapes both homes with it).
#[test]
fn the_shipped_scrape_job_passes_promtool() {
    run_promtool(&["check", "config", "dashboards/prometheus-scrape.yaml"], root());
}

/// The PromQL blocks of docs/progressive-delivery.md's Istio paragraph.
fn documented_istio_queries() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/progressive-delivery.md")).unwrap();
    let section = doc.split("In Istio, a target is a subset name").nth(1).unwrap();
    let section = section.split("\n### ").next().unwrap();
    section.split("```promql\n").skip(1).map(|b| b.split("```").next().unwrap().replace('\n', " ")).collect()
}

/// Series as Istio's sidecars label them: the stable v1 answers 200 (10
/// per 15 s); the canary v2 answers 3 of 4 with 200 and 1 with 503, every
/// one within (100, 200] ms.
const ISTIO_SERIES: &str = r#"
      - series: 'istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_service="service-b.default.svc.cluster.local",destination_version="v1",destination_workload="service-b-v1",response_code="200"}'
        values: '0+10x20'
      - series: 'istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_service="service-b.default.svc.cluster.local",destination_version="v2",destination_workload="service-b-v2",response_code="200"}'
        values: '0+3x20'
      - series: 'istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_service="service-b.default.svc.cluster.local",destination_version="v2",destination_workload="service-b-v2",response_code="503"}'
        values: '0+1x20'
      - series: 'istio_request_duration_milliseconds_bucket{reporter="source",destination_service="service-b.default.svc.cluster.local",destination_version="v2",le="100"}'
        values: '0x20'
      - series: 'istio_request_duration_milliseconds_bucket{reporter="source",destination_service="service-b.default.svc.cluster.local",destination_version="v2",le="200"}'
        values: '0+4x20'
      - series: 'istio_request_duration_milliseconds_bucket{reporter="source",destination_service="service-b.default.svc.cluster.local",destination_version="v2",le="+Inf"}'
        values: '0+4x20'
"#;

#[test]
fn the_documented_istio_queries_find_the_canary_in_series_as_istio_labels_them() {
    let mut queries = documented_istio_queries();
    assert_eq!(queries.len(), 2, "the error-rate and p99 queries");
    let plugin = yaml("istio/service-b/wasm-plugin-rollback.yaml");
    let checks = plugin["spec"]["pluginConfig"]["routes"][0]["rules"][0]["split"]["rollback"]["prometheus"]
        ["checks"]
        .as_array()
        .unwrap();
    queries.extend(checks.iter().map(|c| c["query"].as_str().unwrap().to_string()));
    // Error rate 1 of 4; p99 within the (100, 200] bucket: 199 ms.
    let expected = ["0.25", "199", "0.25", "199"];
    let mut tests = String::new();
    for (query, value) in queries.iter().zip(expected) {
        tests += &format!(
            "      - expr: '{}'\n        eval_time: 3m\n        exp_samples:\n          - labels: '{{}}'\n            value: {value}\n",
            query.trim().replace('\'', "''")
        );
    }
    // What the docs used to say, with the subset name: always empty.
    let by_subset = queries[0].replace(
        r#"destination_service="service-b.default.svc.cluster.local",destination_version="v2""#,
        r#"destination_version="fixed""#,
    );
    tests += &format!("      - expr: '{by_subset}'\n        eval_time: 3m\n        exp_samples: []\n");
    let file = format!(
        "evaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:{ISTIO_SERIES}    promql_expr_test:\n{tests}"
    );
    let dir = std::env::temp_dir().join(format!("canary-router-istio-queries-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("istio.test.yaml"), file).unwrap();
    run_promtool(&["test", "rules", "istio.test.yaml"], &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
