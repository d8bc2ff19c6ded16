//! A read-only view of one request's headers, borrowed from the bytes the
//! proxy handed over. Cookies and the query are parsed on first use only, so
//! a request whose rules never look at them never pays for them.

use std::cell::{Cell, OnceCell};
use std::fmt;

use crate::{cookie, query, regex_cost};

/// Where a condition or a sticky key reads its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A request header; the name is stored lower-case.
    Header(Vec<u8>),
    /// A cookie from any `cookie` header; the name is case-sensitive.
    Cookie(Vec<u8>),
    /// A query parameter of `:path`; the name is case-sensitive, decoded.
    Query(Vec<u8>),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = match self {
            Source::Header(n) => ("header", n),
            Source::Cookie(n) => ("cookie", n),
            Source::Query(n) => ("query", n),
        };
        write!(f, "{kind} {}", String::from_utf8_lossy(name))
    }
}

type QueryPairs<'a> = Vec<query::Pair<'a>>;

/// One request as the router sees it.
pub struct Request<'a> {
    headers: Vec<(&'a [u8], &'a [u8])>,
    authority: &'a [u8],
    path: &'a [u8],
    cookies: OnceCell<Vec<(&'a [u8], &'a [u8])>>,
    query: OnceCell<QueryPairs<'a>>,
    /// What regex tests may still spend (`regex_cost::BUDGET` at first).
    regex_budget: Cell<u64>,
    /// Regex tests skipped because the budget could not pay for them.
    regex_skipped: Cell<u32>,
}

impl<'a> Request<'a> {
    /// Builds the view from every request header, pseudo-headers included.
    /// `:authority` falls back to `host` (HTTP/1.0 style requests).
    pub fn new(headers: Vec<(&'a [u8], &'a [u8])>) -> Self {
        let find = |name: &[u8]| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
        let authority = find(b":authority").or_else(|| find(b"host")).unwrap_or_default();
        let path = find(b":path").unwrap_or_default();
        Request {
            headers,
            authority,
            path,
            cookies: OnceCell::new(),
            query: OnceCell::new(),
            regex_budget: Cell::new(regex_cost::BUDGET),
            regex_skipped: Cell::new(0),
        }
    }

    /// Every header as the proxy gave it.
    pub fn headers(&self) -> &[(&'a [u8], &'a [u8])] {
        &self.headers
    }

    pub fn authority(&self) -> &'a [u8] {
        self.authority
    }

    /// `:path` without query and fragment.
    pub fn path(&self) -> &'a [u8] {
        query::path_of(self.path)
    }

    /// Pays for a regex test over `len` bytes of a pattern with `states`
    /// states; `false` (and counted) when the request's budget cannot.
    pub fn spend_on_regex(&self, len: usize, states: u32) -> bool {
        let cost = (len.max(1) as u64).saturating_mul(u64::from(states.max(1)));
        let left = self.regex_budget.get();
        if cost > left {
            self.regex_skipped.set(self.regex_skipped.get().saturating_add(1));
            return false;
        }
        self.regex_budget.set(left - cost);
        true
    }

    /// How many regex tests this request's budget could not pay for.
    pub fn regex_skipped(&self) -> u32 {
        self.regex_skipped.get()
    }

    /// Calls `test` on each value of `source` until it returns true.
    /// Returns `(present, matched)`: whether the key occurs at all, and
    /// whether any of its values passed.
    pub fn any_value(&self, source: &Source, test: impl FnMut(&[u8]) -> bool) -> (bool, bool) {
        let (present, found) = self.find(source, test);
        (present, found.is_some())
    }

    /// The first non-empty value of `source`: the sticky key of a split.
    pub fn first_value(&self, source: &Source) -> Option<&[u8]> {
        self.find(source, |v| !v.is_empty()).1
    }

    /// Whether `source` occurs, and its first value that passes `test`.
    fn find<'s>(
        &'s self,
        source: &Source,
        mut test: impl FnMut(&'s [u8]) -> bool,
    ) -> (bool, Option<&'s [u8]>) {
        match source {
            Source::Header(name) => scan(
                self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v),
                &mut test,
            ),
            Source::Cookie(name) => {
                scan(self.cookies().iter().filter(|(k, _)| *k == name.as_slice()).map(|(_, v)| *v), &mut test)
            }
            Source::Query(name) => scan(
                self.query().iter().filter(|(k, _)| k.as_ref() == name.as_slice()).map(|(_, v)| v.as_ref()),
                &mut test,
            ),
        }
    }

    fn cookies(&self) -> &[(&'a [u8], &'a [u8])] {
        self.cookies.get_or_init(|| {
            let mut out = Vec::new();
            // HTTP/2 clients may send one `cookie` header per cookie.
            for (_, v) in self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(b"cookie")) {
                cookie::parse_into(v, &mut out);
            }
            out
        })
    }

    fn query(&self) -> &QueryPairs<'a> {
        self.query.get_or_init(|| query::parse(query::query_of(self.path)))
    }
}

/// Walks `values` until `test` passes: `(any value at all, the one that passed)`.
fn scan<'s>(
    values: impl Iterator<Item = &'s [u8]>,
    test: &mut impl FnMut(&'s [u8]) -> bool,
) -> (bool, Option<&'s [u8]>) {
    let mut present = false;
    for value in values {
        present = true;
        if test(value) {
            return (true, Some(value));
        }
    }
    (present, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(req: &Request, source: &Source) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        req.any_value(source, |v| {
            out.push(v.to_vec());
            false
        });
        out
    }

    #[test]
    fn reads_authority_path_and_falls_back_to_host() {
        let req = Request::new(vec![(b":authority", b"a.example.com"), (b":path", b"/x?y=1")]);
        assert_eq!(req.authority(), b"a.example.com");
        assert_eq!(req.path(), b"/x");
        let req = Request::new(vec![(b"host", b"h.example.com")]);
        assert_eq!(req.authority(), b"h.example.com");
        assert_eq!(req.path(), b"");
    }

    #[test]
    fn header_names_are_case_insensitive_and_repeats_are_all_seen() {
        let req = Request::new(vec![(b"Foo", b"1"), (b"foo", b"2")]);
        assert_eq!(values(&req, &Source::Header(b"foo".to_vec())), vec![b"1".to_vec(), b"2".to_vec()]);
    }

    #[test]
    fn cookies_come_from_every_cookie_header() {
        let req = Request::new(vec![(b"cookie", b"a=1; foo=bar"), (b"cookie", b"foo=baz")]);
        let foo = Source::Cookie(b"foo".to_vec());
        assert_eq!(values(&req, &foo), vec![b"bar".to_vec(), b"baz".to_vec()]);
        assert_eq!(values(&req, &Source::Cookie(b"FOO".to_vec())), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn query_values_are_decoded() {
        let req = Request::new(vec![(b":path", b"/?foo=b%61r&foo=x+y")]);
        let foo = Source::Query(b"foo".to_vec());
        assert_eq!(values(&req, &foo), vec![b"bar".to_vec(), b"x y".to_vec()]);
    }

    #[test]
    fn presence_is_reported_even_when_nothing_matches() {
        let req = Request::new(vec![(b"foo", b"")]);
        assert_eq!(req.any_value(&Source::Header(b"foo".to_vec()), |_| false), (true, false));
        assert_eq!(req.any_value(&Source::Header(b"bar".to_vec()), |_| true), (false, false));
    }

    #[test]
    fn the_sticky_key_is_the_first_non_empty_value() {
        let req = Request::new(vec![(b"cookie", b"uid=; uid=u-7; uid=u-8")]);
        assert_eq!(req.first_value(&Source::Cookie(b"uid".to_vec())), Some(&b"u-7"[..]));
        let req = Request::new(vec![(b"cookie", b"uid=")]);
        assert_eq!(req.first_value(&Source::Cookie(b"uid".to_vec())), None);
    }
}
