//! The canary judged against its baseline (`rollback.compare`): both arms'
//! responses since the step began, on the same proxy over the same
//! seconds, and sequential tests (`crate::rollout::sequential`) that keep their
//! confidence however often they are looked at.
//!
//! - Errors: the canary regressed when, with the confidence, its error
//!   rate is above the baseline's plus `maxErrorRateIncrease`; it is within
//!   its allowance when, with the confidence, it is below that.
//! - Latency: each arm's percentile is bounded from its histogram (the
//!   count at or below the true percentile is binomial with the known
//!   share, so a bucket bound is above or below it with the confidence).
//!   The canary regressed when its lower bound is at least the baseline's
//!   upper bound times `maxRatio` and at least `minIncreaseMs` above it;
//!   within, when its upper bound is at most the baseline's lower bound
//!   times `maxRatio` (or plus `minIncreaseMs`).
//!
//! The confidence holds over a whole ramp: 1 − `confidence` is shared
//! between its steps (each step's evidence starts over) and between the
//! judged metrics, and within a step Ville's inequality keeps each test's
//! share however often it is looked at.
//!
//! Pure; a fixed size per split, whatever the traffic.

use crate::rollout::metrics;
use crate::rollout::sequential::{self, Side, Tally};
use crate::rollout::settings::{Compare, Ramp, Rollback};
use crate::text::le_bytes::Reader;

/// Latency buckets: the first ends at 1 ms, each next one 2^¼ (19%) further,
/// the last but one at about 55 s; the last holds the rest.
pub const LATENCY_BUCKETS: usize = 65;

/// 2^(k/4) for k = 0..3: a bucket's bound is a power of two times one.
const QUARTERS: [f64; 4] = [1.0, 1.189_207_115_002_721, std::f64::consts::SQRT_2, 1.681_792_830_507_429];

/// The upper bound of latency bucket `j` in ms, 2^(j/4) (the last has
/// none). A table and a power of two, not `exp2`, whose C library tables
/// would cost the `.wasm` kilobytes.
pub fn bucket_bound_ms(j: usize) -> Option<f64> {
    (j + 1 < LATENCY_BUCKETS).then(|| QUARTERS[j % 4] * f64::from(1u32 << (j / 4)))
}

/// The bucket of a response that took `ms`: the first whose bound is at
/// least `ms` (its octave from the bits of `ms`, then its quarter).
pub fn latency_bucket(ms: u64) -> usize {
    if ms <= 1 {
        return 0;
    }
    let octave = (63 - (ms - 1).leading_zeros()) as usize;
    (4 * octave..4 * octave + 8)
        .find(|&j| bucket_bound_ms(j).is_none_or(|bound| ms as f64 <= bound))
        .unwrap_or(LATENCY_BUCKETS - 1)
        .min(LATENCY_BUCKETS - 1)
}

/// Which arm a watched response is: the rollback's target, or (with
/// `compare`) one of its baseline's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchedArm {
    Canary,
    Baseline,
}

/// One response (or a request that never got one) of a split's watched
/// target or baseline: which arm, an error or not, the time it took if
/// known, and the ramp step it was sent at (a gated step counts only its
/// own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub arm: WatchedArm,
    pub error: bool,
    pub latency_ms: Option<u64>,
    pub step: u32,
}

/// The arm a request routed to `target` counts in, if any.
pub fn arm_of(rollback: &Rollback, target: &str) -> Option<WatchedArm> {
    if rollback.target == target {
        return Some(WatchedArm::Canary);
    }
    let compare = rollback.window.as_ref()?.compare.as_ref()?;
    compare.baseline.iter().any(|b| b == target).then_some(WatchedArm::Baseline)
}

/// One arm's evidence since the step began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    pub requests: u64,
    pub errors: u64,
    /// Responses by latency bucket (all zero unless latency is compared).
    pub latency: [u32; LATENCY_BUCKETS],
    /// The canary's: ln of the chance the baseline's error rate, as known
    /// before each response, gave its outcome (`forecast_rate`). A canary
    /// like its baseline is forecast well by it, so its error rate is
    /// bounded on far fewer responses than with no forecast at all.
    pub forecast: f64,
}

impl Default for Arm {
    fn default() -> Arm {
        Arm { requests: 0, errors: 0, latency: [0; LATENCY_BUCKETS], forecast: 0.0 }
    }
}

/// The forecast of the canary's next outcome: the baseline's error rate so
/// far, kept off 0 and 1 (Krichevsky-Trofimov).
pub fn forecast_rate(baseline: &Arm) -> f64 {
    (baseline.errors as f64 + 0.5) / (baseline.requests as f64 + 1.0)
}

impl Arm {
    /// Counts one response in place (a response costs no copy of the
    /// histogram): an error or not, its time if latency is compared, and
    /// the canary's forecast of it.
    pub fn count(&mut self, error: bool, latency_ms: Option<u64>, forecast: Option<f64>) {
        self.requests = self.requests.saturating_add(1);
        self.errors = self.errors.saturating_add(u64::from(error));
        if let Some(ms) = latency_ms {
            let slot = &mut self.latency[latency_bucket(ms)];
            *slot = slot.saturating_add(1);
        }
        if let Some(forecast) = forecast {
            self.forecast += sequential::ln(if error { forecast } else { 1.0 - forecast });
        }
    }

    pub fn add(&mut self, other: &Arm) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.forecast += other.forecast;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine = mine.saturating_add(theirs);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.requests == 0
    }

    pub fn error_rate(&self) -> f64 {
        self.errors_tally().rate()
    }

    fn errors_tally(&self) -> Tally {
        Tally { hits: self.errors, n: self.requests }
    }

    fn timed(&self) -> u64 {
        self.latency.iter().map(|&n| u64::from(n)).sum()
    }

    /// The `share` quantile (0.99 for p99) estimated from the histogram,
    /// linear within a bucket; the last bucket reads as its lower end.
    pub fn quantile_ms(&self, share: f64) -> Option<f64> {
        let timed = self.timed();
        if timed == 0 {
            return None;
        }
        let rank = (share * timed as f64).ceil().max(1.0);
        let mut below = 0.0;
        for (j, &n) in self.latency.iter().enumerate() {
            let n = f64::from(n);
            let low = if j == 0 { 0.0 } else { bucket_bound_ms(j - 1).unwrap_or(0.0) };
            let Some(high) = bucket_bound_ms(j) else { return Some(low) };
            if n > 0.0 && below + n >= rank {
                return Some(low + (high - low) * (rank - below) / n);
            }
            below += n;
        }
        None
    }

    /// Bounds on the `share` quantile with the evidence `threshold`: the
    /// largest bucket bound it is above, and the smallest it is at or
    /// below (`None`: no bound yet).
    pub fn quantile_bounds(&self, share: f64, threshold: f64) -> (Option<f64>, Option<f64>) {
        let mut cumulative = [0u64; LATENCY_BUCKETS - 1];
        let mut sum = 0u64;
        for (c, &n) in cumulative.iter_mut().zip(&self.latency) {
            sum += u64::from(n);
            *c = sum;
        }
        let timed = self.timed();
        let at_most = |j: usize| Tally { hits: cumulative[j], n: timed };
        // Fewer than `share` at or below a bound: the quantile is above it.
        // The counts grow with the bound, so the bounds it is shown above
        // are the first ones, and those it is at or below the last ones.
        let above = |j: usize| sequential::evidence_against(at_most(j), share, Side::Below) >= threshold;
        let at_or_below =
            |j: usize| sequential::evidence_against(at_most(j), share, Side::Above) >= threshold;
        let first_not_above = partition_point(cumulative.len(), above);
        let first_at_or_below = partition_point(cumulative.len(), |j| !at_or_below(j));
        (
            first_not_above.checked_sub(1).and_then(bucket_bound_ms),
            (first_at_or_below < cumulative.len()).then(|| bucket_bound_ms(first_at_or_below)).flatten(),
        )
    }
}

/// The first index in `0..len` where `holds` stops holding, for a `holds`
/// that is true on a prefix.
fn partition_point(len: usize, holds: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = (low + high) / 2;
        if holds(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

/// Both arms' evidence since the step began.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Arms {
    pub canary: Arm,
    pub baseline: Arm,
}

/// The encoded size of `Arms`.
pub const ARMS_BYTES: usize = 2 * (24 + 4 * LATENCY_BUCKETS);

impl Arms {
    pub fn add(&mut self, other: &Arms) {
        self.canary.add(&other.canary);
        self.baseline.add(&other.baseline);
    }

    pub fn is_empty(&self) -> bool {
        self.canary.is_empty() && self.baseline.is_empty()
    }

    pub fn put(&self, out: &mut Vec<u8>) {
        for arm in [&self.canary, &self.baseline] {
            out.extend_from_slice(&arm.requests.to_le_bytes());
            out.extend_from_slice(&arm.errors.to_le_bytes());
            out.extend_from_slice(&arm.forecast.to_bits().to_le_bytes());
            for n in arm.latency {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Option<Arms> {
        let mut arm = || -> Option<Arm> {
            let (requests, errors, forecast) = (r.u64()?, r.u64()?, f64::from_bits(r.u64()?));
            let mut arm = Arm { requests, errors, forecast, ..Arm::default() };
            for n in &mut arm.latency {
                *n = r.u32()?;
            }
            Some(arm)
        };
        Some(Arms { canary: arm()?, baseline: arm()? })
    }
}

/// The errors compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorsCompared {
    pub canary: f64,
    pub baseline: f64,
    /// With the confidence, the canary's rate is above the baseline's plus
    /// the allowance.
    pub worse: bool,
    /// With the confidence, it is below.
    pub within: bool,
}

/// The latency percentile compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyCompared {
    pub canary_ms: Option<f64>,
    pub baseline_ms: Option<f64>,
    pub worse: bool,
    pub within: bool,
    /// The most the canary's percentile may be, from the baseline's upper
    /// bound: a canary response slower than this is evidence that it is
    /// worse (`None` until the baseline's percentile is bounded).
    pub trigger_ms: Option<f64>,
}

/// What the comparison says now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compared {
    /// Both arms have `minRequests` responses since the step began.
    pub enough: bool,
    pub errors: Option<ErrorsCompared>,
    pub latency: Option<LatencyCompared>,
}

impl Compared {
    /// What regressed, for a rollback's reason: `None` if nothing did.
    pub fn worse(&self) -> Option<&'static str> {
        if self.errors.is_some_and(|e| e.worse) {
            Some("errors")
        } else if self.latency.is_some_and(|l| l.worse) {
            Some("latency")
        } else {
            None
        }
    }

    /// Every compared metric is within its allowance, on enough evidence.
    pub fn within(&self) -> bool {
        self.enough
            && self.errors.is_none_or(|e| e.within)
            && self.latency.is_none_or(|l| l.within)
            && (self.errors.is_some() || self.latency.is_some())
    }
}

/// What the comparison gauges show (docs/metrics.md, `compare`), per arm
/// (canary, then baseline) where there are two: the same numbers from
/// either home.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shown {
    pub responses: [u64; 2],
    pub error_rate_millionths: [u64; 2],
    /// With latency compared: each arm's percentile in microseconds (0
    /// before it is known).
    pub latency_us: Option<[u64; 2]>,
    /// With `maxErrorRateIncrease`: the bound (1,000,000 before any).
    pub error_bound_millionths: Option<u64>,
    pub within: u64,
}

/// The comparison gauges' values for `arms` and what they say.
pub fn shown(compare: &Compare, ramp: Option<&Ramp>, arms: &Arms, compared: &Compared) -> Shown {
    let both = [&arms.canary, &arms.baseline];
    let latency_us = compared
        .latency
        .filter(|_| compare.latency.is_some())
        .map(|l| [l.canary_ms, l.baseline_ms].map(|ms| ms.map_or(0, |ms| (ms * 1_000.0).round() as u64)));
    Shown {
        responses: both.map(|a| a.requests),
        error_rate_millionths: both.map(|a| metrics::millionths(a.error_rate())),
        latency_us,
        error_bound_millionths: compare.max_error_rate_increase.map(|_| {
            error_increase_bound(compare, arms, epochs(ramp)).map_or(1_000_000, metrics::millionths)
        }),
        within: u64::from(compared.within()),
    }
}

/// How many times a ramp's evidence starts over: once per step.
pub fn epochs(ramp: Option<&Ramp>) -> usize {
    ramp.map_or(1, |r| r.steps.len().max(1))
}

/// The evidence each test needs (ln 1/α).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Worse than the baseline: 1 − `confidence` shared between the ramp's
    /// steps (each step's evidence starts over) and the compared metrics
    /// (any of them rolls back), so a healthy canary is rolled back with at
    /// most that chance over the whole ramp. A quantile's test bounds both
    /// arms' percentiles: half each.
    pub worse_errors: f64,
    pub worse_quantile: f64,
    /// Within the allowances: every metric must show it, so each is tested
    /// at 1 − `confidence` itself, half to each arm's bound; a step taken
    /// on a canary outside its allowances has at most that chance.
    pub within: f64,
}

pub fn thresholds(compare: &Compare, epochs: usize) -> Thresholds {
    let metrics =
        usize::from(compare.max_error_rate_increase.is_some()) + usize::from(compare.latency.is_some());
    let alpha = 1.0 - compare.confidence;
    let worse = alpha / (epochs.max(1) * metrics.max(1)) as f64;
    Thresholds {
        worse_errors: sequential::ln(1.0 / worse),
        worse_quantile: sequential::ln(2.0 / worse),
        within: sequential::ln(2.0 / alpha),
    }
}

/// The canary's error rate minus the baseline's, bounded above: the
/// canary's upper bound (forecast by the baseline's rate and by Jeffreys'
/// mixture, half each) minus the baseline's lower bound.
fn increase_bound(arms: &Arms, threshold: f64) -> f64 {
    let (canary, baseline) = (arms.canary.errors_tally(), arms.baseline.errors_tally());
    // Half the e-value from each forecaster: ½ e^forecast + ½ e^jeffreys
    // is at least ½ of the larger, which is used (a lower bound of an
    // e-value is one too; and no `exp`).
    let both = arms.canary.forecast.max(canary.ln_jeffreys()) - std::f64::consts::LN_2;
    let canary_high = sequential::bound(both, canary, threshold, Side::Above);
    let baseline_low = sequential::bound(baseline.ln_jeffreys(), baseline, threshold, Side::Below);
    canary_high - baseline_low
}

/// Judges the evidence. Below `min_requests` responses in either arm the
/// arms are still shown, but nothing is concluded.
pub fn judge(compare: &Compare, arms: &Arms, epochs: usize, min_requests: u64) -> Compared {
    let t = thresholds(compare, epochs);
    let enough = arms.canary.requests >= min_requests.max(1) && arms.baseline.requests >= min_requests.max(1);
    let errors = compare.max_error_rate_increase.map(|delta| {
        let (canary, baseline) = (arms.canary.errors_tally(), arms.baseline.errors_tally());
        let evidence = |side| sequential::evidence_of_difference(canary, baseline, delta, side);
        ErrorsCompared {
            canary: canary.rate(),
            baseline: baseline.rate(),
            worse: enough && evidence(Side::Above) >= t.worse_errors,
            within: enough && increase_bound(arms, t.within) <= delta,
        }
    });
    let latency = compare.latency.as_ref().map(|latency| {
        let share = latency.percentile / 100.0;
        let allowed = |baseline_ms: f64| {
            (baseline_ms * latency.max_ratio).max(baseline_ms + latency.min_increase_ms as f64)
        };
        let (canary_above, _) = arms.canary.quantile_bounds(share, t.worse_quantile);
        let (_, baseline_at_most) = arms.baseline.quantile_bounds(share, t.worse_quantile);
        let worse = canary_above.zip(baseline_at_most).is_some_and(|(c, b)| c >= allowed(b));
        let (_, canary_at_most) = arms.canary.quantile_bounds(share, t.within);
        let (baseline_above, _) = arms.baseline.quantile_bounds(share, t.within);
        // Without a lower bound the baseline's percentile is at least 0.
        let within = canary_at_most.is_some_and(|c| c <= allowed(baseline_above.unwrap_or(0.0)));
        LatencyCompared {
            canary_ms: arms.canary.quantile_ms(share),
            baseline_ms: arms.baseline.quantile_ms(share),
            worse: enough && worse,
            within: enough && within,
            trigger_ms: baseline_at_most.map(allowed),
        }
    });
    Compared { enough, errors, latency }
}

/// The upper confidence bound of the canary's error rate minus the
/// baseline's, at the level a step is earned at: what `status` shows
/// beside the two rates (a step is earned once it is at most
/// `maxErrorRateIncrease`).
pub fn error_increase_bound(compare: &Compare, arms: &Arms, epochs: usize) -> Option<f64> {
    compare.max_error_rate_increase?;
    if arms.canary.is_empty() || arms.baseline.is_empty() {
        return None;
    }
    Some(increase_bound(arms, thresholds(compare, epochs).within))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::settings::CompareLatency;

    fn compare(errors: Option<f64>, latency: Option<CompareLatency>) -> Compare {
        Compare {
            baseline: vec!["stable".into()],
            max_error_rate_increase: errors,
            latency,
            confidence: 0.95,
        }
    }

    fn arm(requests: u64, errors: u64, ms: u64) -> Arm {
        let mut arm = Arm { requests, errors, ..Arm::default() };
        arm.latency[latency_bucket(ms)] = requests as u32;
        arm
    }

    #[test]
    fn latency_buckets_are_a_quarter_octave_each() {
        assert_eq!((latency_bucket(0), latency_bucket(1), latency_bucket(2)), (0, 0, 4));
        assert_eq!(bucket_bound_ms(4), Some(2.0));
        for ms in [3u64, 7, 100, 999, 1000, 1001, 54_000] {
            let j = latency_bucket(ms);
            assert!(ms as f64 <= bucket_bound_ms(j).unwrap(), "{ms} above its bucket {j}");
            assert!(ms as f64 > bucket_bound_ms(j - 1).unwrap(), "{ms} belongs below bucket {j}");
        }
        assert_eq!(latency_bucket(3_600_000), LATENCY_BUCKETS - 1);
        assert_eq!(bucket_bound_ms(LATENCY_BUCKETS - 1), None);
    }

    #[test]
    fn arms_round_trip() {
        let arms = Arms { canary: arm(10, 2, 150), baseline: arm(90, 1, 120) };
        let mut bytes = Vec::new();
        arms.put(&mut bytes);
        assert_eq!(bytes.len(), ARMS_BYTES);
        assert_eq!(Arms::read(&mut Reader(&bytes)), Some(arms));
    }

    #[test]
    fn a_canary_with_more_errors_is_worse_and_a_like_one_within() {
        let rule = compare(Some(0.01), None);
        let bad = judge(&rule, &Arms { canary: arm(400, 40, 10), baseline: arm(4000, 40, 10) }, 1, 20);
        assert_eq!(bad.worse(), Some("errors"));
        assert!(!bad.within());
        let like = judge(&rule, &Arms { canary: arm(8000, 80, 10), baseline: arm(32000, 320, 10) }, 1, 20);
        assert_eq!(like.worse(), None);
        assert!(like.within(), "{like:?}");
        let early = judge(&rule, &Arms { canary: arm(50, 0, 10), baseline: arm(200, 2, 10) }, 1, 20);
        assert!(early.worse().is_none() && !early.within(), "too little evidence either way: {early:?}");
    }

    #[test]
    fn nothing_is_concluded_below_min_requests_or_without_a_baseline() {
        let rule = compare(Some(0.01), None);
        let no_baseline =
            judge(&rule, &Arms { canary: arm(5000, 4000, 10), baseline: Arm::default() }, 1, 20);
        assert!(!no_baseline.enough && no_baseline.worse().is_none() && !no_baseline.within());
        let few = judge(&rule, &Arms { canary: arm(19, 19, 10), baseline: arm(1000, 0, 10) }, 1, 20);
        assert!(few.worse().is_none());
    }

    #[test]
    fn a_slower_canary_is_worse_by_ratio_and_margin() {
        let latency = CompareLatency { percentile: 99.0, max_ratio: 1.5, min_increase_ms: 5 };
        let rule = compare(None, Some(latency));
        let slow = judge(&rule, &Arms { canary: arm(2000, 0, 400), baseline: arm(2000, 0, 100) }, 1, 20);
        assert_eq!(slow.worse(), Some("latency"), "{slow:?}");
        let same = judge(&rule, &Arms { canary: arm(2000, 0, 100), baseline: arm(2000, 0, 100) }, 1, 20);
        assert!(same.worse().is_none() && same.within(), "{same:?}");
        // Four times as slow, but only by 3 ms: within minIncreaseMs.
        let fast = judge(&rule, &Arms { canary: arm(2000, 0, 4), baseline: arm(2000, 0, 1) }, 1, 20);
        assert!(fast.worse().is_none() && fast.within(), "{fast:?}");
    }

    #[test]
    fn more_steps_and_metrics_ask_more_evidence_of_a_rollback_not_of_a_step() {
        let rule = compare(Some(0.01), None);
        let (one, five) = (thresholds(&rule, 1), thresholds(&rule, 5));
        assert!(
            (one.worse_errors - 20.0f64.ln()).abs() < 1e-9
                && (five.worse_errors - 100.0f64.ln()).abs() < 1e-9
        );
        assert!((five.worse_quantile - 200.0f64.ln()).abs() < 1e-9);
        assert!((five.within - 40.0f64.ln()).abs() < 1e-9, "a step is judged at the confidence itself");
        let both = compare(
            Some(0.01),
            Some(CompareLatency { percentile: 99.0, max_ratio: 1.5, min_increase_ms: 5 }),
        );
        assert!((thresholds(&both, 5).worse_errors - 200.0f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn the_increase_bound_is_above_the_estimate() {
        let rule = compare(Some(0.01), None);
        let arms = Arms { canary: arm(2000, 30, 10), baseline: arm(8000, 80, 10) };
        let bound = error_increase_bound(&rule, &arms, 1).unwrap();
        assert!(bound > 0.005 && bound < 0.03, "{bound}");
        assert_eq!(error_increase_bound(&compare(None, None), &arms, 1), None);
    }
}
