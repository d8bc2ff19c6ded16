//! One accepted config in force in a VM: the compiled router, its
//! counters and gauges, and each split's state. Shared (`Rc`) by the root
//! and every stream and shadow copy it routed, so a config replaced mid-
//! request still counts that request; its counters reach the proxy when the
//! last of them lets go.

use std::rc::Rc;

use log::info;

use super::gauges::Gauges;
use super::shared_state::read_state;
use super::split_state::{verdict_of, SplitState, Splits};
use super::stats::Stats;
use super::Vm;
use canary_router_core::rollout::log_lines;
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::Split;

pub struct Active {
    pub vm: Rc<Vm>,
    /// The proxy's beacon (0 when no split asks Prometheus).
    pub beacon: u64,
    pub router: Router,
    pub stats: Stats,
    pub gauges: Gauges,
    /// Per split: its verdict, window and keys.
    pub splits: Splits,
    /// Whether any split has a ramp (decisions then need the clock).
    pub uses_clock: bool,
    /// Whether any route mirrors (streams may then need their body).
    pub mirrors: bool,
}

impl Active {
    /// A compiled config, with each rollback split's verdict read from the
    /// proxy's shared state (a split the fleet rolled back, or that waits
    /// for the fleet latch, gets no traffic from the first request on).
    pub fn new(vm: Rc<Vm>, router: Router, beacon: u64) -> Self {
        let uses_clock = router.splits().any(|(_, _, s)| s.ramp().is_some());
        let mirrors = router.routes.iter().any(|r| r.mirror.is_some());
        let stats = Stats::new(&vm, &router);
        let gauges = Gauges::define(&vm, &router, beacon);
        let mut states = Vec::with_capacity(router.split_count);
        for (_, _, split) in router.splits() {
            states.push(split_state(&vm, &gauges, split));
        }
        Active { vm, beacon, router, stats, gauges, splits: Splits::new(states), uses_clock, mirrors }
    }

    /// The state of the split `split` in this config.
    pub fn state(&self, split: &Split) -> Option<&SplitState> {
        self.splits.get(split.id)
    }

    /// Logs each ramp's step once, when it changes.
    pub fn log_ramp_steps(&self, root_id: u32, now_ms: u64) {
        for (route, rule, split) in self.router.splits() {
            let (Some(ramp), Some(state)) = (split.ramp(), self.state(split)) else { continue };
            let step = state.ramp_step(ramp, now_ms);
            if state.logged_step.replace(step) == step {
                continue;
            }
            info!("[ctx {root_id}] {}", log_lines::ramp_step(&route.name, &rule.label, ramp, step));
        }
    }
}

/// A split's state as the proxy's shared data has it, and its verdict
/// gauge set. Not inlined: V8 runs a function's first calls unoptimized and
/// optimizes it once it is hot, and `Active::new` runs once per push.
#[inline(never)]
fn split_state(vm: &Vm, gauges: &Gauges, split: &Split) -> SplitState {
    let state = SplitState::new(split);
    if split.rollback().is_some() {
        let (fleet, _) = read_state(&*vm.proxy, &state.state_key);
        *state.verdict.borrow_mut() = verdict_of(split, &fleet);
        if split.ramp().is_some_and(|r| r.gate.is_some()) {
            state.gate.set(fleet.gate);
        }
        gauges.fleet_state(&*vm.proxy, split, &fleet);
    }
    gauges.verdict(vm, split.id, &state.verdict.borrow());
    state
}

impl Drop for Active {
    /// A replaced or deleted config's last counts still reach the proxy.
    fn drop(&mut self) {
        self.stats.flush(&self.vm, &self.router);
    }
}
