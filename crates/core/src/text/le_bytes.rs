//! The byte form of what the filter keeps in the proxy's shared data (a
//! split's fleet state, its error window): little-endian numbers and
//! length-prefixed text, written with `to_le_bytes` and `put_text`, read
//! back with `Reader`, which answers `None` at the first missing byte.

/// Reads numbers and text from the front of a byte slice.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array().map(u8::from_le_bytes)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// Text as `put_text` wrote it (not UTF-8: replaced, never refused).
    pub fn text(&mut self) -> Option<String> {
        let len = self.array().map(u16::from_le_bytes)?;
        Some(String::from_utf8_lossy(self.take(usize::from(len))?).into_owned())
    }
}

/// Text with its length first (cut at 65,535 bytes).
pub fn put_text(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_a_short_slice_reads_as_none() {
        let mut out = vec![7];
        out.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
        out.extend_from_slice(&u64::MAX.to_le_bytes());
        put_text(&mut out, "rolled back");
        let mut r = Reader(&out);
        assert_eq!(
            (r.u8(), r.u32(), r.u64(), r.text()),
            (Some(7), Some(0xdead_beef), Some(u64::MAX), Some("rolled back".to_string()))
        );
        assert_eq!(r.u8(), None, "nothing left");
        assert_eq!(Reader(&out[..3]).u32(), None);
        assert_eq!(Reader(&[5, 0, b'a']).text(), None, "a length beyond the bytes");
    }
}
