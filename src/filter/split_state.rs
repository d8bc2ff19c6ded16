//! What one VM keeps of each split while its config is in force: the
//! rollback's verdict, its local window, the shared-data key of its fleet
//! state, and the ramp step it last logged. One struct per split, found by
//! its `SplitId`; decisions read it through `SplitStates`.

use std::cell::{Cell, RefCell};

use super::rollback::{Verdict, Watch};
use canary_router_core::rollout::gate::GateState;
use canary_router_core::rollout::settings::Ramp;
use canary_router_core::routing::split::{Live, Split, SplitId, SplitStates};

/// A ramp step no ramp has, so that the first state is always logged.
pub const NOT_LOGGED: Option<usize> = Some(usize::MAX);

pub struct SplitState {
    /// Whether the rollback's target gets traffic here (`Live` for a split
    /// without rollback).
    pub verdict: RefCell<Verdict>,
    /// The rollback's local window as this VM sees it.
    pub watch: Option<Watch>,
    /// The shared-data key of the split's fleet state (empty without rollback).
    pub state_key: String,
    /// The ramp step last logged (`None`: before the start; `NOT_LOGGED`
    /// until the first log).
    pub logged_step: Cell<Option<usize>>,
    /// A gated ramp's progress as the proxy's shared state has it (`None`:
    /// not started); decisions read its step.
    pub gate: Cell<Option<GateState>>,
}

impl SplitState {
    pub fn new(split: &Split) -> Self {
        SplitState {
            verdict: RefCell::new(Verdict::Live),
            watch: Watch::new(split),
            state_key: if split.rollback().is_some() { state_key(split) } else { String::new() },
            logged_step: Cell::new(NOT_LOGGED),
            gate: Cell::new(None),
        }
    }

    pub fn live(&self) -> Live {
        Live { withheld: self.verdict.borrow().withholds(), gated_step: self.gated_step() }
    }

    /// The step a gated ramp is at (`None`: not started, or not gated).
    pub fn gated_step(&self) -> Option<usize> {
        self.gate.get().map(|g| g.step as usize)
    }

    /// The ramp's step in force: earned (gated) or by the clock.
    pub fn ramp_step(&self, ramp: &Ramp, now_ms: u64) -> Option<usize> {
        ramp.step_in_force(self.gated_step(), now_ms)
    }
}

/// The shared-data key of a split's fleet state.
pub fn state_key(split: &Split) -> String {
    format!("canary-router/{}/state", split.identity_hex())
}

/// Every split's state, by id.
pub struct Splits(Vec<SplitState>);

impl Splits {
    pub fn new(states: Vec<SplitState>) -> Self {
        Splits(states)
    }

    pub fn get(&self, id: SplitId) -> Option<&SplitState> {
        self.0.get(id.index())
    }
}

impl SplitStates for Splits {
    fn live(&self, id: SplitId) -> Live {
        self.get(id).map_or_else(Live::default, SplitState::live)
    }
}
