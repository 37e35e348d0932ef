//! Where a node reads the time: the system clock, or a [`ManualClock`] a test moves, so grace periods,
//! clock windows and rate windows can be crossed without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The clock a node's checks use (limits, replay windows, grants, rotations, handshakes it answers).
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<ManualClock>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            None => wopr_store::now_ms(),
            Some(manual) => manual.now_ms(),
        }
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Clock) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(&a.0, &b.0),
            _ => false,
        }
    }
}

impl Eq for Clock {}

impl From<&ManualClock> for Clock {
    fn from(manual: &ManualClock) -> Clock {
        Clock(Some(manual.clone()))
    }
}

/// A clock that moves only when told to. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(now_ms)))
    }

    /// The time it reads.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Moves it to `now_ms`.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_set_and_its_clones_follow() {
        let manual = ManualClock::new(5);
        let clock = Clock::from(&manual);
        assert_eq!(clock.now_ms(), 5);
        manual.set(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock, Clock::from(&manual));
        assert_ne!(clock, Clock::from(&ManualClock::new(1_000)));
        assert_eq!(Clock::system(), Clock::default());
        assert!(Clock::system().now_ms() > 1_600_000_000_000);
    }
}
