//! Per-peer limits on inbound work, and the refusals that name them.
//!
//! Every request stream first counts against a per-peer request budget (so floods of garbage, forged or
//! refused requests are cut off early), then its envelope against the peer's replay window, then against
//! the limit of its kind: injects and logs 30/minute and 300/hour (every P2P peer is `untrusted`),
//! claims 5/minute. A refusal says which limit and when to retry.

use std::collections::HashMap;

use wopr_identity::PublicId;
use wopr_proto::ErrorCode;
use wopr_proto::message::{ErrorMessage, MAX_ERROR_MESSAGE};
use wopr_proto::ratelimit::{Decision, Limit, RateLimiter, Window};
use wopr_proto::replay::{ReplayError, ReplayWindow};

use crate::error::human_ms;

/// Requests of any kind per peer, refused ones included: a flood stops here before it costs more.
pub const REQUEST_LIMIT: Limit = Limit { per_minute: 120, per_hour: 1200 };

/// The per-peer limits a node enforces on inbound work. [`PeerLimits::default`] is the protocol's
/// (every P2P peer is `untrusted`), and it is what every node built from settings runs with: no config
/// key or environment variable changes these. Only code can, and only tests and benchmarks do, to
/// measure a node without the limiter in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// Request streams and handshakes of any kind, refused ones included ([`REQUEST_LIMIT`]). Whatever
    /// this allows, a peer's replay window holds at most 2048 nonces per 5 minutes.
    pub requests: Limit,
    /// Injects ([`Limit::UNTRUSTED`]: 30 per minute, 300 per hour).
    pub injects: Limit,
    /// Logged messages ([`Limit::UNTRUSTED`]).
    pub logs: Limit,
    /// Invite claims ([`Limit::CLAIMS`]: 5 per minute).
    pub claims: Limit,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            requests: REQUEST_LIMIT,
            injects: Limit::UNTRUSTED,
            logs: Limit::UNTRUSTED,
            claims: Limit::CLAIMS,
        }
    }
}

/// Nonces one peer's replay window holds (its request budget allows 600 per replay window).
const REPLAY_CAPACITY: usize = 2048;

/// Peers with a replay window kept in memory before idle windows are dropped.
const MAX_REPLAY_PEERS: usize = 4096;

/// A refused request: what to tell the peer (and to write in the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) retry_after_ms: Option<u64>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into(), retry_after_ms: None }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub(crate) fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Rejected, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }

    /// The `Error` message to send.
    pub(crate) fn to_message(&self) -> ErrorMessage {
        ErrorMessage {
            code: self.code,
            message: truncate(&self.message, MAX_ERROR_MESSAGE),
            retry_after_ms: self.retry_after_ms,
        }
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The kinds of request with a limit of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Inject,
    Log,
    Claim,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Inject => "injects",
            Kind::Log => "messages",
            Kind::Claim => "invite claims",
        }
    }
}

fn limited(what: &str, limit: Limit, which: Window, retry_after_ms: u64) -> Refusal {
    let (n, per) = match which {
        Window::Minute => (limit.per_minute, "minute"),
        Window::Hour => (limit.per_hour, "hour"),
    };
    Refusal {
        code: ErrorCode::RateLimited,
        message: format!(
            "rate limit: at most {n} {what} per {per} per peer; retry in {}",
            human_ms(retry_after_ms)
        ),
        retry_after_ms: Some(retry_after_ms),
    }
}

/// The limiter state of one node.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    config: PeerLimits,
    requests: RateLimiter<PublicId>,
    injects: RateLimiter<PublicId>,
    logs: RateLimiter<PublicId>,
    claims: RateLimiter<PublicId>,
    replay: HashMap<PublicId, ReplayWindow>,
    flood_audited: HashMap<PublicId, u64>,
}

impl Limits {
    /// Limiter state enforcing `config`.
    pub(crate) fn new(config: PeerLimits) -> Self {
        Limits { config, ..Limits::default() }
    }

    /// Counts one request stream of `peer`, whatever it holds.
    pub(crate) fn request(&mut self, peer: &PublicId, now_ms: u64) -> Result<(), Refusal> {
        let limit = self.config.requests;
        match self.requests.check(peer, limit, now_ms) {
            Decision::Allowed => Ok(()),
            Decision::Limited { which, retry_after_ms } => {
                Err(limited("requests", limit, which, retry_after_ms))
            }
        }
    }

    /// Whether a request-budget refusal of `peer` should be audited: the first one each minute is, so a
    /// flood cannot fill the audit log.
    pub(crate) fn audit_flood(&mut self, peer: &PublicId, now_ms: u64) -> bool {
        if self.flood_audited.len() >= MAX_REPLAY_PEERS {
            self.flood_audited.retain(|_, at| now_ms.saturating_sub(*at) < 60_000);
        }
        let at = self.flood_audited.entry(*peer).or_insert(0);
        if now_ms.saturating_sub(*at) < 60_000 {
            return false;
        }
        *at = now_ms;
        true
    }

    /// Counts one request of `kind` by `peer`.
    pub(crate) fn check(&mut self, kind: Kind, peer: &PublicId, now_ms: u64) -> Result<(), Refusal> {
        let (limiter, limit) = match kind {
            Kind::Inject => (&mut self.injects, self.config.injects),
            Kind::Log => (&mut self.logs, self.config.logs),
            Kind::Claim => (&mut self.claims, self.config.claims),
        };
        match limiter.check(peer, limit, now_ms) {
            Decision::Allowed => Ok(()),
            Decision::Limited { which, retry_after_ms } => {
                Err(limited(kind.noun(), limit, which, retry_after_ms))
            }
        }
    }

    /// Runs an envelope's nonce and timestamp through `peer`'s replay window.
    pub(crate) fn replay(
        &mut self,
        peer: &PublicId,
        nonce: &[u8; 16],
        timestamp_ms: u64,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        if self.replay.len() >= MAX_REPLAY_PEERS && !self.replay.contains_key(peer) {
            self.replay.retain(|_, w| {
                w.evict(now_ms);
                !w.is_empty()
            });
        }
        let window = self
            .replay
            .entry(*peer)
            .or_insert_with(|| ReplayWindow::with_limits(wopr_proto::MAX_SKEW_MS, REPLAY_CAPACITY));
        window.check(nonce, timestamp_ms, now_ms).map_err(|e| match e {
            ReplayError::Full { retry_after_ms, .. } => Refusal {
                code: ErrorCode::RateLimited,
                message: format!("too many messages in flight; retry in {}", human_ms(retry_after_ms)),
                retry_after_ms: Some(retry_after_ms),
            },
            ReplayError::Replayed => Refusal::invalid("replayed message: this nonce was already used"),
            stale @ ReplayError::Stale { .. } => {
                Refusal::invalid(format!("{stale}; check the clock of the sending machine"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn the_31st_inject_in_a_minute_is_refused_naming_the_limit() {
        let mut l = Limits::default();
        let peer = wopr_identity::Identity::generate().public_id();
        for _ in 0..30 {
            l.check(Kind::Inject, &peer, NOW).unwrap();
        }
        let r = l.check(Kind::Inject, &peer, NOW + 1_000).unwrap_err();
        assert_eq!(r.code, ErrorCode::RateLimited);
        assert_eq!(r.retry_after_ms, Some(59_000));
        assert!(r.message.contains("30 injects per minute"), "{}", r.message);
        // Logs and claims have budgets of their own.
        l.check(Kind::Log, &peer, NOW).unwrap();
        for _ in 0..5 {
            l.check(Kind::Claim, &peer, NOW).unwrap();
        }
        assert!(l.check(Kind::Claim, &peer, NOW).unwrap_err().message.contains("5 invite claims per minute"));
    }

    #[test]
    fn raised_limits_apply_and_the_defaults_are_the_protocols() {
        let peer = wopr_identity::Identity::generate().public_id();
        let raised = Limit { per_minute: 1000, per_hour: 10_000 };
        let mut l = Limits::new(PeerLimits { injects: raised, ..PeerLimits::default() });
        for _ in 0..100 {
            l.check(Kind::Inject, &peer, NOW).unwrap();
        }
        l.check(Kind::Log, &peer, NOW).unwrap();
        let d = PeerLimits::default();
        assert_eq!((d.injects, d.logs, d.claims), (Limit::UNTRUSTED, Limit::UNTRUSTED, Limit::CLAIMS));
        assert_eq!(d.requests, REQUEST_LIMIT);
    }

    #[test]
    fn replays_and_stale_messages_are_invalid() {
        let mut l = Limits::default();
        let peer = wopr_identity::Identity::generate().public_id();
        l.replay(&peer, &[1; 16], NOW, NOW).unwrap();
        assert_eq!(l.replay(&peer, &[1; 16], NOW, NOW).unwrap_err().code, ErrorCode::Invalid);
        let other = wopr_identity::Identity::generate().public_id();
        l.replay(&other, &[1; 16], NOW, NOW).unwrap();
        let stale = l.replay(&peer, &[2; 16], NOW - 10 * 60_000, NOW).unwrap_err();
        assert!(stale.message.contains("clock"), "{}", stale.message);
    }

    #[test]
    fn error_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(3000);
        let cut = truncate(&long, MAX_ERROR_MESSAGE);
        assert!(cut.len() <= MAX_ERROR_MESSAGE && cut.chars().all(|c| c == 'é'));
    }
}
