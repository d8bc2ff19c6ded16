//! What the config says about rolling a canary out and judging it: a
//! split's ramp and its gate, its rollback's local window, latency bound,
//! comparison with the baseline and Prometheus checks. The rollout's
//! judges read these; a split holds them.

use super::prometheus::Span;
use crate::text::decimal;

/// A split's `ramp`: the first target's percentage in steps, taken by the
/// clock, or (with a `gate`) each only after the step before was judged.
#[derive(Debug, Clone)]
pub struct Ramp {
    pub target: String,
    pub start_ms: u64,
    pub every_ms: u64,
    pub steps: Vec<f64>,
    pub gate: Option<Gate>,
    /// Frozen at its current step (`hold`); not part of the split's identity.
    pub hold: bool,
}

impl Ramp {
    /// The step the clock puts the ramp at, at `now_ms`; `None` before
    /// `start`. A gated ramp's step is the proxy's (`Live::gated_step`).
    pub fn step_at(&self, now_ms: u64) -> Option<usize> {
        let elapsed = now_ms.checked_sub(self.start_ms)?;
        let step = usize::try_from(elapsed / self.every_ms.max(1)).unwrap_or(usize::MAX);
        Some(step.min(self.last_step()))
    }

    /// The step in force: the proxy's `gated_step` for a gated ramp, the
    /// clock's otherwise.
    pub fn step_in_force(&self, gated_step: Option<usize>, now_ms: u64) -> Option<usize> {
        match self.gate {
            Some(_) => gated_step,
            None => self.step_at(now_ms),
        }
    }

    pub fn last_step(&self) -> usize {
        self.steps.len().saturating_sub(1)
    }

    /// A ramp by the clock at `now_ms`: since when its step is in force and
    /// when the next one comes, in ms since the epoch. Before `start` there
    /// is no step and the next is `start`; at the last step there is no
    /// next.
    pub fn clock_times(&self, now_ms: u64) -> (Option<u64>, Option<u64>) {
        let Some(step) = self.step_at(now_ms) else { return (None, Some(self.start_ms)) };
        let at = |n: usize| self.start_ms.saturating_add((n as u64).saturating_mul(self.every_ms));
        (Some(at(step)), (step < self.last_step()).then(|| at(step + 1)))
    }
}

/// A ramp's `gate`: what a step must show before the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Responses from the target since the step began that the local
    /// window needs (0: the rollback has no local window).
    pub min_requests: u64,
    pub max_wait_ms: Option<u64>,
    pub on_max_wait: OnMaxWait,
}

/// What a gated step does when it could not be judged within `maxWait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMaxWait {
    Hold,
    Rollback,
}

/// A split's `rollback`: when to give up on a target by itself. At least
/// one of `window` (this proxy's own error window) and `prometheus` (the
/// fleet's view) is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    pub target: String,
    pub window: Option<LocalWindow>,
    pub prometheus: Option<Box<PrometheusChecks>>,
}

/// A rollback's local error window: seconds to react, one proxy's traffic.
/// It judges by an absolute error rate, a latency bound, a comparison with
/// the baseline, or several.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalWindow {
    pub max_error_rate: Option<f64>,
    pub min_requests: u64,
    pub window_ms: u64,
    pub latency: Option<Latency>,
    /// A request that ends without response headers after at least this
    /// long counts as a failure (a hang); sooner, as nothing.
    pub abandoned_after_ms: u64,
    pub compare: Option<Box<Compare>>,
}

/// A rollback's `compare`: the canary against its baseline, with a stated
/// confidence (`crate::rollout::compare`).
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    /// The targets the canary is compared with: the one named, or every
    /// other target of the split.
    pub baseline: Vec<String>,
    pub max_error_rate_increase: Option<f64>,
    pub latency: Option<CompareLatency>,
    pub confidence: f64,
}

/// `compare.latency`: the canary's percentile may be at most the
/// baseline's times `max_ratio`, or `min_increase_ms` above it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareLatency {
    pub percentile: f64,
    pub max_ratio: f64,
    pub min_increase_ms: u64,
}

/// A rollback's `latency`: the target's `percentile` response time must
/// stay at or below `max_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub percentile: f64,
    pub max_ms: u64,
}

/// A rollback's `prometheus`: checks the whole fleet's traffic and a
/// rollback latch every proxy shares.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusChecks {
    /// The Envoy cluster that reaches the Prometheus HTTP API.
    pub cluster: String,
    pub every_ms: u64,
    pub timeout_ms: u32,
    /// Failing polls in a row that roll the split back.
    pub threshold: u32,
    /// How far back the latch looks, as PromQL writes a range (`3600s`).
    pub lookback: String,
    /// `{{baseline}}`: the targets the rollback's target is compared with,
    /// joined by `|` (a PromQL regex alternation when there are several).
    pub baseline: String,
    pub checks: Vec<Check>,
    /// The query asking whether any proxy rolled this split back.
    pub latch_query: String,
    /// The query asking whether Prometheus shows this proxy's own series
    /// (its beacon): whether the latches can see this proxy at all.
    pub view_query: String,
    /// How long the view may miss this proxy before it is reported blind.
    pub blind_after_ms: u64,
    /// Where the HTTP API is served (`""`: at the root).
    pub path_prefix: String,
    /// Headers every query carries, names in lower case. Not part of the
    /// split identity: a rotated token must not restart a rollout.
    pub headers: Vec<(String, String)>,
    /// The queries' `:authority`. A cluster's name is often no host name
    /// (Envoy Gateway's `httproute/NS/NAME/rule/R`, Istio's
    /// `outbound|PORT||HOST`), and Envoy refuses such a request.
    pub authority: String,
}

/// One Prometheus check: a query and the bounds its value must stay in.
/// With `compare_to`, the query is run for the target and for its
/// baseline, and `max` bounds how the first relates to the second.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub query: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub compare_to: Option<Relation>,
}

/// How a compared check's two values are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The target's value minus the baseline's (`maxIncrease`).
    Increase,
    /// The target's value over the baseline's (`maxRatio`).
    Ratio,
}

impl Rollback {
    /// Its Prometheus checks (none without `prometheus`).
    pub fn checks(&self) -> &[Check] {
        self.prometheus.as_ref().map_or(&[][..], |p| &p.checks[..])
    }
}

impl Check {
    /// Whether any series crosses a bound: the largest against `max`, the
    /// smallest against `min` (NaN is never judged: see
    /// `prometheus::sample`, which reads it as no data).
    pub fn fails(&self, span: Span) -> bool {
        self.max.is_some_and(|max| span.high > max) || self.min.is_some_and(|min| span.low < min)
    }

    /// The value that judges: a series past a bound if one is, else the
    /// one nearest to failing (the largest under `max`, the smallest over
    /// `min`).
    pub fn worst(&self, span: Span) -> f64 {
        match (self.max, self.min) {
            (Some(max), _) if span.high > max => span.high,
            (_, Some(min)) if span.low < min => span.low,
            (Some(_), _) => span.high,
            _ => span.low,
        }
    }

    /// The check and its judging value, for a log line or a reason.
    pub fn describe(&self, span: Span) -> String {
        let value = self.worst(span);
        let bound = match (self.max, self.min) {
            (Some(max), _) if value > max => format!("> {}", decimal::format(max)),
            (_, Some(min)) if value < min => format!("< {}", decimal::format(min)),
            _ => "within its bounds".to_string(),
        };
        format!("{}: {} {bound}", self.name, decimal::format(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_ramp_says_since_when_its_step_holds_and_when_the_next_comes() {
        let ramp = Ramp {
            target: "canary".into(),
            start_ms: 10_000,
            every_ms: 1_000,
            steps: vec![10.0, 50.0, 100.0],
            gate: None,
            hold: false,
        };
        assert_eq!(ramp.clock_times(9_999), (None, Some(10_000)), "before the start");
        assert_eq!(ramp.clock_times(10_000), (Some(10_000), Some(11_000)));
        assert_eq!(ramp.clock_times(11_500), (Some(11_000), Some(12_000)));
        assert_eq!(ramp.clock_times(99_000), (Some(12_000), None), "the last step has no next");
    }
}
