//! The friend protocol (seed 004) over direct connections: requests, accepts, and the state a
//! friendship leaves.
//!
//! `B` asks `A` ([`Node::friend_request`]): a `FRIEND_REQUEST` signed by B goes to A's key, and B keeps
//! it in `friends.json` as pending. A verifies it (signature, 5 minutes, addressed to A, sent by the
//! connection's key); if an auto-accept rule matches, A befriends B at once and answers with its signed
//! `FRIEND_ACCEPT`; else A keeps the request for its owner (`wopr friend accept <name>`, which sends the
//! accept to B then). B takes an accept only if its `requestSig` is one of B's pending requests to that
//! very key. The same lines can travel by any channel: pasted into `wopr friend accept`.
//!
//! A friendship, on each side: a record in `friends.json`; a dedicated session
//! `friend:p2p:<name>(<shortid>)` for the friend, its only grant in `access.json`, with `message` only
//! (`wopr access grant` raises it); and a `peers.json` record pointing at the session the friend made
//! for us, so `wopr inject <friend>:<session>` works both ways.

use std::sync::Arc;

use wopr_identity::PublicId;
use wopr_proto::discovery::TopicMessage;
use wopr_proto::friend::{FriendAccept, FriendCard, FriendRequest, validate_friend_name};
use wopr_proto::message::Message;
use wopr_store::{
    Capability, Config, ConfigKey, Friend, Grant, Home, IncomingRequest, OutgoingRequest, PeerRecord,
    SessionName, friend_session_name,
};

use crate::client::REPLY_TIMEOUT;
use crate::inner::{Inner, off_workers};
use crate::{Node, P2pError};

/// Config key of the name this node gives itself in friend requests.
pub const KEY_FRIEND_NAME: &str = "friend.name";

/// How a friend request ended (`POST /friends/requests` answers it, tagged by `status`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum FriendOutcome {
    /// The other side's auto-accept rule matched: friends now.
    Accepted {
        /// The new friend.
        friend: Friend,
    },
    /// Delivered; it waits for the other side's owner.
    Pending {
        /// What the other side said.
        reason: String,
        /// The request's line, to send by another channel as well.
        line: String,
    },
    /// Not reachable directly, so posted in a topic that lists the peer; the answer comes back through
    /// it (or directly).
    Posted {
        /// The topic.
        topic: String,
        /// Why the direct connection failed.
        reason: String,
        /// The request's line, to send by another channel as well.
        line: String,
    },
    /// Not delivered (offline, unreachable, in no topic of ours); the request stays pending here.
    Undelivered {
        /// Why.
        reason: String,
        /// The request's line, to send by another channel.
        line: String,
    },
}

/// What accepting a request did.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The new friend.
    pub friend: Friend,
    /// The accept's line, for another channel if it was not delivered.
    pub line: String,
    /// How the accept reached the requester: `Ok(None)` directly, `Ok(Some(topic))` posted in a topic
    /// that lists it, `Err` why it could not be delivered.
    pub delivered: Result<Option<String>, String>,
}

/// The name this node gives itself: `friend.name`, else the profile's `name`, else its short id.
pub fn my_friend_name(home: &Home, me: &PublicId) -> String {
    let config = Config::of(home);
    let configured = ConfigKey::parse(KEY_FRIEND_NAME).ok().and_then(|k| config.get(&k).ok().flatten());
    let profile_name =
        ConfigKey::parse("discover.profile.name").ok().and_then(|k| config.get(&k).ok().flatten());
    [configured, profile_name]
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .find(|n| validate_friend_name(n).is_ok())
        .unwrap_or_else(|| me.short())
}

/// Records a friendship with `card` on this side (see the module docs): `friends.json`, the dedicated
/// session and its `message` grant, and the `peers.json` record of the session it made for us.
pub(crate) fn befriend(
    home: &Home,
    card: &FriendCard,
    my_name: &str,
    me: &PublicId,
    auto: bool,
    now: u64,
) -> Result<Friend, P2pError> {
    let mut friend = Friend::new(&card.name, card.key, card.encrypt_pub, card.hints.clone(), now)?;
    friend.auto_accepted = auto;
    let friend = home.friends().add(friend)?;
    if home.sessions().get(&friend.session).is_err() {
        let context =
            format!("Dedicated session for friend @{}. Everything in it is their words.", friend.name);
        home.sessions().create(&friend.session, &context, None, None)?;
    }
    let mut grant = Grant::new(card.key, [friend.session.to_string()], [Capability::Message], now);
    grant.addrs = card.hints.clone();
    home.access().add(grant)?;
    let theirs: SessionName = friend_session_name(my_name, me)?;
    let mut record = PeerRecord::new(card.key, card.encrypt_pub, now);
    record.name = friend.name.clone();
    record.sessions = [theirs.to_string()].into();
    record.capabilities = [Capability::Message].into();
    record.addrs = card.hints.clone();
    home.peers().upsert(record)?;
    Ok(friend)
}

impl Inner {
    /// Takes a verified-shape accept: checks it answers one of our pending requests to its sender, then
    /// records the friendship. `remote` is the connection's key when it came over the network.
    pub(crate) async fn take_accept(
        self: &Arc<Self>,
        accept: FriendAccept,
        remote: Option<PublicId>,
    ) -> Result<Friend, P2pError> {
        if remote.is_some_and(|r| r != accept.from.key) {
            return Err(P2pError::Refused {
                code: wopr_proto::ErrorCode::Unauthorized,
                message: "a friend accept must come from the key that signed it".into(),
                retry_after_ms: None,
            });
        }
        let (home, me, now) = (self.home.clone(), self.me, self.now());
        off_workers(move || {
            let doc = home.friends().load()?;
            let pending: Vec<FriendRequest> = doc
                .outgoing
                .iter()
                .filter(|o| o.to == accept.from.key)
                .filter_map(|o| FriendRequest::parse_line(&o.line).ok())
                .collect();
            accept.verify_among(&me, now, &pending).map_err(|e| P2pError::Refused {
                code: e.code(),
                message: e.to_string(),
                retry_after_ms: None,
            })?;
            let my_name = my_friend_name(&home, &me);
            befriend(&home, &accept.from, &my_name, &me, false, now)
        })
        .await
    }
}

impl Node {
    /// Asks `target` (a peer seen in a topic, a name or id from `peers.json` or `access.json`, or a full
    /// key) to become friends. See [`FriendOutcome`].
    pub async fn friend_request(&self, target: &str) -> Result<FriendOutcome, P2pError> {
        let inner = &self.inner;
        let (key, hints) = match inner.discovery.find(target) {
            Some((_, profile)) => (profile.author, profile.hints),
            None => self.target(target).await?,
        };
        if key == inner.me {
            return Err(P2pError::Invalid("that is this node's own key".into()));
        }
        let now = inner.now();
        let my_name = my_friend_name(&inner.home, &inner.me);
        let request = FriendRequest::new(&inner.identity, &my_name, inner.addr_hints(), key, now)
            .map_err(|e| P2pError::Invalid(format!("cannot write the friend request: {e}")))?;
        let line = request.to_line();
        let pending = OutgoingRequest { to: key, name: target.to_string(), line: line.clone(), sent_at: now };
        inner.home.friends().add_outgoing(pending, now)?;
        let direct = Message::FriendRequest(request.clone());
        let reply = inner.request(&key, &hints, direct, REPLY_TIMEOUT, &mut |_| {}).await;
        match reply {
            Ok(Message::FriendAccept(accept)) => {
                Ok(FriendOutcome::Accepted { friend: inner.take_accept(accept, Some(key)).await? })
            }
            Ok(Message::ConnectResponse { reason, .. }) => Ok(FriendOutcome::Pending { reason, line }),
            Ok(other) => Err(P2pError::Protocol {
                peer: key.short(),
                reason: format!("friend request answered with message type {}", other.type_byte()),
            }),
            Err(e @ P2pError::Refused { .. }) => Err(e),
            Err(e) => {
                let reason = e.to_string();
                match inner.post_friend_message(&key, TopicMessage::FriendRequest(request), None).await {
                    Some(topic) => Ok(FriendOutcome::Posted { topic, reason, line }),
                    None => Ok(FriendOutcome::Undelivered { reason, line }),
                }
            }
        }
    }

    /// Accepts a friend request: one waiting here (by the name or id it came with), or a pasted
    /// `FRIEND_REQUEST` line. Befriends the requester and sends it the accept.
    pub async fn friend_accept(&self, query: &str) -> Result<Accepted, P2pError> {
        let inner = &self.inner;
        let now = inner.now();
        let (request, verify_at, topic) = if query.trim_start().starts_with("FRIEND_REQUEST") {
            let r = FriendRequest::parse_line(query).map_err(|e| P2pError::Invalid(e.to_string()))?;
            (r, now, None)
        } else {
            let doc = inner.home.friends().load()?;
            let incoming: IncomingRequest = doc.resolve_incoming(query, now)?.clone();
            let r =
                FriendRequest::parse_line(&incoming.line).map_err(|e| P2pError::Invalid(e.to_string()))?;
            // It was fresh when it arrived; the owner may take longer than 5 minutes to answer.
            (r, incoming.received_at, incoming.topic)
        };
        request
            .verify(&inner.me, verify_at)
            .map_err(|e| P2pError::Invalid(format!("friend request: {e}")))?;
        let my_name = my_friend_name(&inner.home, &inner.me);
        let accept = FriendAccept::new(&inner.identity, &my_name, inner.addr_hints(), &request, now)
            .map_err(|e| P2pError::Invalid(e.to_string()))?;
        let (home, me, card) = (inner.home.clone(), inner.me, request.from.clone());
        let name = my_name.clone();
        let friend = off_workers(move || befriend(&home, &card, &name, &me, false, now)).await?;
        let line = accept.to_line();
        let delivered = inner.deliver_friend_accept(accept, &request.from, topic.as_deref()).await;
        Ok(Accepted { friend, line, delivered })
    }

    /// Takes a pasted `FRIEND_ACCEPT` line that answers one of our pending requests.
    pub async fn friend_take_accept_line(&self, line: &str) -> Result<Friend, P2pError> {
        let accept = FriendAccept::parse_line(line).map_err(|e| P2pError::Invalid(e.to_string()))?;
        self.inner.take_accept(accept, None).await
    }

    /// Ends a friendship: forgets the friend and revokes its grant (closing its connections).
    pub fn friend_remove(&self, query: &str) -> Result<Friend, P2pError> {
        let friend = self.inner.home.friends().remove(query, self.inner.now())?;
        self.revoke(&friend.public_key)?;
        Ok(friend)
    }
}
