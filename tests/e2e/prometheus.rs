//! A real Prometheus server for one test (the Debian package `prometheus`,
//! or `$PROMETHEUS`): its own temp config and storage, loopback only,
//! scraping the given Envoys' admin `/stats/prometheus` every second;
//! waited for (`/-/ready`) and always stopped.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::envoy::scratch_dir;
use super::http;

/// The scrape job users are given for Envoy's admin.
pub const SCRAPE_JOB: &str = "dashboards/prometheus-scrape.yaml";

/// `$PROMETHEUS`, or `prometheus` on the PATH (what `make prometheus`
/// installs).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMETHEUS").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("prometheus"))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "Prometheus not found: run `make prometheus` (installs the Debian package `prometheus` as root) \
             or set PROMETHEUS=/path/to/prometheus"
        )
    })
}

pub struct Prometheus {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
    /// `--web.route-prefix` (`""`: the root).
    prefix: String,
    /// The `authorization` header its web config requires, if any.
    authorization: Option<String>,
    /// With TLS: the certificate (PEM) it serves, its own CA.
    pub certificate: Option<PathBuf>,
}

/// A Prometheus as production runs one: the API under a path prefix
/// (`--web.route-prefix`) and behind basic auth (`--web.config.file`).
pub struct Secured {
    pub prefix: &'static str,
    pub user: &'static str,
    pub password: &'static str,
    /// The password's bcrypt hash, as the web config wants it.
    pub bcrypt: &'static str,
    /// `user:password` in base64, as a basic-auth header carries it.
    pub basic: &'static str,
}

impl Secured {
    /// The `authorization` header value that passes.
    pub fn authorization(&self) -> String {
        format!("Basic {}", self.basic)
    }
}

impl Prometheus {
    /// Starts Prometheus on `port`, scraping each admin port every second.
    pub fn start(port: u16, admin_ports: &[u16]) -> Prometheus {
        Prometheus::start_with_rules(port, admin_ports, &[])
    }

    /// The same, evaluating the rule files (repo paths) every second.
    pub fn start_with_rules(port: u16, admin_ports: &[u16], rule_files: &[&str]) -> Prometheus {
        Prometheus::launch(port, admin_ports, rule_files, None, false)
    }

    /// The same, under a path prefix and behind basic auth.
    pub fn start_secured(port: u16, admin_ports: &[u16], secured: &Secured) -> Prometheus {
        Prometheus::launch(port, admin_ports, &[], Some(secured), false)
    }

    /// The same over HTTPS, with a self-signed certificate for 127.0.0.1
    /// made by `openssl` (its path in `certificate`).
    pub fn start_secured_tls(port: u16, admin_ports: &[u16], secured: &Secured) -> Prometheus {
        Prometheus::launch(port, admin_ports, &[], Some(secured), true)
    }

    fn launch(
        port: u16,
        admin_ports: &[u16],
        rule_files: &[&str],
        secured: Option<&Secured>,
        tls: bool,
    ) -> Prometheus {
        let dir = scratch_dir("prometheus");
        fs::create_dir_all(dir.join("data")).unwrap();
        let targets: Vec<String> = admin_ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        // The shipped scrape job, with this run's Envoys as its targets.
        let job = fs::read_to_string(super::envoy::repo().join(SCRAPE_JOB)).unwrap();
        let shipped_targets = "targets: [\"127.0.0.1:9901\"]";
        assert!(job.contains(shipped_targets), "{SCRAPE_JOB} no longer scrapes {shipped_targets}");
        let job = job.replace(shipped_targets, &format!("targets: [{}]", targets.join(", ")));
        let config = format!(
            "global: {{ scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }}\n{job}"
        );
        let rules: Vec<String> =
            rule_files.iter().map(|f| format!("\"{}\"", super::envoy::repo().join(f).display())).collect();
        let config = config + &format!("rule_files: [{}]\n", rules.join(", "));
        fs::write(dir.join("prometheus.yml"), config).unwrap();
        let mut secured_args = Vec::new();
        let certificate = tls.then(|| self_signed(&dir));
        if let Some(secured) = secured {
            let mut web = format!("basic_auth_users:\n  {}: '{}'\n", secured.user, secured.bcrypt);
            if tls {
                web += &format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                    dir.join("cert.pem").display(),
                    dir.join("key.pem").display()
                );
            }
            fs::write(dir.join("web.yml"), web).unwrap();
            secured_args.push(format!("--web.config.file={}", dir.join("web.yml").display()));
            secured_args.push(format!("--web.route-prefix={}", secured.prefix));
            let scheme = if tls { "https" } else { "http" };
            secured_args.push(format!("--web.external-url={scheme}://127.0.0.1:{port}{}", secured.prefix));
        }
        let log = fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary())
            .args(&secured_args)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        let mut prometheus = Prometheus {
            child: Some(child),
            dir,
            port,
            prefix: secured.map_or(String::new(), |s| s.prefix.to_string()),
            authorization: secured.map(Secured::authorization),
            certificate,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = prometheus.child.as_mut().unwrap().try_wait() {
                panic!("Prometheus exited ({status}); its log:\n{}", prometheus.log());
            }
            if prometheus.get("/-/ready").is_ok_and(|r| r.status == 200) {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready in 30 s; its log:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// A GET under the prefix, with the credentials.
    fn get(&self, path: &str) -> std::io::Result<http::Response> {
        if let Some(certificate) = &self.certificate {
            return tls_get(
                self.port,
                certificate,
                &format!("{}{path}", self.prefix),
                self.authorization.as_deref(),
            );
        }
        let authorization = self.authorization.as_deref().unwrap_or_default();
        let headers: &[(&[u8], &[u8])] =
            if authorization.is_empty() { &[] } else { &[(b"authorization", authorization.as_bytes())] };
        http::get(self.port, &format!("{}{path}", self.prefix), headers)
    }

    /// An instant query's JSON answer (`/api/v1/query`).
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let response = self.get(&canary_router_core::rollout::prometheus::query_path("", promql)).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("{promql}: {e}: {}", String::from_utf8_lossy(&response.body)));
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body
    }

    /// How many series an instant query returns.
    pub fn series(&self, promql: &str) -> usize {
        self.query(promql)["data"]["result"].as_array().map_or(0, Vec::len)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A key and a self-signed certificate for 127.0.0.1 and localhost, in
/// `dir` (`key.pem`, `cert.pem`); the certificate's path.
fn self_signed(dir: &std::path::Path) -> PathBuf {
    self_signed_marked(dir, "CA:FALSE")
}

/// The same with the given `basicConstraints`: `CA:TRUE` is what
/// `openssl req -x509` writes by default, and what rustls refuses as a
/// server's own certificate.
pub fn self_signed_marked(dir: &std::path::Path, constraints: &str) -> PathBuf {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            &format!("basicConstraints=critical,{constraints}"),
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl (Debian's openssl package) makes the test certificate: {e}"));
    assert!(status.success(), "openssl could not make a certificate");
    dir.join("cert.pem")
}

/// A GET over HTTPS trusting only `certificate`, as a response.
fn tls_get(
    port: u16,
    certificate: &std::path::Path,
    path: &str,
    auth: Option<&str>,
) -> std::io::Result<http::Response> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let pem = fs::read(certificate)?;
    let cert = Certificate::from_pem(&pem).map_err(std::io::Error::other)?;
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .tls_config(TlsConfig::builder().root_certs(RootCerts::new_with_certs(&[cert])).build())
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut request = agent.get(format!("https://127.0.0.1:{port}{path}"));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let mut response = request.call().map_err(std::io::Error::other)?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().map_err(std::io::Error::other)?;
    Ok(http::Response { status, headers: Vec::new(), body })
}
