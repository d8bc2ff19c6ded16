//! Rollback decided by the fleet through Prometheus (`rollback.prometheus`).
//!
//! Once per `every` (with jitter, so a fleet does not poll in lockstep)
//! one VM of the proxy, whichever claims the poll in the shared state
//! first, asks Prometheus each check's query, the fleet latch (did any
//! proxy roll this split back within `lookback`?) and the fleet view (does
//! Prometheus hold this proxy's own series?). The verdict
//! (`FleetState::record_poll`) goes to the shared state, which carries it
//! to every VM of the proxy; the rolled-back gauge, labelled with the
//! split's identity, carries it to every other proxy through Prometheus.
//! Polls are HTTP calls from the root's tick: a request never waits for
//! one, and Prometheus being down only counts errors.

use std::cell::RefCell;
use std::rc::Rc;

use log::{debug, warn};

use super::proxy::LOST_ANSWER_AFTER_MS;
use super::rollback;
use super::shared_state::{read_state, update_state};
use super::Active;
use canary_router_core::rollout::poll_round::{self, Asks, Round};
use canary_router_core::rollout::prometheus::{self, Sample};
use canary_router_core::routing::split::{Split, SplitId};

/// The largest answer read (a check should return one series; a query
/// that returns thousands is a mistake, reported as an error).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A poll call waiting for its answer.
struct Call {
    active: Rc<Active>,
    split_id: SplitId,
    asks: Asks,
}

/// A root's polls in flight: a few per split with `prometheus`, so lists.
#[derive(Default)]
pub struct Polls {
    calls: RefCell<Vec<(u32, Call)>>,
    /// By split identity: a VM runs one round per split at a time.
    rounds: RefCell<Vec<(u64, Round)>>,
}

/// Takes the entry with this key out of a list.
fn take<K: PartialEq, V>(list: &RefCell<Vec<(K, V)>>, key: &K) -> Option<V> {
    let mut list = list.borrow_mut();
    let at = list.iter().position(|(k, _)| k == key)?;
    Some(list.swap_remove(at).1)
}

/// From the root's tick: polls Prometheus for each split whose poll is due
/// and that this VM claims. `jitter` is a random number.
pub fn tick(active: &Rc<Active>, polls: &Polls, root_id: u32, now_ms: u64, jitter: u32) {
    let proxy = &*active.vm.proxy;
    for (_, _, split) in active.router.splits() {
        let Some(config) = split.rollback().and_then(|r| r.prometheus.as_ref()) else { continue };
        // A round whose answers never came (the host should always answer,
        // if only with a timeout) is given up, so polling goes on.
        let stale = now_ms.saturating_sub(LOST_ANSWER_AFTER_MS + u64::from(config.timeout_ms));
        let in_flight = polls
            .rounds
            .borrow()
            .iter()
            .find(|(id, _)| *id == split.identity)
            .map(|(_, round)| round.started_ms);
        match in_flight {
            Some(started) if started > stale => continue,
            Some(_) => {
                take(&polls.rounds, &split.identity);
            }
            None => {}
        }
        let Some(key) = active.state(split).map(|s| s.state_key.as_str()) else { continue };
        let every = config.every_ms;
        let (state, _) = read_state(proxy, key);
        if !poll_round::due(state.next_poll_ms, every, now_ms) {
            continue;
        }
        // The next poll in every ± 10%; the VM whose compare-and-swap moves
        // it polls, and only that one (another that read the same due time
        // finds it moved, whatever its clock and jitter).
        let next = poll_round::next_poll_ms(every, now_ms, jitter);
        let mut claimed = false;
        let written = update_state(proxy, key, |state| {
            claimed = poll_round::due(state.next_poll_ms, every, now_ms);
            if claimed {
                state.next_poll_ms = next;
            }
            claimed
        });
        if claimed && written.is_some() {
            poll(active, polls, split, root_id, now_ms);
        }
    }
}

fn poll(active: &Rc<Active>, polls: &Polls, split: &Split, root_id: u32, now_ms: u64) {
    let (Some(rollback), Some((route, _, _))) = (split.rollback(), active.router.split(split.id)) else {
        return;
    };
    let Some(config) = &rollback.prometheus else { return };
    let gated = split.ramp().is_some_and(|r| r.gate.is_some());
    let queries = poll_round::queries(rollback, &route.name, &split.identity_hex(), active.beacon, gated);
    let round = Round::new(config, gated, queries.len(), now_ms);
    polls.rounds.borrow_mut().push((split.identity, round));
    for (asks, query) in queries {
        let path = prometheus::query_path(&config.path_prefix, &query);
        let headers = prometheus::request_headers(&config.authority, &path, &config.headers);
        match active.vm.proxy.dispatch_http_call(&config.cluster, &headers, b"", config.timeout_ms) {
            Ok(token) => {
                let call = Call { active: active.clone(), split_id: split.id, asks };
                polls.calls.borrow_mut().push((token, call));
            }
            Err(status) => {
                debug!("[ctx {root_id}] query to cluster {} not sent (status {})", config.cluster, status.0);
                let refused = Sample::Error(format!("the proxy refused the call (status {})", status.0));
                record(active, polls, split.id, asks, refused, root_id);
            }
        }
    }
}

/// An HTTP call's answer arrived (or its call failed). Returns whether the
/// token was one of this root's polls.
pub fn answered(polls: &Polls, root_id: u32, token: u32, num_headers: usize, body_size: usize) -> bool {
    let Some(call) = take(&polls.calls, &token) else { return false };
    let proxy = &*call.active.vm.proxy;
    let status = if num_headers == 0 {
        None
    } else {
        proxy.http_call_status().and_then(|s| std::str::from_utf8(&s).ok().and_then(|s| s.parse().ok()))
    };
    let sample = if body_size > MAX_ANSWER_BYTES {
        Sample::Error(format!("an answer of {body_size} bytes; a check should return one series"))
    } else {
        match proxy.http_call_body(body_size) {
            Ok(body) => prometheus::sample(status, &body),
            Err(status) => Sample::Error(format!("cannot read the answer (status {})", status.0)),
        }
    };
    if let Sample::Error(why) = &sample {
        debug!("[ctx {root_id}] Prometheus query {token}: {why}");
    }
    record(&call.active, polls, call.split_id, call.asks, sample, root_id);
    true
}

fn record(active: &Rc<Active>, polls: &Polls, split_id: SplitId, asks: Asks, sample: Sample, root_id: u32) {
    let Some((_, _, split)) = active.router.split(split_id) else { return };
    let Some(config) = split.rollback().and_then(|r| r.prometheus.as_ref()) else { return };
    let (row, result) = asks.counted_as(&sample, config);
    active.gauges.query_answered(&*active.vm.proxy, split, row, result);
    let finished = {
        let mut rounds = polls.rounds.borrow_mut();
        let Some((_, round)) = rounds.iter_mut().find(|(id, _)| *id == split.identity) else { return };
        let done = round.answer(asks, sample);
        drop(rounds);
        if done {
            take(&polls.rounds, &split.identity)
        } else {
            None
        }
    };
    if let Some(round) = finished {
        finish(active, split, &round, root_id);
    }
}

/// A poll is complete: judge it, write the verdict to the shared state and
/// take it on here.
fn finish(active: &Active, split: &Split, round: &Round, root_id: u32) {
    let Some(config) = split.rollback().and_then(|r| r.prometheus.as_ref()) else { return };
    let proxy = &*active.vm.proxy;
    // A compared check is judged on its two answers together.
    let checks = round.checks(config);
    let poll = round.poll(&checks, proxy.now_ms());
    let key = active.state(split).map_or("", |s| s.state_key.as_str());
    match update_state(proxy, key, |state| {
        state.record_poll(config, &poll);
        true
    }) {
        Some(state) => rollback::adopt(active, split, &state, root_id),
        None => {
            warn!("[ctx {root_id}] canary-router: could not record a poll of split {}", split.identity_hex())
        }
    }
}
