//! Weighted N-way splits over a bucket space of parts per million.
//!
//! Each target owns a contiguous range of buckets, in the listed order:
//! target i gets `[bound(i-1), bound(i))` with `bound(i)` the cumulative
//! weight share rounded to a millionth. Raising the first weight only moves
//! its upper bound up, so sticky users only ever move *into* it.

use crate::hash::{sticky_bucket, BUCKETS};
use crate::request::{Request, Source};

#[derive(Debug, Clone)]
pub struct Split {
    targets: Vec<String>,
    weights: Vec<f64>,
    /// Exclusive upper bucket of each target; the last is `BUCKETS`.
    bounds: Vec<u32>,
    sticky_by: Option<Source>,
    salt: Vec<u8>,
}

/// How a split chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// By the sticky key's bucket.
    Sticky { bucket: u32 },
    /// By the request's random roll (no sticky key configured or sent).
    Random { roll: u32 },
}

impl Split {
    /// Builds a split from validated weights: non-negative, finite, sum > 0.
    pub fn new(weighted: Vec<(String, f64)>, sticky_by: Option<Source>, salt: Vec<u8>) -> Self {
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        let mut cumulative = 0.0;
        let mut bounds = Vec::with_capacity(weighted.len());
        for (_, weight) in &weighted {
            cumulative += weight;
            let bound = (cumulative / total * f64::from(BUCKETS)).round();
            // `as` saturates; the min keeps float rounding inside the space.
            bounds.push((bound as u32).min(BUCKETS));
        }
        if let Some(last) = bounds.last_mut() {
            *last = BUCKETS;
        }
        let (targets, weights) = weighted.into_iter().unzip();
        Split { targets, weights, bounds, sticky_by, salt }
    }

    /// The index of the target owning `bucket`.
    pub fn pick(&self, bucket: u32) -> usize {
        self.bounds.partition_point(|&bound| bound <= bucket).min(self.targets.len().saturating_sub(1))
    }

    /// Chooses a target for a request: by its sticky key when configured and
    /// sent (non-empty), else by `roll`.
    pub fn choose(&self, request: &Request<'_>, roll: u32) -> (&str, Choice) {
        let sticky = self.sticky_by.as_ref().and_then(|source| request.first_value(source));
        let choice = match sticky {
            Some(key) => Choice::Sticky { bucket: sticky_bucket(&self.salt, &key) },
            None => Choice::Random { roll: roll % BUCKETS },
        };
        let bucket = match choice {
            Choice::Sticky { bucket } => bucket,
            Choice::Random { roll } => roll,
        };
        let target = self.targets.get(self.pick(bucket)).map_or("", String::as_str);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

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
                let (target, choice) = s.choose(&req, 0);
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
                .map(|c| s.choose(&Request::new(vec![(b"cookie", c.as_bytes())]), 0).0.to_string())
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
        assert_eq!(s.choose(&req, 199_999), ("t0", Choice::Random { roll: 199_999 }));
        assert_eq!(s.choose(&req, 200_000), ("t1", Choice::Random { roll: 200_000 }));
    }

    #[test]
    fn the_same_sticky_id_always_gets_the_same_target() {
        let s = split(&[20.0, 80.0]);
        let req = Request::new(vec![(b"cookie", b"uid=alice")]);
        let first = s.choose(&req, 0);
        for roll in [1, 500_000, 999_999] {
            assert_eq!(s.choose(&req, roll), first);
        }
    }
}
