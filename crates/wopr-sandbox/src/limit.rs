//! How many sandboxed runs may be alive at once in this process, whatever backend or caller started
//! them. A run past the limit waits for a slot (at most its policy's wall-clock limit, or until it is
//! cancelled) before anything is created for it; the limit is process-wide because every turn creates
//! its own [`crate::Sandbox`].

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::{Cancel, SandboxError};

/// The limit until [`set_max_concurrent_runs`] is called (config `sandbox.maxConcurrent`).
pub const DEFAULT_MAX_CONCURRENT_RUNS: usize = 4;

/// Runs alive, runs waiting, and the limit, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RunSlots {
    /// Runs holding a slot.
    pub running: usize,
    /// Runs waiting for one.
    pub waiting: usize,
    /// Most runs at once.
    pub max: usize,
}

static SLOTS: Mutex<RunSlots> =
    Mutex::new(RunSlots { running: 0, waiting: 0, max: DEFAULT_MAX_CONCURRENT_RUNS });
static CHANGED: Condvar = Condvar::new();

fn slots() -> MutexGuard<'static, RunSlots> {
    SLOTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the most sandboxed runs alive at once in this process (at least 1). Runs already going keep
/// their slots; waiting ones re-check at once.
pub fn set_max_concurrent_runs(max: usize) {
    slots().max = max.max(1);
    CHANGED.notify_all();
}

/// The current counts.
pub fn run_slots() -> RunSlots {
    *slots()
}

/// Wakes every waiting run so it sees a cancellation.
pub(crate) fn wake_waiters() {
    CHANGED.notify_all();
}

/// A held slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(());

impl Drop for Slot {
    fn drop(&mut self) {
        slots().running -= 1;
        CHANGED.notify_all();
    }
}

/// Waits for a slot, for at most `patience`.
pub(crate) fn acquire(cancel: &Cancel, patience: Duration) -> Result<Slot, SandboxError> {
    let until = Instant::now() + patience;
    let mut s = slots();
    s.waiting += 1;
    let outcome = loop {
        if cancel.is_cancelled() {
            break Err(SandboxError::Cancelled);
        }
        if s.running < s.max {
            s.running += 1;
            break Ok(Slot(()));
        }
        let now = Instant::now();
        if now >= until {
            break Err(SandboxError::Busy { max: s.max, waited: patience });
        }
        s = CHANGED.wait_timeout(s, until - now).unwrap_or_else(PoisonError::into_inner).0;
    };
    s.waiting -= 1;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test touches the process-wide counts, so the assertions cannot race with another test.
    #[test]
    fn slots_are_bounded_given_back_and_cancellable_while_waiting() {
        set_max_concurrent_runs(1);
        let held = acquire(&Cancel::new(), Duration::ZERO).unwrap();
        assert_eq!(run_slots(), RunSlots { running: 1, waiting: 0, max: 1 });
        let busy = acquire(&Cancel::new(), Duration::from_millis(1)).unwrap_err();
        assert!(matches!(busy, SandboxError::Busy { max: 1, .. }), "{busy}");

        let cancel = Cancel::new();
        let waiter = {
            let cancel = cancel.clone();
            std::thread::spawn(move || acquire(&cancel, Duration::from_secs(3600)).map(drop))
        };
        while run_slots().waiting == 0 {
            std::thread::yield_now();
        }
        cancel.cancel();
        assert!(matches!(waiter.join().unwrap(), Err(SandboxError::Cancelled)));

        let next = std::thread::spawn(|| acquire(&Cancel::new(), Duration::from_secs(3600)).map(drop));
        while run_slots().waiting == 0 {
            std::thread::yield_now();
        }
        drop(held);
        next.join().unwrap().unwrap();
        assert_eq!(run_slots(), RunSlots { running: 0, waiting: 0, max: 1 });
        set_max_concurrent_runs(DEFAULT_MAX_CONCURRENT_RUNS);
    }
}
