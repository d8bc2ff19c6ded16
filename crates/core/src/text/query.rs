//! Query string parsing: `application/x-www-form-urlencoded` rules, on bytes.

use std::borrow::Cow;

/// The query part of a `:path`: after the first `?`, before any `#`.
pub fn query_of(path: &[u8]) -> &[u8] {
    let before_fragment = match path.iter().position(|&b| b == b'#') {
        Some(hash) => &path[..hash],
        None => path,
    };
    match before_fragment.iter().position(|&b| b == b'?') {
        Some(q) => &before_fragment[q + 1..],
        None => &[],
    }
}

/// The path part of a `:path`: before the first `?` or `#`.
pub fn path_of(path: &[u8]) -> &[u8] {
    match path.iter().position(|&b| b == b'?' || b == b'#') {
        Some(end) => &path[..end],
        None => path,
    }
}

/// A decoded `(key, value)` pair, borrowed when nothing needed decoding.
pub type Pair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Every raw `key=value` piece of a query, in order, not decoded: a lookup
/// decodes only the keys it compares and the values it uses. A bare `key`
/// has the empty value; empty pieces (`a=1&&b=2`) are skipped; repeated
/// keys all stay.
pub fn raw_pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query.split(|&b| b == b'&').filter(|piece| !piece.is_empty()).map(|piece| {
        match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &b""[..]),
        }
    })
}

/// Every `key=value` pair of a query, decoded.
pub fn parse(query: &[u8]) -> Vec<Pair<'_>> {
    raw_pairs(query).map(|(key, value)| (decode(key), decode(value))).collect()
}

/// Percent-decodes and turns `+` into a space. An invalid escape (`%zz`,
/// a trailing `%`) stays as written, as browsers and most servers do.
pub fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    unescape(raw, true)
}

/// Percent-decodes only: for a URL's parts outside its query (a userinfo),
/// where `+` is itself.
pub fn percent_decode(raw: &[u8]) -> Cow<'_, [u8]> {
    unescape(raw, false)
}

fn unescape(raw: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !raw.iter().any(|&b| b == b'%' || (plus_is_space && b == b'+')) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex);
                let lo = raw.get(i + 2).copied().and_then(hex);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        parse(query).into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn takes_the_query_between_question_mark_and_fragment() {
        assert_eq!(query_of(b"/a/b?foo=bar&x=1#frag?x"), b"foo=bar&x=1");
        assert_eq!(query_of(b"/a/b"), b"");
        assert_eq!(query_of(b"/?"), b"");
        assert_eq!(query_of(b"/#?foo=bar"), b"");
        assert_eq!(path_of(b"/a/b?foo=bar"), b"/a/b");
        assert_eq!(path_of(b"/a#x"), b"/a");
    }

    #[test]
    fn keeps_repeated_keys_and_bare_keys() {
        assert_eq!(
            pairs(b"foo=1&foo=2&flag&&=v"),
            vec![
                (b"foo".to_vec(), b"1".to_vec()),
                (b"foo".to_vec(), b"2".to_vec()),
                (b"flag".to_vec(), b"".to_vec()),
                (b"".to_vec(), b"v".to_vec()),
            ]
        );
    }

    #[test]
    fn decodes_percent_escapes_and_plus_in_keys_and_values() {
        assert_eq!(pairs(b"f%6Fo=b%61r+baz%2b"), vec![(b"foo".to_vec(), b"bar baz+".to_vec())]);
        assert_eq!(pairs(b"q=%e2%9c%93"), vec![(b"q".to_vec(), "\u{2713}".as_bytes().to_vec())]);
    }

    #[test]
    fn percent_decoding_alone_keeps_plus() {
        assert_eq!(percent_decode(b"a+b%40c%zz"), &b"a+b@c%zz"[..]);
        assert!(matches!(percent_decode(b"a+b"), Cow::Borrowed(_)), "nothing to decode, nothing copied");
    }

    #[test]
    fn leaves_invalid_escapes_as_written() {
        assert_eq!(decode(b"%zz%4"), &b"%zz%4"[..]);
        assert_eq!(decode(b"100%"), &b"100%"[..]);
        assert_eq!(decode(b"%%41"), &b"%A"[..]);
        assert_eq!(decode(b"%ff%00"), &b"\xff\x00"[..]);
    }

    #[test]
    fn values_may_contain_equals_signs() {
        assert_eq!(pairs(b"a=b=c"), vec![(b"a".to_vec(), b"b=c".to_vec())]);
    }
}
