//! A Prometheus as production runs one: its API under a path prefix
//! (`--web.route-prefix`, as behind Thanos or a shared gateway) and behind
//! basic auth (`--web.config.file`). The filter reaches it through
//! `rollback.prometheus.pathPrefix` and `headers`; a proxy without the
//! credentials is refused and, as with Prometheus down, keeps the canary
//! at nothing while it waits for the fleet latch.

use super::envoy::{free_ports, Envoy, EnvoyConfig};
use super::http::get_host;
use super::prometheus::{Prometheus, Secured};

/// A test-only password and its bcrypt hash (cost 4), made with Python's
/// `bcrypt.hashpw(b"canary-test", bcrypt.gensalt(rounds=4))`.
const SECURED: Secured = Secured {
    prefix: "/prom",
    user: "canary",
    password: "canary-test",
    bcrypt: "$2b$04$Ugn3D22JUAR0VmAqvdbBfuX/WYwuVTpry/fk/3gySXFxJN9IVQyZu",
    // `canary:canary-test`; `status` encodes the same pair itself
    // (`credentials_come_from_files_or_the_environment_never_arguments`).
    basic: "Y2FuYXJ5OmNhbmFyeS10ZXN0",
};

fn config(prometheus: serde_json::Value) -> String {
    serde_json::json!({"routes": [{
        "name": "service-b", "hosts": ["b.example.com"], "default": "service-b",
        "rules": [{"split": {
            "weights": [{"target": "service-b-canary", "weight": 50}, {"target": "service-b", "weight": 50}],
            "rollback": {"target": "service-b-canary", "prometheus": prometheus}}}]
    }]})
    .to_string()
}

fn queries(envoy: &Envoy, result: &str) -> f64 {
    ["up", "latch"]
        .iter()
        .filter_map(|query| {
            envoy.sample_with(
                "canary_router_prometheus_queries_total",
                &[("route", "service-b"), ("query", query), ("result", result)],
            )
        })
        .sum()
}

#[test]
fn a_prometheus_under_a_prefix_and_behind_basic_auth_is_reached_with_the_configured_headers() {
    let port = free_ports(1)[0];
    let prometheus = |headers: serde_json::Value| {
        serde_json::json!({"cluster": "prometheus", "every": "1s", "pathPrefix": "/prom/", "headers": headers,
                           "checks": [{"name": "up", "query": "sum(up)", "min": 1}]})
    };
    let credentials = serde_json::json!([
        {"name": "X-Scope-OrgID", "value": "tenant-1"},
        {"name": "Authorization", "value": SECURED.authorization()}]);
    let start = |json: String| {
        Envoy::start(
            EnvoyConfig::from_repo("envoy/envoy.yaml")
                .with_filter_config(&json)
                .with_concurrency(1)
                .replace("port_value: 9090 ", &format!("port_value: {port} ")),
        )
    };
    let with = start(config(prometheus(credentials)));
    let without =
        start(config(prometheus(serde_json::json!([{"name": "X-Scope-OrgID", "value": "tenant-1"}]))));
    let server = Prometheus::start_secured(port, &[with.admin_port(), without.admin_port()], &SECURED);

    // With the credentials: both queries answer, the check passes, the
    // canary gets its half.
    with.wait_until("the secured Prometheus to answer", || queries(&with, "pass") >= 2.0);
    with.wait_until("the latch's answer", || {
        with.sample_with("canary_router_waiting_for_fleet", &[("route", "service-b")]) == Some(0.0)
    });
    let canary = (0..200)
        .filter(|_| {
            get_host(with.ingress_port(), "b.example.com", "/", &[]).body_text() == "service-b-canary"
        })
        .count();
    assert!((60..140).contains(&canary), "{canary} of 200 reached the canary with the latch answered");

    // Without them: refused (401), counted as errors, never a rollback,
    // and the canary gets nothing until the latch answers.
    without.wait_until("refused queries to be counted", || queries(&without, "error") >= 2.0);
    assert_eq!(queries(&without, "pass"), 0.0);
    assert_eq!(without.sample_with("canary_router_waiting_for_fleet", &[("route", "service-b")]), Some(1.0));
    assert!((0..50)
        .all(|_| get_host(without.ingress_port(), "b.example.com", "/", &[]).body_text() == "service-b"));
    assert_eq!(without.sample_with("canary_router_rolled_back", &[("route", "service-b")]), Some(0.0));

    // The token is in no log line of either proxy.
    for envoy in [&with, &without] {
        assert!(!envoy.log().contains("canary-test"), "a log line carries the password");
        assert!(!envoy.log().contains(&SECURED.authorization()), "a log line carries the header");
    }
    // And the server is really secured: our own unauthenticated query is refused.
    assert_eq!(super::http::get(port, "/prom/api/v1/query?query=up", &[]).unwrap().status, 401);
    drop(server);
}

fn status(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let output = std::process::Command::new(crate::built::require_fresh_cli())
        .arg("status")
        .args(args)
        .env_remove("CANARY_ROUTER_PROMETHEUS_TOKEN")
        .env_remove("CANARY_ROUTER_PROMETHEUS_BASIC_AUTH")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

/// `status --prometheus https://.../prom` with a CA file and basic auth
/// from a file, the environment or the URL reads the fleet; without the
/// CA it says the server is untrusted (exit 6), without the credentials
/// that it is unauthorised (exit 5); two credentials are refused, and no
/// message shows the password.
#[test]
fn status_reads_a_prometheus_over_tls_with_basic_auth_under_a_prefix() {
    let port = free_ports(1)[0];
    let envoy = Envoy::start(
        EnvoyConfig::from_repo("envoy/envoy.yaml")
            .with_filter_config(&config(serde_json::json!({"cluster": "prometheus", "every": "1s"})))
            .with_concurrency(1),
    );
    let server = Prometheus::start_secured_tls(port, &[envoy.admin_port()], &SECURED);
    let ca = server.certificate.clone().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while server.series("canary_router_configured_weight_ppm") == 0 {
        assert!(std::time::Instant::now() < deadline, "Prometheus never scraped the proxy");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let url = format!("https://127.0.0.1:{port}/prom/");
    let auth_file = std::env::temp_dir().join(format!("canary-router-basic-{}", std::process::id()));
    std::fs::write(&auth_file, format!("{}:{}\n", SECURED.user, SECURED.password)).unwrap();
    let ca_arg = ca.display().to_string();
    let auth_arg = auth_file.display().to_string();

    let (code, text) =
        status(&["--prometheus", &url, "--ca-file", &ca_arg, "--basic-auth-file", &auth_arg, "--json"], &[]);
    assert!(code == 0 || code == 3, "exit {code}: {text}");
    let json: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or("")).unwrap();
    assert_eq!(json["splits"][0]["route"], "service-b", "{text}");
    assert_eq!(json["proxies"][0]["ok"], true, "{text}");

    let pair = format!("{}:{}", SECURED.user, SECURED.password);
    let (code, text) = status(
        &["--prometheus", &url, "--ca-file", &ca_arg],
        &[("CANARY_ROUTER_PROMETHEUS_BASIC_AUTH", pair.as_str())],
    );
    assert!((code == 0 || code == 3) && text.contains("route service-b"), "exit {code}: {text}");

    // Credentials in the URL are used, and never shown.
    let with_userinfo = format!("https://{}:{}@127.0.0.1:{port}/prom/", SECURED.user, SECURED.password);
    let (code, text) = status(&["--prometheus", &with_userinfo, "--ca-file", &ca_arg], &[]);
    assert!((code == 0 || code == 3) && text.contains("route service-b"), "exit {code}: {text}");
    let (code, text) =
        status(&["--prometheus", &with_userinfo, "--ca-file", &ca_arg, "--basic-auth-file", &auth_arg], &[]);
    assert_eq!(code, 2, "two credentials are refused: {text}");
    assert!(text.contains("give one"), "{text}");
    assert!(!text.contains(SECURED.password), "the URL's password is shown: {text}");

    let (code, text) = status(&["--prometheus", &url, "--basic-auth-file", &auth_arg], &[]);
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("untrusted") && text.contains("--ca-file"), "an unknown CA is named: {text}");
    assert!(!text.contains("no splits reported"), "a TLS failure reads as a missing filter: {text}");
    let (code, text) = status(&["--prometheus", &url, "--ca-file", &ca_arg], &[]);
    assert_eq!(code, 5, "{text}");
    assert!(
        text.contains("unauthorised") && text.contains("HTTP 401"),
        "missing credentials are named: {text}"
    );
    assert!(!text.contains(SECURED.password), "{text}");
    std::fs::remove_file(&auth_file).unwrap();
}

/// A self-signed certificate as `openssl req -x509` makes it by default
/// (marked as a CA) given as `--ca-file`: rustls refuses a CA as the
/// server's own certificate, and `status` says what to give instead.
#[test]
fn a_self_signed_ca_certificate_as_ca_file_gets_a_hint() {
    let dir = super::envoy::scratch_dir("self-signed-ca");
    let cert = super::prometheus::self_signed_marked(&dir, "CA:TRUE");
    let port = free_ports(1)[0];
    // Any HTTPS server serving that certificate will do: Python's.
    let server = format!(
        "import http.server, ssl\n\
         s = http.server.HTTPServer(('127.0.0.1', {port}), http.server.BaseHTTPRequestHandler)\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{cert}', '{key}')\n\
         s.socket = c.wrap_socket(s.socket, server_side=True)\n\
         s.serve_forever()\n",
        cert = cert.display(),
        key = dir.join("key.pem").display(),
    );
    let python = Stopped(std::process::Command::new("python3").args(["-c", &server]).spawn().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the HTTPS server never listened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}/");
    let (code, text) = status(&["--prometheus", &url, "--ca-file", &cert.display().to_string()], &[]);
    drop(python);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("CA:FALSE") && text.contains("signed the server's certificate"), "no hint: {text}");
}

/// A child process stopped when the test ends, however it ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
