//! A rollback's sliding window of the watched target's responses, as every
//! proxy worker shares it: one value in the proxy's shared data holds the
//! rolled-back flag, `SLOTS` time buckets of responses, errors and a
//! latency histogram, and the counts since a gated ramp's step began, so
//! one read and one compare-and-swap write update it all. A slot whose
//! bucket is too old is reused. Memory per split is fixed whatever the
//! traffic. Counts are kept with the step they were served in: a worker
//! that has not taken on a new step yet never wipes that step's counts.
//! A window of another shape (an edited `window` or latency bound, whose
//! slots and buckets mean other things) starts its counts over, and keeps
//! its rolled-back flag and step. Pure: the proxy's shared data only
//! stores the bytes.

use crate::hashing::hash::Fingerprint;
use crate::rollout::compare::{Arms, ARMS_BYTES};
use crate::rollout::settings::{Latency, LocalWindow};
use crate::text::le_bytes::Reader;

/// Buckets per window: the window slides in steps of a tenth.
pub const SLOTS: usize = 10;

/// Latency buckets' upper bounds, as fractions of the rollback's `maxMs`;
/// the last bucket holds the rest. Bucket `WITHIN - 1` ends at `maxMs`
/// itself, so "the percentile is above `maxMs`" is counted exactly.
pub const LATENCY_BOUNDS: [f64; 7] = [0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0];
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS.len() + 1;
const WITHIN: usize = 5;

/// Responses counted but not yet in a window (a worker's batch), or a
/// window's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
    /// Responses by latency bucket (all zero without `latency`).
    pub latency: [u32; LATENCY_BUCKETS],
}

impl Counts {
    /// One response: an error or not, and its latency bucket, if judged.
    pub fn one(error: bool, latency_bucket: Option<usize>) -> Counts {
        let mut counts = Counts { requests: 1, errors: u64::from(error), latency: [0; LATENCY_BUCKETS] };
        if let Some(slot) = latency_bucket.and_then(|b| counts.latency.get_mut(b)) {
            *slot = 1;
        }
        counts
    }

    pub fn add(&mut self, other: Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine = mine.saturating_add(theirs);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.requests == 0
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// Responses whose latency was measured, and those above `maxMs`.
    fn timed_and_slow(&self) -> (u64, u64) {
        let sum = |buckets: &[u32]| buckets.iter().map(|&n| u64::from(n)).sum::<u64>();
        (sum(&self.latency), sum(&self.latency[WITHIN..]))
    }

    /// Whether the latency's percentile is above `maxMs`: more than
    /// `100 - percentile` percent of the timed responses were slower.
    pub fn too_slow(&self, latency: &Latency) -> bool {
        let (timed, slow) = self.timed_and_slow();
        timed > 0 && slow as f64 > timed as f64 * (1.0 - latency.percentile / 100.0)
    }

    /// The latency's percentile, estimated from the histogram (linear
    /// within a bucket); `None` without timed responses. Beyond the last
    /// bound it reads as that bound, `2 × maxMs`: "at least".
    pub fn percentile_ms(&self, latency: &Latency) -> Option<f64> {
        let (timed, _) = self.timed_and_slow();
        if timed == 0 {
            return None;
        }
        let rank = (latency.percentile / 100.0 * timed as f64).ceil().max(1.0);
        let max = latency.max_ms as f64;
        let mut below = 0.0;
        for (i, &n) in self.latency.iter().enumerate() {
            let n = f64::from(n);
            let low = if i == 0 { 0.0 } else { LATENCY_BOUNDS[i - 1] * max };
            let Some(&high) = LATENCY_BOUNDS.get(i) else { return Some(low) };
            if below + n >= rank {
                return Some(low + (high * max - low) * (rank - below) / n);
            }
            below += n;
        }
        Some(2.0 * max)
    }
}

/// Whether a latency bucket holds responses slower than `maxMs`.
pub fn is_slow(bucket: usize) -> bool {
    bucket >= WITHIN
}

/// The latency bucket of a response that took `ms`.
pub fn latency_bucket(ms: u64, latency: &Latency) -> usize {
    let max = latency.max_ms as f64;
    LATENCY_BOUNDS.iter().position(|bound| ms as f64 <= bound * max).unwrap_or(LATENCY_BOUNDS.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slot {
    pub bucket: u64,
    pub counts: Counts,
}

/// One rollback split's shared window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window {
    pub rolled_back: bool,
    /// What its counts mean (`shape_of`).
    pub shape: u64,
    pub slots: [Slot; SLOTS],
    /// The gated ramp's step `step_counts` are for.
    pub step: u32,
    /// Responses since that step began.
    pub step_counts: Counts,
    /// With `compare`: both arms' responses since that step began.
    pub arms: Arms,
}

const COUNTS_BYTES: usize = 16 + 4 * LATENCY_BUCKETS;
const SLOT_BYTES: usize = 8 + COUNTS_BYTES;
/// The encoded size: the flag, the shape, the step and its counts, the
/// slots, then both arms' evidence.
pub const ENCODED_BYTES: usize = WITHOUT_ARMS_BYTES + ARMS_BYTES;
/// The layout before `compare`, still read (its arms empty).
const WITHOUT_ARMS_BYTES: usize = 1 + 8 + 4 + COUNTS_BYTES + SLOTS * SLOT_BYTES;

/// What a window's counts mean: the length of its slots and the bounds of
/// its latency buckets. Counts of another shape cannot be read as these.
pub fn shape_of(window: &LocalWindow) -> u64 {
    let mut f = Fingerprint::default();
    f.number("window", window.window_ms).number("max-ms", window.latency.as_ref().map_or(0, |l| l.max_ms));
    f.finish()
}

fn put_counts(out: &mut Vec<u8>, counts: &Counts) {
    out.extend_from_slice(&counts.requests.to_le_bytes());
    out.extend_from_slice(&counts.errors.to_le_bytes());
    for n in counts.latency {
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Counts as `put_counts` wrote them.
fn read_counts(r: &mut Reader<'_>) -> Option<Counts> {
    let (requests, errors) = (r.u64()?, r.u64()?);
    let mut latency = [0; LATENCY_BUCKETS];
    for n in &mut latency {
        *n = r.u32()?;
    }
    Some(Counts { requests, errors, latency })
}

impl Window {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_BYTES);
        out.push(u8::from(self.rolled_back));
        out.extend_from_slice(&self.shape.to_le_bytes());
        out.extend_from_slice(&self.step.to_le_bytes());
        put_counts(&mut out, &self.step_counts);
        for slot in &self.slots {
            out.extend_from_slice(&slot.bucket.to_le_bytes());
            put_counts(&mut out, &slot.counts);
        }
        self.arms.put(&mut out);
        out
    }

    /// `None` for bytes that are not a window (never written, another
    /// version's, or foreign): the caller starts from an empty one.
    pub fn decode(bytes: &[u8]) -> Option<Window> {
        if !(bytes.len() == ENCODED_BYTES || bytes.len() == WITHOUT_ARMS_BYTES) || bytes[0] > 1 {
            return None;
        }
        let mut r = Reader(&bytes[1..]);
        let mut window = Window {
            rolled_back: bytes[0] == 1,
            shape: r.u64()?,
            step: r.u32()?,
            step_counts: read_counts(&mut r)?,
            ..Window::default()
        };
        for slot in &mut window.slots {
            *slot = Slot { bucket: r.u64()?, counts: read_counts(&mut r)? };
        }
        if bytes.len() == ENCODED_BYTES {
            window.arms = Arms::read(&mut r)?;
        }
        Some(window)
    }

    /// The window as counts of `shape` read it: counts of another shape are
    /// dropped, the rolled-back flag and the step kept.
    pub fn of_shape(self, shape: u64) -> Window {
        if self.shape == shape {
            return self;
        }
        Window { rolled_back: self.rolled_back, shape, step: self.step, ..Window::default() }
    }

    /// Adds the watched target's counts served at `step` to `bucket`'s
    /// slot (reset if it held an older bucket) and to the step's counts,
    /// and both arms' evidence to the step's: a later step starts them
    /// over; an earlier one's (a worker that had not taken the step on
    /// yet) are not this step's evidence and stay out of them.
    pub fn add(&mut self, bucket: u64, counts: Counts, arms: &Arms, step: u32) {
        if !counts.is_empty() {
            let slot = &mut self.slots[(bucket % SLOTS as u64) as usize];
            if slot.bucket != bucket {
                *slot = Slot { bucket, counts: Counts::default() };
            }
            slot.counts.add(counts);
        }
        if step > self.step {
            self.step = step;
            self.step_counts = Counts::default();
            self.arms = Arms::default();
        }
        if step == self.step {
            self.step_counts.add(counts);
            self.arms.add(arms);
        }
    }

    /// Both arms' evidence since `step` began (none if the window counts
    /// another).
    pub fn arms_since(&self, step: u32) -> Arms {
        if self.step == step {
            self.arms
        } else {
            Arms::default()
        }
    }

    /// Responses in the window ending with bucket `current`.
    pub fn totals(&self, current: u64) -> Counts {
        self.slots
            .iter()
            .filter(|s| s.counts.requests > 0 && s.bucket <= current && current - s.bucket < SLOTS as u64)
            .fold(Counts::default(), |mut total, s| {
                total.add(s.counts);
                total
            })
    }

    /// Responses since `step` began (none if the window counts another).
    pub fn since_step(&self, step: u32) -> Counts {
        if self.step == step {
            self.step_counts
        } else {
            Counts::default()
        }
    }
}

/// The time bucket `now_ms` falls in.
pub fn bucket_of(now_ms: u64, window_ms: u64) -> u64 {
    now_ms / (window_ms / SLOTS as u64).max(1)
}

/// Why a window rolls its target back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossed {
    Errors,
    Latency,
    /// Worse than the baseline (`compare`): errors, or latency.
    CompareErrors,
    CompareLatency,
}

impl Crossed {
    /// The `reason` a rollback is labelled with.
    pub fn reason(self) -> &'static str {
        match self {
            Crossed::Errors => "window",
            Crossed::Latency => "latency",
            Crossed::CompareErrors => "compare:errors",
            Crossed::CompareLatency => "compare:latency",
        }
    }

    pub fn is_compared(self) -> bool {
        matches!(self, Crossed::CompareErrors | Crossed::CompareLatency)
    }
}

/// Whether these counts cross the rollback's threshold, and which: enough
/// responses, and an error rate or a latency percentile above its bound.
pub fn crossed(rollback: &LocalWindow, counts: &Counts) -> Option<Crossed> {
    if counts.requests < rollback.min_requests || counts.requests == 0 {
        return None;
    }
    if rollback.max_error_rate.is_some_and(|max| counts.error_rate() > max) {
        return Some(Crossed::Errors);
    }
    rollback.latency.as_ref().filter(|latency| counts.too_slow(latency)).map(|_| Crossed::Latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollback() -> LocalWindow {
        LocalWindow {
            max_error_rate: Some(0.05),
            min_requests: 50,
            window_ms: 60_000,
            latency: None,
            abandoned_after_ms: 500,
            compare: None,
        }
    }

    fn counts(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors, latency: [0; LATENCY_BUCKETS] }
    }

    fn p99_under(max_ms: u64) -> Latency {
        Latency { percentile: 99.0, max_ms }
    }

    #[test]
    fn windows_round_trip_and_junk_is_rejected() {
        let mut window = Window::default();
        window.add(7, Counts::one(true, Some(6)), &Arms::default(), 3);
        window.add(7, counts(100, 3), &Arms::default(), 3);
        window.rolled_back = true;
        let old_layout = window.encode();
        let mut arms = Arms::default();
        arms.canary.count(true, Some(120), None);
        arms.baseline.count(false, Some(90), None);
        window.add(7, Counts::default(), &arms, 3);
        assert_eq!(window.encode().len(), ENCODED_BYTES);
        assert_eq!(Window::decode(&window.encode()), Some(window.clone()));
        // The layout before `compare` reads as the same window, its arms empty.
        assert_eq!(
            Window::decode(&old_layout[..ENCODED_BYTES - ARMS_BYTES]),
            Some(Window { arms: Arms::default(), ..window.clone() })
        );
        assert_eq!(window.arms_since(3), arms);
        window.add(8, Counts::default(), &arms, 4);
        assert_eq!(
            (window.arms_since(3), window.arms_since(4)),
            (Arms::default(), arms),
            "a new step starts over"
        );
        assert_eq!(Window::decode(b"nope"), None);
        let mut bad = Window::default().encode();
        bad[0] = 7;
        assert_eq!(Window::decode(&bad), None);
        assert_eq!(Window::decode(&[0; 241]), None, "the layout before latency reads as a fresh window");
        assert_eq!(Window::decode(&[0; ENCODED_BYTES - 8]), None, "the layout before shapes, too");
    }

    #[test]
    fn a_stale_slot_is_reset_before_counting() {
        let mut window = Window::default();
        window.add(3, counts(9, 9), &Arms::default(), 0);
        window.add(13, counts(1, 0), &Arms::default(), 0);
        assert_eq!(window.slots[3], Slot { bucket: 13, counts: counts(1, 0) });
        window.add(13, counts(2, 2), &Arms::default(), 0);
        assert_eq!(window.slots[3], Slot { bucket: 13, counts: counts(3, 2) });
    }

    #[test]
    fn only_the_last_window_counts() {
        let window_ms = 60_000;
        let now = 1_000_000_000;
        let current = bucket_of(now, window_ms);
        let mut window = Window::default();
        window.add(current - SLOTS as u64, counts(1000, 1000), &Arms::default(), 0);
        for age in 0..SLOTS as u64 {
            window.add(current - age, counts(10, 1), &Arms::default(), 0);
        }
        assert_eq!(window.totals(current), counts(100, 10));
        assert_eq!(window.totals(current + 5), counts(50, 5), "half the window has slid out");
    }

    #[test]
    fn the_counts_of_a_step_start_over_when_the_step_changes() {
        let mut window = Window::default();
        window.add(1, counts(30, 1), &Arms::default(), 0);
        assert_eq!(window.since_step(0), counts(30, 1));
        assert_eq!(window.since_step(1), counts(0, 0), "the next step has seen nothing yet");
        window.add(1, counts(5, 0), &Arms::default(), 1);
        assert_eq!((window.since_step(0), window.since_step(1)), (counts(0, 0), counts(5, 0)));
        assert_eq!(window.totals(1), counts(35, 1), "the window itself keeps sliding");
    }

    #[test]
    fn a_lagging_workers_counts_never_wipe_a_newer_steps() {
        let mut window = Window::default();
        window.add(1, counts(4, 0), &Arms::default(), 2);
        window.add(1, counts(1, 0), &Arms::default(), 1);
        assert_eq!(window.since_step(2), counts(4, 0), "step 2's counts kept");
        assert_eq!(window.totals(1), counts(5, 0), "the window still sees every response");
        window.add(1, counts(1, 0), &Arms::default(), 2);
        assert_eq!(window.since_step(2), counts(5, 0));
    }

    #[test]
    fn a_window_of_another_shape_starts_its_counts_over_and_keeps_its_flag_and_step() {
        let short = LocalWindow { window_ms: 30_000, ..rollback() };
        let mut window = Window { shape: shape_of(&rollback()), rolled_back: true, ..Window::default() };
        window.add(3, counts(10, 1), &Arms::default(), 2);
        assert_eq!(window.clone().of_shape(shape_of(&rollback())), window, "the same shape: untouched");
        let reshaped = window.of_shape(shape_of(&short));
        assert_eq!((reshaped.rolled_back, reshaped.step), (true, 2));
        assert_eq!((reshaped.totals(3), reshaped.since_step(2)), (counts(0, 0), counts(0, 0)));
        let slower = LocalWindow { latency: Some(p99_under(900)), ..rollback() };
        assert_ne!(shape_of(&slower), shape_of(&LocalWindow { latency: Some(p99_under(500)), ..rollback() }));
        let stricter = LocalWindow { max_error_rate: Some(0.01), min_requests: 5, ..rollback() };
        assert_eq!(shape_of(&stricter), shape_of(&rollback()), "thresholds do not change what counts mean");
    }

    #[test]
    fn the_threshold_needs_enough_requests_and_a_higher_rate() {
        assert_eq!(crossed(&rollback(), &counts(49, 49)), None, "too few requests");
        assert_eq!(crossed(&rollback(), &counts(100, 5)), None, "5% is not above 5%");
        assert_eq!(crossed(&rollback(), &counts(100, 6)), Some(Crossed::Errors));
    }

    #[test]
    fn a_latency_percentile_above_its_bound_crosses_exactly() {
        let latency = p99_under(500);
        let window = LocalWindow { latency: Some(latency.clone()), ..rollback() };
        let mut fast = counts(0, 0);
        for ms in [10, 100, 250, 499, 500] {
            fast.add(Counts::one(false, Some(latency_bucket(ms, &latency))));
        }
        assert_eq!(latency_bucket(500, &latency), 4, "500 ms is within 500 ms");
        assert_eq!(latency_bucket(501, &latency), 5);
        assert_eq!(latency_bucket(5_000, &latency), 7);
        let mut counts = counts(0, 0);
        for _ in 0..99 {
            counts.add(Counts::one(false, Some(0)));
        }
        counts.add(Counts::one(false, Some(6)));
        assert_eq!(crossed(&window, &counts), None, "1 slow response in 100: p99 is still fast");
        counts.add(Counts::one(false, Some(7)));
        assert_eq!(crossed(&window, &counts), Some(Crossed::Latency), "2 in 101 are above 1%");
        assert_eq!(Crossed::Latency.reason(), "latency");
    }

    #[test]
    fn the_percentile_is_estimated_within_its_bucket() {
        let latency = p99_under(400);
        let mut c = counts(0, 0);
        assert_eq!(c.percentile_ms(&latency), None);
        for _ in 0..100 {
            c.add(Counts::one(false, Some(latency_bucket(150, &latency))));
        }
        // Every response is in (100, 200] ms: p99 interpolates to 199.
        let p99 = c.percentile_ms(&latency).unwrap();
        assert!((198.0..=200.0).contains(&p99), "{p99}");
        c.add(Counts::one(false, Some(7)));
        c.add(Counts::one(false, Some(7)));
        assert_eq!(c.percentile_ms(&latency), Some(800.0), "beyond the last bound: at least 2 x maxMs");
    }
}
