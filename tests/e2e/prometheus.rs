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
}

/// A Prometheus as production runs one: the API under a path prefix
/// (`--web.route-prefix`) and behind basic auth (`--web.config.file`).
pub struct Secured {
    pub prefix: &'static str,
    pub user: &'static str,
    pub password: &'static str,
    /// The password's bcrypt hash, as the web config wants it.
    pub bcrypt: &'static str,
}

impl Secured {
    /// The `authorization` header value that passes.
    pub fn authorization(&self) -> String {
        format!("Basic {}", base64(format!("{}:{}", self.user, self.password).as_bytes()))
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Prometheus {
    /// Starts Prometheus on `port`, scraping each admin port every second.
    pub fn start(port: u16, admin_ports: &[u16]) -> Prometheus {
        Prometheus::start_with_rules(port, admin_ports, &[])
    }

    /// The same, evaluating the rule files (repo paths) every second.
    pub fn start_with_rules(port: u16, admin_ports: &[u16], rule_files: &[&str]) -> Prometheus {
        Prometheus::launch(port, admin_ports, rule_files, None)
    }

    /// The same, under a path prefix and behind basic auth.
    pub fn start_secured(port: u16, admin_ports: &[u16], secured: &Secured) -> Prometheus {
        Prometheus::launch(port, admin_ports, &[], Some(secured))
    }

    fn launch(port: u16, admin_ports: &[u16], rule_files: &[&str], secured: Option<&Secured>) -> Prometheus {
        let dir = scratch_dir("prometheus");
        fs::create_dir_all(dir.join("data")).unwrap();
        let targets: Vec<String> = admin_ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        let config = format!(
            "global: {{ scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }}\n\
             scrape_configs:\n\
             - job_name: envoy\n  metrics_path: /stats/prometheus\n  static_configs: [{{ targets: [{}] }}]\n",
            targets.join(", ")
        );
        let rules: Vec<String> =
            rule_files.iter().map(|f| format!("\"{}\"", super::envoy::repo().join(f).display())).collect();
        let config = config + &format!("rule_files: [{}]\n", rules.join(", "));
        fs::write(dir.join("prometheus.yml"), config).unwrap();
        let mut secured_args = Vec::new();
        if let Some(secured) = secured {
            let web = format!("basic_auth_users:\n  {}: '{}'\n", secured.user, secured.bcrypt);
            fs::write(dir.join("web.yml"), web).unwrap();
            secured_args.push(format!("--web.config.file={}", dir.join("web.yml").display()));
            secured_args.push(format!("--web.route-prefix={}", secured.prefix));
            secured_args.push(format!("--web.external-url=http://127.0.0.1:{port}{}", secured.prefix));
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
        let authorization = self.authorization.as_deref().unwrap_or_default();
        let headers: &[(&[u8], &[u8])] =
            if authorization.is_empty() { &[] } else { &[(b"authorization", authorization.as_bytes())] };
        http::get(self.port, &format!("{}{path}", self.prefix), headers)
    }

    /// An instant query's JSON answer (`/api/v1/query`).
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let response = self.get(&canary_router::prometheus::query_path("", promql)).unwrap();
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
