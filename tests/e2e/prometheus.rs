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
}

impl Prometheus {
    /// Starts Prometheus on `port`, scraping each admin port every second.
    pub fn start(port: u16, admin_ports: &[u16]) -> Prometheus {
        Prometheus::start_with_rules(port, admin_ports, &[])
    }

    /// The same, evaluating the rule files (repo paths) every second.
    pub fn start_with_rules(port: u16, admin_ports: &[u16], rule_files: &[&str]) -> Prometheus {
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
        let log = fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary())
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
        let mut prometheus = Prometheus { child: Some(child), dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = prometheus.child.as_mut().unwrap().try_wait() {
                panic!("Prometheus exited ({status}); its log:\n{}", prometheus.log());
            }
            if http::get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200) {
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

    /// An instant query's JSON answer (`/api/v1/query`).
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let path = canary_router::prometheus::query_path(promql);
        let response = http::get(self.port, &path, &[]).unwrap();
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
