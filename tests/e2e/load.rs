//! Load for the e2e tests: keep-alive connections on their own threads,
//! each paced to a rate, recording every outcome with its time.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::http::{Connection, Response};

/// One answered (or failed) request.
#[derive(Clone, Debug)]
pub struct Sample {
    pub at: Instant,
    pub outcome: Result<(u16, String), String>,
}

impl Sample {
    pub fn status(&self) -> Option<u16> {
        self.outcome.as_ref().ok().map(|(status, _)| *status)
    }

    pub fn body(&self) -> &str {
        self.outcome.as_ref().map_or("", |(_, body)| body.as_str())
    }
}

/// What one connection sends: given the connection and the request's
/// sequence number on it.
pub type Request = dyn Fn(&mut Connection, usize) -> io::Result<Response> + Send + Sync;

pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<Vec<Sample>>>,
    started: Instant,
}

impl Load {
    /// `connections` connections to `port`, each sending `request` at
    /// `rate` requests per second (as fast as it can if the proxy is slower).
    pub fn start(port: u16, connections: usize, rate: u32, request: Arc<Request>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..connections)
            .map(|_| {
                let (stop, request) = (stop.clone(), request.clone());
                thread::spawn(move || {
                    let mut samples = Vec::new();
                    let mut connection = Connection::open(port).ok();
                    let period = Duration::from_secs(1) / rate.max(1);
                    let mut next = Instant::now();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = match connection.as_mut() {
                            Some(conn) => {
                                request(conn, n).map(|r| (r.status, r.body_text())).map_err(|e| e.to_string())
                            }
                            None => Err("connect failed".to_string()),
                        };
                        if outcome.is_err() {
                            connection = Connection::open(port).ok();
                        }
                        samples.push(Sample { at: Instant::now(), outcome });
                        n += 1;
                        next += period;
                        match next.checked_duration_since(Instant::now()) {
                            Some(wait) => thread::sleep(wait),
                            None => next = Instant::now(),
                        }
                    }
                    samples
                })
            })
            .collect();
        Load { stop, threads, started: Instant::now() }
    }

    /// Stops every connection; returns all samples and the rate achieved.
    pub fn stop(self) -> (Vec<Sample>, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let samples: Vec<Sample> = self.threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let rate = samples.len() as f64 / elapsed;
        (samples, rate)
    }
}

/// Plain GETs of `/` for a host.
pub fn get(host: &'static str) -> Arc<Request> {
    Arc::new(move |c: &mut Connection, _| c.get(host, "/", &[]))
}

/// How many samples had each status (0: no response at all).
pub fn statuses(samples: &[Sample]) -> BTreeMap<u16, usize> {
    let mut out = BTreeMap::new();
    for sample in samples {
        *out.entry(sample.status().unwrap_or(0)).or_default() += 1;
    }
    out
}

/// Fails the test unless every sample was answered 200.
pub fn assert_all_ok(what: &str, samples: &[Sample]) {
    let failed: Vec<&Sample> = samples.iter().filter(|s| s.status() != Some(200)).collect();
    assert!(
        failed.is_empty(),
        "{what}: {} of {} live requests were not answered 200 ({:?}), e.g. {:?}",
        failed.len(),
        samples.len(),
        statuses(samples),
        failed[0]
    );
}
