//! A request as the decisions read it: a read-only view of its headers,
//! borrowed from the bytes the proxy handed over. Cookies and the query are
//! read where they are, on demand, without building lists of every pair: a
//! request whose rules look at two cookie names pays for scanning its
//! cookie header twice, and nothing for the cookies nobody asked about.
//! `header_map` is the owned form the CLI and tests build requests from.

pub mod header_map;

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use crate::text::{cookie, query, regex_cost};

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

/// One request as the router sees it.
pub struct Request<'a> {
    headers: Vec<(&'a [u8], &'a [u8])>,
    authority: &'a [u8],
    path: &'a [u8],
    /// The first and last `cookie` header's positions in `headers` (HTTP/2
    /// clients may send one per cookie), found at the first cookie lookup:
    /// later lookups read only those.
    cookies: Cell<Option<(usize, usize)>>,
    /// What regex tests may still spend (`regex_cost::BUDGET` at first).
    regex_budget: Cell<u64>,
    /// Regex tests skipped because the budget could not pay for them.
    regex_skipped: Cell<u32>,
}

impl<'a> Request<'a> {
    /// Builds the view from every request header, pseudo-headers included.
    /// `:authority` falls back to `host` (HTTP/1.0 style requests).
    pub fn new(headers: Vec<(&'a [u8], &'a [u8])>) -> Self {
        // Pseudo-headers come first: these stop early.
        let find = |name: &[u8]| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
        let authority = find(b":authority").or_else(|| find(b"host")).unwrap_or_default();
        let path = find(b":path").unwrap_or_default();
        Request {
            authority,
            path,
            cookies: Cell::new(None),
            headers,
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
    pub fn any_value(&self, source: &Source, mut test: impl FnMut(&[u8]) -> bool) -> (bool, bool) {
        let mut present = false;
        let matched = self.each_value(source, |value| {
            present = true;
            test(value)
        });
        (present, matched)
    }

    /// `f` of the first non-empty value of `source` (the sticky key of a
    /// split), if there is one.
    pub fn with_first_value<R>(&self, source: &Source, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let mut f = Some(f);
        let mut out = None;
        self.each_value(source, |value| {
            if value.is_empty() {
                return false;
            }
            out = f.take().map(|f| f(value));
            true
        });
        out
    }

    /// Where the `cookie` headers are: from the first to the last.
    fn cookie_range(&self) -> std::ops::RangeInclusive<usize> {
        let (first, last) = self.cookies.get().unwrap_or_else(|| {
            let is_cookie = |(_, (k, _)): &(usize, &(&[u8], &[u8]))| k.eq_ignore_ascii_case(b"cookie");
            let first = self.headers.iter().enumerate().find(is_cookie).map_or(usize::MAX, |(i, _)| i);
            let last = self.headers.iter().enumerate().rev().find(is_cookie).map_or(0, |(i, _)| i);
            self.cookies.set(Some((first, last)));
            (first, last)
        });
        first..=last
    }

    /// Walks the values of `source` in order until `visit` returns true;
    /// returns whether it did.
    fn each_value(&self, source: &Source, mut visit: impl FnMut(&[u8]) -> bool) -> bool {
        match source {
            Source::Header(name) => {
                self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).any(|(_, v)| visit(v))
            }
            Source::Cookie(name) => self
                .headers
                .get(self.cookie_range())
                .unwrap_or_default()
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(b"cookie"))
                .any(|(_, v)| cookie::values(v, name).any(&mut visit)),
            Source::Query(name) => query::raw_pairs(query::query_of(self.path))
                .filter(|(k, _)| query::decode(k).as_ref() == name.as_slice())
                .any(|(_, v)| match query::decode(v) {
                    Cow::Borrowed(v) => visit(v),
                    Cow::Owned(v) => visit(&v),
                }),
        }
    }
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
        let uid = Source::Cookie(b"uid".to_vec());
        assert_eq!(req.with_first_value(&uid, <[u8]>::to_vec), Some(b"u-7".to_vec()));
        let req = Request::new(vec![(b"cookie", b"uid=")]);
        assert_eq!(req.with_first_value(&uid, <[u8]>::to_vec), None);
    }
}
