//! Tests that may be looked at after every response and still keep their
//! confidence: e-values (Ville's inequality) from a mixture of likelihoods
//! against the best the null hypothesis can do.
//!
//! A fixed-sample test checked every second, stopping at the first
//! "significant" answer, rejects a true null far more often than its level
//! says. An e-value does not: it is a nonnegative quantity whose
//! expectation under the null is at most 1 at every stopping time, so the
//! chance that it ever reaches 1/α is at most α (Ville), however often it
//! is looked at.
//!
//! The numerator here mixes the Bernoulli likelihood over Jeffreys'
//! Beta(½, ½) prior (a closed form: a Beta function); the denominator is
//! the largest likelihood any parameter of the null can reach, so the
//! ratio is at most the martingale of the true parameter, and Ville
//! applies to every parameter of a composite null at once ("universal
//! inference"). Two uses:
//!
//! - two proportions (`evidence_of_difference`): is the canary's error
//!   rate more than the baseline's plus δ (or less)? Both arms' responses
//!   in one likelihood, so their uncertainties add as variances do;
//! - one proportion against a known one (`evidence_against`): is a
//!   latency quantile above (below) a bucket bound? The count of responses
//!   at or below the p-quantile is binomial with the known p, so a
//!   quantile is bounded without knowing the distribution.
//!
//! Pure arithmetic; no allocation.

/// The natural logarithm. In the `.wasm`, `ln_series`: the C library's
/// `log` brings lookup tables that would cost kilobytes. Natively (the
/// CLI, tests, rehearsals) the standard library's, which agrees within an
/// ulp (`ln_series_is_the_standard_library_s`) and is several times
/// faster in a debug build.
pub fn ln(x: f64) -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        ln_series(x)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        x.ln()
    }
}

/// ln without tables: x = 2^e · m with m within [√½, √2], then
/// ln m = 2 atanh((m − 1)/(m + 1)), whose series converges fast there
/// (|z| < 0.172: the terms up to z^23 leave an error below 1e-17).
#[cfg(any(test, target_arch = "wasm32"))]
pub fn ln_series(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // Subnormals: scale into the normal range first.
    let (x, offset) = if x < f64::MIN_POSITIVE { (x * 18_014_398_509_481_984.0, -54.0) } else { (x, 0.0) };
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as f64 - 1023.0 + offset;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        exponent += 1.0;
    }
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    // 1/(2k+1) for k = 0..11, summed from the smallest term (Horner).
    const ODD: [f64; 12] = [
        1.0,
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
        1.0 / 23.0,
    ];
    let series = ODD.iter().rev().fold(0.0, |sum, c| sum * z2 + c);
    exponent * std::f64::consts::LN_2 + 2.0 * z * series
}

/// ln Γ(x) for x > 0: Stirling's series after shifting x to at least 10
/// (error below 1e-13 there).
pub fn ln_gamma(x: f64) -> f64 {
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= ln(x);
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    // ½ ln 2π.
    const HALF_LN_TWO_PI: f64 = 0.918_938_533_204_672_7;
    shift + (x - 0.5) * ln(x) - x + HALF_LN_TWO_PI + series
}

/// ln B(a, b).
fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// One arm's Bernoulli evidence: how many of `n` were "successes" (errors,
/// or responses at or below a bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub hits: u64,
    pub n: u64,
}

impl Tally {
    pub fn rate(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.hits as f64 / self.n as f64
        }
    }

    fn misses(&self) -> f64 {
        self.n.saturating_sub(self.hits) as f64
    }

    /// ln of the likelihood at `p` (0 ln 0 = 0).
    fn ln_likelihood(&self, p: f64) -> f64 {
        let term = |count: f64, q: f64| if count == 0.0 { 0.0 } else { count * ln(q) };
        term(self.hits as f64, p) + term(self.misses(), 1.0 - p)
    }

    /// ln of the likelihood mixed over Jeffreys' prior.
    fn ln_mixture(&self) -> f64 {
        // ln π.
        const LN_PI: f64 = 1.144_729_885_849_400_2;
        ln_beta(0.5 + self.hits as f64, 0.5 + self.misses()) - LN_PI
    }
}

/// Which way the evidence points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Evidence that the quantity is above the value (null: at or below).
    Above,
    /// Evidence that it is below (null: at or above).
    Below,
}

impl Tally {
    /// ln of the likelihood mixed over Jeffreys' prior: the forecaster
    /// that knows nothing in advance.
    pub fn ln_jeffreys(&self) -> f64 {
        self.ln_mixture()
    }
}

/// A confidence bound on one proportion, from `ln_forecast`: the ln of the
/// probability a forecaster gave the outcomes before each was seen (any
/// predictable forecaster: Jeffreys' mixture, another arm's rate, or a
/// mixture of such). The proportions `p` with `ln_forecast - ln L(p)` below
/// `threshold` form a confidence sequence: by Ville, the true one leaves it
/// with at most e^-threshold chance, ever (universal inference). Returns
/// its end on `side` (`Above`: the upper bound).
pub fn bound(ln_forecast: f64, tally: Tally, threshold: f64, side: Side) -> f64 {
    let rate = tally.rate();
    let outside = |p: f64| ln_forecast - tally.ln_likelihood(p) >= threshold;
    let (mut inside, mut out) = match side {
        Side::Above => (rate, 1.0),
        Side::Below => (rate, 0.0),
    };
    if tally.n == 0 || !outside(out) {
        return out;
    }
    for _ in 0..40 {
        let mid = 0.5 * (inside + out);
        if outside(mid) {
            out = mid;
        } else {
            inside = mid;
        }
    }
    out
}

/// ln of the e-value that one proportion is on `side` of `p`; 0 (no
/// evidence) when its estimate is not on that side.
pub fn evidence_against(tally: Tally, p: f64, side: Side) -> f64 {
    let rate = tally.rate();
    let on_side = match side {
        Side::Above => rate > p,
        Side::Below => rate < p,
    };
    if tally.n == 0 || !on_side {
        return 0.0;
    }
    // The null's best, on this side, is `p` itself: the likelihood is
    // concave with its top at `rate`.
    (tally.ln_mixture() - tally.ln_likelihood(p)).max(0.0)
}

/// ln of the e-value that the canary's proportion minus the baseline's is
/// on `side` of `delta`; 0 when the estimates are not on that side.
pub fn evidence_of_difference(canary: Tally, baseline: Tally, delta: f64, side: Side) -> f64 {
    if canary.n == 0 || baseline.n == 0 {
        return 0.0;
    }
    let difference = canary.rate() - baseline.rate();
    let on_side = match side {
        Side::Above => difference > delta,
        Side::Below => difference < delta,
    };
    if !on_side {
        return 0.0;
    }
    // The null's best lies on its edge, canary = baseline + delta: the
    // joint likelihood is concave and its top is on the other side.
    let best = best_on_edge(canary, baseline, delta);
    (canary.ln_mixture() + baseline.ln_mixture() - best).max(0.0)
}

/// The largest joint ln-likelihood with the canary's proportion equal to
/// the baseline's plus `delta`.
fn best_on_edge(canary: Tally, baseline: Tally, delta: f64) -> f64 {
    let joint = |b: f64| canary.ln_likelihood(b + delta) + baseline.ln_likelihood(b);
    // The baseline's proportion b and b + delta both in [0, 1].
    let (mut low, mut high) = ((-delta).max(0.0), (1.0 - delta).min(1.0));
    if low >= high {
        return joint(low);
    }
    // The slope in b, decreasing: bisect for its zero.
    let slope = |b: f64| {
        let part = |hits: f64, misses: f64, q: f64| {
            let up = if hits == 0.0 { 0.0 } else { hits / q };
            let down = if misses == 0.0 { 0.0 } else { misses / (1.0 - q) };
            up - down
        };
        part(canary.hits as f64, canary.misses(), b + delta)
            + part(baseline.hits as f64, baseline.misses(), b)
    };
    for _ in 0..50 {
        let mid = 0.5 * (low + high);
        if slope(mid) > 0.0 {
            low = mid;
        } else {
            high = mid;
        }
    }
    // At the top; minus infinity only where no point of the edge can
    // produce the counts at all (then any evidence is infinite).
    joint(0.5 * (low + high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(hits: u64, n: u64) -> Tally {
        Tally { hits, n }
    }

    #[test]
    fn ln_series_is_the_standard_library_s() {
        let ln = ln_series;
        let mut x = 1e-310;
        while x < 1e300 {
            let (ours, std) = (ln(x), x.ln());
            assert!(
                (ours - std).abs() <= 4.0 * f64::EPSILON * std.abs().max(1.0),
                "ln({x}): {ours} vs {std}"
            );
            x *= 1.37;
        }
        for x in [1.0, 2.0, 0.5, std::f64::consts::E, 0.99, 1.01, 1e-3] {
            assert!((ln(x) - x.ln()).abs() < 1e-15, "{x}");
        }
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!((ln(0.0), ln(f64::INFINITY)), (f64::NEG_INFINITY, f64::INFINITY));
    }

    #[test]
    fn ln_gamma_is_the_factorial_and_half_integers() {
        for n in 1..30u64 {
            let factorial: f64 = (1..n).map(|k| k as f64).product();
            assert!((ln_gamma(n as f64) - factorial.ln()).abs() < 1e-10, "{n}");
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        assert!(
            (ln_gamma(1e6)
                - (1e6 * (1e6f64).ln() - 1e6 - 0.5 * (1e6f64).ln()
                    + 0.5 * (2.0 * std::f64::consts::PI).ln()
                    + 1.0 / 12e6))
                .abs()
                < 1e-6
        );
    }

    #[test]
    fn no_evidence_where_the_estimate_agrees_with_the_null() {
        assert_eq!(evidence_against(tally(5, 100), 0.1, Side::Above), 0.0);
        assert_eq!(evidence_against(tally(0, 0), 0.1, Side::Below), 0.0);
        assert_eq!(evidence_of_difference(tally(1, 100), tally(1, 100), 0.0, Side::Above), 0.0);
        assert_eq!(evidence_of_difference(tally(3, 100), tally(1, 100), 0.05, Side::Above), 0.0);
    }

    #[test]
    fn evidence_grows_with_the_effect_and_the_sample() {
        let small = evidence_of_difference(tally(30, 500), tally(5, 500), 0.0, Side::Above);
        let large = evidence_of_difference(tally(60, 1000), tally(10, 1000), 0.0, Side::Above);
        assert!(small > 0.0 && large > small, "{small} {large}");
        // 20% against 1% over 200 responses each: overwhelming.
        assert!(
            evidence_of_difference(tally(40, 200), tally(2, 200), 0.01, Side::Above) > 20.0f64.ln() * 3.0
        );
        // The margin makes it harder.
        let margin = evidence_of_difference(tally(60, 1000), tally(10, 1000), 0.03, Side::Above);
        assert!(margin < large, "{margin} {large}");
    }

    #[test]
    fn non_inferiority_needs_a_tight_estimate() {
        // 1% against 1% within one point: needs thousands.
        let few = evidence_of_difference(tally(1, 100), tally(1, 100), 0.01, Side::Below);
        let many = evidence_of_difference(tally(100, 10_000), tally(100, 10_000), 0.01, Side::Below);
        assert!(few < 3.0f64.ln() && many > 20.0f64.ln(), "{few} {many}");
    }

    #[test]
    fn a_forecaster_that_knew_the_rate_gives_a_tighter_bound() {
        let seen = tally(100, 10_000);
        let jeffreys = bound(seen.ln_jeffreys(), seen, 20.0f64.ln(), Side::Above);
        // A forecaster that said 1% all along (another arm's rate).
        let knew = seen.ln_likelihood(0.01);
        let informed = bound(knew, seen, 20.0f64.ln(), Side::Above);
        assert!(informed < jeffreys && informed > 0.01, "{informed} {jeffreys}");
        assert!(bound(knew, seen, 20.0f64.ln(), Side::Below) < 0.01);
        assert_eq!(bound(0.0, Tally::default(), 3.0, Side::Above), 1.0, "no evidence: no bound");
    }

    /// Ville in action: healthy arms (equal 2% error rates), looked at
    /// after every response for 5,000 responses, 400 seeded runs: the e-value
    /// passes 1/α far less often than α.
    #[test]
    fn a_true_null_looked_at_every_response_is_rejected_at_most_alpha_of_the_time() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let threshold = 20.0f64.ln();
        let mut rejected = 0;
        for _ in 0..400 {
            let (mut canary, mut baseline) = (Tally::default(), Tally::default());
            for i in 0..5_000 {
                let arm = if i % 2 == 0 { &mut canary } else { &mut baseline };
                arm.n += 1;
                arm.hits += u64::from(next() < 0.02);
                if i % 10 == 0 && evidence_of_difference(canary, baseline, 0.0, Side::Above) >= threshold {
                    rejected += 1;
                    break;
                }
            }
        }
        assert!(rejected <= 20, "{rejected} of 400 runs rejected a true null at α = 0.05");
    }
}
