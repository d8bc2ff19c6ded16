//! One stream: route on its request headers; keep state for its body and
//! response only when the decision needs it (a shadow copy being
//! buffered, an assignment cookie to set, a rollback watching the answer,
//! responses to count). Most requests keep nothing.

use std::rc::Rc;

use log::{debug, warn};

use super::rollback;
use super::shadow::{Held, PendingShadow, ShadowQueue};
use super::{Active, Root};
use crate::config::DEFAULT_TARGET_HEADER;
use crate::metrics::{status_class, SERVER_ERROR};
use crate::mirror::{shadow_copy, Skip};
use crate::request::Request;
use crate::split::Moment;
use crate::{header_map, host};

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
    shadows: Rc<ShadowQueue>,
    /// (route, target) indices in the stats, when responses are counted.
    routed: Option<(usize, usize)>,
    shadow: Option<ShadowInProgress>,
    /// The assignment cookie the response must set.
    set_cookie: Option<String>,
    /// The id of a split whose rollback watches this response.
    rollback_watch: Option<usize>,
}

/// `on_request_headers`: routes the request; returns the state its body or
/// response needs, if any.
pub fn request_headers(root: &Root, id: u32, end_of_stream: bool) -> Option<Box<Stream>> {
    root.stream_started();
    let Some(active) = root.active() else {
        // Never configured: still never let a client pick the upstream.
        remove(id, DEFAULT_TARGET_HEADER);
        return None;
    };
    let router = &active.router;
    let header = router.target_header.as_str();
    let map = host::request_header_map().unwrap_or_else(|status| {
        warn!("[ctx {id}] cannot read request headers (status {}); routing as if none", status.0);
        Vec::new()
    });
    // Only the headers the config may read (a shadow's copy is made from
    // the whole map later).
    let pairs =
        header_map::parse_where(&map, |name| router.header_names.may_read(name)).unwrap_or_else(|| {
            warn!("[ctx {id}] malformed request header map from the host; routing as if none");
            Vec::new()
        });
    let request = Request::new(pairs);
    let now_ms = if active.uses_clock { host::now_ms() } else { 0 };
    let withheld = active.withheld.borrow();
    let moment = Moment { roll: root.roll(), now_ms, rolled_back: &withheld };
    let Some(decision) = router.decide(&request, &moment) else {
        debug!("[ctx {id}] route=- rule=- target=- reason=no route");
        active.stats.unrouted();
        let client_sent_header = map.is_empty()
            || request.headers().iter().any(|(k, _)| k.eq_ignore_ascii_case(header.as_bytes()));
        if client_sent_header {
            remove(id, header);
        }
        return None;
    };
    debug!("[ctx {id}] {decision}");
    if let Err(status) = host::replace_request_header(header, decision.target.as_bytes()) {
        warn!("[ctx {id}] cannot set {header} (status {})", status.0);
    }
    let route = decision.route_index;
    let target = active.stats.request(route, decision.rule_index, decision.target);
    if request.regex_skipped() > 0 {
        active.stats.regex_skipped(route);
    }
    let set_cookie = decision.assign_cookie().map(|cookie| cookie.set_cookie(decision.target));
    let rollback_watch = decision
        .split
        .filter(|split| split.rollback().is_some_and(|r| r.target == decision.target))
        .map(|split| split.id);
    let routed = if router.count_responses { target.map(|t| (route, t)) } else { None };
    let mirrored =
        router.routes.get(route).and_then(|r| r.mirror.as_ref()).is_some_and(|m| m.selects(root.roll()));
    drop(withheld);
    drop(request);

    let shadow = if mirrored {
        let bytes = map.len() + header.len() + decision.target.len();
        match root.shadows.hold(&router.mirror_budget, bytes) {
            Ok(held) => Some(ShadowInProgress {
                route,
                request_map: map,
                target: decision.target.to_string(),
                body: Vec::new(),
                held,
            }),
            Err(why) => {
                active.stats.shadow_skipped(route, why);
                None
            }
        }
    } else {
        None
    };
    if shadow.is_none() && set_cookie.is_none() && rollback_watch.is_none() && routed.is_none() {
        return None;
    }
    let mut stream = Box::new(Stream {
        id,
        active: active.clone(),
        shadows: root.shadows.clone(),
        routed,
        shadow,
        set_cookie,
        rollback_watch,
    });
    if end_of_stream {
        stream.finish_shadow();
    }
    Some(stream)
}

impl Stream {
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
                    host::request_body(body_size).map_err(|_| Skip::Incomplete)
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
        }
        self.needed()
    }

    /// `on_response_headers`: counts the response, feeds the rollback, sets
    /// the assignment cookie; returns whether the stream still needs its
    /// state (a copy still waiting for the end of the request body).
    pub fn response_headers(&mut self) -> bool {
        let active = &self.active;
        if self.routed.is_some() || self.rollback_watch.is_some() {
            let class = host::response_status().as_deref().and_then(status_class);
            if let (Some((route, target)), Some(class)) = (self.routed.take(), class) {
                active.stats.response(route, target, class);
            }
            if let (Some(split_id), Some(class)) = (self.rollback_watch.take(), class) {
                rollback::record_response(active, split_id, self.id, host::now_ms(), class == SERVER_ERROR);
            }
        }
        if let Some(cookie) = self.set_cookie.take() {
            if let Err(status) = host::add_response_header("set-cookie", &cookie) {
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
        if let Err(why) = self.shadows.push(&active.router.mirror_budget, pending) {
            active.stats.shadow_skipped(shadow.route, why);
        }
    }
}

impl Drop for Stream {
    /// The stream is gone (done, reset or closed): a copy still waiting for
    /// its body will never complete. Dropping it gives its budget back.
    fn drop(&mut self) {
        if let Some(shadow) = self.shadow.take() {
            self.active.stats.shadow_skipped(shadow.route, Skip::Incomplete);
        }
    }
}

fn remove(id: u32, header: &str) {
    if let Err(status) = host::remove_request_header(header) {
        warn!("[ctx {id}] cannot remove {header} (status {})", status.0);
    }
}
