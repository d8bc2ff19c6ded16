//! The proxy-wasm header-map wire format, parsed without trusting it.
//!
//! Layout (little endian): `u32 count`, then `count` × (`u32 key_len`,
//! `u32 value_len`), then for each pair `key NUL value NUL`. The SDK's own
//! parser turns names into `String` and panics on invalid UTF-8; this one
//! borrows bytes and reports a malformed buffer as `None`.

/// A serialized map without pairs.
pub const EMPTY: [u8; 4] = [0; 4];

/// Serializes pairs in the same layout, for headers the filter sends.
pub fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let data: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(&len(value.len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// Borrows `(name, value)` pairs out of a serialized header map.
pub fn parse(buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    parse_where(buf, |_| true)
}

/// Like `parse`, keeping only the pairs whose name passes `keep`.
pub fn parse_where(buf: &[u8], keep: impl Fn(&[u8]) -> bool) -> Option<Vec<(&[u8], &[u8])>> {
    let count = usize::try_from(read_u32(buf, 0)?).ok()?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    if sizes_end > buf.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = sizes_end;
    for i in 0..count {
        let key_len = usize::try_from(read_u32(buf, 4 + i * 8)?).ok()?;
        let value_len = usize::try_from(read_u32(buf, 8 + i * 8)?).ok()?;
        let key = buf.get(data..data.checked_add(key_len)?)?;
        data = data.checked_add(key_len)?.checked_add(1)?;
        let value = buf.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        if keep(key) {
            pairs.push((key, value));
        }
    }
    Some(pairs)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_pairs_including_non_utf8_and_empty() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/"), (b"x-bin", b"\xff\x00\xfe"), (b"empty", b"")];
        assert_eq!(parse(&serialize(&pairs)), Some(pairs));
    }

    #[test]
    fn an_empty_map_is_a_count_of_zero() {
        assert_eq!(serialize(&[]), EMPTY);
        assert_eq!(parse(&EMPTY), Some(vec![]));
    }

    #[test]
    fn no_buffer_makes_it_panic() {
        let mut rng = crate::hashing::rng::Rng::new(9);
        let valid = serialize(&[(b":path", b"/"), (b"cookie", b"a=1"), (b"x", b"")]);
        for _ in 0..20_000 {
            let mut buf = valid.clone();
            for _ in 0..1 + rng.next_u64() % 4 {
                let at = (rng.next_u64() % buf.len() as u64) as usize;
                match rng.next_u64() % 3 {
                    0 => buf[at] = rng.next_u64() as u8,
                    1 => buf.truncate(at),
                    _ => buf.insert(at, rng.next_u64() as u8),
                }
                if buf.is_empty() {
                    break;
                }
            }
            if let Some(pairs) = parse(&buf) {
                assert!(pairs.len() <= buf.len());
            }
        }
    }

    #[test]
    fn malformed_buffers_are_rejected_not_trusted() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"\x01\x00\x00"), None);
        // Claims a billion pairs.
        assert_eq!(parse(&0x4000_0000u32.to_le_bytes()), None);
        // One pair whose key length runs past the end.
        let mut buf = serialize(&[(b"k", b"v")]);
        buf[4] = 200;
        assert_eq!(parse(&buf), None);
        // Truncated after the sizes.
        let buf = serialize(&[(b"key", b"value")]);
        assert_eq!(parse(&buf[..buf.len() - 3]), None);
    }
}
