//! Where a request falls: the sticky hash every replica computes alike,
//! fingerprints that name a split or a window's settings, the filter's
//! hash maps, and the per-VM random source.

pub mod hash;
pub mod rng;
