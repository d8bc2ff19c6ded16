//! The config's way to Envoy's main thread: a scheduler Envoy made for it,
//! committed from any thread (a worker with a shadow copy, the ticker), whose
//! events arrive at `on_http_filter_config_scheduled` on the main thread.

use crate::abi::*;

/// What a committed event asks the main thread to do.
pub const SEND_SHADOWS: u64 = 0;
pub const TICK: u64 = 1;

pub struct Scheduler(usize);

impl Scheduler {
    /// Envoy's scheduler for this config; `None` if it gave none.
    pub fn new(envoy: FilterConfigEnvoyPtr) -> Option<Scheduler> {
        // SAFETY: Envoy's config pointer, valid in `config_new`.
        let scheduler = unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_new(envoy) };
        (!scheduler.is_null()).then_some(Scheduler(scheduler as usize))
    }

    /// Asks for `event` on the main thread.
    pub fn commit(&self, event: u64) {
        // SAFETY: the scheduler Envoy gave this config, alive until dropped;
        // committing is allowed from any thread.
        unsafe {
            envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
                self.0 as ConfigSchedulerPtr,
                event,
            )
        };
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // SAFETY: the scheduler Envoy gave this config, deleted once, when
        // the last holder is done (the config, after its streams; the
        // ticker's thread, joined when the config goes).
        unsafe {
            envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0 as ConfigSchedulerPtr)
        };
    }
}
