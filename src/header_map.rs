//! The proxy-wasm header-map wire format, parsed without trusting it.
//!
//! Layout (little endian): `u32 count`, then `count` × (`u32 key_len`,
//! `u32 value_len`), then for each pair `key NUL value NUL`. The SDK's own
//! parser turns names into `String` and panics on invalid UTF-8; this one
//! borrows bytes and reports a malformed buffer as `None`.

/// Borrows `(name, value)` pairs out of a serialized header map.
pub fn parse(buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
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
        pairs.push((key, value));
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

    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
        for (k, v) in pairs {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend_from_slice(k);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    #[test]
    fn round_trips_pairs_including_non_utf8_and_empty() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/"), (b"x-bin", b"\xff\x00\xfe"), (b"empty", b"")];
        assert_eq!(parse(&serialize(&pairs)), Some(pairs));
    }

    #[test]
    fn an_empty_map_is_a_count_of_zero() {
        assert_eq!(parse(&serialize(&[])), Some(vec![]));
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
