//! Splits judged against their baseline (`rollback.compare`). Each response
//! is counted in the split's window as it comes (`rollback::record`, where
//! a canary's is judged at once); once a second the config's tick judges
//! each such split again, since a baseline's responses change what the
//! canary is compared with, and the next request sets the comparison gauges
//! of docs/metrics.md with the `.wasm`'s names and labels (Envoy takes a
//! gauge change only from a stream).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::*;
use crate::family::{Family, Kind};
use crate::flag;
use crate::split_states::Splits;
use canary_router_core::rollout::compare;
use canary_router_core::rollout::metrics::{self, millionths};
use canary_router_core::rollout::settings::Compare;
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::Split;

pub struct Compares {
    responses: Option<Family>,
    error_rate: Option<Family>,
    latency: Option<Family>,
    bound: Option<Family>,
    confidence: Option<Family>,
    percentile: Option<Family>,
    within: Option<Family>,
    /// The gauges are to be set again (at first, so the config's first
    /// request shows them).
    dirty: AtomicBool,
}

/// The compare settings of a split, if it has them.
fn compare_of(split: &Split) -> Option<&Compare> {
    split.rollback()?.window.as_ref()?.compare.as_deref()
}

impl Compares {
    /// The config's comparisons, if any split has one.
    pub fn define(envoy: FilterConfigEnvoyPtr, router: &Router) -> Option<Compares> {
        router.splits().any(|(_, _, s)| compare_of(s).is_some()).then(|| {
            let family = |name: &str, extra: Option<&str>| {
                let labels: Vec<&str> = ["route", "rule", "split"].into_iter().chain(extra).collect();
                Family::define(envoy, Kind::Gauge, name, &labels)
            };
            Compares {
                responses: family(metrics::COMPARE_RESPONSES, Some("arm")),
                error_rate: family(metrics::COMPARE_ERROR_RATE, Some("arm")),
                latency: family(metrics::COMPARE_LATENCY, Some("arm")),
                bound: family(metrics::COMPARE_ERROR_BOUND, None),
                confidence: family(metrics::COMPARE_CONFIDENCE, None),
                percentile: family(metrics::COMPARE_PERCENTILE, None),
                within: family(metrics::COMPARE_WITHIN, None),
                dirty: AtomicBool::new(true),
            }
        })
    }

    /// On the config's tick: judges every compared split; returns whether
    /// it rolled one back.
    pub fn tick(&self, router: &Router, splits: &Splits, now_ms: u64) -> bool {
        let mut rolled = false;
        for (route, _, split) in router.splits() {
            let (Some(_), Some(shared)) = (compare_of(split), splits.get(split.id)) else { continue };
            if let Some(rollback) = crate::rollback::judge_now(split, shared, now_ms) {
                crate::rollback::log(&route.name, split, &rollback);
                rolled = true;
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
        rolled
    }

    /// From a stream, when marked: every compared split's gauges.
    pub fn show(&self, envoy: FilterEnvoyPtr, router: &Router, splits: &Splits) {
        if !flag::take(&self.dirty) {
            return;
        }
        let set = |family, values: &[&[u8]], value| Family::record_into(family, envoy, values, value);
        for (route, rule, split) in router.splits() {
            let (Some(settings), Some(shared)) = (compare_of(split), splits.get(split.id)) else { continue };
            let identity = split.identity_hex();
            let labels = [route.name.as_bytes(), rule.label.as_bytes(), identity.as_bytes()];
            let [route, rule, identity] = labels;
            set(self.confidence, &labels, millionths(settings.confidence));
            if let Some(latency) = &settings.latency {
                set(self.percentile, &labels, (latency.percentile * 10.0).round() as u64);
            }
            let Some((arms, compared)) = shared.lock().compared else { continue };
            let shown = compare::shown(settings, split.ramp(), &arms, &compared);
            for (i, arm) in [&b"canary"[..], b"baseline"].into_iter().enumerate() {
                let arm_labels = [route, rule, identity, arm];
                set(self.responses, &arm_labels, shown.responses[i]);
                set(self.error_rate, &arm_labels, shown.error_rate_millionths[i]);
                if let Some(latency) = shown.latency_us {
                    set(self.latency, &arm_labels, latency[i]);
                }
            }
            if let Some(bound) = shown.error_bound_millionths {
                set(self.bound, &labels, bound);
            }
            set(self.within, &labels, shown.within);
        }
    }
}
