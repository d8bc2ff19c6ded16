//! A gated ramp's progress: each step is earned, not scheduled. Step k+1
//! begins only when step k has lasted at least `every` and the split's
//! rollback judged the canary healthy during step k: its local window saw
//! `minRequests` responses since the step began, within the error rate and
//! latency, and its Prometheus checks (if any) passed in a poll made during
//! the step, none answering no data or an error. A step that cannot be
//! judged within `maxWait` holds (and says so) or rolls back; it never
//! advances on no data. With Prometheus, a proxy also takes the furthest
//! step any proxy of the fleet reached (the step latch), so a fleet moves
//! together and a restarted proxy resumes where the fleet is.
//!
//! Pure: the proxy's shared data keeps `GateState` (in `FleetState`), the
//! glue gathers the evidence.

use crate::error_window::Counts;
use crate::split::{Gate, LocalWindow, OnMaxWait, Ramp};

/// Where a gated ramp stands, as a proxy's workers share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateState {
    /// The step in force (0 is the first).
    pub step: u32,
    /// When it began (ms since the epoch).
    pub since_ms: u64,
    /// Since when it holds past `maxWait`, if it does.
    pub held_since_ms: Option<u64>,
}

impl GateState {
    /// A ramp's first step, from its start.
    pub fn first(ramp: &Ramp) -> GateState {
        GateState { step: 0, since_ms: ramp.start_ms, held_since_ms: None }
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

/// Judges the current step: `step` are the local window's responses since
/// it began (`None` without a local window), `poll` the last poll (`None`
/// without Prometheus).
pub fn judge(
    gate: &Gate,
    window: Option<&LocalWindow>,
    step: Option<&Counts>,
    poll: Option<Option<&PollSummary>>,
    state: &GateState,
) -> Judgement {
    let local = window.zip(step);
    let responses = step.map_or(0, |c| c.requests);
    let local_passed = local.is_none_or(|(window, counts)| {
        counts.requests >= gate.min_requests
            && counts.error_rate() <= window.max_error_rate
            && window.latency.as_ref().is_none_or(|latency| !counts.too_slow(latency))
    });
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
        poll,
    }
}

/// What a look at the gate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The ramp has not started: the listed weights apply.
    NotStarted,
    /// At the step, waiting (for `every`, or for a verdict).
    Waiting,
    /// Took the next step (its index).
    Advanced(u32),
    /// The last step: nothing left to judge.
    Done,
    /// `hold: true`: frozen at the step.
    Held,
    /// Past `maxWait` without a verdict, holding (`onMaxWait: hold`).
    HoldingPastMaxWait,
    /// Past `maxWait` without a verdict: roll back (`onMaxWait: rollback`).
    RollBack,
}

/// Moves the state on at `now_ms`: to the fleet's furthest step if it is
/// ahead (`fleet_step`), then to the next step if this one is earned.
pub fn progress(
    ramp: &Ramp,
    gate: &Gate,
    state: &mut GateState,
    judgement: &Judgement,
    fleet_step: Option<u32>,
    now_ms: u64,
) -> Progress {
    if now_ms < ramp.start_ms {
        return Progress::NotStarted;
    }
    let last = u32::try_from(ramp.last_step()).unwrap_or(u32::MAX);
    if let Some(fleet) = fleet_step.map(|s| s.min(last)).filter(|s| *s > state.step) {
        *state = GateState { step: fleet, since_ms: now_ms, held_since_ms: None };
    }
    if state.step >= last {
        return Progress::Done;
    }
    if ramp.hold {
        return Progress::Held;
    }
    let elapsed = now_ms.saturating_sub(state.since_ms);
    if elapsed >= ramp.every_ms && judgement.passed {
        *state = GateState { step: state.step + 1, since_ms: now_ms, held_since_ms: None };
        return Progress::Advanced(state.step);
    }
    match gate.max_wait_ms {
        Some(max_wait) if elapsed >= max_wait => match gate.on_max_wait {
            OnMaxWait::Rollback => Progress::RollBack,
            OnMaxWait::Hold => {
                state.held_since_ms.get_or_insert(now_ms);
                Progress::HoldingPastMaxWait
            }
        },
        _ => Progress::Waiting,
    }
}

/// When the step may be left at the earliest (ms since the epoch); `None`
/// at the last step.
pub fn earliest_next_ms(ramp: &Ramp, state: &GateState) -> Option<u64> {
    (usize::try_from(state.step).unwrap_or(usize::MAX) < ramp.last_step())
        .then(|| state.since_ms + ramp.every_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_window::{latency_bucket, LATENCY_BUCKETS};
    use crate::split::Latency;

    const START: u64 = 1_000_000;
    const EVERY: u64 = 60_000;

    fn ramp(gate: Gate, hold: bool) -> Ramp {
        Ramp::new(START, EVERY, vec![1.0, 5.0, 25.0, 100.0], Some(gate), hold)
    }

    fn gate(max_wait_ms: Option<u64>, on_max_wait: OnMaxWait) -> Gate {
        Gate { min_requests: 20, max_wait_ms, on_max_wait }
    }

    fn window() -> LocalWindow {
        LocalWindow {
            max_error_rate: 0.1,
            min_requests: 20,
            window_ms: 60_000,
            latency: Some(Latency { percentile: 90.0, max_ms: 200 }),
        }
    }

    fn counts(requests: u64, errors: u64, ms: u64) -> Counts {
        let mut latency = [0; LATENCY_BUCKETS];
        latency[latency_bucket(ms, window().latency.as_ref().unwrap())] = requests as u32;
        Counts { requests, errors, latency }
    }

    fn local(gate: &Gate, c: Counts, state: &GateState) -> Judgement {
        judge(gate, Some(&window()), Some(&c), None, state)
    }

    #[test]
    fn a_step_is_earned_by_enough_healthy_responses_and_lasts_every_at_least() {
        let g = gate(None, OnMaxWait::Hold);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(&r);
        let early = local(&g, counts(99, 0, 10), &state);
        assert_eq!(progress(&r, &g, &mut state, &early, None, START - 1), Progress::NotStarted);
        let healthy = local(&g, counts(25, 1, 50), &state);
        assert!(healthy.passed);
        assert_eq!(
            progress(&r, &g, &mut state, &healthy, None, START + EVERY - 1),
            Progress::Waiting,
            "not before every"
        );
        assert_eq!(progress(&r, &g, &mut state, &healthy, None, START + EVERY), Progress::Advanced(1));
        assert_eq!(state, GateState { step: 1, since_ms: START + EVERY, held_since_ms: None });
        let too_few = local(&g, counts(19, 0, 50), &state);
        assert!(!too_few.passed && too_few.responses == 19 && too_few.needed == 20);
        assert_eq!(
            progress(&r, &g, &mut state, &too_few, None, START + 10 * EVERY),
            Progress::Waiting,
            "no verdict, no step"
        );
    }

    #[test]
    fn errors_or_slow_responses_fail_the_step() {
        let g = gate(None, OnMaxWait::Hold);
        let state = GateState::first(&ramp(g.clone(), false));
        assert!(!local(&g, counts(100, 11, 50), &state).passed, "11% errors");
        let slow = local(&g, counts(100, 0, 250), &state);
        assert!(!slow.passed, "p90 above 200 ms");
        assert!(slow.latency_ms.unwrap() > 200.0);
        assert!(local(&g, counts(100, 10, 200), &state).passed, "10% errors and 200 ms are within");
    }

    #[test]
    fn the_poll_must_pass_during_the_step_with_every_check_answered() {
        let g = gate(None, OnMaxWait::Hold);
        let state = GateState { step: 1, since_ms: 5_000, held_since_ms: None };
        let poll = |at_ms, failed: &[&str], unanswered: &[&str]| PollSummary {
            at_ms,
            failed: failed.iter().map(|s| s.to_string()).collect(),
            unanswered: unanswered.iter().map(|s| s.to_string()).collect(),
        };
        let judged = |p: Option<&PollSummary>| judge(&g, None, None, Some(p), &state);
        assert_eq!(judged(None).poll, PollState::Waiting);
        assert_eq!(
            judged(Some(&poll(4_999, &[], &[]))).poll,
            PollState::Waiting,
            "a poll of the step before"
        );
        assert!(judged(Some(&poll(5_000, &[], &[]))).passed);
        let no_data = judged(Some(&poll(6_000, &[], &["error-rate"])));
        assert_eq!((no_data.passed, no_data.poll), (false, PollState::Unanswered(vec!["error-rate".into()])));
        assert!(!judged(Some(&poll(6_000, &["p99"], &[]))).passed);
        assert!(
            judge(&g, None, None, None, &state).passed,
            "no local window and no Prometheus: nothing to wait for"
        );
    }

    #[test]
    fn past_max_wait_a_step_holds_or_rolls_back_and_never_advances_on_no_data() {
        let g = gate(Some(3 * EVERY), OnMaxWait::Hold);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(&r);
        let nothing = local(&g, counts(0, 0, 0), &state);
        assert_eq!(progress(&r, &g, &mut state, &nothing, None, START + 3 * EVERY - 1), Progress::Waiting);
        assert_eq!(
            progress(&r, &g, &mut state, &nothing, None, START + 3 * EVERY),
            Progress::HoldingPastMaxWait
        );
        assert_eq!(
            progress(&r, &g, &mut state, &nothing, None, START + 9 * EVERY),
            Progress::HoldingPastMaxWait
        );
        assert_eq!(state.held_since_ms, Some(START + 3 * EVERY), "since when, kept");
        assert_eq!(state.step, 0);
        let healthy = local(&g, counts(30, 0, 10), &state);
        assert_eq!(
            progress(&r, &g, &mut state, &healthy, None, START + 10 * EVERY),
            Progress::Advanced(1),
            "a verdict at last"
        );
        assert_eq!(state.held_since_ms, None);
        let g = gate(Some(3 * EVERY), OnMaxWait::Rollback);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(&r);
        assert_eq!(progress(&r, &g, &mut state, &nothing, None, START + 3 * EVERY), Progress::RollBack);
    }

    #[test]
    fn hold_freezes_the_ramp_and_the_last_step_is_the_end() {
        let g = gate(None, OnMaxWait::Hold);
        let held = ramp(g.clone(), true);
        let mut state = GateState { step: 1, since_ms: START, held_since_ms: None };
        let healthy = local(&g, counts(50, 0, 10), &state);
        assert_eq!(progress(&held, &g, &mut state, &healthy, None, START + 9 * EVERY), Progress::Held);
        assert_eq!(state.step, 1);
        let r = ramp(g.clone(), false);
        assert_eq!(
            progress(&r, &g, &mut state, &healthy, None, START + 9 * EVERY),
            Progress::Advanced(2),
            "cleared: on"
        );
        assert_eq!(earliest_next_ms(&r, &state), Some(START + 10 * EVERY));
        state.step = 3;
        assert_eq!(progress(&r, &g, &mut state, &healthy, None, START + 20 * EVERY), Progress::Done);
        assert_eq!(earliest_next_ms(&r, &state), None);
    }

    #[test]
    fn a_proxy_takes_the_fleets_furthest_step_never_past_the_last() {
        let g = gate(None, OnMaxWait::Hold);
        let r = ramp(g.clone(), false);
        let mut state = GateState::first(&r);
        let nothing = local(&g, counts(0, 0, 0), &state);
        let now = START + EVERY / 2;
        assert_eq!(progress(&r, &g, &mut state, &nothing, Some(2), now), Progress::Waiting);
        assert_eq!(
            state,
            GateState { step: 2, since_ms: now, held_since_ms: None },
            "resumes at the fleet's step"
        );
        assert_eq!(progress(&r, &g, &mut state, &nothing, Some(1), now + 1), Progress::Waiting, "never back");
        assert_eq!(state.step, 2);
        assert_eq!(progress(&r, &g, &mut state, &nothing, Some(99), now + 2), Progress::Done);
        assert_eq!(state.step, 3);
    }
}
