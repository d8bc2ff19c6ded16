//! What every worker of the process shares of each rollback split: its
//! local error window and whether (and why) it is rolled back. It is plain
//! process memory, a mutex per split and an atomic flag the decisions read,
//! where the `.wasm`'s VMs share bytes through Envoy's shared data.
//!
//! Kept by the split's identity for the life of the process, as the `.wasm`
//! keeps it in shared data: a config push that keeps the split keeps its
//! window and its rollback; a new version of the split starts fresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use canary_router_core::rollout::compare::{Arms, Compared};
use canary_router_core::rollout::error_window::Window;
use canary_router_core::rollout::fleet_state::{FleetState, RolledBack};
use canary_router_core::rollout::gate::{GateState, Judgement};
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::{Live, SplitId, SplitStates};

/// No gated step yet (the listed weights apply).
const NO_STEP: usize = usize::MAX;

/// One rollback split, as the workers share it.
pub struct SplitShared {
    /// The rollback's target gets no traffic (rolled back, or waiting for
    /// the fleet latch): what every decision reads.
    withheld: AtomicBool,
    /// A gated ramp's step in force (`NO_STEP` before it started): what
    /// every decision reads.
    gated_step: AtomicUsize,
    state: Mutex<Judged>,
}

impl Default for SplitShared {
    fn default() -> Self {
        SplitShared {
            withheld: AtomicBool::new(false),
            gated_step: AtomicUsize::new(NO_STEP),
            state: Mutex::default(),
        }
    }
}

impl SplitShared {
    /// A split whose rollback asks Prometheus: its target waits for the
    /// fleet latch's first answer (`fleet`).
    pub(crate) fn waiting_for_fleet() -> SplitShared {
        let shared = SplitShared { withheld: AtomicBool::new(true), ..SplitShared::default() };
        shared.lock().fleet = Some(FleetState::default());
        shared
    }
}

/// The window and its verdict, changed together under the lock, and a
/// gated ramp's progress and what its gate last saw.
#[derive(Default)]
pub struct Judged {
    pub window: Window,
    pub rolled_back: Option<RolledBack>,
    pub gate: Option<GateState>,
    pub judgement: Option<Judgement>,
    /// With `compare`: both arms since the step began and what they say,
    /// as last judged (for the gauges).
    pub compared: Option<(Arms, Compared)>,
    /// With `prometheus`: what the polls found (the fleet latch, the
    /// checks, the fleet view, the step latch). Its `rolled_back` is
    /// `rolled_back` as the last poll saw it; its `gate` is unused (the
    /// split's is `gate`).
    pub fleet: Option<FleetState>,
}

impl SplitShared {
    /// The window and verdict, locked; a worker that panicked holding the
    /// lock left counts that are still counts.
    pub fn lock(&self) -> MutexGuard<'_, Judged> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn withhold(&self) {
        self.withheld.store(true, Ordering::Relaxed);
    }

    /// The fleet latch cleared a split that is not rolled back.
    pub fn release(&self) {
        self.withheld.store(false, Ordering::Relaxed);
    }

    pub fn withheld(&self) -> bool {
        self.withheld.load(Ordering::Relaxed)
    }

    pub fn set_gated_step(&self, step: u32) {
        self.gated_step.store(usize::try_from(step).unwrap_or(NO_STEP), Ordering::Relaxed);
    }

    /// A gated ramp's step in force, if it started.
    pub fn gated_step(&self) -> Option<usize> {
        Some(self.gated_step.load(Ordering::Relaxed)).filter(|s| *s != NO_STEP)
    }
}

/// Every rollback split this process has run, by identity.
fn registry() -> &'static Mutex<HashMap<u64, Arc<SplitShared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Arc<SplitShared>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// A config's rollback splits, by split id (`None`: no rollback).
pub struct Splits(Vec<Option<Arc<SplitShared>>>);

impl Splits {
    /// The shared state of each rollback split of `router`: the one a
    /// previous config left for the same identity, or a new one.
    pub fn of(router: &Router) -> Splits {
        let mut registry = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut by_id = vec![None; router.split_count];
        for (_, _, split) in router.splits() {
            if split.rollback().is_none() {
                continue;
            }
            if let Some(slot) = by_id.get_mut(split.id.index()) {
                let fleet = split.rollback().is_some_and(|r| r.prometheus.is_some());
                let shared = registry.entry(split.identity).or_insert_with(|| match fleet {
                    true => Arc::new(SplitShared::waiting_for_fleet()),
                    false => Arc::default(),
                });
                *slot = Some(shared.clone());
            }
        }
        Splits(by_id)
    }

    pub fn get(&self, id: SplitId) -> Option<&SplitShared> {
        self.0.get(id.index())?.as_deref()
    }

    /// Whether any split has a rollback (the clock is read only then).
    pub fn any(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }
}

impl SplitStates for Splits {
    fn live(&self, id: SplitId) -> Live {
        match self.get(id) {
            Some(shared) => Live { withheld: shared.withheld(), gated_step: shared.gated_step() },
            None => Live::default(),
        }
    }
}
