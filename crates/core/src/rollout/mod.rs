//! Judging a canary: a rollback's local window, the comparison with its
//! baseline and its sequential tests, a gated ramp's step, Prometheus
//! checks and the fleet's shared state, and the metric names they are
//! read by. Below routing: a split asks the rollout what it may send.

pub mod compare;
pub mod error_window;
pub mod fleet_state;
pub mod gate;
pub mod judge;
pub mod log_lines;
pub mod metrics;
pub mod poll_round;
pub mod prometheus;
pub(crate) mod sequential;
pub mod settings;
