//! A rollout rehearsed offline (`canary-router simulate --rollout`): one
//! proxy's worth of synthetic traffic (a request rate, each arm's error
//! rate and latency, changes in time) through the judge the proxies run
//! (`crate::rollout::judge`: the local window, `compare`, latency, the gated ramp),
//! with a simulated clock. Deterministic for a seed.
//!
//! As in the filter, the canary's errors and slow responses are judged as
//! they come (here: within the 100 ms slice they fall in), everything else
//! on the once-a-second tick. Left out: stickiness (each request picks its
//! target by the split's current shares) and Prometheus (its checks are
//! taken as passing, and the fleet as one proxy); `Rehearsal::left_out`
//! says so where the config has them.

use crate::hashing::hash::BUCKETS;
use crate::hashing::rng::Rng;
use crate::rollout::compare::Arm;
use crate::rollout::error_window::{self, Counts, Window};
use crate::rollout::fleet_state::RolledBack;
use crate::rollout::gate::{GateState, PollSummary, Progress};
use crate::rollout::judge::{self, GateEvidence};
use crate::routing::router::Router;
use crate::routing::split::{Live, Moment, Split};

/// One arm's traffic: its error share and its latency, log-normal from its
/// median and p99.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmTraffic {
    pub error_rate: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
}

/// A change at `at_ms` after the start: `None` keeps what was.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Change {
    pub at_ms: u64,
    pub rate: Option<f64>,
    pub canary: ArmChange,
    pub baseline: ArmChange,
    /// How a person would say it ("the canary's errors rise to 5%").
    pub says: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ArmChange {
    pub error_rate: Option<f64>,
    pub median_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The traffic one proxy sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub duration_ms: u64,
    /// Requests per second to the route.
    pub rate: f64,
    pub canary: ArmTraffic,
    pub baseline: ArmTraffic,
    pub changes: Vec<Change>,
}

/// What happened, and when (ms after the start).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at_ms: u64,
    pub what: Happened,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    /// A step began (0-based), with the canary's percentage.
    Step {
        step: usize,
        percent: f64,
    },
    /// A gated step holds past `maxWait`.
    Holding,
    RolledBack {
        reason: String,
        detail: String,
    },
    /// The traffic changed (`Change::says`).
    Changed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rehearsal {
    pub route: String,
    pub events: Vec<Event>,
    pub requests: u64,
    pub canary_requests: u64,
    pub canary_errors: u64,
    /// When the ramp reached its last step (without a ramp: never).
    pub last_step_at_ms: Option<u64>,
    pub rolled_back_at_ms: Option<u64>,
    /// What the config has that a rehearsal does not play.
    pub left_out: Vec<String>,
}

/// The simulated clock's start when the split has no ramp.
const EPOCH_MS: u64 = 1_767_225_600_000;
/// The filter merges the canary's errors and slow responses as they come;
/// a rehearsal, within this slice.
const SLICE_MS: u64 = 100;
const TICK_MS: u64 = 1_000;

/// Rehearses the first split with a rollback (or a ramp) in `router`.
pub fn rehearse(router: &Router, traffic: &Traffic, seed: u64) -> Result<Rehearsal, String> {
    rehearse_until(router, traffic, seed, false)
}

/// The same, ending at the ramp's last step when `until_last_step`: what
/// a measurement of ramps needs, not a user's timeline.
pub fn rehearse_until(
    router: &Router,
    traffic: &Traffic,
    seed: u64,
    until_last_step: bool,
) -> Result<Rehearsal, String> {
    let (route, _, split) = router
        .splits()
        .find(|(_, _, s)| s.rollback().is_some())
        .or_else(|| router.splits().find(|(_, _, s)| s.ramp().is_some()))
        .ok_or("no split with a ramp or a rollback to rehearse")?;
    let mut run = Run::new(router, split, traffic, seed);
    run.play(until_last_step);
    Ok(Rehearsal {
        route: route.name.clone(),
        events: run.events,
        requests: run.requests,
        canary_requests: run.canary_requests,
        canary_errors: run.canary_errors,
        last_step_at_ms: run.last_step_at_ms,
        rolled_back_at_ms: run.rolled_back.as_ref().map(|_| run.rolled_back_at_ms),
        left_out: left_out(split),
    })
}

fn left_out(split: &Split) -> Vec<String> {
    let mut out = Vec::new();
    if split.sticky_by().is_some() {
        out.push("stickiness: each request picks its target by the split's current shares".to_string());
    }
    if split.rollback().is_some_and(|r| r.prometheus.is_some()) {
        out.push("Prometheus: its checks are taken as passing and the fleet as this one proxy".to_string());
    }
    out
}

struct Run<'a> {
    router: &'a Router,
    split: &'a Split,
    traffic: Traffic,
    next_change: usize,
    rng: Rng,
    start_ms: u64,
    window: Window,
    pending: Counts,
    pending_arms: crate::rollout::compare::Arms,
    latency_trigger_ms: f64,
    forecast: f64,
    gate: Option<GateState>,
    step: Option<usize>,
    rolled_back: Option<RolledBack>,
    rolled_back_at_ms: u64,
    holding: bool,
    events: Vec<Event>,
    requests: u64,
    canary_requests: u64,
    canary_errors: u64,
    last_step_at_ms: Option<u64>,
}

impl<'a> Run<'a> {
    fn new(router: &'a Router, split: &'a Split, traffic: &Traffic, seed: u64) -> Run<'a> {
        let shape = split.rollback().and_then(|r| r.window.as_ref()).map_or(0, error_window::shape_of);
        Run {
            router,
            split,
            traffic: traffic.clone(),
            next_change: 0,
            rng: Rng::new(seed),
            start_ms: split.ramp().map_or(EPOCH_MS, |r| r.start_ms),
            window: Window::default().of_shape(shape),
            pending: Counts::default(),
            pending_arms: crate::rollout::compare::Arms::default(),
            latency_trigger_ms: f64::INFINITY,
            forecast: crate::rollout::compare::forecast_rate(&Arm::default()),
            gate: None,
            step: None,
            rolled_back: None,
            rolled_back_at_ms: 0,
            holding: false,
            events: Vec::new(),
            requests: 0,
            canary_requests: 0,
            canary_errors: 0,
            last_step_at_ms: None,
        }
    }

    fn event(&mut self, at_ms: u64, what: Happened) {
        self.events.push(Event { at_ms, what });
    }

    fn play(&mut self, until_last_step: bool) {
        let mut t = 0;
        while t < self.traffic.duration_ms
            && self.rolled_back.is_none()
            && !(until_last_step && self.last_step_at_ms.is_some())
        {
            self.apply_changes(t);
            let now_ms = self.start_ms + t;
            self.track_step(t, now_ms);
            let urgent = self.serve_slice(now_ms);
            let tick = t % TICK_MS == 0;
            if urgent || tick {
                self.merge(t, now_ms);
            }
            if tick && self.rolled_back.is_none() {
                self.look_at_gate(t, now_ms);
            }
            t += SLICE_MS;
        }
    }

    fn apply_changes(&mut self, t: u64) {
        while let Some(change) = self.traffic.changes.get(self.next_change).filter(|c| c.at_ms <= t).cloned()
        {
            self.next_change += 1;
            if let Some(rate) = change.rate {
                self.traffic.rate = rate;
            }
            for (arm, changed) in
                [(&mut self.traffic.canary, change.canary), (&mut self.traffic.baseline, change.baseline)]
            {
                arm.error_rate = changed.error_rate.unwrap_or(arm.error_rate);
                arm.median_ms = changed.median_ms.unwrap_or(arm.median_ms);
                arm.p99_ms = changed.p99_ms.unwrap_or(arm.p99_ms);
            }
            self.event(change.at_ms, Happened::Changed(change.says.clone()));
        }
    }

    /// The split as the filter's decisions see it now.
    fn live(&self) -> Vec<Live> {
        let mut lives = vec![Live::default(); self.router.split_count];
        if let Some(live) = lives.get_mut(self.split.id.index()) {
            *live =
                Live { withheld: self.rolled_back.is_some(), gated_step: self.gate.map(|g| g.step as usize) };
        }
        lives
    }

    /// Records a new step of the ramp in force.
    fn track_step(&mut self, t: u64, now_ms: u64) {
        let Some(ramp) = self.split.ramp() else { return };
        let step = ramp.step_in_force(self.gate.map(|g| g.step as usize), now_ms);
        if step != self.step {
            if let Some(step) = step {
                let percent = ramp.steps.get(step).copied().unwrap_or(0.0);
                self.event(t, Happened::Step { step, percent });
                if step == ramp.last_step() {
                    self.last_step_at_ms = Some(t);
                }
            }
            self.step = step;
        }
    }

    /// One slice's requests; whether one must be judged at once.
    fn serve_slice(&mut self, now_ms: u64) -> bool {
        let Some(rollback) = self.split.rollback() else { return false };
        let lives = self.live();
        let shares = self.split.current_shares(&Moment { roll: 0, now_ms, splits: &lives });
        let share_of = |names: &mut dyn Iterator<Item = &String>| -> f64 {
            names
                .filter_map(|name| self.split.targets().iter().position(|t| t == name))
                .map(|i| f64::from(shares.get(i).copied().unwrap_or(0)) / f64::from(BUCKETS))
                .sum()
        };
        let canary_share = share_of(&mut std::iter::once(&rollback.target));
        let window = rollback.window.as_ref();
        let compare = window.and_then(|w| w.compare.as_ref());
        let baseline_share = compare.map_or(0.0, |c| share_of(&mut c.baseline.iter()));
        let n = poisson(&mut self.rng, self.traffic.rate * SLICE_MS as f64 / 1_000.0);
        self.requests += n;
        let mut urgent = false;
        for _ in 0..n {
            let pick = self.rng.unit();
            let (is_canary, arm) = if pick < canary_share {
                (true, self.traffic.canary)
            } else if pick < canary_share + baseline_share {
                (false, self.traffic.baseline)
            } else {
                continue;
            };
            let error = self.rng.unit() < arm.error_rate;
            let ms = latency_ms(&mut self.rng, &arm);
            let timed = compare.and_then(|c| c.latency.as_ref()).map(|_| ms);
            if is_canary {
                self.canary_requests += 1;
                self.canary_errors += u64::from(error);
                let bucket =
                    window.and_then(|w| w.latency.as_ref()).map(|l| error_window::latency_bucket(ms, l));
                self.pending.add(Counts::one(error, bucket));
                self.pending_arms.canary.count(error, timed, Some(self.forecast));
                urgent |=
                    error || bucket.is_some_and(error_window::is_slow) || ms as f64 > self.latency_trigger_ms;
            } else {
                self.pending_arms.baseline.count(error, timed, None);
            }
        }
        urgent
    }

    /// Merges the slice's responses into the window and judges it.
    fn merge(&mut self, t: u64, now_ms: u64) {
        let Some(config) = self.split.rollback().and_then(|r| r.window.as_ref()) else { return };
        let bucket = error_window::bucket_of(now_ms, config.window_ms);
        let step = self.step.unwrap_or(0) as u32;
        self.window.add(bucket, self.pending, &self.pending_arms, step);
        self.pending = Counts::default();
        self.pending_arms = crate::rollout::compare::Arms::default();
        let look = judge::look_at_window(config, &self.window, bucket, self.split.ramp());
        self.latency_trigger_ms =
            look.compared.and_then(|c| c.latency).and_then(|l| l.trigger_ms).unwrap_or(f64::INFINITY);
        self.forecast = crate::rollout::compare::forecast_rate(&look.arms.baseline);
        if let Some(crossed) = look.crossed {
            let detail = judge::crossing_detail(config, &look, crossed);
            self.roll_back(t, RolledBack { since_ms: now_ms, reason: crossed.reason().into(), detail });
        }
    }

    fn roll_back(&mut self, t: u64, rolled: RolledBack) {
        self.event(t, Happened::RolledBack { reason: rolled.reason.clone(), detail: rolled.detail.clone() });
        self.rolled_back = Some(rolled);
        self.rolled_back_at_ms = t;
    }

    /// The tick's look at a gated ramp.
    fn look_at_gate(&mut self, t: u64, now_ms: u64) {
        let (Some(ramp), Some(rollback)) = (self.split.ramp(), self.split.rollback()) else { return };
        let Some(gate) = &ramp.gate else { return };
        let mut gated = match self.gate {
            Some(gated) => gated,
            None if now_ms >= ramp.start_ms => GateState::first(now_ms),
            None => return,
        };
        let passed = PollSummary { at_ms: now_ms, unanswered: Vec::new(), failed: Vec::new() };
        let evidence = GateEvidence {
            window: rollback.window.as_ref().map(|_| &self.window),
            poll: rollback.prometheus.as_ref().map(|_| Some(&passed)),
            fleet: None,
            live: true,
            view_confirmed: true,
            now_ms,
        };
        let (_, progress) = judge::look_at_gate(ramp, gate, rollback, &mut gated, &evidence);
        self.gate = Some(gated);
        match progress {
            Progress::HoldingPastMaxWait if !self.holding => {
                self.holding = true;
                self.event(t, Happened::Holding);
            }
            Progress::RollBack => self.roll_back(t, judge::max_wait_rollback(ramp, &gated, now_ms)),
            Progress::Advanced(_) => self.holding = false,
            _ => {}
        }
        self.track_step(t, now_ms);
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u = rng.unit().max(f64::MIN_POSITIVE);
    let v = rng.unit();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// A Poisson draw with mean `lambda`.
fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        return (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-lambda).exp();
    let (mut k, mut product) = (0, rng.unit());
    while product > limit {
        k += 1;
        product *= rng.unit();
    }
    k
}

/// z of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

/// A log-normal latency with the arm's median and p99, in whole ms.
fn latency_ms(rng: &mut Rng, arm: &ArmTraffic) -> u64 {
    let sigma = (arm.p99_ms / arm.median_ms).max(1.0).ln() / Z99;
    (arm.median_ms * (sigma * normal(rng)).exp()).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    const CONFIG: &str = r#"{"routes": [{"name": "cart", "default": "stable", "rules": [{"split": {
        "weights": [{"target": "next", "weight": 1}, {"target": "stable", "weight": 99}],
        "ramp": {"target": "next", "start": "2026-01-01T00:00:00Z", "every": "1m", "steps": [5, 25, 50, 100],
                 "gate": {"minRequests": 20, "maxWait": "20m"}},
        "rollback": {"target": "next", "minRequests": 20, "window": "60s",
                     "compare": {"maxErrorRateIncrease": 0.02, "latency": {"percentile": 99, "maxRatio": 1.5}}}}}]}]}"#;

    fn traffic(canary_errors: f64) -> Traffic {
        let arm = ArmTraffic { error_rate: 0.01, median_ms: 50.0, p99_ms: 200.0 };
        Traffic {
            duration_ms: 30 * 60_000,
            rate: 100.0,
            canary: ArmTraffic { error_rate: canary_errors, ..arm },
            baseline: arm,
            changes: Vec::new(),
        }
    }

    #[test]
    fn a_healthy_canary_reaches_its_last_step_and_a_bad_one_is_rolled_back() {
        let router = config::parse(CONFIG.as_bytes()).unwrap();
        let healthy = rehearse(&router, &traffic(0.01), 1).unwrap();
        assert_eq!(healthy.rolled_back_at_ms, None, "{:?}", healthy.events);
        let last = healthy.last_step_at_ms.expect("the ramp never finished");
        assert!(last >= 3 * 60_000, "every step lasts at least a minute: {last}");
        let steps = healthy.events.iter().filter(|e| matches!(e.what, Happened::Step { .. })).count();
        assert_eq!(steps, 4);
        let bad = rehearse(&router, &traffic(0.2), 1).unwrap();
        let rolled = bad.events.iter().find_map(|e| match &e.what {
            Happened::RolledBack { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(rolled.as_deref(), Some("compare:errors"));
        assert!(bad.canary_requests < 2_000, "{}", bad.canary_requests);
    }

    #[test]
    fn a_seed_replays_the_same_rehearsal() {
        let router = config::parse(CONFIG.as_bytes()).unwrap();
        assert_eq!(rehearse(&router, &traffic(0.05), 7), rehearse(&router, &traffic(0.05), 7));
        assert_ne!(rehearse(&router, &traffic(0.05), 7), rehearse(&router, &traffic(0.05), 8));
    }

    #[test]
    fn draws_have_their_means() {
        let mut rng = Rng::new(3);
        let n = 20_000;
        let mean = (0..n).map(|_| poisson(&mut rng, 4.2) as f64).sum::<f64>() / f64::from(n);
        assert!((mean - 4.2).abs() < 0.1, "{mean}");
        let arm = ArmTraffic { error_rate: 0.0, median_ms: 100.0, p99_ms: 400.0 };
        let mut times: Vec<u64> = (0..n).map(|_| latency_ms(&mut rng, &arm)).collect();
        times.sort_unstable();
        let (median, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
        assert!((95..106).contains(&median) && (370..430).contains(&p99), "{median} {p99}");
    }
}
