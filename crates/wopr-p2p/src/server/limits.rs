//! Per-peer limits on inbound work, and the refusals that name them.
//!
//! Every request stream first counts against a per-peer request budget (so floods of garbage, forged or
//! refused requests are cut off early), then its envelope against the peer's replay window, then against
//! the limit of its kind: injects and logs 30/minute and 300/hour (every P2P peer is `untrusted`),
//! claims 5/minute. A refusal says which limit and when to retry.
//!
//! Budgets are kept in two tables, so strangers cannot touch what known peers have spent:
//! - **Known peers** (a grant in `access.json` or a record in `peers.json`) are counted by their
//!   [`Standing::Known`] key, the current key of their chain, whichever of its keys they connect with; a
//!   rotation moves the counters to the new key ([`Limits::follow_rotation`]).
//! - **Strangers** are counted by their connection key in a table of their own. They only ever reach the
//!   request budget and the claim limit: injects and logs are checked against the grant first.
//!
//! Both tables are bounded and never drop a live entry to make room: when full, the newcomer is refused
//! (a stranger flood can crowd out other strangers for a while, never reset anyone's budget). Replay
//! windows are kept the same way, in two bounded tables: known peers' and strangers'.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use wopr_identity::PublicId;
use wopr_proto::ErrorCode;
use wopr_proto::message::{ErrorMessage, MAX_ERROR_MESSAGE};
use wopr_proto::ratelimit::{Decision, Limit, MINUTE_MS, RateLimiter, Window};
use wopr_proto::replay::{ReplayError, ReplayWindows};

use crate::error::human_ms;

/// Requests of any kind per peer, refused ones included: a flood stops here before it costs more.
pub const REQUEST_LIMIT: Limit = Limit { per_minute: 120, per_hour: 1200 };

/// Connect-requests (discovery) per key: a few, since one accepted request is all a peer needs.
pub const CONNECT_LIMIT: Limit = Limit { per_minute: 3, per_hour: 20 };

/// Connect-requests from all keys together: a crowd of fresh keys cannot make this node decide (or ask
/// its AI) more often than this.
pub const CONNECT_TOTAL_LIMIT: Limit = Limit { per_minute: 30, per_hour: 300 };

/// Strangers (keys with no grant and no `peers.json` record) tracked at once.
pub const MAX_STRANGERS: usize = 10_000;

/// Known peers tracked at once (there are only as many as the owner granted or reached).
const MAX_KNOWN: usize = 10_000;

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
    /// Connect-requests per key ([`CONNECT_LIMIT`]).
    pub connects: Limit,
    /// Connect-requests of all keys together ([`CONNECT_TOTAL_LIMIT`]).
    pub connects_total: Limit,
    /// Strangers tracked at once ([`MAX_STRANGERS`]); while that many are, further strangers are refused.
    pub strangers: usize,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            requests: REQUEST_LIMIT,
            injects: Limit::UNTRUSTED,
            logs: Limit::UNTRUSTED,
            claims: Limit::CLAIMS,
            connects: CONNECT_LIMIT,
            connects_total: CONNECT_TOTAL_LIMIT,
            strangers: MAX_STRANGERS,
        }
    }
}

/// Nonces one peer's replay window holds (its request budget allows 600 per replay window).
const REPLAY_CAPACITY: usize = 2048;

/// Peers with a replay window at once, in each of the two tables (known peers, strangers); while that
/// many hold live nonces, newcomers to that table wait.
pub(crate) const MAX_REPLAY_PEERS: usize = 4096;

/// Keys whose request-budget refusals are remembered as audited (one audit row per key and minute).
const MAX_FLOOD_AUDITED: usize = 4096;

/// Whom a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// A peer with a grant or a `peers.json` record, by the current key of its chain.
    Known(PublicId),
    /// Anyone else, by the key it connected with.
    Stranger(PublicId),
}

impl Standing {
    pub(crate) fn is_known(&self) -> bool {
        matches!(self, Standing::Known(_))
    }

    /// The key its counters are kept under.
    pub(crate) fn key(&self) -> &PublicId {
        match self {
            Standing::Known(key) | Standing::Stranger(key) => key,
        }
    }
}

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

    fn busy(message: String, retry_after_ms: u64) -> Self {
        Refusal { code: ErrorCode::RateLimited, message, retry_after_ms: Some(retry_after_ms) }
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
    Connect,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Inject => "injects",
            Kind::Log => "messages",
            Kind::Claim => "invite claims",
            Kind::Connect => "connect requests",
        }
    }
}

fn refused(what: &str, limit: Limit, who: &Standing, decision: Decision) -> Result<(), Refusal> {
    let (n, per, retry_after_ms) = match decision {
        Decision::Allowed => return Ok(()),
        Decision::Limited { which: Window::Minute, retry_after_ms } => {
            (limit.per_minute, "minute", retry_after_ms)
        }
        Decision::Limited { which: Window::Hour, retry_after_ms } => (limit.per_hour, "hour", retry_after_ms),
        Decision::Full { retry_after_ms } => {
            let whom = if who.is_known() { "peers" } else { "unknown peers" };
            let message = format!(
                "this node is busy with as many {whom} as it tracks; retry in {}",
                human_ms(retry_after_ms)
            );
            return Err(Refusal::busy(message, retry_after_ms));
        }
    };
    let message =
        format!("rate limit: at most {n} {what} per {per} per peer; retry in {}", human_ms(retry_after_ms));
    Err(Refusal::busy(message, retry_after_ms))
}

/// One table of counters: a request budget and a limit per kind.
#[derive(Debug)]
struct Budgets {
    requests: RateLimiter<PublicId>,
    injects: RateLimiter<PublicId>,
    logs: RateLimiter<PublicId>,
    claims: RateLimiter<PublicId>,
    connects: RateLimiter<PublicId>,
}

impl Budgets {
    fn new(max_keys: usize) -> Self {
        Budgets {
            requests: RateLimiter::new(max_keys),
            injects: RateLimiter::new(max_keys),
            logs: RateLimiter::new(max_keys),
            claims: RateLimiter::new(max_keys),
            connects: RateLimiter::new(max_keys),
        }
    }

    fn of(&mut self, kind: Kind) -> &mut RateLimiter<PublicId> {
        match kind {
            Kind::Inject => &mut self.injects,
            Kind::Log => &mut self.logs,
            Kind::Claim => &mut self.claims,
            Kind::Connect => &mut self.connects,
        }
    }
}

/// The limiter state of one node.
#[derive(Debug)]
pub(crate) struct Limits {
    config: PeerLimits,
    known: Budgets,
    strangers: Budgets,
    replay: ReplayWindows<PublicId>,
    strangers_replay: ReplayWindows<PublicId>,
    flood_audited: FloodAudit,
    connects_total: RateLimiter<()>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(PeerLimits::default())
    }
}

impl Limits {
    /// Limiter state enforcing `config`.
    pub(crate) fn new(config: PeerLimits) -> Self {
        Limits {
            config,
            known: Budgets::new(MAX_KNOWN),
            strangers: Budgets::new(config.strangers),
            replay: ReplayWindows::new(wopr_proto::MAX_SKEW_MS, REPLAY_CAPACITY, MAX_REPLAY_PEERS),
            strangers_replay: ReplayWindows::new(wopr_proto::MAX_SKEW_MS, REPLAY_CAPACITY, MAX_REPLAY_PEERS),
            flood_audited: FloodAudit::default(),
            connects_total: RateLimiter::new(1),
        }
    }

    fn table(&mut self, who: &Standing) -> &mut Budgets {
        match who {
            Standing::Known(_) => &mut self.known,
            Standing::Stranger(_) => &mut self.strangers,
        }
    }

    /// Counts one request stream (or connection) of `who`, whatever it holds.
    pub(crate) fn request(&mut self, who: &Standing, now_ms: u64) -> Result<(), Refusal> {
        let limit = self.config.requests;
        let decision = self.table(who).requests.check(who.key(), limit, now_ms);
        refused("requests", limit, who, decision)
    }

    /// Counts one request of `kind` by `who`. Check the grant first: a stranger's inject or log must be
    /// refused before it gets here, so strangers never hold inject or log counters.
    pub(crate) fn check(&mut self, kind: Kind, who: &Standing, now_ms: u64) -> Result<(), Refusal> {
        let limit = match kind {
            Kind::Inject => self.config.injects,
            Kind::Log => self.config.logs,
            Kind::Claim => self.config.claims,
            Kind::Connect => self.config.connects,
        };
        let decision = self.table(who).of(kind).check(who.key(), limit, now_ms);
        refused(kind.noun(), limit, who, decision)
    }

    /// Counts one connect-request of `who`: its own limit, then everyone's together.
    pub(crate) fn connect(&mut self, who: &Standing, now_ms: u64) -> Result<(), Refusal> {
        self.check(Kind::Connect, who, now_ms)?;
        let limit = self.config.connects_total;
        match self.connects_total.check(&(), limit, now_ms) {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after_ms, .. } | Decision::Full { retry_after_ms } => {
                Err(Refusal::busy(
                    format!(
                        "this node takes at most {} connect requests per minute from everyone together; retry in {}",
                        limit.per_minute,
                        human_ms(retry_after_ms)
                    ),
                    retry_after_ms,
                ))
            }
        }
    }

    /// Runs an envelope's nonce and timestamp through `who`'s replay window, in its table.
    pub(crate) fn replay(
        &mut self,
        who: &Standing,
        nonce: &[u8; 16],
        timestamp_ms: u64,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let checked = match who {
            Standing::Known(key) => self.replay.check(key, nonce, timestamp_ms, now_ms),
            Standing::Stranger(key) => self.strangers_replay.check(key, nonce, timestamp_ms, now_ms),
        };
        checked.map_err(|e| match e {
            ReplayError::Full { retry_after_ms, .. } | ReplayError::Crowded { retry_after_ms, .. } => {
                Refusal::busy(
                    format!("too many messages in flight; retry in {}", human_ms(retry_after_ms)),
                    retry_after_ms,
                )
            }
            ReplayError::Replayed => Refusal::invalid("replayed message: this nonce was already used"),
            stale @ ReplayError::Stale { .. } => {
                Refusal::invalid(format!("{stale}; check the clock of the sending machine"))
            }
        })
    }

    /// A known peer rotated from `old` to `new`: what it spent, and the nonces it used, stay its own.
    pub(crate) fn follow_rotation(&mut self, old: &PublicId, new: &PublicId) {
        let k = &mut self.known;
        for limiter in [&mut k.requests, &mut k.injects, &mut k.logs, &mut k.claims, &mut k.connects] {
            limiter.transfer(old, new);
        }
        self.replay.transfer(old, new);
    }

    /// Whether a request-budget refusal of `key` should be audited: the first one each minute is, so a
    /// flood cannot fill the audit log.
    pub(crate) fn audit_flood(&mut self, key: &PublicId, now_ms: u64) -> bool {
        self.flood_audited.first_this_minute(key, now_ms)
    }
}

/// The keys whose flood was audited in the last minute, oldest first: bounded, and trimmed from the
/// front, never scanned. While it is full, further floods are not audited (their refusals still are
/// sent), so a crowd of fresh keys cannot fill the audit log either.
#[derive(Debug, Default)]
struct FloodAudit {
    at: HashMap<PublicId, u64>,
    order: BinaryHeap<Reverse<(u64, PublicId)>>,
}

impl FloodAudit {
    fn first_this_minute(&mut self, key: &PublicId, now_ms: u64) -> bool {
        while let Some(Reverse((at, _))) = self.order.peek() {
            if now_ms.saturating_sub(*at) < MINUTE_MS {
                break;
            }
            if let Some(Reverse((at, key))) = self.order.pop()
                && self.at.get(&key) == Some(&at)
            {
                self.at.remove(&key);
            }
        }
        if self.at.contains_key(key) || self.at.len() >= MAX_FLOOD_AUDITED {
            return false;
        }
        self.at.insert(*key, now_ms);
        self.order.push(Reverse((now_ms, *key)));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wopr_proto::ratelimit::HOUR_MS;

    const NOW: u64 = 1_700_000_000_000;

    /// A key made of `n`: cheap, distinct, never a real peer.
    fn fresh(n: u32) -> PublicId {
        let mut b = [0xee; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        PublicId(b)
    }

    fn known() -> Standing {
        Standing::Known(wopr_identity::Identity::generate().public_id())
    }

    #[test]
    fn the_31st_inject_in_a_minute_is_refused_naming_the_limit() {
        let mut l = Limits::default();
        let peer = known();
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
        let peer = known();
        let raised = Limit { per_minute: 1000, per_hour: 10_000 };
        let mut l = Limits::new(PeerLimits { injects: raised, ..PeerLimits::default() });
        for _ in 0..100 {
            l.check(Kind::Inject, &peer, NOW).unwrap();
        }
        l.check(Kind::Log, &peer, NOW).unwrap();
        let d = PeerLimits::default();
        assert_eq!((d.injects, d.logs, d.claims), (Limit::UNTRUSTED, Limit::UNTRUSTED, Limit::CLAIMS));
        assert_eq!((d.requests, d.strangers), (REQUEST_LIMIT, MAX_STRANGERS));
    }

    #[test]
    fn replays_and_stale_messages_are_invalid() {
        let mut l = Limits::default();
        let peer = known();
        l.replay(&peer, &[1; 16], NOW, NOW).unwrap();
        assert_eq!(l.replay(&peer, &[1; 16], NOW, NOW).unwrap_err().code, ErrorCode::Invalid);
        let other = known();
        l.replay(&other, &[1; 16], NOW, NOW).unwrap();
        let stale = l.replay(&peer, &[2; 16], NOW - 10 * 60_000, NOW).unwrap_err();
        assert!(stale.message.contains("clock"), "{}", stale.message);
        // Strangers' windows are kept apart.
        let stranger = Standing::Stranger(fresh(1));
        assert!(l.replay(&stranger, &[3; 16], NOW - 10 * 60_000, NOW).unwrap_err().message.contains("clock"));
        l.replay(&stranger, &[3; 16], NOW, NOW).unwrap();
        assert_eq!(l.replay(&stranger, &[3; 16], NOW, NOW).unwrap_err().code, ErrorCode::Invalid);
        assert_eq!((l.replay.len(), l.strangers_replay.len()), (2, 1));
    }

    #[test]
    fn a_flood_of_fresh_keys_never_resets_a_granted_peers_budget() {
        let mut l = Limits::default();
        let p = known();
        for _ in 0..30 {
            l.check(Kind::Inject, &p, NOW).unwrap();
        }
        // What the server does for each: the request budget, then (no grant) no inject counter at all. And
        // even a limiter that strangers did reach keeps P's counters apart.
        let mut crowded = 0;
        for n in 0..10_001 {
            let stranger = Standing::Stranger(fresh(n));
            let at = NOW + 1 + u64::from(n);
            if l.request(&stranger, at).is_err() {
                crowded += 1;
            }
            let _ = l.check(Kind::Claim, &stranger, at);
        }
        assert_eq!(crowded, 1, "the 10,001st stranger is refused, nobody is dropped for it");
        let r = l.check(Kind::Inject, &p, NOW + 20_000);
        assert_eq!(r.map_err(|r| r.code), Err(ErrorCode::RateLimited), "P's 31st inject was let through");
        let refusal = l.request(&Standing::Stranger(fresh(20_000)), NOW + 20_000).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::RateLimited);
        assert!(refusal.message.contains("unknown peers"), "{}", refusal.message);
        // An hour later the strangers' entries have ended and their places are free again.
        l.request(&Standing::Stranger(fresh(20_000)), NOW + 10_002 + HOUR_MS).unwrap();
    }

    #[test]
    fn replay_windows_stay_within_their_stated_bound() {
        let mut l = Limits::default();
        let mut crowded = 0;
        for n in 0..5_000 {
            if let Err(r) = l.replay(&Standing::Known(fresh(n)), &[1; 16], NOW, NOW) {
                assert_eq!(r.code, ErrorCode::RateLimited, "{}", r.message);
                crowded += 1;
            }
        }
        assert!(l.replay.len() <= MAX_REPLAY_PEERS, "{} replay windows", l.replay.len());
        assert_eq!(crowded, 5_000 - MAX_REPLAY_PEERS);
        // No admitted peer's nonce was forgotten to make room.
        assert_eq!(
            l.replay(&Standing::Known(fresh(0)), &[1; 16], NOW, NOW).unwrap_err().code,
            ErrorCode::Invalid
        );
        // Strangers have a table of their own, as bounded, and take no known peer's place.
        for n in 0..5_000 {
            let _ = l.replay(&Standing::Stranger(fresh(10_000 + n)), &[1; 16], NOW, NOW);
        }
        assert_eq!((l.replay.len(), l.strangers_replay.len()), (MAX_REPLAY_PEERS, MAX_REPLAY_PEERS));
    }

    #[test]
    fn a_rotated_peer_keeps_what_it_spent() {
        let mut l = Limits::default();
        let (old, new) = (fresh(1), fresh(2));
        for _ in 0..30 {
            l.check(Kind::Inject, &Standing::Known(old), NOW).unwrap();
        }
        l.replay(&Standing::Known(old), &[7; 16], NOW, NOW).unwrap();
        l.follow_rotation(&old, &new);
        assert!(l.check(Kind::Inject, &Standing::Known(new), NOW).is_err());
        assert!(l.replay(&Standing::Known(new), &[7; 16], NOW, NOW).is_err());
    }

    #[test]
    fn floods_are_audited_once_a_minute_per_key_and_the_memory_is_bounded() {
        let mut l = Limits::default();
        assert!(l.audit_flood(&fresh(0), NOW));
        assert!(!l.audit_flood(&fresh(0), NOW + 59_999));
        assert!(l.audit_flood(&fresh(0), NOW + 60_000));
        let audited = (1..10_000).filter(|n| l.audit_flood(&fresh(*n), NOW + 60_000)).count();
        assert_eq!(audited, MAX_FLOOD_AUDITED - 1);
        assert!(l.audit_flood(&fresh(1), NOW + 120_000));
    }

    #[test]
    fn error_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(3000);
        let cut = truncate(&long, MAX_ERROR_MESSAGE);
        assert!(cut.len() <= MAX_ERROR_MESSAGE && cut.chars().all(|c| c == 'é'));
    }
}
