//! Traffic shadowing: which requests to copy, and what the copy looks like.
//! Sending it is the glue's job; everything decidable is here.

use crate::hashing::hash::BUCKETS;

pub const DEFAULT_TIMEOUT_MS: u32 = 1_000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest `maxBodyBytes`: a copy is held in the VM until it is sent,
/// so bigger bodies belong to a real traffic mirror, not to this filter.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `mirrorBudget`: what one VM (one Envoy worker) may hold for shadow
/// copies at once, whatever clients send and however slow the shadow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorBudget {
    /// Bytes of copies being buffered, waiting or in flight (headers and body).
    pub max_bytes: usize,
    /// Copies waiting to be sent or sent and not answered yet.
    pub max_in_flight: usize,
}

/// `mirrorBudget`'s defaults: 8 MiB and 128 copies per VM.
pub const DEFAULT_BUDGET_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_BUDGET_IN_FLIGHT: usize = 128;

impl Default for MirrorBudget {
    fn default() -> Self {
        MirrorBudget { max_bytes: DEFAULT_BUDGET_BYTES, max_in_flight: DEFAULT_BUDGET_IN_FLIGHT }
    }
}

/// Why a selected copy was not sent. Each is counted with its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The request body is over the route's `maxBodyBytes`.
    BodyTooLarge,
    /// Holding it would take the VM over `mirrorBudget.maxBytes`.
    OverBudget,
    /// `mirrorBudget.maxInFlight` copies are already waiting or in flight.
    TooManyInFlight,
    /// The proxy refused the call (unknown cluster, circuit breaker open).
    NotSent,
    /// The live request ended (reset, closed) before its body was complete.
    Incomplete,
}

impl Skip {
    pub const ALL: [Skip; 5] =
        [Skip::BodyTooLarge, Skip::OverBudget, Skip::TooManyInFlight, Skip::NotSent, Skip::Incomplete];

    /// The `reason` label of `canary_router_shadow_skipped_total`.
    pub fn label(self) -> &'static str {
        match self {
            Skip::BodyTooLarge => "body_too_large",
            Skip::OverBudget => "over_budget",
            Skip::TooManyInFlight => "too_many_in_flight",
            Skip::NotSent => "not_sent",
            Skip::Incomplete => "incomplete",
        }
    }

    pub fn index(self) -> usize {
        Skip::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// One VM's account of what its shadow copies hold, against the budget.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    bytes: usize,
    copies: usize,
}

impl Ledger {
    /// Takes `bytes` more for a copy, or says why it cannot.
    pub fn reserve(&mut self, budget: &MirrorBudget, bytes: usize) -> Result<(), Skip> {
        let after = self.bytes.saturating_add(bytes);
        if after > budget.max_bytes {
            return Err(Skip::OverBudget);
        }
        self.bytes = after;
        Ok(())
    }

    pub fn release(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    /// A complete copy joins those waiting or in flight, or says why not.
    pub fn start_copy(&mut self, budget: &MirrorBudget) -> Result<(), Skip> {
        if self.copies >= budget.max_in_flight {
            return Err(Skip::TooManyInFlight);
        }
        self.copies += 1;
        Ok(())
    }

    /// A copy was answered, failed, or could not be sent.
    pub fn end_copy(&mut self) {
        self.copies = self.copies.saturating_sub(1);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn copies(&self) -> usize {
        self.copies
    }
}

/// A route's `mirror`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// The cluster the copies go to (Istio: `outbound|PORT||HOST`).
    pub cluster: String,
    /// Share of requests copied, 0–100.
    pub percent: f64,
    /// `percent` in parts per million.
    threshold: u32,
    pub timeout_ms: u32,
    /// Requests with bigger bodies are not copied.
    pub max_body_bytes: usize,
}

impl Mirror {
    pub fn new(cluster: String, percent: f64, timeout_ms: u32, max_body_bytes: usize) -> Self {
        let threshold = (percent / 100.0 * f64::from(BUCKETS)).round().clamp(0.0, f64::from(BUCKETS)) as u32;
        Mirror { cluster, percent, threshold, timeout_ms, max_body_bytes }
    }

    /// Whether the request with this roll (uniform in `0..1_000_000`) is copied.
    pub fn selects(&self, roll: u32) -> bool {
        roll < self.threshold
    }
}

/// Envoy's shadow host: `-shadow` after the host name, before any port.
pub fn shadow_authority(authority: &[u8]) -> Vec<u8> {
    let (host, port) = crate::text::host_pattern::split_authority(authority);
    let mut out = host.to_vec();
    out.extend_from_slice(b"-shadow");
    out.extend_from_slice(port);
    out
}

/// Headers that describe one hop's connection or framing, not the request:
/// the copy gets its own.
const HOP_BY_HOP: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"te",
    b"upgrade",
    b"content-length",
];

/// The copy's headers, serialized for the proxy's HTTP call, from the
/// request's serialized header map: the request as the upstream sees it
/// (the target header holds the decision, whatever the client sent),
/// `:authority` with `-shadow`, hop-by-hop headers dropped, and
/// `content-length` for the buffered body. Bytes are copied as they are,
/// UTF-8 or not. `None` if the map is malformed.
pub fn shadow_copy(
    request_map: &[u8],
    target_header: &[u8],
    target: &[u8],
    body_len: usize,
) -> Option<Vec<u8>> {
    let pairs = crate::request::header_map::parse(request_map)?;
    let authority: Vec<Vec<u8>> = pairs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b":authority"))
        .map(|(_, value)| shadow_authority(value))
        .collect();
    let mut authorities = authority.iter();
    let length = body_len.to_string();
    let mut out: Vec<(&[u8], &[u8])> = Vec::with_capacity(pairs.len() + 2);
    for (name, value) in pairs {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) || name.eq_ignore_ascii_case(target_header)
        {
            continue;
        }
        if name.eq_ignore_ascii_case(b":authority") {
            out.push((name, authorities.next().map_or(value, Vec::as_slice)));
        } else {
            out.push((name, value));
        }
    }
    out.push((target_header, target));
    if body_len > 0 {
        out.push((b"content-length", length.as_bytes()));
    }
    Some(crate::request::header_map::serialize(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_becomes_a_share_of_rolls() {
        let m = Mirror::new("c".into(), 10.0, 1000, 10);
        assert!(m.selects(99_999));
        assert!(!m.selects(100_000));
        assert!(!Mirror::new("c".into(), 0.0, 1, 1).selects(0));
        assert!(Mirror::new("c".into(), 100.0, 1, 1).selects(999_999));
        assert!(Mirror::new("c".into(), 0.5, 1, 1).selects(4_999));
        assert!(!Mirror::new("c".into(), 0.5, 1, 1).selects(5_000));
    }

    #[test]
    fn the_ledger_holds_bytes_and_copies_within_the_budget() {
        let budget = MirrorBudget { max_bytes: 100, max_in_flight: 2 };
        let mut ledger = Ledger::default();
        assert_eq!(ledger.reserve(&budget, 60), Ok(()));
        assert_eq!(ledger.reserve(&budget, 41), Err(Skip::OverBudget));
        assert_eq!(ledger.reserve(&budget, 40), Ok(()));
        assert_eq!(ledger.bytes(), 100);
        ledger.release(60);
        assert_eq!(ledger.bytes(), 40);
        assert_eq!(ledger.start_copy(&budget), Ok(()));
        assert_eq!(ledger.start_copy(&budget), Ok(()));
        assert_eq!(ledger.start_copy(&budget), Err(Skip::TooManyInFlight));
        ledger.end_copy();
        assert_eq!(ledger.start_copy(&budget), Ok(()));
        ledger.release(1000);
        ledger.end_copy();
        ledger.end_copy();
        ledger.end_copy();
        assert_eq!((ledger.bytes(), ledger.copies()), (0, 0), "releases never underflow");
    }

    #[test]
    fn skip_reasons_have_distinct_labels_and_indices() {
        let labels: Vec<&str> = Skip::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels, ["body_too_large", "over_budget", "too_many_in_flight", "not_sent", "incomplete"]);
        for (i, skip) in Skip::ALL.iter().enumerate() {
            assert_eq!(skip.index(), i);
        }
    }

    #[test]
    fn the_shadow_host_gets_the_suffix_before_the_port() {
        assert_eq!(shadow_authority(b"a.example.com"), b"a.example.com-shadow");
        assert_eq!(shadow_authority(b"a.example.com:8080"), b"a.example.com-shadow:8080");
        assert_eq!(shadow_authority(b"[::1]:80"), b"[::1]-shadow:80");
    }

    #[test]
    fn the_copy_keeps_the_request_but_not_its_framing() {
        let headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":authority", b"a.example.com"),
            (b":path", b"/x?y=1"),
            (b"transfer-encoding", b"chunked"),
            (b"content-length", b"999"),
            (b"x-route-target", b"spoofed"),
            (b"x-bin", b"\xff"),
        ];
        let map = crate::request::header_map::serialize(&headers);
        let copy = shadow_copy(&map, b"x-route-target", b"service-a-canary", 5).unwrap();
        let copy = crate::request::header_map::parse(&copy).unwrap();
        let get = |n: &[u8]| copy.iter().filter(|(k, _)| *k == n).map(|(_, v)| *v).collect::<Vec<_>>();
        assert_eq!(get(b":authority"), [&b"a.example.com-shadow"[..]]);
        assert_eq!(get(b":path"), [&b"/x?y=1"[..]]);
        assert!(get(b"transfer-encoding").is_empty());
        assert_eq!(get(b"content-length"), [&b"5"[..]]);
        assert_eq!(get(b"x-route-target"), [&b"service-a-canary"[..]], "the decision, not the client's");
        assert_eq!(get(b"x-bin"), [&b"\xff"[..]], "bytes are copied as they are");
        let bodiless = shadow_copy(&map, b"x-route-target", b"t", 0).unwrap();
        assert!(crate::request::header_map::parse(&bodiless)
            .unwrap()
            .iter()
            .all(|(k, _)| *k != b"content-length"));
        assert_eq!(shadow_copy(b"junk", b"x", b"t", 0), None);
    }
}
