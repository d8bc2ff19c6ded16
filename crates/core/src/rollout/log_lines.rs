//! What the filter tells a person in its log about its config and a
//! rollout, in words
//! both homes (the `.wasm` through the proxy's logger, the dynamic module
//! on Envoy's standard error) write alike, so one grep, alert or runbook
//! reads either.

use super::fleet_state::RolledBack;
use super::gate::Judgement;
use super::settings::Ramp;
use crate::text::decimal;

/// A split's rollback is in force.
pub fn rolled_back(route: &str, target: &str, identity: &str, rolled: &RolledBack) -> String {
    format!(
        "canary-router: rolled back route={route} target={target} split={identity} reason={}: {}; \
         its traffic goes to the other targets until the split changes",
        rolled.reason, rolled.detail
    )
}

/// A split whose rollback asks Prometheus waits for the fleet latch.
pub fn waiting_for_fleet(route: &str, target: &str, identity: &str) -> String {
    format!(
        "canary-router: route={route} target={target} split={identity} waits for the fleet's rollback latch \
         (Prometheus) before it gets traffic"
    )
}

/// The fleet latch answered that no proxy rolled the split back.
pub fn fleet_latch_clear(route: &str, target: &str, identity: &str) -> String {
    format!(
        "canary-router: route={route} target={target} split={identity}: no proxy of the fleet rolled it back; it \
         gets traffic"
    )
}

/// A gated step was earned but is held: Prometheus does not show this
/// proxy's own series (the fleet view).
pub fn held_for_fleet_view(route: &str, rule: &str, identity: &str) -> String {
    format!(
        "canary-router: route={route} rule={rule} ramp: the next step is earned but held: Prometheus does not \
         show this proxy's own series of split {identity} (the fleet view); it is taken once it does"
    )
}

/// A ramp's step in force changed (`None`: before its start).
pub fn ramp_step(route: &str, rule: &str, ramp: &Ramp, step: Option<usize>) -> String {
    match step {
        Some(s) => format!(
            "canary-router: route={route} rule={rule} ramp: {} now at {}% (step {} of {})",
            ramp.target,
            decimal::format(ramp.steps.get(s).copied().unwrap_or(0.0)),
            s + 1,
            ramp.steps.len()
        ),
        None => format!("canary-router: route={route} rule={rule} ramp: {} waits for its start", ramp.target),
    }
}

/// A gated step was earned (`step`, 0 for the first) on `judgement`.
pub fn step_earned(route: &str, rule: &str, ramp: &Ramp, step: u32, judgement: &Judgement) -> String {
    format!(
        "canary-router: route={route} rule={rule} ramp: step {} of {} earned ({} responses; {})",
        step + 1,
        ramp.steps.len(),
        judgement.responses,
        judgement.poll
    )
}

/// A config was accepted.
pub fn config_accepted(routes: usize, target_header: &str) -> String {
    format!("canary-router: config accepted: {routes} route(s), target header `{target_header}`")
}
