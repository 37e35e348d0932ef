//! Per-key rate limits: so many requests per minute and per hour.
//!
//! Each key has a one-minute and a one-hour fixed window, each starting at the first request after the
//! previous one ended. A request is allowed when both windows have room; a refused request does not count.
//! The refusal says which window is full and when it reopens. Memory is one small entry per key, and the
//! number of keys is capped. A key's entry is dropped once both its windows have ended (it would start
//! afresh anyway); a live entry is never dropped to make room, so nobody can reset someone else's counters
//! by flooding the table with new keys. While the table is full of live entries, new keys are refused.
//! Finding the entries that ended costs O(log n) per entry, never a scan of the table.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

/// One minute, in milliseconds.
pub const MINUTE_MS: u64 = 60_000;
/// One hour, in milliseconds.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// Default cap on the number of keys tracked.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// How many requests a key may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests per minute.
    pub per_minute: u32,
    /// Requests per hour.
    pub per_hour: u32,
}

impl Limit {
    /// Every P2P peer: 30 per minute, 300 per hour.
    pub const UNTRUSTED: Limit = Limit { per_minute: 30, per_hour: 300 };
    /// Local `trusted` sources: 100 per minute, 1000 per hour.
    pub const TRUSTED: Limit = Limit { per_minute: 100, per_hour: 1000 };
    /// The `owner`: 1000 per minute, 10 000 per hour.
    pub const OWNER: Limit = Limit { per_minute: 1000, per_hour: 10_000 };
    /// Invite claims per remote key: 5 per minute (the hourly cap adds nothing beyond that).
    pub const CLAIMS: Limit = Limit { per_minute: 5, per_hour: 5 * 60 };
}

/// Which window refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The per-minute limit.
    Minute,
    /// The per-hour limit.
    Hour,
}

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; the request was counted.
    Allowed,
    /// Refused.
    Limited {
        /// The window that is full (the hour, if both are).
        which: Window,
        /// Milliseconds until that window reopens.
        retry_after_ms: u64,
    },
    /// Refused: the key is not tracked yet and the table holds as many live keys as it may.
    Full {
        /// Milliseconds until the earliest tracked key may end.
        retry_after_ms: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    minute_start: u64,
    minute_count: u32,
    hour_start: u64,
    hour_count: u32,
}

impl Counters {
    fn new(now_ms: u64) -> Self {
        Counters { minute_start: now_ms, minute_count: 0, hour_start: now_ms, hour_count: 0 }
    }

    fn roll(&mut self, now_ms: u64) {
        if now_ms >= self.minute_start.saturating_add(MINUTE_MS) {
            self.minute_start = now_ms;
            self.minute_count = 0;
        }
        if now_ms >= self.hour_start.saturating_add(HOUR_MS) {
            self.hour_start = now_ms;
            self.hour_count = 0;
        }
    }

    /// When both windows will have ended: from then on the entry holds nothing worth keeping.
    fn ends_at(&self) -> u64 {
        self.hour_start.saturating_add(HOUR_MS).max(self.minute_start.saturating_add(MINUTE_MS))
    }

    /// Adds `other`'s counts, in the earlier of the two windows (the stricter reading).
    fn absorb(&mut self, other: Counters) {
        self.minute_start = self.minute_start.min(other.minute_start);
        self.minute_count = self.minute_count.saturating_add(other.minute_count);
        self.hour_start = self.hour_start.min(other.hour_start);
        self.hour_count = self.hour_count.saturating_add(other.hour_count);
    }
}

/// Rate limiter keyed by `K` (a peer's key, for example). The clock is the caller's `now_ms`.
#[derive(Debug)]
pub struct RateLimiter<K: Ord> {
    entries: HashMap<K, Counters>,
    /// When each entry may end, earliest first. An entry whose windows moved on since is queued again
    /// when its item comes up, so every entry has an item and finding ended ones never scans the table.
    ends: BinaryHeap<Reverse<(u64, K)>>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone + Ord> Default for RateLimiter<K> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS)
    }
}

impl<K: Hash + Eq + Clone + Ord> RateLimiter<K> {
    /// A limiter tracking at most `max_keys` keys (at least one).
    pub fn new(max_keys: usize) -> Self {
        RateLimiter { entries: HashMap::new(), ends: BinaryHeap::new(), max_keys: max_keys.max(1) }
    }

    /// Counts one request by `key` under `limit`, or refuses it.
    pub fn check(&mut self, key: &K, limit: Limit, now_ms: u64) -> Decision {
        self.drop_ended(now_ms);
        if !self.entries.contains_key(key) {
            if self.entries.len() >= self.max_keys {
                let next = self.ends.peek().map_or(now_ms, |Reverse((at, _))| *at);
                return Decision::Full { retry_after_ms: next.saturating_sub(now_ms).max(1) };
            }
            let c = Counters::new(now_ms);
            self.ends.push(Reverse((c.ends_at(), key.clone())));
            self.entries.insert(key.clone(), c);
        }
        let Some(c) = self.entries.get_mut(key) else { return Decision::Full { retry_after_ms: 1 } };
        c.roll(now_ms);
        if c.hour_count >= limit.per_hour {
            let retry_after_ms = c.hour_start.saturating_add(HOUR_MS).saturating_sub(now_ms);
            return Decision::Limited { which: Window::Hour, retry_after_ms };
        }
        if c.minute_count >= limit.per_minute {
            let retry_after_ms = c.minute_start.saturating_add(MINUTE_MS).saturating_sub(now_ms);
            return Decision::Limited { which: Window::Minute, retry_after_ms };
        }
        c.minute_count += 1;
        c.hour_count += 1;
        Decision::Allowed
    }

    /// Moves `from`'s counters to `to` (adding them to `to`'s own, if any): the same requester under a
    /// new name, say a peer that rotated its key, keeps what it has spent.
    pub fn transfer(&mut self, from: &K, to: &K) {
        if from == to {
            return;
        }
        let Some(moved) = self.entries.remove(from) else { return };
        match self.entries.get_mut(to) {
            Some(existing) => existing.absorb(moved),
            None => {
                self.ends.push(Reverse((moved.ends_at(), to.clone())));
                self.entries.insert(to.clone(), moved);
            }
        }
    }

    /// Drops the entries whose windows have all ended by `now_ms`.
    fn drop_ended(&mut self, now_ms: u64) {
        while let Some(Reverse((at, _))) = self.ends.peek() {
            if *at > now_ms {
                break;
            }
            let Some(Reverse((_, key))) = self.ends.pop() else { break };
            match self.entries.get(&key).map(Counters::ends_at) {
                Some(ends) if ends <= now_ms => {
                    self.entries.remove(&key);
                }
                // Its windows moved on: queue it for when they end (strictly later, so this loop ends).
                Some(ends) => self.ends.push(Reverse((ends, key))),
                // Transferred away.
                None => {}
            }
        }
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn untrusted_peers_get_30_per_minute_then_a_retry_time() {
        let mut rl = RateLimiter::new(10);
        for i in 0..30 {
            assert_eq!(rl.check(&"peer", Limit::UNTRUSTED, NOW + i), Decision::Allowed);
        }
        let refused = rl.check(&"peer", Limit::UNTRUSTED, NOW + 10_000);
        assert_eq!(refused, Decision::Limited { which: Window::Minute, retry_after_ms: 50_000 });
        assert_eq!(rl.check(&"other", Limit::UNTRUSTED, NOW + 10_000), Decision::Allowed);
        assert_eq!(rl.check(&"peer", Limit::UNTRUSTED, NOW + MINUTE_MS), Decision::Allowed);
    }

    #[test]
    fn the_hourly_limit_applies_across_minutes() {
        let mut rl = RateLimiter::new(10);
        let mut t = NOW;
        let mut allowed = 0;
        while t < NOW + HOUR_MS {
            if rl.check(&1u8, Limit::UNTRUSTED, t) == Decision::Allowed {
                allowed += 1;
            }
            t += 1000;
        }
        assert_eq!(allowed, 300);
        let at = NOW + 15 * MINUTE_MS;
        let mut rl = RateLimiter::new(10);
        for m in 0..10 {
            for _ in 0..30 {
                assert_eq!(rl.check(&1u8, Limit::UNTRUSTED, NOW + m * MINUTE_MS), Decision::Allowed);
            }
        }
        assert_eq!(
            rl.check(&1u8, Limit::UNTRUSTED, at),
            Decision::Limited { which: Window::Hour, retry_after_ms: HOUR_MS - 15 * MINUTE_MS }
        );
    }

    #[test]
    fn claims_are_limited_to_five_per_minute() {
        let mut rl = RateLimiter::new(10);
        for _ in 0..5 {
            assert_eq!(rl.check(&"k", Limit::CLAIMS, NOW), Decision::Allowed);
        }
        assert!(matches!(
            rl.check(&"k", Limit::CLAIMS, NOW),
            Decision::Limited { which: Window::Minute, .. }
        ));
    }

    #[test]
    fn trust_levels_have_their_own_limits() {
        for (limit, per_minute) in [(Limit::TRUSTED, 100), (Limit::OWNER, 1000)] {
            let mut rl = RateLimiter::new(1);
            let allowed = (0..2000).filter(|_| rl.check(&0, limit, NOW) == Decision::Allowed).count();
            assert_eq!(allowed, per_minute);
        }
    }

    #[test]
    fn a_full_table_refuses_new_keys_and_never_drops_a_live_one() {
        let mut rl = RateLimiter::new(100);
        for _ in 0..30 {
            rl.check(&u32::MAX, Limit::UNTRUSTED, NOW);
        }
        let refused = (0..10_000u32)
            .filter(|k| matches!(rl.check(k, Limit::UNTRUSTED, NOW + 1), Decision::Full { .. }))
            .count();
        assert_eq!((rl.len(), refused), (100, 10_000 - 99));
        // The first key's spent budget survived the flood.
        assert!(matches!(rl.check(&u32::MAX, Limit::UNTRUSTED, NOW + 2), Decision::Limited { .. }));
        // A refusal says when a place may free up: when the oldest entry's hour ends.
        assert_eq!(
            rl.check(&7_777_777, Limit::UNTRUSTED, NOW + 2),
            Decision::Full { retry_after_ms: HOUR_MS - 2 }
        );
    }

    #[test]
    fn entries_end_with_their_windows_and_free_their_place() {
        let mut rl = RateLimiter::new(2);
        rl.check(&1u32, Limit::UNTRUSTED, NOW);
        rl.check(&2u32, Limit::UNTRUSTED, NOW + 30 * MINUTE_MS);
        assert!(matches!(rl.check(&3u32, Limit::UNTRUSTED, NOW + HOUR_MS - 1), Decision::Full { .. }));
        // Key 1's hour has ended: its place goes to key 3; key 2 is still live.
        assert_eq!(rl.check(&3u32, Limit::UNTRUSTED, NOW + HOUR_MS), Decision::Allowed);
        assert_eq!(rl.len(), 2);
        // Key 2 started a new minute late in its hour: it stays until that minute ends too.
        rl.check(&2u32, Limit::UNTRUSTED, NOW + 30 * MINUTE_MS + HOUR_MS - 1);
        let ended = NOW + 30 * MINUTE_MS + HOUR_MS;
        assert!(matches!(rl.check(&4u32, Limit::UNTRUSTED, ended), Decision::Full { .. }));
        assert_eq!(rl.check(&4u32, Limit::UNTRUSTED, ended + MINUTE_MS), Decision::Allowed);
    }

    #[test]
    fn a_transferred_budget_stays_spent_under_the_new_key() {
        let mut rl = RateLimiter::new(10);
        for _ in 0..20 {
            rl.check(&"old", Limit::UNTRUSTED, NOW);
        }
        for _ in 0..5 {
            rl.check(&"new", Limit::UNTRUSTED, NOW);
        }
        rl.transfer(&"old", &"new");
        let allowed =
            (0..30).filter(|_| rl.check(&"new", Limit::UNTRUSTED, NOW) == Decision::Allowed).count();
        assert_eq!((allowed, rl.len()), (5, 1));
        // The old name starts from nothing: the caller decides whom a key belongs to.
        rl.transfer(&"missing", &"new");
        assert_eq!(rl.len(), 1);
    }
}
