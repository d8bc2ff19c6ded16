//! The judge's two looks, shared by the filter (its glue in
//! `filter::rollback` and `filter::ramp_gate` reads and writes the proxy's
//! shared data around them) and by `rehearsal` (which feeds them synthetic
//! traffic): so a rehearsed rollout is judged by the very code the proxies
//! run.
//!
//! - `look_at_window`: the local window after a merge: its totals over
//!   `window`, whether they cross an absolute bound, and how the canary
//!   compares with its baseline since the step began.
//! - `look_at_gate`: a gated ramp's step judged on its evidence, and the
//!   ramp's state moved on (its clock, the fleet's step, the next step, a
//!   hold, or a rollback past `maxWait`).
//!
//! Pure.

use crate::rollout::compare::{self, Arms, Compared};
use crate::rollout::error_window::{self, Counts, Crossed, Window};
use crate::rollout::fleet_state::RolledBack;
use crate::rollout::gate::{self, FleetProgress, GateState, Judgement, Look, PollSummary, Progress};
use crate::rollout::settings::{Gate, LocalWindow, Ramp, Rollback};
use crate::text::decimal;

/// What the local window says after a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowLook {
    /// The watched target's responses within `window`.
    pub totals: Counts,
    /// Both arms since the step began (empty without `compare`).
    pub arms: Arms,
    pub compared: Option<Compared>,
    /// Why it rolls back now, if it does.
    pub crossed: Option<Crossed>,
}

/// Judges the window ending with time bucket `bucket`.
pub fn look_at_window(config: &LocalWindow, window: &Window, bucket: u64, ramp: Option<&Ramp>) -> WindowLook {
    let totals = window.totals(bucket);
    let arms = window.arms_since(window.step);
    let compared =
        config.compare.as_ref().map(|c| compare::judge(c, &arms, compare::epochs(ramp), config.min_requests));
    let crossed = error_window::crossed(config, &totals).or(match compared.and_then(|c| c.worse()) {
        Some("errors") => Some(Crossed::CompareErrors),
        Some(_) => Some(Crossed::CompareLatency),
        None => None,
    });
    WindowLook { totals, arms, compared, crossed }
}

/// What a person reads about a crossing: the numbers behind it.
pub fn crossing_detail(config: &LocalWindow, look: &WindowLook, crossed: Crossed) -> String {
    let totals = &look.totals;
    match (crossed, &config.latency, &config.compare, look.compared) {
        (Crossed::Latency, Some(latency), _, _) => format!(
            "p{} of {} responses {} ms > {} ms within {} ms",
            decimal::format(latency.percentile),
            totals.requests,
            decimal::format(totals.percentile_ms(latency).unwrap_or(0.0).round()),
            latency.max_ms,
            config.window_ms
        ),
        // Only compared errors that were worse cross as CompareErrors.
        (Crossed::CompareErrors, _, Some(compare), Some(Compared { errors: Some(errors), .. })) => {
            format!(
                "canary {}% errors in {} responses vs baseline {}% in {}: more than {} worse at {}% confidence",
                decimal::fixed(errors.canary * 100.0, 2),
                look.arms.canary.requests,
                decimal::fixed(errors.baseline * 100.0, 2),
                look.arms.baseline.requests,
                points(compare.max_error_rate_increase.unwrap_or(0.0)),
                decimal::format(compare.confidence * 100.0),
            )
        }
        (Crossed::CompareLatency, _, Some(compare), Some(compared)) => {
            let (percentile, ratio, margin) = compare
                .latency
                .as_ref()
                .map_or((0.0, 0.0, 0), |l| (l.percentile, l.max_ratio, l.min_increase_ms));
            let latency = compared.latency;
            format!(
                "canary p{} {} ms vs baseline {} ms: more than {}x and {} ms slower at {}% confidence",
                decimal::format(percentile),
                decimal::format(latency.and_then(|l| l.canary_ms).unwrap_or(0.0).round()),
                decimal::format(latency.and_then(|l| l.baseline_ms).unwrap_or(0.0).round()),
                decimal::format(ratio),
                margin,
                decimal::format(compare.confidence * 100.0),
            )
        }
        _ => format!(
            "{} errors in {} responses ({} > {}) within {} ms",
            totals.errors,
            totals.requests,
            decimal::fixed(totals.error_rate(), 3),
            decimal::format(config.max_error_rate.unwrap_or(0.0)),
            config.window_ms
        ),
    }
}

/// A difference of error rates in percentage points: `1 percentage point`.
pub fn points(difference: f64) -> String {
    let points = difference * 100.0;
    let unit = if points == 1.0 { "point" } else { "points" };
    format!("{} percentage {unit}", decimal::format(points))
}

/// What a gated ramp's look knows besides its config and state.
#[derive(Debug, Clone, Copy)]
pub struct GateEvidence<'a> {
    /// The shared local window, if the rollback has one.
    pub window: Option<&'a Window>,
    /// With Prometheus: the last poll (`None` before the first).
    pub poll: Option<Option<&'a PollSummary>>,
    /// The step latch's reading, with Prometheus.
    pub fleet: Option<FleetProgress>,
    /// The split is live on this proxy.
    pub live: bool,
    /// The fleet view showed this proxy's own series (true without
    /// Prometheus).
    pub view_confirmed: bool,
    pub now_ms: u64,
}

/// Judges the gated step on its evidence and moves `gated` on.
pub fn look_at_gate(
    ramp: &Ramp,
    gate: &Gate,
    rollback: &Rollback,
    gated: &mut GateState,
    evidence: &GateEvidence<'_>,
) -> (Judgement, Progress) {
    let local = rollback.window.as_ref();
    let step = evidence.window.map(|w| w.since_step(gated.step));
    let compared = local.zip(evidence.window).and_then(|(config, window)| {
        let compare = config.compare.as_ref()?;
        let arms = window.arms_since(gated.step);
        Some(compare::judge(compare, &arms, compare::epochs(Some(ramp)), config.min_requests))
    });
    let judgement = gate::judge(gate, local, step.as_ref(), compared.as_ref(), evidence.poll, gated);
    let look = Look {
        judgement: &judgement,
        fleet: evidence.fleet,
        live: evidence.live,
        view_confirmed: evidence.view_confirmed,
        now_ms: evidence.now_ms,
    };
    let progress = gate::progress(ramp, gate, gated, &look);
    (judgement, progress)
}

/// The rollback of a step that could not be judged within `maxWait`.
pub fn max_wait_rollback(ramp: &Ramp, gated: &GateState, now_ms: u64) -> RolledBack {
    RolledBack {
        since_ms: now_ms,
        reason: "maxWait".into(),
        detail: format!(
            "step {} of {} could not be judged healthy within {} ms (judged for {} ms)",
            gated.step + 1,
            ramp.steps.len(),
            ramp.gate.as_ref().and_then(|g| g.max_wait_ms).unwrap_or(0),
            gated.clock_ms
        ),
    }
}
