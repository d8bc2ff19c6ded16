//! `canary-router status`: every split's rollout state as the fleet
//! reports it, read from proxies' admin endpoints (`--admin`) and/or from
//! Prometheus (`--prometheus`): configured and live weights, the ramp's
//! step and the next one, rolled back or not, why and since when, each
//! target's request rate and 5xx share, and how many proxies agree. An
//! endpoint that does not answer is listed, not fatal.

mod samples;
mod view;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use canary_router_core::rollout::metrics;

use samples::{Sample, ADMIN_PATH};
use view::Proxy;

use crate::http_get::{self, Client, Endpoint, Failed};
use crate::Failure;

/// The options of `status`.
pub struct Options {
    pub admin: Vec<String>,
    pub prometheus: Option<String>,
    pub watch: bool,
    pub json: bool,
    /// With `--admin`: seconds between the two reads a rate comes from.
    pub interval: f64,
    /// A CA file for an HTTPS endpoint signed by a private CA.
    pub ca_file: Option<std::path::PathBuf>,
    /// Prometheus's bearer token, in a file.
    pub token_file: Option<std::path::PathBuf>,
    /// Prometheus's `user:password`, in a file.
    pub basic_auth_file: Option<std::path::PathBuf>,
}

/// Where a round reads from.
struct Sources {
    client: Client,
    admins: Vec<Endpoint>,
    prometheus: Option<Endpoint>,
    /// The `authorization` header Prometheus wants, if any.
    authorization: Option<String>,
}

/// Each admin endpoint's last read, and when it was made.
type Reads = Vec<Result<Vec<Sample>, Failed>>;
type Previous = Option<(Instant, Reads)>;

/// The counters whose rates `status` shows (requests, responses, and
/// Envoy's per-cluster counts); `rate()` drops the metric's name, so each
/// is asked on its own.
const RATES: [&str; 4] = [
    metrics::REQUESTS,
    metrics::RESPONSES,
    "envoy_cluster_upstream_rq_xx",
    "envoy_cluster_upstream_rq_completed",
];
/// The gauges that hold each split's state.
const STATE_QUERY: &str = r#"{__name__=~"canary_router_.*",split!=""}"#;

/// Runs `status`; the exit code says healthy (0), progressing (3) or
/// rolled back (4); when no endpoint answered, 2, or 5 when one refused the
/// credentials, or 6 when one's certificate is not trusted.
pub fn run(options: &Options) -> Result<u8, Failure> {
    if options.admin.is_empty() && options.prometheus.is_none() {
        return Err(Failure::Usage("status needs --admin URL (repeatable) and/or --prometheus URL".into()));
    }
    let admins = options
        .admin
        .iter()
        .map(|u| Endpoint::parse(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Usage)?;
    let prometheus =
        options.prometheus.as_deref().map(Endpoint::parse).transpose().map_err(Failure::Usage)?;
    let authorization =
        http_get::authorization(options.token_file.as_deref(), options.basic_auth_file.as_deref(), |name| {
            std::env::var(name).ok()
        })
        .map_err(Failure::Usage)?;
    if authorization.is_some() && prometheus.as_ref().is_some_and(|p| p.credentials.is_some()) {
        return Err(Failure::Usage(
            "--prometheus has credentials in its URL and another is given (a file or the environment): give one"
                .into(),
        ));
    }
    let client = Client::new(options.ca_file.as_deref()).map_err(Failure::Usage)?;
    let sources = Sources { client, admins, prometheus, authorization };
    let interval = Duration::from_secs_f64(options.interval.clamp(0.1, 60.0));
    let mut previous: Previous = None;
    loop {
        let (proxies, reads) = read_fleet(&sources, &mut previous, interval);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let splits = view::splits(&proxies);
        if options.json {
            println!("{}", view::to_json(&proxies, &splits, now));
        } else {
            if options.watch {
                // Clear the screen and go home, as `watch` does.
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", view::render(&proxies, &splits, now));
        }
        if !options.watch {
            return Ok(view::overall(&proxies, &splits).exit_code());
        }
        previous = Some((Instant::now(), reads));
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Reads every endpoint. Admin counters need two reads for a rate: the
/// previous round's, or (the first time) a second read `interval` later.
fn read_fleet(sources: &Sources, previous: &mut Previous, interval: Duration) -> (Vec<Proxy>, Reads) {
    let admins = &sources.admins;
    let read_all = || -> Reads {
        admins
            .iter()
            .map(|e| {
                let text = String::from_utf8_lossy(&sources.client.get(e, ADMIN_PATH, None)?).into_owned();
                let mut read = samples::from_admin(&text);
                if samples::has_module_series(&text) {
                    let module = sources.client.get(e, samples::MODULE_ADMIN_PATH, None)?;
                    read.extend(samples::from_module_prometheus(&String::from_utf8_lossy(&module)));
                }
                Ok(read)
            })
            .collect()
    };
    let (before, since) = match previous.take() {
        Some((at, reads)) => (reads, at),
        None if admins.is_empty() => (Vec::new(), Instant::now()),
        None => {
            let first = read_all();
            let at = Instant::now();
            std::thread::sleep(interval);
            (first, at)
        }
    };
    let after = read_all();
    let seconds = since.elapsed().as_secs_f64().max(0.001);
    let mut proxies: Vec<Proxy> = admins
        .iter()
        .zip(&after)
        .enumerate()
        .map(|(i, (endpoint, read))| {
            let samples = read.clone().map(|mut samples| {
                if let Some(Ok(earlier)) = before.get(i) {
                    samples.extend(samples::rates(earlier, &samples, seconds));
                }
                samples
            });
            Proxy { name: endpoint.address(), samples }
        })
        .collect();
    if let Some(endpoint) = &sources.prometheus {
        proxies.extend(from_prometheus(sources, endpoint));
    }
    (proxies, after)
}

/// Every proxy Prometheus scrapes that `--admin` did not name already.
fn from_prometheus(sources: &Sources, endpoint: &Endpoint) -> Vec<Proxy> {
    let admins = &sources.admins;
    let query = |promql: &str, rate_of: Option<&str>| -> Result<Vec<(String, Sample)>, Failed> {
        let path = canary_router_core::rollout::prometheus::query_path("", promql);
        let body = sources.client.get(endpoint, &path, sources.authorization.as_deref())?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| Failed::Refused(format!("not a query answer: {e}")))?;
        samples::from_prometheus(&answer, rate_of).map_err(Failed::Refused)
    };
    let name = format!("prometheus {}", endpoint.address());
    let mut series = match query(STATE_QUERY, None) {
        Ok(series) => series,
        Err(why) => return vec![Proxy { name, samples: Err(why) }],
    };
    for counter in RATES {
        match query(&format!("rate({counter}[1m])"), Some(counter)) {
            Ok(rates) => series.extend(rates),
            Err(why) => return vec![Proxy { name, samples: Err(why) }],
        }
    }
    let mut instances: Vec<String> = series.iter().map(|(i, _)| i.clone()).collect();
    instances.sort();
    instances.dedup();
    let known: Vec<String> = admins.iter().map(Endpoint::address).collect();
    instances
        .into_iter()
        .filter(|instance| !known.contains(instance))
        .map(|instance| Proxy {
            name: format!("{instance} (via {name})"),
            samples: Ok(series.iter().filter(|(i, _)| *i == instance).map(|(_, s)| s.clone()).collect()),
        })
        .collect()
}
