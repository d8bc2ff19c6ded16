//! Which request headers a config can read, as a filter cheap enough to
//! apply to every header of every request: a bit per (name length, first
//! byte) pair. The filter keeps only the headers that pass when it reads a
//! request's header map, so conditions scan a handful of headers instead of
//! every one a browser sends. A header that passes but is not read (same
//! length and first letter) only costs a comparison later.

use crate::request::Source;
use crate::routing::route::Route;

/// Names of this length or longer share one bit per first byte.
const LENGTHS: usize = 32;

#[derive(Debug, Clone)]
pub struct HeaderNames {
    /// Bit `first byte % 64` of entry `length` set: a name with that length
    /// and first byte may be read.
    bits: [u64; LENGTHS],
}

impl HeaderNames {
    /// The headers the conditions and sticky keys name, the target header,
    /// and those every request needs.
    pub fn new(routes: &[Route], target_header: &str) -> Self {
        let mut names = HeaderNames { bits: [0; LENGTHS] };
        for name in [&b":authority"[..], b"host", b":path", b"cookie", target_header.as_bytes()] {
            names.add(name);
        }
        for rule in routes.iter().flat_map(|route| &route.rules) {
            let sticky = rule.split().and_then(|s| s.sticky_by());
            for source in rule.conditions.iter().map(|c| &c.source).chain(sticky) {
                if let Source::Header(name) = source {
                    names.add(name);
                }
            }
        }
        names
    }

    fn add(&mut self, name: &[u8]) {
        let Some(&first) = name.first() else { return };
        for byte in [first.to_ascii_lowercase(), first.to_ascii_uppercase()] {
            self.bits[name.len().min(LENGTHS - 1)] |= 1 << (byte % 64);
        }
    }

    /// Whether the config may read a header of this name (false positives
    /// possible, never a false negative).
    pub fn may_read(&self, name: &[u8]) -> bool {
        let Some(&first) = name.first() else { return false };
        self.bits[name.len().min(LENGTHS - 1)] & (1 << (first % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use crate::config;

    #[test]
    fn passes_every_name_the_config_reads_and_few_others() {
        let router = config::parse(include_bytes!("../../../../examples/config.json")).unwrap();
        let names = &router.header_names;
        for name in [
            &b":authority"[..],
            b"host",
            b":path",
            b"cookie",
            b"x-route-target",
            b"foo",
            b"X-Canary",
            b"x-canary",
        ] {
            assert!(names.may_read(name), "{}", String::from_utf8_lossy(name));
        }
        for name in [
            &b"user-agent"[..],
            b"accept-language",
            b"referer",
            b"",
            b"dnt",
            b"a-long-header-name-over-32-bytes!",
        ] {
            assert!(!names.may_read(name), "{}", String::from_utf8_lossy(name));
        }
    }
}
