//! The replay window: refuses stale timestamps and nonces already seen.
//!
//! A message is accepted when its timestamp is within [`MAX_SKEW_MS`] of the receiver's clock and its
//! nonce has not been accepted before. A nonce only needs remembering while its timestamp would still
//! pass the first check, that is until `timestamp + window`; entries are evicted after that, so memory is
//! bounded by the message rate times the window. A hard capacity caps it further: when full, new messages
//! are refused (never let through unchecked). The clock is the caller's `now_ms`.
//!
//! [`ReplayWindows`] keeps one window per key (per peer) for a bounded number of keys, with the same
//! rule: a window goes once all its nonces expired, and while the table is full of live windows a new
//! key's messages are refused; nobody's nonces are forgotten early to make room.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;

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
    /// A [`ReplayWindows`] table holds as many live windows as it may, none of them for this key.
    #[error("{keys} peers have messages in flight; retry in {retry_after_ms} ms")]
    Crowded {
        /// The table's bound.
        keys: usize,
        /// When the earliest window may have emptied.
        retry_after_ms: u64,
    },
}

impl ReplayError {
    /// The error code to report (see [`ErrorCode`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            ReplayError::Full { .. } | ReplayError::Crowded { .. } => ErrorCode::RateLimited,
            _ => ErrorCode::Invalid,
        }
    }
}

/// The timestamp rule alone: `timestamp_ms` within `window_ms` of `now_ms`. For messages whose nonces
/// need no remembering.
pub fn check_timestamp(timestamp_ms: u64, now_ms: u64, window_ms: u64) -> Result<(), ReplayError> {
    if timestamp_ms.abs_diff(now_ms) > window_ms {
        return Err(ReplayError::Stale { timestamp_ms, now_ms, window_ms });
    }
    Ok(())
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
    // The latest expiry ever added: by then the window is empty.
    latest: u64,
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
        ReplayWindow { window_ms, capacity, seen: HashSet::new(), expiries: BinaryHeap::new(), latest: 0 }
    }

    /// Accepts (and remembers) the message, or says why not.
    pub fn check(&mut self, nonce: &[u8; 16], timestamp_ms: u64, now_ms: u64) -> Result<(), ReplayError> {
        self.evict(now_ms);
        check_timestamp(timestamp_ms, now_ms, self.window_ms)?;
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
        self.remember(*nonce, timestamp_ms.saturating_add(self.window_ms));
        Ok(())
    }

    fn remember(&mut self, nonce: [u8; 16], expiry: u64) {
        if self.seen.insert(nonce) {
            self.expiries.push(Reverse((expiry, nonce)));
            self.latest = self.latest.max(expiry);
        }
    }

    /// Takes over `other`'s nonces (the same sender under another key), beyond the capacity if need be:
    /// forgetting one would let its message be replayed.
    pub fn absorb(&mut self, other: ReplayWindow) {
        for Reverse((expiry, nonce)) in other.expiries {
            self.remember(nonce, expiry);
        }
    }

    /// When the last nonce remembered now expires (the window is empty from then on).
    fn empty_at(&self) -> u64 {
        self.latest
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

/// One [`ReplayWindow`] per key, for at most `max_keys` keys (see the module docs).
#[derive(Debug)]
pub struct ReplayWindows<K: Ord> {
    windows: HashMap<K, ReplayWindow>,
    /// When each window may be empty, earliest first. A window that took newer nonces since is queued
    /// again when its item comes up, so finding empty windows never scans the table.
    empties: BinaryHeap<Reverse<(u64, K)>>,
    window_ms: u64,
    capacity: usize,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone + Ord> ReplayWindows<K> {
    /// At most `max_keys` windows of `window_ms`, each holding at most `capacity` nonces.
    pub fn new(window_ms: u64, capacity: usize, max_keys: usize) -> Self {
        ReplayWindows { windows: HashMap::new(), empties: BinaryHeap::new(), window_ms, capacity, max_keys }
    }

    /// Runs a message of `key` through its window (see [`ReplayWindow::check`]).
    pub fn check(
        &mut self,
        key: &K,
        nonce: &[u8; 16],
        timestamp_ms: u64,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        self.drop_empty(now_ms);
        if let Some(window) = self.windows.get_mut(key) {
            return window.check(nonce, timestamp_ms, now_ms);
        }
        check_timestamp(timestamp_ms, now_ms, self.window_ms)?;
        if self.windows.len() >= self.max_keys {
            let next = self.empties.peek().map_or(now_ms, |Reverse((at, _))| *at);
            return Err(ReplayError::Crowded {
                keys: self.max_keys,
                retry_after_ms: next.saturating_sub(now_ms).saturating_add(1),
            });
        }
        let mut window = ReplayWindow::with_limits(self.window_ms, self.capacity);
        window.check(nonce, timestamp_ms, now_ms)?;
        self.empties.push(Reverse((window.empty_at(), key.clone())));
        self.windows.insert(key.clone(), window);
        Ok(())
    }

    /// Moves `from`'s window to `to` (merged into `to`'s own, if any).
    pub fn transfer(&mut self, from: &K, to: &K) {
        if from == to {
            return;
        }
        let Some(moved) = self.windows.remove(from) else { return };
        match self.windows.get_mut(to) {
            Some(existing) => existing.absorb(moved),
            None => {
                self.empties.push(Reverse((moved.empty_at(), to.clone())));
                self.windows.insert(to.clone(), moved);
            }
        }
    }

    fn drop_empty(&mut self, now_ms: u64) {
        while let Some(Reverse((at, _))) = self.empties.peek() {
            if *at >= now_ms {
                break;
            }
            let Some(Reverse((_, key))) = self.empties.pop() else { break };
            let Some(window) = self.windows.get_mut(&key) else { continue };
            window.evict(now_ms);
            if window.is_empty() {
                self.windows.remove(&key);
            } else {
                // Its remaining nonces expire at `now_ms` or later, so this loop ends.
                self.empties.push(Reverse((window.empty_at(), key)));
            }
        }
    }

    /// Number of keys with a window.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether no key has a window.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
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

    #[test]
    fn a_full_table_of_windows_refuses_new_keys_and_forgets_no_nonce() {
        let mut t = ReplayWindows::new(MAX_SKEW_MS, 16, 100);
        let crowded = (0..5_000u32)
            .filter(|k| matches!(t.check(k, &[1; 16], NOW, NOW), Err(ReplayError::Crowded { .. })))
            .count();
        assert_eq!((t.len(), crowded), (100, 4_900));
        assert_eq!(ReplayError::Crowded { keys: 1, retry_after_ms: 1 }.code(), ErrorCode::RateLimited);
        // Every admitted key's nonce is still known.
        assert_eq!(t.check(&0, &[1; 16], NOW, NOW + 1000), Err(ReplayError::Replayed));
        assert_eq!(t.check(&99, &[1; 16], NOW, NOW + 1000), Err(ReplayError::Replayed));
        // Stale messages are refused as such, full table or not.
        assert!(matches!(t.check(&7_000, &[2; 16], 0, NOW), Err(ReplayError::Stale { .. })));
    }

    #[test]
    fn windows_go_once_their_nonces_expired_and_free_their_place() {
        let mut t = ReplayWindows::new(MAX_SKEW_MS, 16, 2);
        t.check(&1u8, &[1; 16], NOW, NOW).unwrap();
        t.check(&2u8, &[1; 16], NOW, NOW).unwrap();
        // Key 1 sends again later, so its window outlives key 2's.
        t.check(&1u8, &[2; 16], NOW + 60_000, NOW + 60_000).unwrap();
        let after = NOW + MAX_SKEW_MS + 1;
        t.check(&3u8, &[1; 16], after, after).unwrap();
        assert_eq!(t.len(), 2, "key 2's window went, key 1's stayed");
        assert_eq!(t.check(&1u8, &[2; 16], NOW + 60_000, after), Err(ReplayError::Replayed));
        assert!(matches!(t.check(&4u8, &[1; 16], after, after), Err(ReplayError::Crowded { .. })));
    }

    #[test]
    fn a_transferred_window_keeps_refusing_its_nonces() {
        let mut t = ReplayWindows::new(MAX_SKEW_MS, 16, 10);
        t.check(&"old", &[1; 16], NOW, NOW).unwrap();
        t.check(&"new", &[2; 16], NOW, NOW).unwrap();
        t.transfer(&"old", &"new");
        assert_eq!(t.len(), 1);
        for nonce in [[1; 16], [2; 16]] {
            assert_eq!(t.check(&"new", &nonce, NOW, NOW), Err(ReplayError::Replayed));
        }
    }
}
