//! A config's tick: a thread that commits a `TICK` to the config's
//! scheduler every second, so that what changes with time alone (a ramp's
//! step, its log line and gauges) changes without traffic, as the `.wasm`'s
//! root tick does. It stops, and is joined, when the config goes.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::scheduler::{Scheduler, TICK};

const PERIOD: Duration = Duration::from_secs(1);

pub struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking `scheduler`.
    pub fn start(scheduler: Arc<Scheduler>) -> Option<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("canary-tick".into())
            .spawn(move || {
                let (lock, wake) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                loop {
                    stopped =
                        wake.wait_timeout(stopped, PERIOD).map_or_else(|e| e.into_inner().0, |(g, _)| g);
                    if *stopped {
                        return;
                    }
                    scheduler.commit(TICK);
                }
            })
            .ok()?;
        Some(Ticker { stop, thread: Some(thread) })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
