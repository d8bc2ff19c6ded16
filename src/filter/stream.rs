//! One HTTP stream: route on request headers, copy to the shadow if
//! selected, count the response.

use std::rc::Rc;

use log::{debug, warn};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::rollback;
use super::shadow::{Held, PendingShadow, ShadowQueue};
use super::Active;
use crate::config::DEFAULT_TARGET_HEADER;
use crate::metrics::{status_class, SERVER_ERROR};
use crate::mirror::{header_bytes, shadow_headers, Skip};
use crate::request::Request;
use crate::split::Moment;

use crate::{header_map, host};

/// A copy being assembled while the request body streams through.
struct ShadowInProgress {
    route: usize,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    /// Its share of the VM's mirror budget.
    held: Held,
}

pub struct RouterHttp {
    id: u32,
    active: Option<Rc<Active>>,
    shadows: Rc<ShadowQueue>,
    /// This request's random rolls: for a non-sticky split, and for the mirror.
    split_roll: u32,
    mirror_roll: u32,
    /// (route, target) indices in the stats, once routed.
    routed: Option<(usize, usize)>,
    shadow: Option<ShadowInProgress>,
    /// The assignment cookie the response must set.
    set_cookie: Option<String>,
    /// The id of a split whose rollback watches this response.
    rollback_watch: Option<usize>,
}

impl RouterHttp {
    pub fn new(
        id: u32,
        active: Option<Rc<Active>>,
        shadows: Rc<ShadowQueue>,
        split_roll: u32,
        mirror_roll: u32,
    ) -> Self {
        RouterHttp {
            id,
            active,
            shadows,
            split_roll,
            mirror_roll,
            routed: None,
            shadow: None,
            set_cookie: None,
            rollback_watch: None,
        }
    }
}

impl Context for RouterHttp {}

impl Drop for RouterHttp {
    /// The stream is gone (done, reset or closed): a copy still waiting for
    /// its body will never complete. Dropping it gives its budget back.
    fn drop(&mut self) {
        if let (Some(shadow), Some(active)) = (self.shadow.take(), self.active.as_ref()) {
            active.stats.shadow_skipped(shadow.route, Skip::Incomplete);
        }
    }
}

impl HttpContext for RouterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.route();
        if end_of_stream {
            self.finish_shadow();
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let (Some(shadow), Some(active)) = (self.shadow.as_mut(), self.active.as_ref()) {
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
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(active) = self.active.as_ref() else { return Action::Continue };
        let class = host::response_status().as_deref().and_then(status_class);
        if let (Some((route, target)), Some(class)) = (self.routed, class) {
            active.stats.response(route, target, class);
        }
        if let (Some(split_id), Some(class)) = (self.rollback_watch, class) {
            rollback::record_response(active, split_id, self.id, host::now_ms(), class == SERVER_ERROR);
        }
        if let Some(cookie) = self.set_cookie.take() {
            if let Err(status) = host::add_response_header("set-cookie", &cookie) {
                warn!("[ctx {}] cannot set the assignment cookie (status {})", self.id, status.0);
            }
        }
        Action::Continue
    }
}

impl RouterHttp {
    fn route(&mut self) {
        let Some(active) = self.active.clone() else {
            // Never configured: still never let a client pick the upstream.
            self.remove(DEFAULT_TARGET_HEADER);
            return;
        };
        let router = &active.router;
        let map = host::request_header_map().unwrap_or_else(|status| {
            warn!("[ctx {}] cannot read request headers (status {}); routing as if none", self.id, status.0);
            Vec::new()
        });
        let pairs = header_map::parse(&map).unwrap_or_else(|| {
            warn!("[ctx {}] malformed request header map from the host; routing as if none", self.id);
            Vec::new()
        });
        let header = router.target_header.as_str();
        let client_sent_header =
            map.is_empty() || pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(header.as_bytes()));
        let request = Request::new(pairs);
        let now_ms = if active.uses_clock { host::now_ms() } else { 0 };
        let rolled_back = active.rolled_back.borrow();
        let moment = Moment { roll: self.split_roll, now_ms, rolled_back: &rolled_back };
        let Some(decision) = router.decide(&request, &moment) else {
            debug!("[ctx {}] route=- rule=- target=- reason=no route", self.id);
            active.stats.unrouted();
            if client_sent_header {
                self.remove(header);
            }
            return;
        };
        debug!("[ctx {}] {decision}", self.id);
        if let Err(status) = host::replace_request_header(header, decision.target.as_bytes()) {
            warn!("[ctx {}] cannot set {header} (status {})", self.id, status.0);
        }
        let target = active.stats.request(decision.route_index, decision.rule_index, decision.target);
        self.routed = target.map(|t| (decision.route_index, t));
        self.set_cookie = decision.assign_cookie().map(|cookie| cookie.set_cookie(decision.target));
        if let Some(split) = decision.split {
            if split.rollback().is_some_and(|r| r.target == decision.target) {
                self.rollback_watch = Some(split.id);
            }
        }

        let route = decision.route_index;
        if request.regex_skipped() > 0 {
            active.stats.regex_skipped(route);
        }
        if router
            .routes
            .get(route)
            .and_then(|r| r.mirror.as_ref())
            .is_some_and(|m| m.selects(self.mirror_roll))
        {
            let bytes = header_bytes(request.headers()) + header.len() + decision.target.len();
            let held = match self.shadows.hold(&router.mirror_budget, bytes) {
                Ok(held) => held,
                Err(why) => {
                    active.stats.shadow_skipped(route, why);
                    return;
                }
            };
            // The copy carries the request as the upstream sees it.
            let mut headers: Vec<(Vec<u8>, Vec<u8>)> = request
                .headers()
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case(header.as_bytes()))
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            headers.push((header.as_bytes().to_vec(), decision.target.as_bytes().to_vec()));
            self.shadow = Some(ShadowInProgress { route, headers, body: Vec::new(), held });
        }
    }

    /// The request is complete: queue its copy for the root to send.
    fn finish_shadow(&mut self) {
        let (Some(shadow), Some(active)) = (self.shadow.take(), self.active.as_ref()) else { return };
        let Some(mirror) = active.router.routes.get(shadow.route).and_then(|r| r.mirror.as_ref()) else {
            return;
        };
        let pending = PendingShadow {
            active: active.clone(),
            route: shadow.route,
            cluster: mirror.cluster.clone(),
            headers: shadow_headers(&shadow.headers, shadow.body.len()),
            body: shadow.body,
            timeout_ms: mirror.timeout_ms,
            held: shadow.held,
        };
        if let Err(why) = self.shadows.push(&active.router.mirror_budget, pending) {
            active.stats.shadow_skipped(shadow.route, why);
        }
    }

    fn remove(&self, header: &str) {
        if let Err(status) = host::remove_request_header(header) {
            warn!("[ctx {}] cannot remove {header} (status {})", self.id, status.0);
        }
    }
}
