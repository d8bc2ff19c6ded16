//! A gated ramp's progress: each step is earned, not scheduled. Step k+1
//! begins only when step k has lasted at least `every` and the split's
//! rollback judged the canary healthy during step k: its local window saw
//! `minRequests` responses since the step began, within the error rate and
//! latency, and its Prometheus checks (if any) passed in a poll made during
//! the step, none answering no data or an error. A step that cannot be
//! judged within `maxWait` holds (and says so) or rolls back; it never
//! advances on no data. With Prometheus, a proxy also takes the furthest
//! step any proxy of the fleet reached (the step latch), so a fleet moves
//! together and a restarted proxy resumes where the fleet is; and it takes
//! a step only once Prometheus shows its own series (the fleet view is
//! confirmed), so a fleet that cannot see itself holds instead of moving.
//!
//! Time is each step's own clock, never a date from the config: it runs
//! only while the step could be judged (the split live on this proxy: the
//! ramp started, not waiting for the fleet, not rolled back; and the ramp
//! not held), from the moment a proxy first saw the step. With Prometheus
//! a proxy takes the fleet's clock for its step when that is further
//! (the step latch carries it), so a fleet agrees on how long a step was
//! judged even when its proxies restart. `every` and `maxWait` are read
//! on this clock.
//!
//! Pure: the proxy's shared data keeps `GateState` (in `FleetState`), the
//! glue gathers the evidence.

use crate::rollout::compare::Compared;
use crate::rollout::error_window::Counts;
use crate::rollout::settings::{Gate, LocalWindow, OnMaxWait, Ramp};

/// The most one look adds to a step's clock: a look longer than this
/// after the one before (a clock stepped forward, a stopped VM) counts
/// this much, never more. Looks come every second.
pub const MAX_LOOK_GAP_MS: u64 = 60_000;

/// Where a gated ramp stands, as a proxy's workers share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateState {
    /// The step in force (0 is the first).
    pub step: u32,
    /// When this proxy entered it (ms since the epoch): for people.
    pub since_ms: u64,
    /// The step's clock: how long it could be judged (ms).
    pub clock_ms: u64,
    /// When the clock was last moved (ms since the epoch).
    pub looked_ms: u64,
    /// Whether it holds, why and since when.
    pub holding: Option<Holding>,
}

/// Why a step holds: it stays where it is, and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// The config's `hold`.
    Hold,
    /// Past `maxWait` without a verdict (`onMaxWait: hold`).
    MaxWait,
    /// Earned, but the fleet view has not shown this proxy's series.
    FleetView,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    pub reason: HoldReason,
    /// Since when, for this reason (ms since the epoch).
    pub since_ms: u64,
}

impl GateState {
    /// The first step, entered at the first look once the ramp started and
    /// the split is live on this proxy: never earlier, whatever `start` says.
    pub fn first(now_ms: u64) -> GateState {
        GateState::entered(0, now_ms, 0)
    }

    fn entered(step: u32, now_ms: u64, clock_ms: u64) -> GateState {
        GateState { step, since_ms: now_ms, clock_ms, looked_ms: now_ms, holding: None }
    }

    /// Moves the clock on to `now_ms`, counting the time since the last
    /// look only if the step could be judged all along (`judging`). A
    /// clock that stepped back counts nothing and goes on from `now_ms`.
    fn look(&mut self, now_ms: u64, judging: bool) {
        if judging && now_ms > self.looked_ms {
            self.clock_ms = self.clock_ms.saturating_add((now_ms - self.looked_ms).min(MAX_LOOK_GAP_MS));
        }
        self.looked_ms = now_ms;
    }

    /// Holds for `reason` from `now_ms` on, or since it began to.
    fn hold(&mut self, reason: HoldReason, now_ms: u64) {
        if self.holding.is_none_or(|h| h.reason != reason) {
            self.holding = Some(Holding { reason, since_ms: now_ms });
        }
    }

    /// Whether it holds for `reason`.
    pub fn holds_for(&self, reason: HoldReason) -> bool {
        self.holding.is_some_and(|h| h.reason == reason)
    }
}

/// The fleet's furthest step and the longest any proxy judged it: what
/// the step latch reads back from Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetProgress {
    /// 0-based.
    pub step: u32,
    pub clock_ms: u64,
}

/// The step latch's gauge holds the step (1-based) times this, plus the
/// step's clock in seconds: one `max()` then reads the furthest step and,
/// among the proxies at it, the longest clock (exact in a float: a ramp
/// has at most a few dozen steps).
pub const PROGRESS_STEP: u64 = 1_000_000_000;

impl FleetProgress {
    /// The gauge value of a proxy at `state` (0: not started).
    pub fn gauge(state: Option<&GateState>) -> u64 {
        state.map_or(0, |s| {
            u64::from(s.step.saturating_add(1)) * PROGRESS_STEP + (s.clock_ms / 1_000).min(PROGRESS_STEP - 1)
        })
    }

    /// The furthest progress in a latch answer; `None` when no proxy had
    /// started (or the value is not one of ours).
    pub fn read(value: f64) -> Option<FleetProgress> {
        if value.is_nan() || value < PROGRESS_STEP as f64 || value.is_infinite() {
            return None;
        }
        let value = value as u64;
        let step = u32::try_from(value / PROGRESS_STEP - 1).ok()?;
        Some(FleetProgress { step, clock_ms: (value % PROGRESS_STEP) * 1_000 })
    }
}

/// What the last Prometheus poll said, for the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSummary {
    /// When its answers were judged (ms since the epoch).
    pub at_ms: u64,
    /// Checks that had no data or no usable answer, by name.
    pub unanswered: Vec<String>,
    /// Checks whose value crossed a bound, by name.
    pub failed: Vec<String>,
}

/// What the gate waits for at the current step, and whether it has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub passed: bool,
    /// The local window, if the rollback has one: responses since the step
    /// began, the number needed, the error rate and the latency estimate.
    pub responses: u64,
    pub needed: u64,
    pub error_rate: Option<f64>,
    pub latency_ms: Option<f64>,
    /// With `compare`: the canary against its baseline since the step
    /// began; the step needs it within its allowances.
    pub compared: Option<Compared>,
    /// With Prometheus: the poll the gate is waiting for (`Waiting` until
    /// one is made during the step).
    pub poll: PollState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollState {
    /// The rollback asks no Prometheus.
    NotAsked,
    /// No poll has been judged since the step began.
    Waiting,
    Passed,
    /// Named checks crossed a bound.
    Failed(Vec<String>),
    /// Named checks answered no data or an error.
    Unanswered(Vec<String>),
}

impl std::fmt::Display for PollState {
    /// For a log line: what the Prometheus side of a judgement said.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PollState::NotAsked => write!(f, "no Prometheus checks"),
            PollState::Waiting => write!(f, "no poll during the step yet"),
            PollState::Passed => write!(f, "Prometheus checks passed"),
            PollState::Failed(names) => write!(f, "checks failed: {}", names.join(", ")),
            PollState::Unanswered(names) => write!(f, "no data from checks: {}", names.join(", ")),
        }
    }
}

/// Judges the current step: `step` are the local window's responses since
/// it began (`None` without a local window), `compared` the canary against
/// its baseline since then (`None` without `compare`), `poll` the last
/// poll (`None` without Prometheus).
pub fn judge(
    gate: &Gate,
    window: Option<&LocalWindow>,
    step: Option<&Counts>,
    compared: Option<&Compared>,
    poll: Option<Option<&PollSummary>>,
    state: &GateState,
) -> Judgement {
    let local = window.zip(step);
    let responses = step.map_or(0, |c| c.requests);
    let local_passed = local.is_none_or(|(window, counts)| {
        counts.requests >= gate.min_requests
            && window.max_error_rate.is_none_or(|max| counts.error_rate() <= max)
            && window.latency.as_ref().is_none_or(|latency| !counts.too_slow(latency))
    }) && compared.is_none_or(Compared::within);
    let poll = match poll {
        None => PollState::NotAsked,
        Some(None) => PollState::Waiting,
        Some(Some(summary)) if summary.at_ms < state.since_ms => PollState::Waiting,
        Some(Some(summary)) if !summary.failed.is_empty() => PollState::Failed(summary.failed.clone()),
        Some(Some(summary)) if !summary.unanswered.is_empty() => {
            PollState::Unanswered(summary.unanswered.clone())
        }
        Some(Some(_)) => PollState::Passed,
    };
    let poll_passed = matches!(poll, PollState::NotAsked | PollState::Passed);
    Judgement {
        passed: local_passed && poll_passed,
        responses,
        needed: gate.min_requests,
        error_rate: local.map(|(_, c)| c.error_rate()),
        latency_ms: local.and_then(|(w, c)| w.latency.as_ref().and_then(|l| c.percentile_ms(l))),
        compared: compared.copied(),
        poll,
    }
}

/// What a look at the gate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The ramp has not started: the listed weights apply.
    NotStarted,
    /// At the step, waiting (for `every`, for a verdict, or for the split
    /// to be live here).
    Waiting,
    /// Took the next step (its index).
    Advanced(u32),
    /// The last step: nothing left to judge.
    Done,
    /// `hold: true`: frozen at the step, its clock stopped.
    Held,
    /// Earned, but Prometheus has not shown this proxy's own series: the
    /// fleet view may be blind, so the step holds.
    AwaitingView,
    /// Past `maxWait` without a verdict, holding (`onMaxWait: hold`).
    HoldingPastMaxWait,
    /// Past `maxWait` without a verdict: roll back (`onMaxWait: rollback`).
    RollBack,
}

/// What a look knows besides the ramp and its state.
#[derive(Debug, Clone, Copy)]
pub struct Look<'a> {
    pub judgement: &'a Judgement,
    /// The step latch's reading, with Prometheus.
    pub fleet: Option<FleetProgress>,
    /// The split is live on this proxy: not waiting for the fleet latch,
    /// not rolled back.
    pub live: bool,
    /// The fleet view showed this proxy's own series (true without
    /// Prometheus).
    pub view_confirmed: bool,
    pub now_ms: u64,
}

/// Moves the state on at `look.now_ms`: the step's clock, then the fleet's
/// furthest step if it is ahead, then the next step if this one is earned.
pub fn progress(ramp: &Ramp, gate: &Gate, state: &mut GateState, look: &Look<'_>) -> Progress {
    let now_ms = look.now_ms;
    if now_ms < ramp.start_ms {
        return Progress::NotStarted;
    }
    state.look(now_ms, look.live && !ramp.hold);
    let last = u32::try_from(ramp.last_step()).unwrap_or(u32::MAX);
    let mut adopted = false;
    if let Some(fleet) = look.fleet {
        let fleet_step = fleet.step.min(last);
        if fleet_step > state.step {
            *state = GateState::entered(fleet_step, now_ms, fleet.clock_ms);
            adopted = true;
        } else if fleet_step == state.step {
            state.clock_ms = state.clock_ms.max(fleet.clock_ms);
        }
    }
    let progress = next(ramp, gate, state, look, adopted, last);
    match progress {
        Progress::Held => state.hold(HoldReason::Hold, now_ms),
        Progress::AwaitingView => state.hold(HoldReason::FleetView, now_ms),
        Progress::HoldingPastMaxWait => state.hold(HoldReason::MaxWait, now_ms),
        _ => state.holding = None,
    }
    progress
}

/// What the step does, its clock moved and the fleet's step taken.
fn next(
    ramp: &Ramp,
    gate: &Gate,
    state: &mut GateState,
    look: &Look<'_>,
    adopted: bool,
    last: u32,
) -> Progress {
    if state.step >= last {
        return Progress::Done;
    }
    if adopted {
        // The judgement was of the step before; this one has none yet.
        return Progress::Waiting;
    }
    if ramp.hold {
        return Progress::Held;
    }
    if !look.live {
        return Progress::Waiting;
    }
    if state.clock_ms >= ramp.every_ms && look.judgement.passed {
        if !look.view_confirmed {
            // A healthy canary is never rolled back for a blind view: it holds.
            return Progress::AwaitingView;
        }
        *state = GateState::entered(state.step + 1, look.now_ms, 0);
        return Progress::Advanced(state.step);
    }
    match gate.max_wait_ms {
        Some(max_wait) if state.clock_ms >= max_wait => match gate.on_max_wait {
            OnMaxWait::Rollback => Progress::RollBack,
            OnMaxWait::Hold => Progress::HoldingPastMaxWait,
        },
        _ => Progress::Waiting,
    }
}

/// When the step may be left at the earliest (ms since the epoch), if its
/// clock runs from now on; `None` at the last step.
pub fn earliest_next_ms(ramp: &Ramp, state: &GateState) -> Option<u64> {
    (usize::try_from(state.step).unwrap_or(usize::MAX) < ramp.last_step())
        .then(|| state.looked_ms + ramp.every_ms.saturating_sub(state.clock_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::error_window::{latency_bucket, LATENCY_BUCKETS};
    use crate::rollout::settings::Latency;

    const START: u64 = 1_000_000;
    const EVERY: u64 = 60_000;

    fn ramp(gate: Gate, hold: bool) -> Ramp {
        Ramp {
            target: "canary".into(),
            start_ms: START,
            every_ms: EVERY,
            steps: vec![1.0, 5.0, 25.0, 100.0],
            gate: Some(gate),
            hold,
        }
    }

    fn gate(max_wait_ms: Option<u64>, on_max_wait: OnMaxWait) -> Gate {
        Gate { min_requests: 20, max_wait_ms, on_max_wait }
    }

    fn window() -> LocalWindow {
        LocalWindow {
            max_error_rate: Some(0.1),
            min_requests: 20,
            window_ms: 60_000,
            latency: Some(Latency { percentile: 90.0, max_ms: 200 }),
            abandoned_after_ms: 500,
            compare: None,
        }
    }

    fn counts(requests: u64, errors: u64, ms: u64) -> Counts {
        let mut latency = [0; LATENCY_BUCKETS];
        latency[latency_bucket(ms, window().latency.as_ref().unwrap())] = requests as u32;
        Counts { requests, errors, latency }
    }

    fn local(gate: &Gate, c: Counts, state: &GateState) -> Judgement {
        judge(gate, Some(&window()), Some(&c), None, None, state)
    }

    /// A look by a live proxy with no fleet, its view confirmed.
    fn at(judgement: &Judgement, now_ms: u64) -> Look<'_> {
        Look { judgement, fleet: None, live: true, view_confirmed: true, now_ms }
    }

    /// Looks once a second from `from` to `to` (inclusive), as ticks do;
    /// returns the last look's progress.
    fn looks(r: &Ramp, g: &Gate, state: &mut GateState, j: &Judgement, from: u64, to: u64) -> Progress {
        let mut now = from;
        loop {
            let p = progress(r, g, state, &at(j, now));
            if now >= to || !matches!(p, Progress::Waiting | Progress::Held | Progress::HoldingPastMaxWait) {
                return p;
            }
            now = (now + 1_000).min(to);
        }
    }

    #[test]
    fn a_step_is_earned_by_enough_healthy_responses_and_lasts_every_at_least() {
        let g = gate(None, OnMaxWait::Hold);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(START);
        let early = local(&g, counts(99, 0, 10), &state);
        assert_eq!(progress(&r, &g, &mut state, &at(&early, START - 1)), Progress::NotStarted);
        let healthy = local(&g, counts(25, 1, 50), &state);
        assert!(healthy.passed);
        assert_eq!(
            looks(&r, &g, &mut state, &healthy, START, START + EVERY - 1),
            Progress::Waiting,
            "not before every"
        );
        assert_eq!(progress(&r, &g, &mut state, &at(&healthy, START + EVERY)), Progress::Advanced(1));
        assert_eq!((state.step, state.since_ms, state.clock_ms), (1, START + EVERY, 0));
        let too_few = local(&g, counts(19, 0, 50), &state);
        assert!(!too_few.passed && too_few.responses == 19 && too_few.needed == 20);
        assert_eq!(
            looks(&r, &g, &mut state, &too_few, START + EVERY, START + 10 * EVERY),
            Progress::Waiting,
            "no verdict, no step"
        );
    }

    #[test]
    fn errors_or_slow_responses_fail_the_step() {
        let g = gate(None, OnMaxWait::Hold);
        let state = GateState::first(START);
        assert!(!local(&g, counts(100, 11, 50), &state).passed, "11% errors");
        let slow = local(&g, counts(100, 0, 250), &state);
        assert!(!slow.passed, "p90 above 200 ms");
        assert!(slow.latency_ms.unwrap() > 200.0);
        assert!(local(&g, counts(100, 10, 200), &state).passed, "10% errors and 200 ms are within");
    }

    #[test]
    fn the_poll_must_pass_during_the_step_with_every_check_answered() {
        let g = gate(None, OnMaxWait::Hold);
        let state = GateState { step: 1, ..GateState::first(5_000) };
        let poll = |at_ms, failed: &[&str], unanswered: &[&str]| PollSummary {
            at_ms,
            failed: failed.iter().map(|s| s.to_string()).collect(),
            unanswered: unanswered.iter().map(|s| s.to_string()).collect(),
        };
        let judged = |p: Option<&PollSummary>| judge(&g, None, None, None, Some(p), &state);
        assert_eq!(judged(None).poll, PollState::Waiting);
        assert_eq!(
            judged(Some(&poll(4_999, &[], &[]))).poll,
            PollState::Waiting,
            "a poll of the step before"
        );
        assert!(judged(Some(&poll(5_000, &[], &[]))).passed);
        let no_data = judged(Some(&poll(6_000, &[], &["error-rate"])));
        assert_eq!(
            (no_data.passed, no_data.poll.clone()),
            (false, PollState::Unanswered(vec!["error-rate".into()]))
        );
        assert_eq!(no_data.poll.to_string(), "no data from checks: error-rate", "said in words, not as Rust");
        assert!(!judged(Some(&poll(6_000, &["p99"], &[]))).passed);
        assert!(
            judge(&g, None, None, None, None, &state).passed,
            "no local window and no Prometheus: nothing to wait for"
        );
    }

    #[test]
    fn past_max_wait_a_step_holds_or_rolls_back_and_never_advances_on_no_data() {
        let g = gate(Some(3 * EVERY), OnMaxWait::Hold);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(START);
        let nothing = local(&g, counts(0, 0, 0), &state);
        assert_eq!(looks(&r, &g, &mut state, &nothing, START, START + 3 * EVERY - 1), Progress::Waiting);
        assert_eq!(
            progress(&r, &g, &mut state, &at(&nothing, START + 3 * EVERY)),
            Progress::HoldingPastMaxWait
        );
        assert_eq!(
            looks(&r, &g, &mut state, &nothing, START + 3 * EVERY, START + 9 * EVERY),
            Progress::HoldingPastMaxWait
        );
        assert_eq!(
            state.holding,
            Some(Holding { reason: HoldReason::MaxWait, since_ms: START + 3 * EVERY }),
            "since when, kept"
        );
        assert_eq!(state.step, 0);
        let healthy = local(&g, counts(30, 0, 10), &state);
        assert_eq!(
            progress(&r, &g, &mut state, &at(&healthy, START + 9 * EVERY + 1_000)),
            Progress::Advanced(1),
            "a verdict at last"
        );
        assert_eq!(state.holding, None);
        let g = gate(Some(3 * EVERY), OnMaxWait::Rollback);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(START);
        assert_eq!(looks(&r, &g, &mut state, &nothing, START, START + 3 * EVERY), Progress::RollBack);
    }

    #[test]
    fn step_one_begins_when_the_proxy_first_sees_the_split_not_at_start() {
        // Applied a year after its `start`, with maxWait one minute.
        let g = gate(Some(EVERY), OnMaxWait::Rollback);
        let r = ramp(g.clone(), false);
        let applied = START + 365 * 86_400_000;
        let mut state = GateState::first(applied);
        let nothing = local(&g, counts(0, 0, 0), &state);
        assert_eq!(
            progress(&r, &g, &mut state, &at(&nothing, applied)),
            Progress::Waiting,
            "the first look judges nothing it did not see"
        );
        assert_eq!(looks(&r, &g, &mut state, &nothing, applied, applied + EVERY - 1_000), Progress::Waiting);
        assert_eq!(progress(&r, &g, &mut state, &at(&nothing, applied + EVERY)), Progress::RollBack);
    }

    #[test]
    fn hold_stops_the_clock_and_the_last_step_is_the_end() {
        let g = gate(Some(2 * EVERY), OnMaxWait::Rollback);
        let held = ramp(g.clone(), true);
        let mut state = GateState::first(START);
        let nothing = local(&g, counts(0, 0, 0), &state);
        assert_eq!(looks(&held, &g, &mut state, &nothing, START, START + 50 * EVERY), Progress::Held);
        assert_eq!((state.step, state.clock_ms), (0, 0), "held for 25 maxWaits, judged for none");
        // Cleared: the clock goes on from where it stopped.
        let r = ramp(g.clone(), false);
        let resumed = START + 50 * EVERY;
        assert_eq!(
            looks(&r, &g, &mut state, &nothing, resumed, resumed + 2 * EVERY - 1_000),
            Progress::Waiting
        );
        assert_eq!(progress(&r, &g, &mut state, &at(&nothing, resumed + 2 * EVERY)), Progress::RollBack);

        let g = gate(None, OnMaxWait::Hold);
        let mut state = GateState::first(START);
        let healthy = local(&g, counts(50, 0, 10), &state);
        let held = ramp(g.clone(), true);
        assert_eq!(looks(&held, &g, &mut state, &healthy, START, START + 9 * EVERY), Progress::Held);
        let r = ramp(g.clone(), false);
        assert_eq!(
            looks(&r, &g, &mut state, &healthy, START + 9 * EVERY, START + 11 * EVERY),
            Progress::Advanced(1)
        );
        assert_eq!(earliest_next_ms(&r, &state), Some(state.looked_ms + EVERY));
        state.step = 3;
        assert_eq!(progress(&r, &g, &mut state, &at(&healthy, START + 20 * EVERY)), Progress::Done);
        assert_eq!(earliest_next_ms(&r, &state), None);
    }

    #[test]
    fn a_split_that_is_not_live_here_runs_no_clock() {
        let g = gate(Some(EVERY), OnMaxWait::Rollback);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(START);
        let healthy = local(&g, counts(50, 0, 10), &state);
        for now in (START..START + 10 * EVERY).step_by(1_000) {
            let look = Look { live: false, ..at(&healthy, now) };
            assert_eq!(progress(&r, &g, &mut state, &look), Progress::Waiting);
        }
        assert_eq!(state.clock_ms, 0, "waiting for the fleet latch is no time at the step");
    }

    #[test]
    fn a_clock_that_steps_back_or_jumps_ahead_neither_stalls_nor_spends_the_step() {
        let g = gate(Some(5 * EVERY), OnMaxWait::Rollback);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(START + 100 * EVERY);
        let healthy = local(&g, counts(50, 0, 10), &state);
        // The wall clock steps back by an hour: the step still lasts `every`
        // of looks, from now on.
        let back = START + 100 * EVERY - 3_600_000;
        assert_eq!(looks(&r, &g, &mut state, &healthy, back, back + EVERY - 1_000), Progress::Waiting);
        assert_eq!(progress(&r, &g, &mut state, &at(&healthy, back + EVERY)), Progress::Advanced(1));
        // It jumps a day ahead: one look counts at most MAX_LOOK_GAP_MS.
        let nothing = local(&g, counts(0, 0, 0), &state);
        assert_eq!(progress(&r, &g, &mut state, &at(&nothing, back + EVERY + 86_400_000)), Progress::Waiting);
        assert_eq!(state.clock_ms, MAX_LOOK_GAP_MS);
    }

    #[test]
    fn an_earned_step_holds_while_the_fleet_view_is_not_confirmed_and_never_rolls_back_for_it() {
        let g = gate(Some(2 * EVERY), OnMaxWait::Rollback);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(START);
        let healthy = local(&g, counts(50, 0, 10), &state);
        for now in (START..=START + 10 * EVERY).step_by(1_000) {
            let look = Look { view_confirmed: false, ..at(&healthy, now) };
            let p = progress(&r, &g, &mut state, &look);
            assert!(matches!(p, Progress::Waiting | Progress::AwaitingView), "{p:?} at {now}");
        }
        assert!(state.holds_for(HoldReason::FleetView) && state.step == 0);
        let since = state.holding.map(|h| h.since_ms);
        assert_eq!(since, Some(START + EVERY), "since it was first earned");
        assert_eq!(
            progress(&r, &g, &mut state, &at(&healthy, START + 10 * EVERY + 1_000)),
            Progress::Advanced(1)
        );
    }

    #[test]
    fn a_proxy_takes_the_fleets_furthest_step_and_clock_never_past_the_last() {
        let g = gate(None, OnMaxWait::Hold);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(START);
        let nothing = local(&g, counts(0, 0, 0), &state);
        let now = START + EVERY / 2;
        let fleet =
            |step, clock_ms| Look { fleet: Some(FleetProgress { step, clock_ms }), ..at(&nothing, now) };
        assert_eq!(progress(&r, &g, &mut state, &fleet(2, 7_000)), Progress::Waiting);
        assert_eq!(
            (state.step, state.since_ms, state.clock_ms),
            (2, now, 7_000),
            "resumes at the fleet's step"
        );
        assert_eq!(progress(&r, &g, &mut state, &fleet(2, 9_000)), Progress::Waiting);
        assert_eq!(state.clock_ms, 9_000, "the fleet judged the step longer");
        assert_eq!(progress(&r, &g, &mut state, &fleet(1, 99_000)), Progress::Waiting, "never back");
        assert_eq!((state.step, state.clock_ms), (2, 9_000));
        assert_eq!(progress(&r, &g, &mut state, &fleet(99, 0)), Progress::Done);
        assert_eq!(state.step, 3);
    }

    #[test]
    fn the_step_latch_gauge_carries_the_step_and_its_clock() {
        let state = GateState { step: 2, clock_ms: 95_400, ..GateState::first(START) };
        let value = FleetProgress::gauge(Some(&state));
        assert_eq!(value, 3_000_000_095);
        assert_eq!(FleetProgress::read(value as f64), Some(FleetProgress { step: 2, clock_ms: 95_000 }));
        assert_eq!(FleetProgress::gauge(None), 0);
        for nothing in [0.0, 999_999_999.0, f64::NAN, f64::INFINITY, -5.0] {
            assert_eq!(FleetProgress::read(nothing), None, "{nothing}");
        }
    }
}
