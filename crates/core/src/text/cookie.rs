//! `Cookie` header parsing (RFC 6265 §5.4 shape, forgiving like browsers).
//!
//! Works on bytes: a cookie header is client-controlled and may hold anything.
//! Junk pairs are skipped, never fatal.

/// Every `name=value` pair of one `cookie` header value, in order, without
/// allocating: a lookup scans only as far as it needs.
///
/// Pairs are split on `;`, surrounding spaces and tabs are trimmed, the value
/// is everything after the first `=` (so values may contain `=`), and one pair
/// of surrounding double quotes is removed. Pairs without `=` or with an empty
/// name are skipped. The request path reads one name with `values`; every
/// pair is what the tests compare it with.
#[cfg(test)]
pub fn pairs(header_value: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header_value.split(|&b| b == b';').filter_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let name = trim(&pair[..eq]);
        if name.is_empty() {
            return None;
        }
        Some((name, unquote(trim(&pair[eq + 1..]))))
    })
}

/// The values of the cookies named `name` in one `cookie` header value:
/// what `pairs` yields for that name, found without looking for the `=`
/// of pairs whose start is not the name, and copying nothing.
pub fn values<'a>(header_value: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    // A name `pairs` can never yield (it trims names and ends them at the
    // first `=`) matches nothing here either.
    let possible =
        !name.is_empty() && trim(name).len() == name.len() && !name.iter().any(|&b| b == b'=' || b == b';');
    let bytes = if possible { header_value } else { &[] };
    let first = name.first().copied().unwrap_or(0);
    let mut from = 0;
    std::iter::from_fn(move || {
        // Jump from one occurrence of the name's first byte to the next: a
        // tight loop over bytes that are not it.
        while let Some(offset) = crate::text::bytes::find(bytes.get(from..)?, first) {
            let start = from + offset;
            from = start + 1;
            // It starts a pair only after `;` (or the start) and blanks.
            let before = trim_end_blanks(&bytes[..start]);
            if !(before.is_empty() || before.ends_with(b";")) {
                continue;
            }
            let rest = &bytes[start..];
            let end = crate::text::bytes::find(rest, b';').unwrap_or(rest.len());
            if let Some(after) = rest[..end].strip_prefix(name) {
                if let [b'=', value @ ..] = trim_start(after) {
                    from = start + end;
                    return Some(unquote(trim(value)));
                }
            }
        }
        None
    })
}

fn trim_end_blanks(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
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
        pairs(header).collect()
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
    fn values_finds_exactly_what_pairs_yields_for_a_name() {
        let headers: [&[u8]; 6] = [
            b"foo=bar;  uid=42 ;\tlang=en",
            br#"uid="q"; uid=; =uid; uid; xuid=1; uid=a=b"#,
            b";;; =nameless; novalue; ok=1;",
            b"\xff\xfe=\x00\x80; uid=\xff",
            b"",
            b"uid",
        ];
        for header in headers {
            for name in [&b"uid"[..], b"foo", b"ok", b"\xff\xfe", b"lang"] {
                let want: Vec<&[u8]> = pairs(header).filter(|(k, _)| *k == name).map(|(_, v)| v).collect();
                let got: Vec<&[u8]> = values(header, name).collect();
                assert_eq!(
                    got,
                    want,
                    "{:?} in {:?}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(header)
                );
            }
        }
    }

    #[test]
    fn names_are_case_sensitive_and_kept_as_sent() {
        assert_eq!(parse(b"Foo=bar"), vec![(&b"Foo"[..], &b"bar"[..])]);
    }
}
