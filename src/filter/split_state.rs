//! What one VM keeps of each split while its config is in force: the
//! rollback's verdict (and what the fleet state means for it), its local
//! window, the shared-data key of its fleet state, and the ramp step it
//! last logged. One struct per split, found by
//! its `SplitId`; decisions read it through `SplitStates`.

use std::cell::{Cell, RefCell};

use super::proxy::{Proxy, ABSENT};
use canary_router_core::rollout::compare::{self, Arm, Arms};
use canary_router_core::rollout::error_window::{self, Counts, Window};
use canary_router_core::rollout::fleet_state::{FleetState, RolledBack};
use canary_router_core::rollout::gate::GateState;
use canary_router_core::rollout::settings::Ramp;
use canary_router_core::routing::split::{Live, Split, SplitId, SplitStates};

/// A rollback split's watched target, as this VM treats it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It gets its share of traffic.
    Live,
    /// It gets none until the fleet latch answers (a proxy that just
    /// started, whose split asks Prometheus).
    Waiting,
    /// It gets none: rolled back.
    RolledBack(RolledBack),
}

impl Verdict {
    pub fn withholds(&self) -> bool {
        !matches!(self, Verdict::Live)
    }
}

/// What a split's shared state means for this VM.
pub fn verdict_of(split: &Split, state: &FleetState) -> Verdict {
    match &state.rolled_back {
        Some(rolled) => Verdict::RolledBack(rolled.clone()),
        None if split.rollback().is_some_and(|r| r.prometheus.is_some()) && !state.latch_clear => {
            Verdict::Waiting
        }
        None => Verdict::Live,
    }
}

/// One rollback split's local error window as this VM sees it.
pub struct Watch {
    /// The shared-data key of the window.
    pub key: String,
    pub(super) window_ms: u64,
    /// What the window's counts mean (`error_window::shape_of`).
    pub shape: u64,
    /// Responses counted here and not merged into the shared window yet,
    /// and the ramp step they were served at.
    pub(super) pending: Cell<Counts>,
    pub(super) pending_step: Cell<u32>,
    /// The shared window's totals at the last merge.
    pub(super) seen: Cell<Counts>,
    /// With `compare`: both arms' responses not merged yet.
    /// (`None` without `compare`: most windows have none, and each would
    /// hold half a kilobyte.)
    pub(super) pending_arms: Option<RefCell<Box<Arms>>>,
    /// With compared latency: a canary response slower than this (ms) may
    /// make the canary worse than its baseline, so it is merged at once.
    pub(super) latency_trigger_ms: Cell<u64>,
    /// The canary's error rate as forecast from the baseline's, at the last
    /// merge (`compare::forecast_rate`).
    pub(super) forecast: Cell<f64>,
}

impl Watch {
    pub fn new(split: &Split) -> Option<Watch> {
        let window = split.rollback()?.window.as_ref()?;
        Some(Watch {
            key: format!("canary-router/{}/window", split.identity_hex()),
            window_ms: window.window_ms,
            shape: error_window::shape_of(window),
            pending: Cell::new(Counts::default()),
            pending_step: Cell::new(0),
            seen: Cell::new(Counts::default()),
            pending_arms: window.compare.as_ref().map(|_| RefCell::new(Box::default())),
            latency_trigger_ms: Cell::new(u64::MAX),
            forecast: Cell::new(compare::forecast_rate(&Arm::default())),
        })
    }

    /// The shared window, as this config's counts read it.
    pub fn read(&self, proxy: &dyn Proxy) -> (Window, u32) {
        match proxy.shared_data(&self.key) {
            Some((bytes, cas)) => (Window::decode(&bytes).unwrap_or_default().of_shape(self.shape), cas),
            None => (Window::default().of_shape(self.shape), ABSENT),
        }
    }
}

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
