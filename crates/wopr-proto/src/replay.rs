//! The replay window: refuses stale timestamps and nonces already seen.
//!
//! A message is accepted when its timestamp is within [`MAX_SKEW_MS`] of the receiver's clock and its
//! nonce has not been accepted before. A nonce only needs remembering while its timestamp would still
//! pass the first check, that is until `timestamp + window`; entries are evicted after that, so memory is
//! bounded by the message rate times the window. A hard capacity caps it further: when full, new messages
//! are refused (never let through unchecked). The clock is the caller's `now_ms`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use thiserror::Error;

use crate::{ErrorCode, MAX_SKEW_MS};

/// Default number of nonces one window remembers at most.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplayError {
    /// The timestamp is too far from the receiver's clock.
    #[error("message timestamp {timestamp_ms} is more than {window_ms} ms from local time {now_ms}")]
    Stale {
        /// The message's timestamp.
        timestamp_ms: u64,
        /// The receiver's clock.
        now_ms: u64,
        /// The allowed distance.
        window_ms: u64,
    },
    /// The nonce was already accepted within the window.
    #[error("message nonce was already seen (replay)")]
    Replayed,
    /// The window holds as many nonces as it may; try again later.
    #[error("replay window full ({capacity} messages in flight); retry in {retry_after_ms} ms")]
    Full {
        /// The capacity.
        capacity: usize,
        /// When the oldest entry expires.
        retry_after_ms: u64,
    },
}

impl ReplayError {
    /// The error code to report (see [`ErrorCode`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            ReplayError::Full { .. } => ErrorCode::RateLimited,
            _ => ErrorCode::Invalid,
        }
    }
}

/// Remembers recent message nonces. Use one per node, or one per peer so that one peer cannot fill the
/// window for the others.
#[derive(Debug)]
pub struct ReplayWindow {
    window_ms: u64,
    capacity: usize,
    seen: HashSet<[u8; 16]>,
    // (expiry, nonce), earliest expiry first.
    expiries: BinaryHeap<Reverse<(u64, [u8; 16])>>,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// A window of [`MAX_SKEW_MS`] (5 minutes) holding at most [`DEFAULT_REPLAY_CAPACITY`] nonces.
    pub fn new() -> Self {
        Self::with_limits(MAX_SKEW_MS, DEFAULT_REPLAY_CAPACITY)
    }

    /// A window of `window_ms` holding at most `capacity` nonces.
    pub fn with_limits(window_ms: u64, capacity: usize) -> Self {
        ReplayWindow { window_ms, capacity, seen: HashSet::new(), expiries: BinaryHeap::new() }
    }

    /// Accepts (and remembers) the message, or says why not.
    pub fn check(&mut self, nonce: &[u8; 16], timestamp_ms: u64, now_ms: u64) -> Result<(), ReplayError> {
        self.evict(now_ms);
        if timestamp_ms.abs_diff(now_ms) > self.window_ms {
            return Err(ReplayError::Stale { timestamp_ms, now_ms, window_ms: self.window_ms });
        }
        if self.seen.contains(nonce) {
            return Err(ReplayError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            let oldest = self.expiries.peek().map_or(now_ms, |Reverse((exp, _))| *exp);
            return Err(ReplayError::Full {
                capacity: self.capacity,
                retry_after_ms: oldest.saturating_sub(now_ms).saturating_add(1),
            });
        }
        self.seen.insert(*nonce);
        self.expiries.push(Reverse((timestamp_ms.saturating_add(self.window_ms), *nonce)));
        Ok(())
    }

    /// Forgets nonces whose timestamps are now outside the window.
    pub fn evict(&mut self, now_ms: u64) {
        while let Some(Reverse((expiry, nonce))) = self.expiries.peek() {
            if *expiry >= now_ms {
                break;
            }
            self.seen.remove(nonce);
            self.expiries.pop();
        }
    }

    /// Number of nonces remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn a_replayed_nonce_is_rejected_within_the_window() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(&[1; 16], NOW, NOW), Ok(()));
        assert_eq!(w.check(&[1; 16], NOW, NOW + 1000), Err(ReplayError::Replayed));
        assert_eq!(w.check(&[2; 16], NOW, NOW + 1000), Ok(()));
    }

    #[test]
    fn timestamps_more_than_five_minutes_off_are_rejected() {
        let mut w = ReplayWindow::new();
        assert!(matches!(w.check(&[1; 16], NOW - MAX_SKEW_MS - 1, NOW), Err(ReplayError::Stale { .. })));
        assert!(matches!(w.check(&[2; 16], NOW + MAX_SKEW_MS + 1, NOW), Err(ReplayError::Stale { .. })));
        assert_eq!(w.check(&[3; 16], NOW - MAX_SKEW_MS, NOW), Ok(()));
        assert_eq!(w.check(&[4; 16], NOW + MAX_SKEW_MS, NOW), Ok(()));
    }

    #[test]
    fn a_replay_after_the_window_is_stale_not_accepted() {
        let mut w = ReplayWindow::new();
        w.check(&[1; 16], NOW, NOW).unwrap();
        let later = NOW + MAX_SKEW_MS + 1;
        assert!(matches!(w.check(&[1; 16], NOW, later), Err(ReplayError::Stale { .. })));
        // ...and by then the nonce itself is forgotten, so memory stays bounded.
        assert!(w.is_empty());
    }

    #[test]
    fn a_future_dated_nonce_is_kept_until_its_own_timestamp_leaves_the_window() {
        let mut w = ReplayWindow::new();
        let future = NOW + MAX_SKEW_MS;
        w.check(&[1; 16], future, NOW).unwrap();
        // Ten minutes after `NOW` the timestamp is still acceptable, so the nonce must still be known.
        assert_eq!(w.check(&[1; 16], future, NOW + 2 * MAX_SKEW_MS), Err(ReplayError::Replayed));
    }

    #[test]
    fn memory_is_bounded_by_eviction_and_capacity() {
        let mut w = ReplayWindow::with_limits(MAX_SKEW_MS, 3);
        for i in 0..3u8 {
            w.check(&[i; 16], NOW, NOW).unwrap();
        }
        let full = w.check(&[9; 16], NOW, NOW).unwrap_err();
        assert!(
            matches!(full, ReplayError::Full { capacity: 3, retry_after_ms } if retry_after_ms == MAX_SKEW_MS + 1)
        );
        assert_eq!(full.code(), ErrorCode::RateLimited);
        let later = NOW + MAX_SKEW_MS + 1;
        assert_eq!(w.check(&[9; 16], later, later), Ok(()));
        assert_eq!(w.len(), 1);
    }
}
