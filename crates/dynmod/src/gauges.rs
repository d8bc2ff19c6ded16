//! The rollback gauges, with the `.wasm`'s names and labels (docs/metrics.md,
//! "Split state"): `canary_router_rolled_back{route,rule,split,target}`,
//! `canary_router_rollback_reason{route,rule,split,reason}`,
//! `canary_router_rolled_back_since_seconds{route,rule,split}` and
//! `canary_router_rollback_fleet{route,rule,split}` (0: each proxy's window
//! judges alone). Set from a stream: on the config's first one (a split a
//! previous config rolled back shows it at once), by the response that
//! rolls a split back, and by the first one after a gate rolled one back on
//! the tick.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::*;
use crate::family::{Family, Kind};
use crate::flag;
use crate::split_states::Splits;
use canary_router_core::rollout::fleet_state::RolledBack;
use canary_router_core::rollout::metrics;
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::SplitId;

pub struct Gauges {
    rolled_back: Option<Family>,
    reason: Option<Family>,
    since: Option<Family>,
    fleet: Option<Family>,
    /// Every split's gauges are to be set again (at first, so the config's
    /// first request shows them).
    dirty: AtomicBool,
}

impl Gauges {
    pub fn define(envoy: FilterConfigEnvoyPtr, splits: &Splits) -> Gauges {
        let split = ["route", "rule", "split"];
        let family = |name: &str, extra: Option<&str>| {
            let labels: Vec<&str> = split.iter().copied().chain(extra).collect();
            splits.any().then(|| Family::define(envoy, Kind::Gauge, name, &labels)).flatten()
        };
        Gauges {
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

    /// From a stream, when marked: every rollback split's state.
    pub fn show(&self, envoy: FilterEnvoyPtr, router: &Router, splits: &Splits) {
        if self.rolled_back.is_none() || !flag::take(&self.dirty) {
            return;
        }
        for (_, _, split) in router.splits() {
            let Some(shared) = splits.get(split.id) else { continue };
            let rolled = shared.lock().rolled_back.clone();
            self.split(envoy, router, split.id, rolled.as_ref());
        }
    }

    /// One split's gauges: rolled back (why, since when) or live.
    pub fn split(&self, envoy: FilterEnvoyPtr, router: &Router, id: SplitId, rolled: Option<&RolledBack>) {
        let Some((route, rule, split)) = router.split(id) else { return };
        let Some(rollback) = split.rollback() else { return };
        let identity = split.identity_hex();
        let labels = [route.name.as_bytes(), rule.label.as_bytes(), identity.as_bytes()];
        let set = |family: Option<Family>, values: &[&[u8]], value: u64| {
            if let Some(family) = family {
                family.record(envoy, values, value);
            }
        };
        let [route, rule, identity] = labels;
        set(
            self.rolled_back,
            &[route, rule, identity, rollback.target.as_bytes()],
            u64::from(rolled.is_some()),
        );
        set(self.fleet, &labels, 0);
        set(self.since, &labels, rolled.map_or(0, |r| r.since_ms / 1_000));
        if let Some(rolled) = rolled {
            set(self.reason, &[route, rule, identity, rolled.reason.as_bytes()], 1);
        }
    }
}
