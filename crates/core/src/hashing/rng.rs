//! The per-VM random source for non-sticky splits: SplitMix64, seeded once
//! from the host. Fast, allocation-free, and statistically fine for picking
//! a bucket; nothing security-relevant depends on it.

use crate::hashing::hash::BUCKETS;

#[derive(Debug, Clone, Copy)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits, every value a double can hold.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform roll in `0..BUCKETS` (multiply-shift, no modulo bias).
    pub fn roll(&mut self) -> u32 {
        (((self.next_u64() >> 32) * u64::from(BUCKETS)) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_stay_in_range_and_cover_it() {
        let mut rng = Rng::new(7);
        let rolls: Vec<u32> = (0..100_000).map(|_| rng.roll()).collect();
        assert!(rolls.iter().all(|&r| r < BUCKETS));
        let low = rolls.iter().filter(|&&r| r < BUCKETS / 2).count();
        assert!((49_000..51_000).contains(&low), "{low}");
    }

    #[test]
    fn different_seeds_give_different_streams() {
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
