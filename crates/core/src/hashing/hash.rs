//! The sticky-bucket hash. It is part of the public contract
//! (docs/sticky-hash.md): every replica, every version of this filter and any tool that
//! predicts assignments must compute the same bucket, so it is spelled out
//! here instead of borrowed from `std` (whose `DefaultHasher` may change).
//!
//! bucket = fmix64(fnv1a64(salt ++ key)) mod 1,000,000
//!
//! FNV-1a is simple to reimplement anywhere; MurmurHash3's 64-bit finalizer
//! spreads FNV's weak low bits so short, similar ids land far apart.

/// Buckets are parts per million, so weights like 0.5% split exactly.
pub const BUCKETS: u32 = 1_000_000;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    }
    hash
}

/// MurmurHash3's 64-bit finalizer.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// A 64-bit fingerprint of a sequence of fields (the same hash, without
/// the bucket reduction): names a split to the fleet. Each field is its
/// name, its length and its bytes, so no two sequences run together.
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(FNV_OFFSET_BASIS)
    }
}

impl Fingerprint {
    #[inline(never)]
    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    #[inline(never)]
    pub fn field(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.bytes(name.as_bytes());
        self.bytes(&(value.len() as u64).to_le_bytes());
        self.bytes(value);
        self
    }

    pub fn number(&mut self, name: &str, value: u64) -> &mut Self {
        self.field(name, &value.to_le_bytes())
    }

    pub fn float(&mut self, name: &str, value: f64) -> &mut Self {
        self.number(name, value.to_bits())
    }

    pub fn finish(&self) -> u64 {
        fmix64(self.0)
    }
}

/// The hasher of the filter's own hash maps: FNV-1a for byte keys (host
/// names), a multiplicative mix for the `u32` ids the proxy assigns. Keys
/// come from the config or from the proxy, never from a client, so
/// SipHash's flooding resistance buys nothing here but cost.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        fmix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { FNV_OFFSET_BASIS } else { self.0 };
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        self.0 = hash;
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u32(n as u32);
    }
}

/// Indices of items by the hash of a name, with no copy of the names: an
/// item found by a hash collision is told apart by its own name.
pub type ByNameHash = std::collections::HashMap<u64, Vec<u32>, std::hash::BuildHasherDefault<FastHasher>>;

/// A name's key in a `ByNameHash`.
pub fn name_hash(name: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = FastHasher::default();
    hasher.write(name);
    hasher.finish()
}

/// The bucket in `0..BUCKETS` of a sticky key under a salt.
pub fn sticky_bucket(salt: &[u8], key: &[u8]) -> u32 {
    // The remainder is < 1,000,000, so the narrowing cannot truncate.
    (fmix64(fnv1a64(&[salt, key])) % u64::from(BUCKETS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
    }

    /// Computed by an independent Python transcription of docs/sticky-hash.md's spec.
    /// If this fails, sticky users would move: change the spec, not the pins.
    #[test]
    fn buckets_are_pinned() {
        assert_eq!(sticky_bucket(b"service-b", b"alice"), 237_645);
        assert_eq!(sticky_bucket(b"service-b", b"bob"), 694_932);
        assert_eq!(sticky_bucket(b"service-b", b"user-42"), 642_232);
        assert_eq!(sticky_bucket(b"", b""), 514_342);
    }

    #[test]
    fn salt_and_key_are_hashed_as_one_byte_string() {
        assert_eq!(sticky_bucket(b"service-b", b"user-1"), sticky_bucket(b"", b"service-buser-1"));
    }

    #[test]
    fn the_salt_changes_the_bucket() {
        let a = (0..100).filter(|i| {
            let id = format!("user-{i}");
            sticky_bucket(b"one", id.as_bytes()) == sticky_bucket(b"two", id.as_bytes())
        });
        assert!(a.count() < 3);
    }
}
