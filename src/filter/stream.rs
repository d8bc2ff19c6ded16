//! One stream: route on its request headers; keep state for its body and
//! response only when the decision needs it (a shadow copy being
//! buffered, an assignment cookie to set, a rollback watching the answer,
//! responses to count). Most requests keep nothing.
//!
//! A request never reaches an upstream its client named: the target
//! header is overwritten or removed, and when the filter cannot do that
//! (no accepted config, so it does not know which header routes; or the
//! proxy refused the write) it answers 503 itself instead of forwarding.

use std::rc::Rc;

use log::{debug, error, warn};

use super::proxy::{LocalReply, Proxy};
use super::rollback::{self, Answered, WatchedArm};
use super::shadow::{Held, PendingShadow, ShadowQueue};
use super::{Active, Root};
use canary_router_core::request::header_map;
use canary_router_core::request::Request;
use canary_router_core::rollout::compare;
use canary_router_core::rollout::metrics::{status_class, SERVER_ERROR};
use canary_router_core::routing::mirror::{shadow_copy, Skip};
use canary_router_core::routing::router::Decision;
use canary_router_core::routing::split::{Moment, SplitId};

/// A copy being assembled while the request body streams through.
struct ShadowInProgress {
    route: usize,
    /// The request's header map as the proxy serialized it (the copy is
    /// made from it once the body is complete).
    request_map: Vec<u8>,
    /// The decision the copy carries in the target header.
    target: String,
    body: Vec<u8>,
    /// Its share of the VM's mirror budget.
    held: Held,
}

/// What a stream's body and response still need.
pub struct Stream {
    id: u32,
    active: Rc<Active>,
    /// (route, target) indices in the stats, when responses are counted.
    routed: Option<(usize, usize)>,
    shadow: Option<ShadowInProgress>,
    /// The assignment cookie the response must set.
    set_cookie: Option<String>,
    /// The split whose rollback watches this response.
    rollback_watch: Option<Watched>,
}

/// A request to a rollback's watched target (or, with `compare`, to its
/// baseline), until its answer comes.
struct Watched {
    split: SplitId,
    arm: WatchedArm,
    /// When the proxy had the whole request (ms since the epoch): its
    /// headers, or its body's end. The latency judged is from here to the
    /// response headers, so a slow upload is not the canary's.
    sent_ms: u64,
    /// The ramp step it was served at (0 without a ramp).
    step: u32,
    /// A request that ends unanswered after this long is a failure.
    abandoned_after_ms: u64,
}

/// What became of a request's headers.
pub enum Headers {
    /// Forwarded, with the state its body or response needs, if any.
    Continue(Option<Box<Stream>>),
    /// Answered by the filter (503): it could not make the routing header
    /// its own. The proxy must not forward it.
    Refused,
}

/// The 503 for a request the filter cannot route safely.
const NO_CONFIG: LocalReply<'static> = LocalReply {
    status: 503,
    details: "canary_router_no_config",
    body: "canary-router has no accepted config\n",
};
const HEADER_NOT_WRITTEN: LocalReply<'static> = LocalReply {
    status: 503,
    details: "canary_router_header_not_written",
    body: "canary-router could not set its routing header\n",
};

/// `on_request_headers`: routes the request.
pub fn request_headers(root: &Root, id: u32, end_of_stream: bool) -> Headers {
    root.stream_started();
    let proxy = &*root.vm.proxy;
    let Some(active) = root.active() else {
        // Which header routes is in the config it never accepted.
        return refuse(proxy, id, &NO_CONFIG);
    };
    let router = &active.router;
    let map = proxy.request_header_map().unwrap_or_else(|status| {
        warn!("[ctx {id}] cannot read request headers (status {}); routing as if none", status.0);
        Vec::new()
    });
    #[cfg(feature = "trap-on-marker")]
    trap_on_marker(&map);
    // Only the headers the config may read (a shadow's copy is made from
    // the whole map later).
    let pairs =
        header_map::parse_where(&map, |name| router.header_names.may_read(name)).unwrap_or_else(|| {
            warn!("[ctx {id}] malformed request header map from the host; routing as if none");
            Vec::new()
        });
    let request = Request::new(pairs);
    let now_ms = if active.uses_clock { proxy.now_ms() } else { 0 };
    let moment = Moment { roll: root.roll(), now_ms, splits: &active.splits };
    let Some(decision) = router.decide(&request, &moment) else {
        return unrouted(&active, id, &request, map.is_empty());
    };
    debug!("[ctx {id}] {decision}");
    if let Err(status) = proxy.replace_request_header(&router.target_header, decision.target.as_bytes()) {
        error!("[ctx {id}] cannot set {} (status {}): answered 503", router.target_header, status.0);
        return refuse(proxy, id, &HEADER_NOT_WRITTEN);
    }
    // A route chosen before this filter saw the client's value (if any):
    // unchanged only when the client sent exactly this one.
    let unchanged = {
        let mut sent = client_sent(&request, &router.target_header);
        sent.next() == Some(decision.target.as_bytes()) && sent.next().is_none()
    };
    if !unchanged || map.is_empty() {
        header_changed(&active, id);
    }
    if request.regex_skipped() > 0 {
        active.stats.regex_skipped(decision.route_index);
    }
    let mirrored = router
        .routes
        .get(decision.route_index)
        .and_then(|r| r.mirror.as_ref())
        .is_some_and(|m| m.selects(root.roll()));
    let shadow = if mirrored { start_shadow(&active, &root.vm.shadows, &decision, map) } else { None };
    let stream = Stream::after(id, &active, &decision, shadow, now_ms);
    Headers::Continue(stream.and_then(|mut stream| {
        if end_of_stream {
            stream.finish_shadow();
        }
        stream.needed().then_some(stream)
    }))
}

/// The `trap-on-marker` test build's crash: a trap, as a panic would be.
#[cfg(feature = "trap-on-marker")]
fn trap_on_marker(map: &[u8]) {
    let marked =
        header_map::parse(map).is_some_and(|pairs| pairs.iter().any(|(k, _)| *k == b"x-canary-router-trap"));
    if marked {
        std::process::abort();
    }
}

/// No route applies: the target header goes, if the client sent one (or
/// the headers could not be read).
fn unrouted(active: &Active, id: u32, request: &Request<'_>, unread: bool) -> Headers {
    debug!("[ctx {id}] route=- rule=- target=- reason=no route");
    active.stats.unrouted();
    let header = active.router.target_header.as_str();
    let proxy = &*active.vm.proxy;
    if unread || client_sent(request, header).next().is_some() {
        if proxy.remove_request_header(header).is_err() {
            return refuse(proxy, id, &HEADER_NOT_WRITTEN);
        }
        header_changed(active, id);
    }
    Headers::Continue(None)
}

/// The values the client sent for the target header.
fn client_sent<'r>(request: &'r Request<'_>, header: &'r str) -> impl Iterator<Item = &'r [u8]> + 'r {
    request.headers().iter().filter(move |(k, _)| k.eq_ignore_ascii_case(header.as_bytes())).map(|(_, v)| *v)
}

/// The target header changed: unless the config trusts the host to see
/// that itself (`clearRouteCache: false`), it is asked to select the
/// route again.
fn header_changed(active: &Active, id: u32) {
    if active.router.clear_route_cache {
        active.vm.clear_route_cache(id);
    }
}

/// Answers the request with `reply` instead of forwarding it.
fn refuse(proxy: &dyn Proxy, id: u32, reply: &LocalReply<'_>) -> Headers {
    if let Err(status) = proxy.send_local_reply(reply) {
        error!("[ctx {id}] cannot answer {} (status {})", reply.details, status.0);
    }
    Headers::Refused
}

/// Holds the mirror budget for a copy of this request, or counts why not.
fn start_shadow(
    active: &Active,
    shadows: &ShadowQueue,
    decision: &Decision<'_>,
    request_map: Vec<u8>,
) -> Option<ShadowInProgress> {
    let router = &active.router;
    let route = decision.route_index;
    let bytes = request_map.len() + router.target_header.len() + decision.target.len();
    match shadows.hold(&router.mirror_budget, bytes) {
        Ok(held) => Some(ShadowInProgress {
            route,
            request_map,
            target: decision.target.to_string(),
            body: Vec::new(),
            held,
        }),
        Err(why) => {
            active.stats.shadow_skipped(route, why);
            None
        }
    }
}

impl Stream {
    /// The state a routed request keeps for its body and response, if it
    /// needs any; counts the request.
    /// `now_ms` is the time the decision read, 0 if it read none.
    fn after(
        id: u32,
        active: &Rc<Active>,
        decision: &Decision<'_>,
        shadow: Option<ShadowInProgress>,
        now_ms: u64,
    ) -> Option<Box<Stream>> {
        let route = decision.route_index;
        let target = active.stats.request(route, decision.rule_index, decision.target);
        let set_cookie = decision.assign_cookie().map(|cookie| cookie.set_cookie(decision.target));
        let rollback_watch = decision.split.and_then(|split| {
            let rollback = split.rollback()?;
            let arm = compare::arm_of(rollback, decision.target)?;
            let sent_ms = if now_ms > 0 { now_ms } else { active.vm.proxy.now_ms() };
            let step = match (split.ramp(), active.splits.get(split.id)) {
                (Some(ramp), Some(state)) => state.ramp_step(ramp, sent_ms).unwrap_or(0),
                _ => 0,
            };
            Some(Watched {
                split: split.id,
                arm,
                sent_ms,
                step: u32::try_from(step).unwrap_or(u32::MAX),
                // Without a local window there is nothing to count it in.
                abandoned_after_ms: rollback.window.as_ref().map_or(u64::MAX, |w| w.abandoned_after_ms),
            })
        });
        let routed = if active.router.count_responses { target.map(|t| (route, t)) } else { None };
        if shadow.is_none() && set_cookie.is_none() && rollback_watch.is_none() && routed.is_none() {
            return None;
        }
        Some(Box::new(Stream { id, active: active.clone(), routed, shadow, set_cookie, rollback_watch }))
    }

    /// `on_request_body`: buffers the copy's body; returns whether the
    /// stream still needs its state.
    pub fn request_body(&mut self, body_size: usize, end_of_stream: bool) -> bool {
        if let Some(shadow) = self.shadow.as_mut() {
            let active = &self.active;
            let limit = active
                .router
                .routes
                .get(shadow.route)
                .and_then(|r| r.mirror.as_ref())
                .map_or(0, |m| m.max_body_bytes);
            // Checked before reading, so an over-size chunk is never copied in.
            let needed = shadow.body.len().saturating_add(body_size);
            let outcome = if needed > limit {
                Err(Skip::BodyTooLarge)
            } else {
                // The budget pays for the buffer's capacity, not just its
                // length, so growth by doubling is bounded too.
                let capacity = shadow.body.capacity();
                let grown = if needed > capacity { needed.max(capacity * 2).min(limit) } else { capacity };
                shadow.held.grow(&active.router.mirror_budget, grown - capacity).and_then(|()| {
                    shadow.body.reserve_exact(grown - shadow.body.len());
                    active.vm.proxy.request_body(body_size).map_err(|_| Skip::Incomplete)
                })
            };
            match outcome {
                Ok(chunk) => shadow.body.extend_from_slice(&chunk),
                Err(why) => {
                    // Skipped, never delayed; its budget goes back at once.
                    active.stats.shadow_skipped(shadow.route, why);
                    self.shadow = None;
                }
            }
        }
        if end_of_stream {
            self.finish_shadow();
            if let Some(watched) = self.rollback_watch.as_mut() {
                watched.sent_ms = self.active.vm.proxy.now_ms();
            }
        }
        self.needed()
    }

    /// `on_response_headers`: counts the response, feeds the rollback, sets
    /// the assignment cookie; returns whether the stream still needs its
    /// state (a copy still waiting for the end of the request body).
    pub fn response_headers(&mut self) -> bool {
        let active = &self.active;
        let proxy = &*active.vm.proxy;
        if self.routed.is_some() || self.rollback_watch.is_some() {
            let class = proxy.response_status().as_deref().and_then(status_class);
            if let (Some((route, target)), Some(class)) = (self.routed.take(), class) {
                active.stats.response(route, target, class);
            }
            if let (Some(watched), Some(class)) = (self.rollback_watch.take(), class) {
                let now_ms = proxy.now_ms();
                let answered = Answered {
                    arm: watched.arm,
                    error: class == SERVER_ERROR,
                    latency_ms: Some(now_ms.saturating_sub(watched.sent_ms)),
                    step: watched.step,
                };
                rollback::record_response(active, watched.split, self.id, now_ms, &answered);
            }
        }
        if let Some(cookie) = self.set_cookie.take() {
            if let Err(status) = proxy.add_response_header("set-cookie", &cookie) {
                warn!("[ctx {}] cannot set the assignment cookie (status {})", self.id, status.0);
            }
        }
        self.needed()
    }

    fn needed(&self) -> bool {
        self.shadow.is_some()
            || self.set_cookie.is_some()
            || self.rollback_watch.is_some()
            || self.routed.is_some()
    }

    /// The request is complete: queue its copy for the root to send.
    fn finish_shadow(&mut self) {
        let Some(shadow) = self.shadow.take() else { return };
        let active = &self.active;
        let shadows = &active.vm.shadows;
        let Some(mirror) = active.router.routes.get(shadow.route).and_then(|r| r.mirror.as_ref()) else {
            return;
        };
        let header = active.router.target_header.as_bytes();
        let Some(headers) =
            shadow_copy(&shadow.request_map, header, shadow.target.as_bytes(), shadow.body.len())
        else {
            return;
        };
        let pending = PendingShadow {
            active: active.clone(),
            route: shadow.route,
            cluster: mirror.cluster.clone(),
            headers,
            body: shadow.body,
            timeout_ms: mirror.timeout_ms,
            held: shadow.held,
        };
        if let Err(why) = shadows.push(&active.router.mirror_budget, pending) {
            active.stats.shadow_skipped(shadow.route, why);
        }
    }
}

impl Drop for Stream {
    /// The stream is gone (done, reset or closed): a copy still waiting for
    /// its body will never complete. Dropping it gives its budget back. A
    /// watched request that never got its response headers waited for
    /// nothing: once it waited `abandonedAfterMs`, it is a failure of the
    /// target and that wait a latency sample (a canary that hangs is seen);
    /// a client that gave up sooner says nothing either way.
    fn drop(&mut self) {
        if let Some(shadow) = self.shadow.take() {
            self.active.stats.shadow_skipped(shadow.route, Skip::Incomplete);
        }
        if let Some(watched) = self.rollback_watch.take() {
            let now_ms = self.active.vm.proxy.now_ms();
            let waited = now_ms.saturating_sub(watched.sent_ms);
            if waited >= watched.abandoned_after_ms {
                debug!(
                    "[ctx {}] the request to a watched target ended unanswered after {waited} ms: a failure",
                    self.id
                );
                let answered =
                    Answered { arm: watched.arm, error: true, latency_ms: Some(waited), step: watched.step };
                rollback::record_response(&self.active, watched.split, self.id, now_ms, &answered);
            }
        }
    }
}
