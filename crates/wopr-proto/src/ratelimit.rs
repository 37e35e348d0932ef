//! Per-key rate limits: so many requests per minute and per hour.
//!
//! Each key has a one-minute and a one-hour fixed window, each starting at the first request after the
//! previous one ended. A request is allowed when both windows have room; a refused request does not count.
//! The refusal says which window is full and when it reopens. Memory is one small entry per key, and the
//! number of keys is capped: when full, idle keys are dropped first, then the least recently seen.

use std::collections::HashMap;
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
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    minute_start: u64,
    minute_count: u32,
    hour_start: u64,
    hour_count: u32,
    last_seen: u64,
}

impl Counters {
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

    fn idle(&self, now_ms: u64) -> bool {
        now_ms >= self.hour_start.saturating_add(HOUR_MS)
    }
}

/// Rate limiter keyed by `K` (a peer's key, for example). The clock is the caller's `now_ms`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    entries: HashMap<K, Counters>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> Default for RateLimiter<K> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS)
    }
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter tracking at most `max_keys` keys (at least one).
    pub fn new(max_keys: usize) -> Self {
        RateLimiter { entries: HashMap::new(), max_keys: max_keys.max(1) }
    }

    /// Counts one request by `key` under `limit`, or refuses it.
    pub fn check(&mut self, key: &K, limit: Limit, now_ms: u64) -> Decision {
        if !self.entries.contains_key(key) && self.entries.len() >= self.max_keys {
            self.make_room(now_ms);
        }
        let c = self.entries.entry(key.clone()).or_insert(Counters {
            minute_start: now_ms,
            minute_count: 0,
            hour_start: now_ms,
            hour_count: 0,
            last_seen: now_ms,
        });
        c.roll(now_ms);
        c.last_seen = c.last_seen.max(now_ms);
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

    fn make_room(&mut self, now_ms: u64) {
        self.entries.retain(|_, c| !c.idle(now_ms));
        if self.entries.len() >= self.max_keys {
            let oldest = self.entries.iter().min_by_key(|(_, c)| c.last_seen).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
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
    fn memory_is_bounded_by_the_key_cap() {
        let mut rl = RateLimiter::new(100);
        for k in 0..10_000u32 {
            rl.check(&k, Limit::UNTRUSTED, NOW + u64::from(k));
        }
        assert_eq!(rl.len(), 100);
        // The most recent keys are the ones kept.
        assert!(rl.entries.contains_key(&9_999));
    }
}
