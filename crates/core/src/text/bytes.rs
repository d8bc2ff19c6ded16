//! Finding a byte in a slice eight bytes at a time. Cookie headers and
//! query strings are scanned for `;`, `&` and the first letters of names on
//! every request that reads them; a byte-by-byte loop costs the `.wasm`
//! about eight instructions per byte, this about two.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The position of the first `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES.wrapping_mul(u64::from(needle));
    let mut chunks = haystack.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        let diff = word ^ pattern;
        // A zero byte in `diff` is a match: the classic has-zero-byte test.
        if diff.wrapping_sub(ONES) & !diff & HIGHS != 0 {
            return chunk.iter().position(|&b| b == needle).map(|i| at + i);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_a_plain_search_finds() {
        let mut rng = crate::hashing::rng::Rng::new(5);
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 40) as usize;
            let haystack: Vec<u8> = (0..len)
                .map(|_| [b'a', b';', 0x80, 0xff, 0x00, b'='][(rng.next_u64() % 6) as usize])
                .collect();
            for needle in [b';', b'=', 0x80, 0x00, b'z'] {
                assert_eq!(
                    find(&haystack, needle),
                    haystack.iter().position(|&b| b == needle),
                    "{haystack:?} {needle}"
                );
            }
        }
    }
}
