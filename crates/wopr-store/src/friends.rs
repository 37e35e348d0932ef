//! `friends.json`: friends, the friend requests waiting on either side, and the auto-accept rules.
//!
//! A friend is a peer both sides agreed to (a verified `FRIEND_REQUEST` answered by a verified
//! `FRIEND_ACCEPT`, see `wopr_proto::friend`). Each has a dedicated session on this node,
//! `friend:p2p:<name>(<shortid>)` ([`friend_session_name`]), the only one it reaches; what it may do there
//! is a grant in `access.json`, made by the caller. Pending requests keep the signed line as it was sent or
//! received, so an accept is checked against the exact request (outgoing) and `wopr friend accept <name>`
//! answers the exact request (incoming); both expire after [`PENDING_TTL_MS`]. Requests are written by
//! strangers, so the incoming list is bounded ([`MAX_PENDING_INCOMING`]) and a name in it may be claimed
//! by two keys ([`FriendsFile::resolve_incoming`] refuses to guess). Every change is a locked
//! read-modify-write of the 0600 file.

use serde::{Deserialize, Serialize};
use wopr_identity::PublicId;

use crate::auto_accept::AutoAccept;
use crate::peer_ref::{self, OldKey, PeerKeyed, validate_peer_name};
use crate::{Home, SessionName, StoreError, StoreResult};

/// File name of the friends document in the home.
pub const FRIENDS_FILE: &str = "friends.json";
/// How long a pending request, either way, is kept: 7 days.
pub const PENDING_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Most pending incoming requests kept; a new one past this pushes out the oldest.
pub const MAX_PENDING_INCOMING: usize = 256;

/// The dedicated session of the friend `name` (its display name) with key `key`:
/// `friend:p2p:<name>(<shortid>)`. The short id keeps two friends who claim one name apart.
pub fn friend_session_name(name: &str, key: &PublicId) -> StoreResult<SessionName> {
    validate_peer_name(name)?;
    SessionName::new(&format!("friend:p2p:{name}({})", key.short()))
}

/// One friend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Friend {
    /// Local name: the friend's display name, with a `-2`, `-3`... suffix if another friend has it.
    pub name: String,
    /// The friend's Ed25519 key (its WOPR id).
    pub public_key: PublicId,
    /// The friend's X25519 key, hex.
    pub encrypt_pub: String,
    /// Short id of `public_key`, for display.
    pub short_id: String,
    /// The friend's dedicated session on this node.
    #[schema(value_type = String)]
    pub session: SessionName,
    /// How to reach it: socket addresses and relay URLs from its request or accept.
    #[serde(default)]
    pub hints: Vec<String>,
    /// When the friendship was made, ms since the Unix epoch.
    pub since: u64,
    /// Whether an auto-accept rule admitted it (rather than the owner).
    #[serde(default)]
    pub auto_accepted: bool,
    /// Keys the friend rotated away from, each accepted until its grace period ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_keys: Vec<OldKey>,
}

impl Friend {
    /// A friend calling itself `name` (a display name from its verified request or accept).
    pub fn new(
        name: &str,
        public_key: PublicId,
        encrypt_pub: [u8; 32],
        hints: Vec<String>,
        now_ms: u64,
    ) -> StoreResult<Friend> {
        Ok(Friend {
            name: name.to_string(),
            session: friend_session_name(name, &public_key)?,
            public_key,
            encrypt_pub: hex::encode(encrypt_pub),
            short_id: public_key.short(),
            hints,
            since: now_ms,
            auto_accepted: false,
            old_keys: Vec::new(),
        })
    }
}

impl PeerKeyed for Friend {
    fn key(&self) -> &PublicId {
        &self.public_key
    }
    fn old_keys(&self) -> &[OldKey] {
        &self.old_keys
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A request this node sent and that awaits an accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingRequest {
    /// The key it was sent to.
    pub to: PublicId,
    /// What this node calls that peer (a peer name, or the short id).
    pub name: String,
    /// The signed request as its `FRIEND_REQUEST | ...` line.
    pub line: String,
    /// When it was sent, ms since the Unix epoch.
    pub sent_at: u64,
}

/// A request another node sent to this one and that awaits the owner (`wopr friend accept <name>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncomingRequest {
    /// The requester's key.
    pub from: PublicId,
    /// The display name it claims.
    pub name: String,
    /// The verified request as its `FRIEND_REQUEST | ...` line.
    pub line: String,
    /// When it arrived, ms since the Unix epoch.
    pub received_at: u64,
    /// The topic it was posted in, when it came through one: the accept goes back there if the
    /// requester cannot be reached directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl PeerKeyed for IncomingRequest {
    fn key(&self) -> &PublicId {
        &self.from
    }
    fn old_keys(&self) -> &[OldKey] {
        &[]
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// The whole `friends.json` document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendsFile {
    /// Every friend, in the order they were made.
    #[serde(default)]
    pub friends: Vec<Friend>,
    /// Requests sent, oldest first, at most one per key.
    #[serde(default)]
    pub outgoing: Vec<OutgoingRequest>,
    /// Requests received, oldest first, at most one per key.
    #[serde(default)]
    pub incoming: Vec<IncomingRequest>,
    /// The auto-accept rules.
    #[serde(default)]
    pub auto_accept: AutoAccept,
}

impl FriendsFile {
    /// The friend `query` names: full id, `wopr://` id, short id or local name.
    pub fn resolve(&self, query: &str, now_ms: u64) -> StoreResult<&Friend> {
        peer_ref::resolve(&self.friends, query, "friend", now_ms)
    }

    /// The friend with key `key`.
    pub fn by_key(&self, key: &PublicId) -> Option<&Friend> {
        self.friends.iter().find(|f| f.public_key == *key)
    }

    /// The unexpired request this node sent to `key`.
    pub fn outgoing_to(&self, key: &PublicId, now_ms: u64) -> Option<&OutgoingRequest> {
        self.outgoing.iter().find(|o| o.to == *key && live(o.sent_at, now_ms))
    }

    /// The unexpired incoming request `query` names: full id, short id, or claimed name. A name two
    /// keys claim is an error listing them, since one of them may be an impostor.
    pub fn resolve_incoming(&self, query: &str, now_ms: u64) -> StoreResult<&IncomingRequest> {
        let live: Vec<IncomingRequest> =
            self.incoming.iter().filter(|i| live(i.received_at, now_ms)).cloned().collect();
        let claimants: Vec<&IncomingRequest> = live.iter().filter(|i| i.name == query.trim()).collect();
        if claimants.len() > 1 {
            let keys: Vec<String> =
                claimants.iter().map(|i| format!("{} ({})", i.from.short(), i.from)).collect();
            return Err(StoreError::InvalidPeer(format!(
                "{} requesters call themselves {:?}: {}; accept by short id or full id",
                claimants.len(),
                query.trim(),
                keys.join(", ")
            )));
        }
        let key = peer_ref::resolve(&live, query, "pending friend request", now_ms)?.from;
        self.incoming.iter().find(|i| i.from == key).ok_or_else(|| StoreError::NotFound(query.to_string()))
    }

    /// Drops the pending requests older than [`PENDING_TTL_MS`]; returns how many.
    fn expire(&mut self, now_ms: u64) -> usize {
        let before = self.outgoing.len() + self.incoming.len();
        self.outgoing.retain(|o| live(o.sent_at, now_ms));
        self.incoming.retain(|i| live(i.received_at, now_ms));
        before - self.outgoing.len() - self.incoming.len()
    }

    fn free_name(&self, wanted: &str, key: &PublicId) -> String {
        let taken = |n: &str| self.friends.iter().any(|f| f.name == n && f.public_key != *key);
        if !taken(wanted) {
            return wanted.to_string();
        }
        (2..).map(|i| format!("{wanted}-{i}")).find(|n| !taken(n)).unwrap_or_else(|| key.to_hex())
    }

    fn forget_pending(&mut self, key: &PublicId) {
        self.outgoing.retain(|o| o.to != *key);
        self.incoming.retain(|i| i.from != *key);
    }
}

/// Whether a request made at `at` is still pending at `now_ms`.
fn live(at: u64, now_ms: u64) -> bool {
    now_ms < at.saturating_add(PENDING_TTL_MS)
}

/// The friends of one home.
#[derive(Clone, Debug)]
pub struct Friends {
    home: Home,
}

impl Friends {
    /// The friends in `home`.
    pub fn of(home: &Home) -> Self {
        Friends { home: home.clone() }
    }

    /// Reads the document (empty if absent).
    pub fn load(&self) -> StoreResult<FriendsFile> {
        self.home.read_json(FRIENDS_FILE)
    }

    fn update<R>(&self, f: impl FnOnce(&mut FriendsFile) -> StoreResult<R>) -> StoreResult<R> {
        self.home.update_json(FRIENDS_FILE, f)
    }

    /// Records `friend` and settles every pending request with its key. A known friend keeps its name,
    /// session and date; its encryption key and non-empty hints are replaced. A new friend whose name is
    /// taken gets a `-2`, `-3`... suffix (its session keeps the display name and short id). Returns the
    /// stored record.
    pub fn add(&self, friend: Friend) -> StoreResult<Friend> {
        validate_peer_name(&friend.name)?;
        self.update(|doc| {
            doc.forget_pending(&friend.public_key);
            if let Some(existing) = doc.friends.iter_mut().find(|f| f.public_key == friend.public_key) {
                existing.encrypt_pub = friend.encrypt_pub;
                if !friend.hints.is_empty() {
                    existing.hints = friend.hints;
                }
                return Ok(existing.clone());
            }
            let mut friend = friend;
            friend.name = doc.free_name(&friend.name, &friend.public_key);
            friend.short_id = friend.public_key.short();
            doc.friends.push(friend.clone());
            Ok(friend)
        })
    }

    /// Forgets the friend `query` names (and any request pending with it). Returns its record; its grant
    /// in `access.json` is the caller's to revoke.
    pub fn remove(&self, query: &str, now_ms: u64) -> StoreResult<Friend> {
        self.update(|doc| {
            let key = doc.resolve(query, now_ms)?.public_key;
            doc.forget_pending(&key);
            let at = doc.friends.iter().position(|f| f.public_key == key);
            at.map(|at| doc.friends.remove(at)).ok_or_else(|| StoreError::NotFound(query.to_string()))
        })
    }

    /// Records a request this node sent, replacing an earlier one to the same key (only the latest can be
    /// accepted), and drops expired requests.
    pub fn add_outgoing(&self, request: OutgoingRequest, now_ms: u64) -> StoreResult<()> {
        self.update(|doc| {
            doc.expire(now_ms);
            doc.outgoing.retain(|o| o.to != request.to);
            doc.outgoing.push(request);
            Ok(())
        })
    }

    /// Records a verified request another node sent, replacing an earlier one from the same key (a replay
    /// changes nothing else), and drops expired requests. Past [`MAX_PENDING_INCOMING`] the oldest goes.
    pub fn add_incoming(&self, request: IncomingRequest, now_ms: u64) -> StoreResult<()> {
        validate_peer_name(&request.name)?;
        self.update(|doc| {
            doc.expire(now_ms);
            doc.incoming.retain(|i| i.from != request.from);
            doc.incoming.push(request);
            let over = doc.incoming.len().saturating_sub(MAX_PENDING_INCOMING);
            doc.incoming.drain(..over);
            Ok(())
        })
    }

    /// Declines the incoming request `query` names (see [`FriendsFile::resolve_incoming`]). Returns it.
    pub fn remove_incoming(&self, query: &str, now_ms: u64) -> StoreResult<IncomingRequest> {
        self.update(|doc| {
            let key = doc.resolve_incoming(query, now_ms)?.from;
            let at = doc.incoming.iter().position(|i| i.from == key);
            at.map(|at| doc.incoming.remove(at)).ok_or_else(|| StoreError::NotFound(query.to_string()))
        })
    }

    /// Drops the pending requests older than [`PENDING_TTL_MS`]; returns how many.
    pub fn expire(&self, now_ms: u64) -> StoreResult<usize> {
        self.update(|doc| Ok(doc.expire(now_ms)))
    }

    /// Follows a verified key rotation of a friend: its record moves to `new` (name, session and date
    /// kept; the old key accepted until `accepted_until`), and requests pending with the old key are
    /// dropped (they were signed for, or by, a key that is gone). Returns whether a friend had `old`.
    pub fn rotate_key(
        &self,
        old: &PublicId,
        new: &PublicId,
        new_encrypt_pub: [u8; 32],
        accepted_until: u64,
    ) -> StoreResult<bool> {
        if !self.load()?.friends.iter().any(|f| f.public_key == *old) {
            return Ok(false);
        }
        self.update(|doc| {
            doc.forget_pending(old);
            let Some(friend) = doc.friends.iter_mut().find(|f| f.public_key == *old) else {
                return Ok(false);
            };
            friend.public_key = *new;
            friend.short_id = new.short();
            friend.encrypt_pub = hex::encode(new_encrypt_pub);
            peer_ref::retire_key(&mut friend.old_keys, old, accepted_until);
            Ok(true)
        })
    }

    /// Adds an auto-accept rule (see `AutoAccept`). Returns its normal form and whether it is new.
    pub fn add_rule(&self, pattern: &str) -> StoreResult<(String, bool)> {
        self.update(|doc| doc.auto_accept.add(pattern))
    }

    /// Removes an auto-accept rule, given in any spelling of its normal form. Returns the normal form.
    pub fn remove_rule(&self, pattern: &str) -> StoreResult<String> {
        self.update(|doc| doc.auto_accept.remove(pattern))
    }
}

#[cfg(test)]
mod tests;
