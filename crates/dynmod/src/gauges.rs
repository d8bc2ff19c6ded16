//! The split state gauges, with the `.wasm`'s names and labels
//! (docs/metrics.md, "Split state"): each split's
//! `canary_router_configured_weight_ppm{route,rule,split,target}` and
//! `canary_router_live_weight_ppm` (after its ramp and any rollback), and
//! a rollback split's `canary_router_rolled_back{route,rule,split,target}`,
//! `canary_router_rollback_reason{route,rule,split,reason}`,
//! `canary_router_rolled_back_since_seconds{route,rule,split}` and
//! `canary_router_rollback_fleet{route,rule,split}` (1: the fleet's
//! Prometheus checks and latch judge too, 0: each proxy's window alone). Set from a stream: on the config's first one (a split a
//! previous config rolled back shows it at once), by the response that
//! rolls a split back, and by the first one after the tick (a ramp's weights
//! move with time, a gate or a comparison may roll a split back).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::*;
use crate::family::{Family, Kind};
use crate::flag;
use crate::split_states::Splits;
use canary_router_core::rollout::fleet_state::RolledBack;
use canary_router_core::rollout::metrics;
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::{Moment, SplitId};

pub struct Gauges {
    configured: Option<Family>,
    live: Option<Family>,
    rolled_back: Option<Family>,
    reason: Option<Family>,
    since: Option<Family>,
    fleet: Option<Family>,
    /// Every split's gauges are to be set again (at first, so the config's
    /// first request shows them).
    dirty: AtomicBool,
}

impl Gauges {
    pub fn define(envoy: FilterConfigEnvoyPtr, router: &Router, splits: &Splits) -> Gauges {
        let split = ["route", "rule", "split"];
        let define = |name: &str, extra: Option<&str>, needed: bool| {
            let labels: Vec<&str> = split.iter().copied().chain(extra).collect();
            needed.then(|| Family::define(envoy, Kind::Gauge, name, &labels)).flatten()
        };
        let family = |name: &str, extra: Option<&str>| define(name, extra, splits.any());
        let any_split = router.split_count > 0;
        Gauges {
            configured: define(metrics::CONFIGURED_WEIGHT, Some("target"), any_split),
            live: define(metrics::LIVE_WEIGHT, Some("target"), any_split),
            rolled_back: family(metrics::ROLLED_BACK, Some("target")),
            reason: family(metrics::ROLLBACK_REASON, Some("reason")),
            since: family(metrics::ROLLED_BACK_SINCE, None),
            fleet: family(metrics::ROLLBACK_FLEET, None),
            dirty: AtomicBool::new(true),
        }
    }

    /// A split's state changed where no stream is (the tick).
    pub fn mark(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// From a stream, when marked: every split's state at `now_ms`.
    pub fn show(&self, envoy: FilterEnvoyPtr, router: &Router, splits: &Splits, now_ms: u64) {
        if self.live.is_none() || !flag::take(&self.dirty) {
            return;
        }
        for (_, _, split) in router.splits() {
            let rolled = splits.get(split.id).and_then(|shared| shared.lock().rolled_back.clone());
            self.split(envoy, router, splits, split.id, rolled.as_ref(), now_ms);
        }
    }

    /// One split's gauges at `now_ms`: its weights, and with a rollback,
    /// rolled back (why, since when) or live.
    pub fn split(
        &self,
        envoy: FilterEnvoyPtr,
        router: &Router,
        splits: &Splits,
        id: SplitId,
        rolled: Option<&RolledBack>,
        now_ms: u64,
    ) {
        let Some((route, rule, split)) = router.split(id) else { return };
        let identity = split.identity_hex();
        let labels = [route.name.as_bytes(), rule.label.as_bytes(), identity.as_bytes()];
        let set = |family, values: &[&[u8]], value| Family::record_into(family, envoy, values, value);
        let [route, rule, identity] = labels;
        let moment = Moment { roll: 0, now_ms, splits };
        let shares = split.configured_shares().into_iter().zip(split.current_shares(&moment));
        for (target, (configured, live)) in split.targets().iter().zip(shares) {
            let target_labels = [route, rule, identity, target.as_bytes()];
            set(self.configured, &target_labels, u64::from(configured));
            set(self.live, &target_labels, u64::from(live));
        }
        let Some(rollback) = split.rollback() else { return };
        set(
            self.rolled_back,
            &[route, rule, identity, rollback.target.as_bytes()],
            u64::from(rolled.is_some()),
        );
        set(self.fleet, &labels, u64::from(rollback.prometheus.is_some()));
        set(self.since, &labels, rolled.map_or(0, |r| r.since_ms / 1_000));
        if let Some(rolled) = rolled {
            set(self.reason, &[route, rule, identity, rolled.reason.as_bytes()], 1);
        }
    }
}
