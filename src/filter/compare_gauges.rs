//! A split's comparison with its baseline (`rollback.compare`), as gauges:
//! both arms' responses, error rates and latency percentile since the step
//! began, the bound on how much worse the canary's error rate may be, and
//! whether it is within its allowances. `canary-router status` prints them
//! as `errors canary 0.8% vs baseline 0.7% (+0.1 pt, bound +0.6 pt at 95%)`.

use super::gauge::{gauge, millionths, Gauge};
use super::proxy::Proxy;
use super::Vm;
use canary_router_core::rollout::compare::{self, Arms, Compared};
use canary_router_core::rollout::metrics;
use canary_router_core::rollout::settings::{Compare, Ramp};

/// Per arm: canary, then baseline.
pub struct CompareGauges {
    responses: [Gauge; 2],
    error_rate: [Gauge; 2],
    latency: Option<[Gauge; 2]>,
    bound: Option<Gauge>,
    within: Gauge,
}

impl CompareGauges {
    pub fn define(vm: &Vm, p: &str, compare: &Compare) -> CompareGauges {
        let arms = |metric: &str| {
            [gauge(vm, p, &[("arm", "canary")], metric), gauge(vm, p, &[("arm", "baseline")], metric)]
        };
        let confidence = gauge(vm, p, &[], metrics::COMPARE_CONFIDENCE);
        confidence.set(&*vm.proxy, millionths(compare.confidence));
        if let Some(latency) = &compare.latency {
            let percentile = gauge(vm, p, &[], metrics::COMPARE_PERCENTILE);
            percentile.set(&*vm.proxy, (latency.percentile * 10.0).round() as u64);
        }
        CompareGauges {
            responses: arms(metrics::COMPARE_RESPONSES),
            error_rate: arms(metrics::COMPARE_ERROR_RATE),
            latency: compare.latency.as_ref().map(|_| arms(metrics::COMPARE_LATENCY)),
            bound: compare.max_error_rate_increase.map(|_| gauge(vm, p, &[], metrics::COMPARE_ERROR_BOUND)),
            within: gauge(vm, p, &[], metrics::COMPARE_WITHIN),
        }
    }

    /// The step's evidence and what it says (from the root's tick).
    pub fn set(
        &self,
        proxy: &dyn Proxy,
        compare: &Compare,
        ramp: Option<&Ramp>,
        arms: &Arms,
        compared: &Compared,
    ) {
        let shown = compare::shown(compare, ramp, arms, compared);
        for i in 0..2 {
            self.responses[i].set(proxy, shown.responses[i]);
            self.error_rate[i].set(proxy, shown.error_rate_millionths[i]);
        }
        if let (Some(gauges), Some(latency)) = (&self.latency, shown.latency_us) {
            for (gauge, us) in gauges.iter().zip(latency) {
                gauge.set(proxy, us);
            }
        }
        if let (Some(bound), Some(value)) = (&self.bound, shown.error_bound_millionths) {
            bound.set(proxy, value);
        }
        self.within.set(proxy, shown.within);
    }

    /// The split is gone.
    pub fn retire(&self, proxy: &dyn Proxy) {
        let latency = self.latency.iter().flatten();
        for gauge in self.responses.iter().chain(&self.error_rate).chain(latency).chain(&self.bound) {
            gauge.set(proxy, 0);
        }
        self.within.set(proxy, 0);
    }
}
