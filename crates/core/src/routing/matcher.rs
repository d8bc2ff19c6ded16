//! Conditions of a rule's `match`: one source, one test, optionally negated.

use std::borrow::Cow;
use std::fmt;

use crate::request::{Request, Source};
use crate::text::byte_list::ByteList;
use crate::text::literal_regex::Literals;

/// The test a value must pass.
#[derive(Debug, Clone)]
pub enum Test {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    /// Unanchored unless the pattern anchors itself; run on the value decoded
    /// as UTF-8, invalid bytes replaced by U+FFFD. `states` (see
    /// `regex_cost`) is what each byte it reads costs the request's budget.
    /// Boxed, as the next one: they are rare and large, and every other
    /// condition would pay their size.
    Regex(Box<(regex_lite::Regex, u32)>),
    /// A regex that is only literals (`^v2$`, `(?i)bot|crawler`), matched
    /// without the regex engine: same result, a fraction of the cost. It
    /// still spends the request's regex budget, one unit per byte and
    /// alternative. The pattern as written is kept for explanations.
    Literals(Box<(Literals, String)>),
    OneOf(ByteList),
    /// `present: true` holds when the key occurs (any value, even empty),
    /// `present: false` when it does not.
    Present(bool),
}

/// One compiled condition.
#[derive(Debug, Clone)]
pub struct Condition {
    pub source: Source,
    pub test: Test,
    pub negate: bool,
}

impl Condition {
    /// Whether the condition holds. A key that occurs several times holds
    /// when any of its values passes; a missing key fails every test except
    /// `present: false`.
    pub fn holds(&self, request: &Request<'_>) -> bool {
        let passed = match &self.test {
            Test::Present(want) => request.any_value(&self.source, |_| true).0 == *want,
            test => request.any_value(&self.source, |value| test.passes(value, request)).1,
        };
        passed != self.negate
    }
}

impl Test {
    fn passes(&self, value: &[u8], request: &Request<'_>) -> bool {
        match self {
            Test::Exact(want) => value == &want[..],
            Test::Prefix(prefix) => value.starts_with(prefix),
            Test::Regex(compiled) => {
                let (regex, states) = &**compiled;
                if !request.spend_on_regex(value.len(), *states) {
                    return false;
                }
                match std::str::from_utf8(value) {
                    Ok(text) => regex.is_match(text),
                    Err(_) => regex.is_match(&String::from_utf8_lossy(value)),
                }
            }
            Test::Literals(compiled) => {
                let literals = &compiled.0;
                let alternatives = u32::try_from(literals.options.len()).unwrap_or(u32::MAX);
                request.spend_on_regex(value.len(), alternatives) && literals.matches(value)
            }
            Test::OneOf(options) => options.contains(value),
            Test::Present(_) => true,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| -> String { String::from_utf8_lossy(b).into_owned() };
        let test: Cow<str> = match &self.test {
            Test::Exact(v) => format!("== {:?}", text(v)).into(),
            Test::Prefix(v) => format!("starts with {:?}", text(v)).into(),
            Test::Regex(compiled) => format!("~ /{}/", compiled.0.as_str()).into(),
            Test::Literals(compiled) => format!("~ /{}/", compiled.1).into(),
            Test::OneOf(vs) => format!("in {:?}", vs.iter().map(text).collect::<Vec<_>>()).into(),
            Test::Present(true) => "present".into(),
            Test::Present(false) => "absent".into(),
        };
        let not = if self.negate { "not " } else { "" };
        write!(f, "{not}{} {test}", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(test: Test) -> Condition {
        Condition { source: Source::Header(b"foo".to_vec()), test, negate: false }
    }

    fn holds(cond: &Condition, headers: &[(&[u8], &[u8])]) -> bool {
        cond.holds(&Request::new(headers.to_vec()))
    }

    #[test]
    fn exact_prefix_and_one_of_compare_bytes() {
        let exact = header(Test::Exact(b"bar"[..].into()));
        assert!(holds(&exact, &[(b"foo", b"bar")]));
        assert!(!holds(&exact, &[(b"foo", b"barn")]));
        assert!(!holds(&exact, &[(b"foo", b"BAR")]));
        let prefix = header(Test::Prefix(b"ba"[..].into()));
        assert!(holds(&prefix, &[(b"foo", b"bar")]));
        assert!(!holds(&prefix, &[(b"foo", b"b")]));
        let one_of = header(Test::OneOf([b"a", b"b"].into_iter().collect()));
        assert!(holds(&one_of, &[(b"foo", b"b")]));
        assert!(!holds(&one_of, &[(b"foo", b"c")]));
    }

    #[test]
    fn regex_is_unanchored_and_survives_invalid_utf8() {
        let re = header(regex("ba[rz]"));
        assert!(holds(&re, &[(b"foo", b"xbazx")]));
        assert!(holds(&re, &[(b"foo", b"\xff\xfebar")]));
        assert!(!holds(&re, &[(b"foo", b"\xff")]));
    }

    fn regex(pattern: &str) -> Test {
        let states = crate::text::regex_cost::states(pattern) as u32;
        Test::Regex(Box::new((regex_lite::Regex::new(pattern).unwrap(), states)))
    }

    #[test]
    fn a_regex_reads_no_more_than_the_request_budget_and_says_so() {
        use crate::text::regex_cost::BUDGET;
        // 3 states: a value may be BUDGET / 3 bytes long.
        let re = header(regex("ba[rz]"));
        let fits = format!("{}bar", "x".repeat(BUDGET as usize / 3 - 3));
        let request = Request::new(vec![(b"foo", fits.as_bytes())]);
        assert!(re.holds(&request));
        assert_eq!(request.regex_skipped(), 0);
        let too_long = format!("{}bar", "x".repeat(BUDGET as usize / 3));
        let request = Request::new(vec![(b"foo", too_long.as_bytes())]);
        assert!(!re.holds(&request), "a value over the budget never matches");
        assert_eq!(request.regex_skipped(), 1);
        // The budget is the request's, shared by every value and condition.
        let half = format!("{}bar", "x".repeat(BUDGET as usize / 6));
        let request =
            Request::new(vec![(b"foo", half.as_bytes()), (b"foo", b"nope"), (b"foo", half.as_bytes())]);
        let nope = header(Test::Exact(b"absent"[..].into()));
        assert!(!nope.holds(&request), "exact tests cost nothing");
        assert!(re.holds(&request));
        assert!(!re.holds(&request), "the second evaluation finds the budget spent");
        assert!(request.regex_skipped() >= 1);
    }

    #[test]
    fn any_repeated_value_can_match() {
        let exact = header(Test::Exact(b"bar"[..].into()));
        assert!(holds(&exact, &[(b"foo", b"no"), (b"foo", b"bar")]));
    }

    #[test]
    fn a_missing_key_fails_every_test_but_absence() {
        for test in [
            Test::Exact(b""[..].into()),
            Test::Prefix(b""[..].into()),
            regex(""),
            Test::OneOf([b""].into_iter().collect()),
            Test::Present(true),
        ] {
            assert!(!holds(&header(test), &[(b"other", b"x")]));
        }
        assert!(holds(&header(Test::Present(false)), &[(b"other", b"x")]));
        assert!(!holds(&header(Test::Present(false)), &[(b"foo", b"")]));
    }

    #[test]
    fn not_inverts_including_for_missing_keys() {
        let mut cond = header(Test::Exact(b"bar"[..].into()));
        cond.negate = true;
        assert!(!holds(&cond, &[(b"foo", b"bar")]));
        assert!(holds(&cond, &[(b"foo", b"baz")]));
        assert!(holds(&cond, &[]));
    }

    #[test]
    fn explains_itself() {
        let mut cond = header(Test::Exact(b"bar"[..].into()));
        assert_eq!(cond.to_string(), r#"header foo == "bar""#);
        cond.negate = true;
        cond.source = Source::Cookie(b"uid".to_vec());
        cond.test = Test::Present(true);
        assert_eq!(cond.to_string(), "not cookie uid present");
    }
}
