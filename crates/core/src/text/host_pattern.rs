//! Host patterns of a route's `hosts`, matched against `:authority`.

/// A compiled `hosts` entry. Stored lower-case; requests compare
/// case-insensitively, without the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `*.example.com` (stored as `.example.com`): any subdomain, not the apex.
    Suffix(Vec<u8>),
    /// `a.example.com`.
    Exact(Vec<u8>),
}

impl HostPattern {
    /// Compiles one entry, or explains why it cannot be one.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("must not be empty".into());
        }
        if pattern == "*" {
            return Ok(HostPattern::Any);
        }
        if pattern.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(format!("`{pattern}` must not contain spaces or control characters"));
        }
        let is_ipv6 = pattern.starts_with('[') && pattern.ends_with(']');
        if !is_ipv6 && pattern.contains(':') {
            return Err(format!("`{pattern}` must not contain a port: hosts are matched without it"));
        }
        if let Some(suffix) = pattern.strip_prefix('*') {
            if !suffix.starts_with('.') || suffix.len() < 2 || suffix[1..].contains('*') {
                return Err(format!(
                    "`{pattern}`: a wildcard is allowed only as a leading `*.` (as in `*.example.com`)"
                ));
            }
            return Ok(HostPattern::Suffix(suffix.to_ascii_lowercase().into_bytes()));
        }
        if pattern.contains('*') {
            return Err(format!(
                "`{pattern}`: a wildcard is allowed only as a leading `*.` (as in `*.example.com`)"
            ));
        }
        Ok(HostPattern::Exact(pattern.to_ascii_lowercase().into_bytes()))
    }

    /// How specific a match is, as Envoy ranks virtual host domains: an
    /// exact name beats any wildcard, a longer `*.` suffix beats a shorter
    /// one, and `*` comes last.
    pub fn specificity(&self) -> usize {
        match self {
            HostPattern::Any => 0,
            HostPattern::Suffix(suffix) => suffix.len(),
            HostPattern::Exact(_) => usize::MAX,
        }
    }

    /// Whether a host (already without its port) matches.
    pub fn matches(&self, host: &[u8]) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(exact) => host.eq_ignore_ascii_case(exact),
            HostPattern::Suffix(suffix) => {
                host.len() > suffix.len() && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Suffix(suffix) => write!(f, "*{}", String::from_utf8_lossy(suffix)),
            HostPattern::Exact(host) => f.write_str(&String::from_utf8_lossy(host)),
        }
    }
}

/// An `:authority` as its host and what follows it (`:port` or nothing);
/// `[v6]` literals keep their brackets.
pub fn split_authority(authority: &[u8]) -> (&[u8], &[u8]) {
    let end = if authority.starts_with(b"[") {
        authority.iter().position(|&b| b == b']').map_or(authority.len(), |end| end + 1)
    } else {
        authority.iter().rposition(|&b| b == b':').unwrap_or(authority.len())
    };
    authority.split_at(end)
}

/// The host of an `:authority`, as routes match it: without `:port`, and
/// without the trailing dot of a fully qualified name (`shop.example.com.`
/// is `shop.example.com`, as DNS and Envoy's virtual hosts treat it).
pub fn host_of(authority: &[u8]) -> &[u8] {
    let (host, _) = split_authority(authority);
    match host.strip_suffix(b".") {
        Some(name) if !name.is_empty() => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, authority: &str) -> bool {
        HostPattern::parse(pattern).unwrap().matches(host_of(authority.as_bytes()))
    }

    #[test]
    fn exact_hosts_match_case_insensitively_without_port() {
        assert!(matches("a.example.com", "a.example.com"));
        assert!(matches("a.example.com", "A.Example.COM:8080"));
        assert!(matches("A.EXAMPLE.com", "a.example.com"));
        assert!(!matches("a.example.com", "b.example.com"));
        assert!(!matches("a.example.com", "a.example.com.evil.net"));
    }

    #[test]
    fn wildcards_match_subdomains_but_not_the_apex() {
        assert!(matches("*.example.com", "a.example.com"));
        assert!(matches("*.example.com", "x.y.example.com:443"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(!matches("*.example.com", "badexample.com"));
        assert!(matches("*", "anything:1"));
        assert!(matches("*", ""));
    }

    #[test]
    fn exact_beats_longer_suffix_beats_shorter_suffix_beats_any() {
        let rank = |p: &str| HostPattern::parse(p).unwrap().specificity();
        assert!(rank("a.example.com") > rank("*.a.example.com"));
        assert!(rank("*.a.example.com") > rank("*.example.com"));
        assert!(rank("*.example.com") > rank("*"));
    }

    #[test]
    fn a_fully_qualified_host_is_the_same_host() {
        assert!(matches("shop.example.com", "shop.example.com."));
        assert!(matches("shop.example.com", "Shop.Example.Com.:8080"));
        assert!(matches("*.example.com", "shop.example.com."));
        assert!(!matches("shop.example.com", "shop.example.com.."));
        assert_eq!(host_of(b"."), b".");
    }

    #[test]
    fn ipv6_literals_keep_their_brackets() {
        assert_eq!(host_of(b"[::1]:8080"), b"[::1]");
        assert!(matches("[::1]", "[::1]:10000"));
    }

    #[test]
    fn rejects_ports_inner_wildcards_and_blanks() {
        assert!(HostPattern::parse("a.example.com:80").unwrap_err().contains("port"));
        assert!(HostPattern::parse("a.*.com").unwrap_err().contains("wildcard"));
        assert!(HostPattern::parse("*example.com").unwrap_err().contains("wildcard"));
        assert!(HostPattern::parse("*.").is_err());
        assert!(HostPattern::parse("").is_err());
        assert!(HostPattern::parse("a b").is_err());
    }
}
