//! Regexes that are only literals: `^v2$`, `^internal-`, `(?i)bot|crawler`,
//! `^(beta|canary)$`. Most regex conditions in practice look like these,
//! and regex-lite's automaton costs about a hundred wasm instructions per
//! byte and state even for them (`(?i)bot|crawler` over a user agent: 100,000
//! instructions). Recognized at configure time, they are matched as
//! byte comparisons instead, with the same result.
//!
//! Only ASCII literals qualify: then matching the value's bytes is the same
//! as matching its text with invalid UTF-8 replaced by U+FFFD (what a regex
//! condition sees), and `(?i)` is regex-lite's ASCII case folding.

/// Where the literals must be.
use crate::text::byte_list::ByteList;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Anywhere in the value (no `^`, no `$`).
    Anywhere,
    /// At its start (`^`).
    Start,
    /// At its end (`$`).
    End,
    /// The whole value (`^` and `$`).
    Whole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literals {
    pub anchor: Anchor,
    /// The alternatives; one of them must be found.
    pub options: ByteList,
    /// `(?i)`: ASCII letters in either case.
    pub case_insensitive: bool,
}

/// The literals a pattern is, if it is only literals.
pub fn literals(pattern: &str) -> Option<Literals> {
    if !pattern.is_ascii() {
        return None;
    }
    let (case_insensitive, mut body) = match pattern.strip_prefix("(?i)") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let start = body.starts_with('^');
    if start {
        body = &body[1..];
    }
    // A `$` is an anchor unless escaped.
    let end = body.ends_with('$') && !ends_escaped(&body[..body.len() - 1]);
    if end {
        body = &body[..body.len() - 1];
    }
    let grouped = body
        .strip_prefix("(?:")
        .or_else(|| body.strip_prefix('('))
        .and_then(|inner| inner.strip_suffix(')'))
        .filter(|inner| !inner.contains(['(', ')']));
    // `^a|b$` means `(^a)|(b$)`: anchors with alternatives need a group.
    let body = match grouped {
        Some(inner) => inner,
        None if (start || end) && body.contains('|') => return None,
        None => body,
    };
    let options = body.split('|').map(literal).collect::<Option<Vec<_>>>()?.into_iter().collect();
    let anchor = match (start, end) {
        (false, false) => Anchor::Anywhere,
        (true, false) => Anchor::Start,
        (false, true) => Anchor::End,
        (true, true) => Anchor::Whole,
    };
    Some(Literals { anchor, options, case_insensitive })
}

/// One alternative as bytes: plain characters and escaped metacharacters.
fn literal(text: &str) -> Option<Vec<u8>> {
    const META: &[u8] = b"\\.+*?()|[]{}^$";
    let mut out = Vec::new();
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(escaped) if META.contains(&escaped) || escaped == b'-' => out.push(escaped),
                _ => return None,
            },
            b if META.contains(&b) || b.is_ascii_control() => return None,
            b => out.push(b),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `text` ends in an odd number of backslashes (escaping what follows).
fn ends_escaped(text: &str) -> bool {
    text.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

impl Literals {
    pub fn matches(&self, value: &[u8]) -> bool {
        let eq = |a: &[u8], b: &[u8]| if self.case_insensitive { a.eq_ignore_ascii_case(b) } else { a == b };
        self.options.iter().any(|option| {
            let n = option.len();
            match self.anchor {
                Anchor::Whole => eq(value, option),
                Anchor::Start => value.get(..n).is_some_and(|head| eq(head, option)),
                Anchor::End => value.len() >= n && eq(&value[value.len() - n..], option),
                Anchor::Anywhere => {
                    let first = option[0];
                    let first_matches = |b: &u8| {
                        if self.case_insensitive {
                            b.eq_ignore_ascii_case(&first)
                        } else {
                            *b == first
                        }
                    };
                    value.len() >= n
                        && value[..=value.len() - n]
                            .iter()
                            .enumerate()
                            .any(|(i, b)| first_matches(b) && eq(&value[i..i + n], option))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(pattern: &str) -> Option<(Anchor, Vec<String>, bool)> {
        literals(pattern).map(|l| {
            let options = l.options.iter().map(|o| String::from_utf8(o.to_vec()).unwrap()).collect();
            (l.anchor, options, l.case_insensitive)
        })
    }

    #[test]
    fn recognizes_anchored_and_alternated_literals() {
        assert_eq!(lits("^v2$"), Some((Anchor::Whole, vec!["v2".to_string()], false)));
        assert_eq!(lits("^internal-"), Some((Anchor::Start, vec!["internal-".to_string()], false)));
        assert_eq!(lits("\\.json$"), Some((Anchor::End, vec![".json".to_string()], false)));
        assert_eq!(
            lits("(?i)bot|crawler"),
            Some((Anchor::Anywhere, vec!["bot".to_string(), "crawler".to_string()], true))
        );
        assert_eq!(
            lits("^(beta|canary)$"),
            Some((Anchor::Whole, vec!["beta".to_string(), "canary".to_string()], false))
        );
        assert_eq!(lits("^(?:a|b)"), Some((Anchor::Start, vec!["a".to_string(), "b".to_string()], false)));
        assert_eq!(lits("a\\$"), Some((Anchor::Anywhere, vec!["a$".to_string()], false)));
    }

    #[test]
    fn leaves_everything_else_to_the_regex_engine() {
        for pattern in ["ba[rz]", "^a|b$", "a.b", "v\\d", "(a|b)c", "a|", "é", "(?x)a", "^$", "a*", "\\bword"]
        {
            assert_eq!(lits(pattern), None, "{pattern}");
        }
    }

    /// Random values against regex-lite itself: the literal match must
    /// agree with the engine on every one, non-ASCII and invalid UTF-8 too.
    #[test]
    fn matches_exactly_what_regex_lite_matches() {
        let patterns = [
            "^v2$",
            "^internal-",
            "\\.json$",
            "(?i)bot|crawler",
            "^(beta|canary)$",
            "(?i)^(Ab|b)",
            "ab",
            "(?i)k$",
            "(?i)s",
            "x\\.y",
        ];
        let pieces: [&[u8]; 14] = [
            b"v2",
            b"bot",
            b"BOT",
            b"Crawler",
            b"internal-",
            b".json",
            b"beta",
            b"canary",
            b"ab",
            b"K",
            b"s",
            b"x.y",
            "\u{212a}\u{17f}é".as_bytes(),
            b"\xff",
        ];
        let mut rng = crate::hashing::rng::Rng::new(3);
        for pattern in patterns {
            let literal = literals(pattern).unwrap_or_else(|| panic!("{pattern} is literals"));
            let regex = regex_lite::Regex::new(pattern).unwrap();
            for _ in 0..3_000 {
                let value: Vec<u8> = (0..rng.next_u64() % 4)
                    .flat_map(|_| pieces[(rng.next_u64() % pieces.len() as u64) as usize].iter().copied())
                    .collect();
                let text = String::from_utf8_lossy(&value);
                assert_eq!(literal.matches(&value), regex.is_match(&text), "{pattern} on {text:?}");
            }
        }
    }
}
