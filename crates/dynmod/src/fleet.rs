//! Rollbacks decided by the fleet through Prometheus (`rollback.prometheus`),
//! as the `.wasm` decides them: every `every` (± 10%, so a fleet does not
//! poll in lockstep) the config's tick asks Prometheus each check, the
//! fleet latch (did any proxy roll this split back within `lookback`?),
//! the fleet view (does Prometheus hold this proxy's beacon?) and, for a
//! gated ramp, the step latch (`core::rollout::poll_round`). The queries
//! are config-level callouts from Envoy's main thread: a request never
//! waits for one, and Prometheus being down only counts errors. A finished
//! poll is judged by the core (`FleetState::record_poll`) under the split's
//! lock, so every worker takes its verdict at once: a split waits for the
//! latch's first answer before its target gets traffic, and a failing
//! check or a latch above 0 rolls it back. The rolled-back gauge, labelled
//! with the split's identity, carries a rollback to every other proxy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::abi::*;
use crate::family::{Family, Kind};
use crate::flag;
use crate::split_states::{SplitShared, Splits};
use canary_router_core::request::header_map;
use canary_router_core::rollout::log_lines;
use canary_router_core::rollout::metrics::{self, millionths};
use canary_router_core::rollout::poll_round::{self, Asks, Round, QUERY_RESULTS};
use canary_router_core::rollout::prometheus::{self, Sample};
use canary_router_core::rollout::settings::PrometheusChecks;
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::{Split, SplitId};

/// The largest answer read (a check should return one series; a query
/// that returns thousands is a mistake, reported as an error).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A round whose answers never came (Envoy answers a timed-out callout
/// itself, so only a lost one waits this long past its timeout) is given
/// up, so polling goes on.
const LOST_ANSWER_AFTER_MS: u64 = 5_000;

/// This process's beacon, the same for every config: what the fleet view
/// looks for.
fn beacon() -> u64 {
    static BEACON: OnceLock<u64> = OnceLock::new();
    *BEACON.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let rolls = u64::from(crate::roll::roll()) << 32 | u64::from(crate::roll::roll());
        prometheus::beacon(nanos ^ rolls ^ u64::from(std::process::id()).rotate_left(20))
    })
}

/// Callouts and rounds in flight (the main thread's; locked because the
/// config is shared with the workers).
#[derive(Default)]
struct InFlight {
    calls: HashMap<u64, (SplitId, Asks)>,
    /// By split identity: one round per split at a time.
    rounds: HashMap<u64, Round>,
    /// A callout is being made: an answer to an unknown id now is its own,
    /// come before the callout returned its id.
    calling: bool,
    early: HashMap<u64, Sample>,
}

pub struct Fleet {
    /// Envoy's config pointer, for callouts (main thread only).
    envoy: usize,
    beacon: u64,
    in_flight: Mutex<InFlight>,
    /// Answers not counted in Envoy yet: split, query row, result.
    answers: Mutex<Vec<(SplitId, usize, usize)>>,
    waiting: Option<Family>,
    proxy_beacon: Option<Family>,
    blind: Option<Family>,
    check_value: Option<Family>,
    unanswered: Option<Family>,
    failures: Option<Family>,
    queries: Option<Family>,
    /// The gauges are to be set again (at first, and after each poll).
    dirty: AtomicBool,
    /// The routes with a fleet split, found when the config is made.
    fleet_routes: Vec<usize>,
    /// The first request raised it (`routes_to_show_at_zero`).
    seen_a_request: AtomicBool,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn prometheus_of(split: &Split) -> Option<&PrometheusChecks> {
    split.rollback()?.prometheus.as_deref()
}

impl Fleet {
    /// The config's fleet, if any split's rollback asks Prometheus.
    pub fn define(envoy: FilterConfigEnvoyPtr, router: &Router) -> Option<Fleet> {
        router.splits().any(|(_, _, s)| prometheus_of(s).is_some()).then(|| {
            let family = |kind: Kind, name: &str, extra: &[&str]| {
                let labels: Vec<&str> = ["route", "rule", "split"].iter().chain(extra).copied().collect();
                Family::define(envoy, kind, name, &labels)
            };
            Fleet {
                envoy: envoy as usize,
                beacon: beacon(),
                in_flight: Mutex::default(),
                answers: Mutex::default(),
                waiting: family(Kind::Gauge, metrics::WAITING, &[]),
                proxy_beacon: family(Kind::Gauge, metrics::PROXY_BEACON, &[]),
                blind: family(Kind::Gauge, metrics::FLEET_BLIND, &[]),
                check_value: family(Kind::Gauge, metrics::CHECK_VALUE, &["check"]),
                unanswered: family(Kind::Gauge, metrics::CHECK_UNANSWERED, &["check"]),
                failures: family(Kind::Gauge, metrics::CHECK_FAILURES, &[]),
                queries: family(Kind::Counter, metrics::PROMETHEUS_QUERIES, &["query", "result"]),
                dirty: AtomicBool::new(true),
                fleet_routes: (router.routes.iter().enumerate())
                    .filter(|(_, r)| {
                        r.rules.iter().any(|rule| rule.split().is_some_and(|s| prometheus_of(s).is_some()))
                    })
                    .map(|(i, _)| i)
                    .collect(),
                seen_a_request: AtomicBool::new(false),
            }
        })
    }

    /// On the config's tick: polls each split whose poll is due.
    pub fn tick(&self, router: &Router, splits: &Splits, now_ms: u64) {
        for (route, _, split) in router.splits() {
            let (Some(config), Some(shared)) = (prometheus_of(split), splits.get(split.id)) else { continue };
            {
                let mut in_flight = locked(&self.in_flight);
                let lost = LOST_ANSWER_AFTER_MS + u64::from(config.timeout_ms);
                match in_flight.rounds.get(&split.identity) {
                    Some(round) if now_ms.saturating_sub(round.started_ms) < lost => continue,
                    Some(_) => {
                        in_flight.rounds.remove(&split.identity);
                        in_flight.calls.retain(|_, (id, _)| *id != split.id);
                    }
                    None => {}
                }
            }
            {
                let mut judged = shared.lock();
                let fleet = judged.fleet.get_or_insert_with(Default::default);
                if !poll_round::due(fleet.next_poll_ms, config.every_ms, now_ms) {
                    continue;
                }
                fleet.next_poll_ms = poll_round::next_poll_ms(config.every_ms, now_ms, crate::roll::roll());
            }
            self.poll(&route.name, split, config, shared, now_ms);
        }
    }

    fn poll(&self, route: &str, split: &Split, config: &PrometheusChecks, shared: &SplitShared, now_ms: u64) {
        let Some(rollback) = split.rollback() else { return };
        let gated = split.ramp().is_some_and(|r| r.gate.is_some());
        let queries = poll_round::queries(rollback, route, &split.identity_hex(), self.beacon, gated);
        let round = Round::new(config, gated, queries.len(), now_ms);
        locked(&self.in_flight).rounds.insert(split.identity, round);
        for (asks, query) in queries {
            let path = prometheus::query_path(&config.path_prefix, &query);
            let head = prometheus::request_headers(&config.authority, &path, &config.headers);
            let pairs = header_map::parse(&head).unwrap_or_default();
            let headers: Vec<ModuleHeader> = pairs
                .iter()
                .map(|(k, v)| ModuleHeader { key: ModuleBuffer::of(k), value: ModuleBuffer::of(v) })
                .collect();
            let mut id = 0;
            locked(&self.in_flight).calling = true;
            // SAFETY: Envoy's config pointer, on the main thread (the
            // tick); the buffers outlive the call, which copies them. No
            // lock is held: an answer may come before it returns.
            let result = unsafe {
                envoy_dynamic_module_callback_http_filter_config_http_callout(
                    self.envoy as _,
                    &mut id,
                    ModuleBuffer::of(config.cluster.as_bytes()),
                    headers.as_ptr(),
                    headers.len(),
                    ModuleBuffer::of(b""),
                    u64::from(config.timeout_ms),
                )
            };
            let answered = if result == CALLOUT_SUCCESS {
                let mut in_flight = locked(&self.in_flight);
                in_flight.calling = false;
                match in_flight.early.remove(&id) {
                    Some(sample) => Some(sample),
                    None => {
                        in_flight.calls.insert(id, (split.id, asks));
                        None
                    }
                }
            } else {
                locked(&self.in_flight).calling = false;
                Some(Sample::Error(format!("Envoy refused the call (result {result})")))
            };
            if let Some(sample) = answered {
                self.record(route, split, config, shared, asks, sample);
            }
        }
    }

    /// On the main thread: a callout's answer; `false` if it was not one
    /// of this fleet's polls.
    pub fn answered(
        &self,
        router: &Router,
        splits: &Splits,
        id: u64,
        status: Option<u16>,
        body: &[&[u8]],
    ) -> bool {
        let size: usize = body.iter().map(|c| c.len()).sum();
        let sample = if size > MAX_ANSWER_BYTES {
            Sample::Error(format!("an answer of {size} bytes; a check should return one series"))
        } else {
            prometheus::sample(status, &body.concat())
        };
        let call = {
            let mut in_flight = locked(&self.in_flight);
            match in_flight.calls.remove(&id) {
                Some(call) => call,
                None if in_flight.calling => {
                    in_flight.early.insert(id, sample);
                    return true;
                }
                None => return false,
            }
        };
        let (split_id, asks) = call;
        let Some((route, _, split)) = router.split(split_id) else { return true };
        if let (Some(config), Some(shared)) = (prometheus_of(split), splits.get(split_id)) {
            self.record(&route.name, split, config, shared, asks, sample);
        }
        true
    }

    fn record(
        &self,
        route: &str,
        split: &Split,
        config: &PrometheusChecks,
        shared: &SplitShared,
        asks: Asks,
        sample: Sample,
    ) {
        if let Sample::Error(why) = &sample {
            eprintln!(
                "canary-router: route={route} split={}: a Prometheus query: {why}",
                split.identity_hex()
            );
        }
        let (row, result) = asks.counted_as(&sample, config);
        locked(&self.answers).push((split.id, row, result));
        self.dirty.store(true, Ordering::Relaxed);
        let finished = {
            let mut in_flight = locked(&self.in_flight);
            let done =
                in_flight.rounds.get_mut(&split.identity).is_some_and(|round| round.answer(asks, sample));
            if done {
                in_flight.rounds.remove(&split.identity)
            } else {
                None
            }
        };
        if let Some(round) = finished {
            finish(route, split, config, shared, &round);
        }
    }

    /// On the config's first request, the routes of its fleet splits:
    /// they then show their response series at zero, before any of their
    /// own requests, since a check's rate needs the value before the
    /// errors as well as after. None on any later request.
    pub fn routes_to_show_at_zero(&self) -> &[usize] {
        if flag::raise(&self.seen_a_request) {
            &self.fleet_routes
        } else {
            &[]
        }
    }

    /// From a stream, when marked: every fleet split's gauges, and the
    /// answers counted since.
    pub fn show(&self, envoy: FilterEnvoyPtr, router: &Router, splits: &Splits, now_ms: u64) {
        if !flag::take(&self.dirty) {
            return;
        }
        let set = |family, values: &[&[u8]], value| Family::record_into(family, envoy, values, value);
        let answers = std::mem::take(&mut *locked(&self.answers));
        for (route, rule, split) in router.splits() {
            let (Some(config), Some(shared)) = (prometheus_of(split), splits.get(split.id)) else { continue };
            let identity = split.identity_hex();
            let labels = [route.name.as_bytes(), rule.label.as_bytes(), identity.as_bytes()];
            let [route, rule, identity] = labels;
            let (waiting, fleet) = {
                let judged = shared.lock();
                let fleet = judged.fleet.clone().unwrap_or_default();
                (judged.rolled_back.is_none() && !fleet.latch_clear, fleet)
            };
            set(self.waiting, &labels, u64::from(waiting));
            set(self.proxy_beacon, &labels, self.beacon);
            set(self.blind, &labels, u64::from(fleet.view.blind(config.blind_after_ms, now_ms)));
            set(self.failures, &labels, u64::from(fleet.failures));
            for (i, check) in config.checks.iter().enumerate() {
                let check_labels = [route, rule, identity, check.name.as_bytes()];
                if let Some(Some(value)) = fleet.values.get(i) {
                    set(self.check_value, &check_labels, millionths(*value));
                }
                if let Some(poll) = &fleet.last_poll {
                    set(self.unanswered, &check_labels, u64::from(poll.unanswered.contains(&check.name)));
                }
            }
            let gated = split.ramp().is_some_and(|r| r.gate.is_some());
            let rows: Vec<&str> = config
                .checks
                .iter()
                .map(|c| c.name.as_str())
                .chain(poll_round::latch_rows(gated).iter().copied())
                .collect();
            for (_, row, result) in answers.iter().filter(|(id, _, _)| *id == split.id) {
                let (Some(query), Some(result)) = (rows.get(*row), QUERY_RESULTS.get(*result)) else {
                    continue;
                };
                set(self.queries, &[route, rule, identity, query.as_bytes(), result.as_bytes()], 1);
            }
        }
    }
}

/// Logs each fleet split of a config just made that waits for the latch.
pub fn log_waiting(router: &Router, splits: &Splits) {
    for (route, _, split) in router.splits() {
        let (Some(_), Some(shared)) = (prometheus_of(split), splits.get(split.id)) else { continue };
        let judged = shared.lock();
        if judged.rolled_back.is_none() && !judged.fleet.as_ref().is_some_and(|f| f.latch_clear) {
            let target = split.rollback().map_or("-", |r| r.target.as_str());
            eprintln!("{}", log_lines::waiting_for_fleet(&route.name, target, &split.identity_hex()));
        }
    }
}

/// A poll is complete: judged by the core under the split's lock; a
/// rollback it makes, or the latch's clearing, is taken on by every
/// worker at once.
fn finish(route: &str, split: &Split, config: &PrometheusChecks, shared: &SplitShared, round: &Round) {
    let checks = round.checks(config);
    let now_ms = crate::clock::now_ms();
    let mut judged = shared.lock();
    let rolled_back = judged.rolled_back.clone();
    let fleet = judged.fleet.get_or_insert_with(Default::default);
    let was_clear = fleet.latch_clear;
    // The poll rolls back only a split not rolled back yet.
    fleet.rolled_back = rolled_back.clone();
    fleet.record_poll(config, &round.poll(&checks, now_ms));
    let target = split.rollback().map_or("-", |r| r.target.as_str());
    let identity = split.identity_hex();
    match (&rolled_back, fleet.rolled_back.clone()) {
        (None, Some(rolled)) => {
            judged.window.rolled_back = true;
            judged.rolled_back = Some(rolled.clone());
            shared.withhold();
            eprintln!("{}", log_lines::rolled_back(route, target, &identity, &rolled));
        }
        (None, None) if fleet.latch_clear && !was_clear => {
            shared.release();
            eprintln!("{}", log_lines::fleet_latch_clear(route, target, &identity));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_router_core::config;
    use canary_router_core::rollout::prometheus::Span;

    const FLEET: &str = r#"{"routes": [{"name": "b", "default": "stable", "rules": [{"split": {
        "weights": [{"target": "canary", "weight": 50}, {"target": "stable", "weight": 50}],
        "rollback": {"target": "canary", "prometheus": {"cluster": "prometheus", "threshold": 2,
            "checks": [{"name": "error-rate", "query": "errors", "max": 0.05}]}}}}]}]}"#;

    /// A finished poll of the split: the check's answer and the latch's.
    fn poll(split: &Split, shared: &SplitShared, check: Sample, latch: Sample) {
        let rollback = split.rollback().unwrap();
        let config = rollback.prometheus.as_deref().unwrap();
        let queries = poll_round::queries(rollback, "b", &split.identity_hex(), 7, false);
        let mut round = Round::new(config, false, queries.len(), 0);
        round.answer(Asks::Check(0), check);
        round.answer(Asks::Latch, latch);
        assert!(round.answer(Asks::View, Sample::Value(Span { low: 1.0, high: 1.0 })));
        finish("b", split, config, shared, &round);
    }

    fn value(v: f64) -> Sample {
        Sample::Value(Span { low: v, high: v })
    }

    #[test]
    fn a_split_waits_for_the_latch_then_failing_polls_in_a_row_roll_it_back() {
        let router = config::parse(FLEET.as_bytes()).unwrap();
        let split = router.splits().next().unwrap().2;
        let shared = SplitShared::waiting_for_fleet();
        assert!(shared.withheld(), "no traffic before the latch answers");
        poll(split, &shared, Sample::Error("down".into()), Sample::Error("down".into()));
        assert!(shared.withheld(), "Prometheus down clears nothing");
        poll(split, &shared, value(0.01), Sample::NoData);
        assert!(!shared.withheld(), "no proxy rolled it back: it gets traffic");
        poll(split, &shared, value(0.5), value(0.0));
        assert!(!shared.withheld(), "one failing poll of a threshold of two");
        poll(split, &shared, value(0.5), value(0.0));
        assert!(shared.withheld());
        let rolled = shared.lock().rolled_back.clone().unwrap();
        assert_eq!(rolled.reason, "check:error-rate");
    }

    #[test]
    fn a_latch_above_zero_rolls_back_a_proxy_that_never_saw_the_canary_fail() {
        let router = config::parse(FLEET.as_bytes()).unwrap();
        let split = router.splits().next().unwrap().2;
        let shared = SplitShared::waiting_for_fleet();
        poll(split, &shared, Sample::NoData, value(1.0));
        assert!(shared.withheld(), "it never got traffic");
        assert_eq!(shared.lock().rolled_back.as_ref().map(|r| r.reason.as_str()), Some("fleet"));
        poll(split, &shared, value(0.0), value(0.0));
        assert!(shared.withheld(), "a rollback is never undone for the same split");
    }
}
