//! Weighted N-way splits over a bucket space of parts per million.
//!
//! Each target owns a contiguous range of buckets, in the listed order:
//! target i gets `[bound(i-1), bound(i))` with `bound(i)` the cumulative
//! weight share rounded to a millionth. Raising the first weight only moves
//! its upper bound up, so sticky users only ever move *into* it.

use crate::hashing::hash::{sticky_bucket, Fingerprint, BUCKETS};
use crate::request::{Request, Source};
use crate::rollout::settings::{Check, Ramp, Rollback};

#[derive(Debug, Clone)]
pub struct Split {
    targets: Vec<String>,
    weights: Vec<f64>,
    /// Exclusive upper bucket of each target; the last is `BUCKETS`.
    bounds: Vec<u32>,
    sticky_by: Option<Source>,
    salt: Vec<u8>,
    /// This split's position among all splits of its config: where a VM
    /// keeps its state.
    pub id: SplitId,
    /// What names this split to the fleet (shared data keys, the `split`
    /// label): a hash of its route's name, its rule's position and its own
    /// content, so an edit elsewhere in the config keeps it and a new
    /// version of it starts fresh. Set by `with_identity`.
    pub identity: u64,
    /// Boxed, as the rollback: most splits have neither, and each would pay
    /// their size inline.
    ramp: Option<Box<Ramped>>,
    /// The assignment cookie, and where a request carries it (compiled
    /// once, not per request).
    assign_cookie: Option<Box<(AssignCookie, Source)>>,
    rollback: Option<Box<Rollback>>,
    /// With a rollback: the bounds once rolled back (its target's weight 0).
    rolled_back_bounds: Option<Vec<u32>>,
}

/// A split's `assignCookie`: remember each user's target in a cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignCookie {
    pub name: String,
    pub max_age: Option<u64>,
    pub path: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    /// `Strict`, `Lax` or `None`; absent: the browser's default.
    pub same_site: Option<&'static str>,
}

impl AssignCookie {
    /// The `Set-Cookie` value assigning `target`.
    pub fn set_cookie(&self, target: &str) -> String {
        let mut value = format!("{}={target}", self.name);
        if let Some(max_age) = self.max_age {
            value += &format!("; Max-Age={max_age}");
        }
        if let Some(path) = &self.path {
            value += &format!("; Path={path}");
        }
        if self.secure {
            value += "; Secure";
        }
        if self.http_only {
            value += "; HttpOnly";
        }
        if let Some(same_site) = self.same_site {
            value += "; SameSite=";
            value += same_site;
        }
        value
    }
}

/// A ramp and the split's bounds at each of its steps, computed once.
#[derive(Debug, Clone)]
struct Ramped {
    ramp: Ramp,
    step_bounds: Vec<Vec<u32>>,
}

/// A split's position among all splits of its config (`Router::split`):
/// where a proxy keeps the split's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SplitId(pub u32);

impl SplitId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What the proxy knows of a split beyond its config, as decisions read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    /// The rollback's target gets no traffic (rolled back, or waiting for
    /// the fleet latch).
    pub withheld: bool,
    /// A gated ramp's step, as the proxy judged it; `None` before it
    /// started (the listed weights apply).
    pub gated_step: Option<usize>,
}

/// Each split's `Live` state by id: the proxy's per-split state, or a
/// plain list (a split beyond its end is live).
pub trait SplitStates {
    fn live(&self, id: SplitId) -> Live;
}

impl SplitStates for Vec<Live> {
    fn live(&self, id: SplitId) -> Live {
        self.get(id.index()).copied().unwrap_or_default()
    }
}

/// Every split live: nothing rolled back.
pub struct AllLive;

impl SplitStates for AllLive {
    fn live(&self, _: SplitId) -> Live {
        Live::default()
    }
}

/// What a decision needs besides the request, all supplied by the caller so
/// decisions stay deterministic: a random roll, the time, and each split's
/// live state (rolled back or not).
#[derive(Clone, Copy)]
pub struct Moment<'a> {
    /// Uniform in `0..1_000_000`: decides non-sticky splits.
    pub roll: u32,
    /// Milliseconds since the Unix epoch: moves ramps.
    pub now_ms: u64,
    pub splits: &'a dyn SplitStates,
}

impl Moment<'static> {
    /// A moment with only a roll: time 0 (before any ramp), every split live.
    pub fn roll(roll: u32) -> Self {
        Moment { roll, now_ms: 0, splits: &AllLive }
    }
}

/// How a split chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// By the sticky key's bucket.
    Sticky { bucket: u32 },
    /// By the request's random roll (no sticky key configured or sent).
    Random { roll: u32 },
    /// By the request's assignment cookie.
    Cookie,
}

/// Cumulative parts-per-million bounds of some weights.
fn bounds_of(weights: &[f64]) -> Vec<u32> {
    let total: f64 = weights.iter().sum();
    let mut cumulative = 0.0;
    let mut bounds = Vec::with_capacity(weights.len());
    for weight in weights {
        cumulative += weight;
        let bound = if total > 0.0 { (cumulative / total * f64::from(BUCKETS)).round() } else { 0.0 };
        // `as` saturates; the min keeps float rounding inside the space.
        bounds.push((bound as u32).min(BUCKETS));
    }
    if let Some(last) = bounds.last_mut() {
        *last = BUCKETS;
    }
    bounds
}

/// Each target's share of the bucket space under these bounds.
fn shares_of(bounds: &[u32]) -> Vec<u32> {
    let mut previous = 0;
    bounds
        .iter()
        .map(|&bound| {
            let share = bound - previous.min(bound);
            previous = bound;
            share
        })
        .collect()
}

/// The weights with the first target at `percent` and the rest sharing
/// `100 - percent` in proportion to their own weights.
fn ramped(weights: &[f64], percent: f64) -> Vec<f64> {
    let others: f64 = weights.iter().skip(1).sum();
    let mut out = vec![percent];
    out.extend(
        weights.iter().skip(1).map(|w| if others > 0.0 { (100.0 - percent) * w / others } else { 0.0 }),
    );
    out
}

impl Split {
    /// Builds a split from validated weights: non-negative, finite, sum > 0.
    pub fn new(weighted: Vec<(String, f64)>, sticky_by: Option<Source>, salt: Vec<u8>) -> Self {
        let (targets, weights): (Vec<String>, Vec<f64>) = weighted.into_iter().unzip();
        let bounds = bounds_of(&weights);
        Split {
            targets,
            weights,
            rolled_back_bounds: None,
            bounds,
            sticky_by,
            salt,
            id: SplitId(0),
            identity: 0,
            ramp: None,
            assign_cookie: None,
            rollback: None,
        }
    }

    /// Adds a ramp of the first target (validated: it is the first target);
    /// its bounds at each step are computed here.
    pub fn with_ramp(mut self, ramp: Ramp) -> Self {
        let step_bounds = ramp.steps.iter().map(|&p| bounds_of(&ramped(&self.weights, p))).collect();
        self.ramp = Some(Box::new(Ramped { ramp, step_bounds }));
        self
    }

    pub fn with_assign_cookie(mut self, cookie: AssignCookie) -> Self {
        let source = Source::Cookie(cookie.name.as_bytes().to_vec());
        self.assign_cookie = Some(Box::new((cookie, source)));
        self
    }

    /// Adds a rollback of `target` (validated: one of the targets, and the
    /// others have weight).
    pub fn with_rollback(mut self, rollback: Rollback) -> Self {
        let without: Vec<f64> = self
            .targets
            .iter()
            .zip(&self.weights)
            .map(|(t, w)| if *t == rollback.target { 0.0 } else { *w })
            .collect();
        self.rolled_back_bounds = Some(bounds_of(&without));
        self.rollback = Some(Box::new(rollback));
        self
    }

    /// Names the split: `route` and `rule` say where it is, the rest is what
    /// it sends where (targets, weights, stickiness, the ramp's steps and
    /// times, the assignment cookie, the watched target; floats by their
    /// bits), never how the canary is judged: thresholds, windows, checks
    /// and the gate's terms can be edited mid-ramp without losing the step
    /// or a rollback. Part of the contract between versions of this filter
    /// (a fleet in the middle of an upgrade must agree on it): change it
    /// only with a documented break, as the pinned identity test says.
    pub fn with_identity(mut self, route: &str, rule: usize) -> Self {
        let mut f = Fingerprint::default();
        f.field("route", route.as_bytes()).number("rule", rule as u64);
        for (target, weight) in self.targets.iter().zip(&self.weights) {
            f.field("target", target.as_bytes()).float("weight", *weight);
        }
        match &self.sticky_by {
            Some(Source::Header(name)) => f.field("sticky-header", name),
            Some(Source::Cookie(name)) => f.field("sticky-cookie", name),
            Some(Source::Query(name)) => f.field("sticky-query", name),
            None => &mut f,
        };
        f.field("salt", &self.salt);
        if let Some(ramp) = self.ramp() {
            f.field("ramp", ramp.target.as_bytes())
                .number("start", ramp.start_ms)
                .number("every", ramp.every_ms);
            for step in &ramp.steps {
                f.float("step", *step);
            }
            // Gated or by the clock changes what each step means; the
            // gate's own terms and `hold` do not.
            f.number("gated", u64::from(ramp.gate.is_some()));
        }
        if let Some((cookie, _)) = self.assign_cookie.as_deref() {
            f.field("assign-cookie", cookie.name.as_bytes())
                .number("max-age", cookie.max_age.map_or(u64::MAX, |a| a));
            f.field("path", cookie.path.as_deref().unwrap_or("").as_bytes());
            // A split without `sameSite` keeps the identity it had before
            // the key existed.
            let same_site = match cookie.same_site {
                None => 0,
                Some("Strict") => 1,
                Some("Lax") => 2,
                Some(_) => 3,
            };
            f.number("flags", u64::from(cookie.secure) | u64::from(cookie.http_only) << 1 | same_site << 2);
        }
        if let Some(rollback) = &self.rollback {
            f.field("rollback", rollback.target.as_bytes());
        }
        self.identity = f.finish();
        self
    }

    /// `identity` as the 16 hex digits labels and keys carry.
    pub fn identity_hex(&self) -> String {
        format!("{:016x}", self.identity)
    }

    /// The bounds in force at this moment.
    fn current_bounds(&self, moment: &Moment<'_>) -> &[u32] {
        if self.rolled_back_bounds.is_none() && self.ramp.is_none() {
            return &self.bounds;
        }
        let live = moment.splits.live(self.id);
        if let Some(bounds) = self.rolled_back_bounds.as_ref().filter(|_| live.withheld) {
            return bounds;
        }
        if let Some(ramped) = &self.ramp {
            let step = ramped.ramp.step_in_force(live.gated_step, moment.now_ms);
            if let Some(bounds) = step.and_then(|step| ramped.step_bounds.get(step)) {
                return bounds;
            }
        }
        &self.bounds
    }

    /// Each target's share in parts per million at this moment.
    pub fn current_shares(&self, moment: &Moment<'_>) -> Vec<u32> {
        shares_of(self.current_bounds(moment))
    }

    /// Each target's share in percent at this moment.
    pub fn current_percents(&self, moment: &Moment<'_>) -> Vec<f64> {
        self.current_shares(moment).iter().map(|&s| f64::from(s) / f64::from(BUCKETS) * 100.0).collect()
    }

    /// Each target's configured share in parts per million.
    pub fn configured_shares(&self) -> Vec<u32> {
        shares_of(&self.bounds)
    }

    /// The index of the target owning `bucket` under these bounds.
    fn pick_in(&self, bounds: &[u32], bucket: u32) -> usize {
        bounds.partition_point(|&bound| bound <= bucket).min(self.targets.len().saturating_sub(1))
    }

    /// The index of the target owning `bucket` under the listed weights.
    #[cfg(test)]
    fn pick(&self, bucket: u32) -> usize {
        self.pick_in(&self.bounds, bucket)
    }

    /// Chooses a target for a request: by a valid assignment cookie, then by
    /// its sticky key when configured and sent (non-empty), else by the roll.
    pub fn choose(&self, request: &Request<'_>, moment: &Moment<'_>) -> (&str, Choice) {
        let bounds = self.current_bounds(moment);
        if let Some((_, cookie)) = self.assign_cookie.as_deref() {
            let has_weight = |i: usize| bounds[i] > if i == 0 { 0 } else { bounds[i - 1] };
            let assigned = request
                .with_first_value(cookie, |value| self.targets.iter().position(|t| t.as_bytes() == value))
                .flatten()
                .filter(|&i| has_weight(i));
            if let Some(i) = assigned {
                return (&self.targets[i], Choice::Cookie);
            }
        }
        let bucket = self
            .sticky_by
            .as_ref()
            .and_then(|source| request.with_first_value(source, |key| sticky_bucket(&self.salt, key)));
        let choice = match bucket {
            Some(bucket) => Choice::Sticky { bucket },
            None => Choice::Random { roll: moment.roll % BUCKETS },
        };
        let bucket = match choice {
            Choice::Sticky { bucket } => bucket,
            Choice::Random { roll } => roll,
            Choice::Cookie => 0,
        };
        let target = self.targets.get(self.pick_in(bounds, bucket)).map_or("", String::as_str);
        (target, choice)
    }

    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    pub fn sticky_by(&self) -> Option<&Source> {
        self.sticky_by.as_ref()
    }

    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    pub fn ramp(&self) -> Option<&Ramp> {
        self.ramp.as_deref().map(|ramped| &ramped.ramp)
    }

    pub fn assign_cookie(&self) -> Option<&AssignCookie> {
        self.assign_cookie.as_deref().map(|(cookie, _)| cookie)
    }

    pub fn rollback(&self) -> Option<&Rollback> {
        self.rollback.as_deref()
    }

    /// Its rollback's Prometheus checks (none without them).
    pub fn checks(&self) -> &[Check] {
        self.rollback().map_or(&[][..], Rollback::checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::rng::Rng;

    fn split(weights: &[f64]) -> Split {
        let weighted = weights.iter().enumerate().map(|(i, w)| (format!("t{i}"), *w)).collect();
        Split::new(weighted, Some(Source::Cookie(b"uid".to_vec())), b"salt".to_vec())
    }

    fn shares(counts: &[usize]) -> Vec<f64> {
        let total: usize = counts.iter().sum();
        counts.iter().map(|&c| c as f64 * 100.0 / total as f64).collect()
    }

    fn assert_within_half_a_point(weights: &[f64], counts: &[usize]) {
        let sum: f64 = weights.iter().sum();
        for (i, share) in shares(counts).iter().enumerate() {
            let want = weights[i] / sum * 100.0;
            assert!((share - want).abs() <= 0.5, "target {i}: {share:.2}% vs {want:.2}% ({counts:?})");
        }
    }

    #[test]
    fn bounds_are_cumulative_parts_per_million() {
        assert_eq!(split(&[20.0, 80.0]).bounds, vec![200_000, 1_000_000]);
        assert_eq!(split(&[1.0, 1.0, 1.0]).bounds, vec![333_333, 666_667, 1_000_000]);
        assert_eq!(split(&[0.5, 99.5]).bounds, vec![5_000, 1_000_000]);
        assert_eq!(split(&[0.0, 100.0]).bounds, vec![0, 1_000_000]);
    }

    #[test]
    fn zero_weights_are_never_picked() {
        let s = split(&[0.0, 100.0, 0.0]);
        for bucket in [0, 1, 500_000, 999_999] {
            assert_eq!(s.pick(bucket), 1);
        }
        let s = split(&[100.0, 0.0]);
        assert_eq!(s.pick(999_999), 0);
    }

    #[test]
    fn random_rolls_follow_the_weights() {
        for weights in [&[20.0, 80.0][..], &[50.0, 30.0, 15.0, 5.0], &[0.5, 99.5], &[1.0, 1.0, 1.0]] {
            let s = split(weights);
            let mut rng = Rng::new(42);
            let mut counts = vec![0; weights.len()];
            for _ in 0..100_000 {
                counts[s.pick(rng.roll())] += 1;
            }
            assert_within_half_a_point(weights, &counts);
        }
    }

    #[test]
    fn distinct_sticky_ids_follow_the_weights() {
        for weights in [&[20.0, 80.0][..], &[50.0, 30.0, 15.0, 5.0], &[0.5, 99.5]] {
            let s = split(weights);
            let mut counts = vec![0; weights.len()];
            for id in 0..100_000 {
                let cookie = format!("uid=user-{id}");
                let req = Request::new(vec![(b"cookie", cookie.as_bytes())]);
                let (target, choice) = s.choose(&req, &Moment::roll(0));
                assert!(matches!(choice, Choice::Sticky { .. }));
                counts[target[1..].parse::<usize>().unwrap()] += 1;
            }
            assert_within_half_a_point(weights, &counts);
        }
    }

    #[test]
    fn raising_the_first_weight_only_moves_ids_into_it() {
        let steps = [0.0, 1.0, 5.0, 20.0, 33.3, 50.0, 99.0, 100.0];
        let ids: Vec<String> = (0..20_000).map(|i| format!("uid=u{i}")).collect();
        let mut previous: Option<Vec<String>> = None;
        for first in steps {
            let s = split(&[first, 100.0 - first]);
            let now: Vec<String> = ids
                .iter()
                .map(|c| {
                    s.choose(&Request::new(vec![(b"cookie", c.as_bytes())]), &Moment::roll(0)).0.to_string()
                })
                .collect();
            if let Some(before) = previous {
                for (b, n) in before.iter().zip(&now) {
                    assert!(b == n || n == "t0", "an id left t0 when its weight rose to {first}");
                }
            }
            previous = Some(now);
        }
    }

    #[test]
    fn without_a_sticky_key_the_roll_decides() {
        let s = split(&[20.0, 80.0]);
        let req = Request::new(vec![]);
        assert_eq!(s.choose(&req, &Moment::roll(199_999)), ("t0", Choice::Random { roll: 199_999 }));
        assert_eq!(s.choose(&req, &Moment::roll(200_000)), ("t1", Choice::Random { roll: 200_000 }));
    }

    #[test]
    fn the_same_sticky_id_always_gets_the_same_target() {
        let s = split(&[20.0, 80.0]);
        let req = Request::new(vec![(b"cookie", b"uid=alice")]);
        let first = s.choose(&req, &Moment::roll(0));
        for roll in [1, 500_000, 999_999] {
            assert_eq!(s.choose(&req, &Moment::roll(roll)), first);
        }
    }
}
