//! `Cookie` header parsing (RFC 6265 §5.4 shape, forgiving like browsers).
//!
//! Works on bytes: a cookie header is client-controlled and may hold anything.
//! Junk pairs are skipped, never fatal.

/// Appends every `name=value` pair of one `cookie` header value to `out`.
///
/// Pairs are split on `;`, surrounding spaces and tabs are trimmed, the value
/// is everything after the first `=` (so values may contain `=`), and one pair
/// of surrounding double quotes is removed. Pairs without `=` or with an empty
/// name are skipped.
pub fn parse_into<'a>(header_value: &'a [u8], out: &mut Vec<(&'a [u8], &'a [u8])>) {
    for pair in header_value.split(|&b| b == b';') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        let name = trim(&pair[..eq]);
        if name.is_empty() {
            continue;
        }
        out.push((name, unquote(trim(&pair[eq + 1..]))));
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(header: &[u8]) -> Vec<(&[u8], &[u8])> {
        let mut out = Vec::new();
        parse_into(header, &mut out);
        out
    }

    #[test]
    fn splits_pairs_and_trims_spaces() {
        assert_eq!(
            parse(b"foo=bar;  uid=42 ;\tlang=en"),
            vec![(&b"foo"[..], &b"bar"[..]), (b"uid", b"42"), (b"lang", b"en")]
        );
    }

    #[test]
    fn keeps_equals_signs_inside_values() {
        assert_eq!(parse(b"token=a=b==; x=1"), vec![(&b"token"[..], &b"a=b=="[..]), (b"x", b"1")]);
    }

    #[test]
    fn empty_values_are_values() {
        assert_eq!(parse(b"foo=; bar="), vec![(&b"foo"[..], &b""[..]), (b"bar", b"")]);
    }

    #[test]
    fn strips_one_pair_of_quotes() {
        assert_eq!(parse(br#"foo="bar"; q="""#), vec![(&b"foo"[..], &b"bar"[..]), (b"q", b"")]);
        assert_eq!(parse(br#"foo=""bar"""#), vec![(&b"foo"[..], &br#""bar""#[..])]);
        assert_eq!(parse(br#"lone=""#), vec![(&b"lone"[..], &br#"""#[..])]);
    }

    #[test]
    fn skips_junk_without_failing() {
        assert_eq!(parse(b";;; =nameless; novalue; ok=1;"), vec![(&b"ok"[..], &b"1"[..])]);
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(b"\xff\xfe=\x00\x80"), vec![(&b"\xff\xfe"[..], &b"\x00\x80"[..])]);
    }

    #[test]
    fn names_are_case_sensitive_and_kept_as_sent() {
        assert_eq!(parse(b"Foo=bar"), vec![(&b"Foo"[..], &b"bar"[..])]);
    }
}
