//! A flag one thread raises and the next request takes: read before it is
//! written, so the requests that find it down (nearly all) only read a
//! cache line every worker shares, and never write it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Lowers `flag`; whether it was up.
pub fn take(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed) && flag.swap(false, Ordering::Relaxed)
}

/// Raises `flag`; whether it was down (this call raised it).
pub fn raise(flag: &AtomicBool) -> bool {
    !flag.load(Ordering::Relaxed) && !flag.swap(true, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_taken_once_and_raised_once() {
        let flag = AtomicBool::new(false);
        assert!(!take(&flag));
        assert!(raise(&flag));
        assert!(!raise(&flag), "already up");
        assert!(take(&flag));
        assert!(!take(&flag), "already taken");
    }
}
