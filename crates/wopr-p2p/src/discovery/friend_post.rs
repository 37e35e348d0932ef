//! Friend requests and accepts posted in a topic (topic message types 4 and 5, PROTOCOL §15.5), for a
//! peer seen in a topic but not reachable directly.
//!
//! The post reaches every member; all but the one it is addressed to drop it unread. The addressee
//! checks it as it would over a connection (signature, 5 minutes, addressed to it, then the connect
//! limits of the signer's key, so forged posts cannot spend a real key's budget; an accept must answer
//! one of its pending requests) and answers directly when it can, else in the topic again. A refusal
//! is audited at most once a minute per relaying neighbour, as other refused topic messages are:
//! nothing answers a post.

use std::sync::Arc;

use iroh_gossip::api::GossipSender;
use wopr_identity::PublicId;
use wopr_proto::Encode;
use wopr_proto::discovery::TopicMessage;
use wopr_proto::friend::{FriendAccept, FriendCard, FriendRequest};
use wopr_proto::message::Message;
use wopr_store::Decision;

use super::Discovery;
use crate::client::REPLY_TIMEOUT;
use crate::inner::{Audited, Inner, lock};
use crate::server::friend::Received;

impl Discovery {
    /// Where to post for `key`: `preferred` if this node is in it, else a joined topic that lists
    /// `key`; with its sender.
    fn post_topic(&self, key: &PublicId, preferred: Option<&str>) -> Option<(String, GossipSender)> {
        let state = lock(&self.state);
        if let Some(t) = preferred
            && let Some(j) = state.joined.get(t)
        {
            return Some((t.to_string(), j.sender.clone()));
        }
        let mut topics: Vec<(&String, &super::Joined)> = state.joined.iter().collect();
        topics.sort_by_key(|(t, _)| *t);
        topics
            .into_iter()
            .find(|(t, _)| state.table.get(t, key).is_some())
            .map(|(t, j)| (t.clone(), j.sender.clone()))
    }
}

impl Inner {
    /// Posts a friend message for `key` in `preferred` or a joined topic that lists `key`; returns the
    /// topic, or `None` when there is none (or the post could not go out).
    pub(crate) async fn post_friend_message(
        &self,
        key: &PublicId,
        message: TopicMessage,
        preferred: Option<&str>,
    ) -> Option<String> {
        let (topic, sender) = self.discovery.post_topic(key, preferred)?;
        match sender.broadcast(message.to_bytes().into()).await {
            Ok(()) => Some(topic),
            Err(e) => {
                tracing::debug!(%e, topic, "friend post");
                None
            }
        }
    }

    /// Sends `accept` to the requester `card`: directly, else in `topic` (where the request came from)
    /// or a topic that lists the requester. Returns the topic it was posted in, if it went that way, or
    /// why it could not be delivered at all.
    pub(crate) async fn deliver_friend_accept(
        self: &Arc<Self>,
        accept: FriendAccept,
        card: &FriendCard,
        topic: Option<&str>,
    ) -> Result<Option<String>, String> {
        let direct = Message::FriendAccept(accept.clone());
        let Err(e) = self.request(&card.key, &card.hints, direct, REPLY_TIMEOUT, &mut |_| {}).await else {
            return Ok(None);
        };
        match self.post_friend_message(&card.key, TopicMessage::FriendAccept(accept), topic).await {
            Some(topic) => Ok(Some(topic)),
            None => Err(e.to_string()),
        }
    }

    /// A friend request posted in `topic`, relayed by `from`.
    pub(crate) fn friend_request_in_topic(
        self: &Arc<Self>,
        topic: &str,
        request: FriendRequest,
        from: PublicId,
    ) {
        if request.to != self.me {
            return;
        }
        // The signature first, here: a forged post spawns nothing and spends no key's budget.
        if let Err(e) = request.verify(&self.me, self.now()) {
            return self.audit_friend_post(&from, "friend-request", topic, &e.to_string());
        }
        let (inner, topic) = (self.clone(), topic.to_string());
        tokio::spawn(async move {
            if !inner.admit_post(&request.from.key, &from, "friend-request", &topic).await {
                return;
            }
            match inner.receive_friend_request(&request, Some(&topic)).await {
                Ok(Received::Kept) => {}
                Ok(Received::Befriended(accept)) => {
                    if let Err(e) = inner.deliver_friend_accept(*accept, &request.from, Some(&topic)).await {
                        tracing::warn!(peer = %request.from.key.short(), %e, "could not send the friend accept");
                    }
                }
                Err(refusal) => inner.audit_friend_post(&from, "friend-request", &topic, &refusal.message),
            }
        });
    }

    /// A friend accept posted in `topic`, relayed by `from`.
    pub(crate) fn friend_accept_in_topic(
        self: &Arc<Self>,
        topic: &str,
        accept: FriendAccept,
        from: PublicId,
    ) {
        if accept.to != self.me {
            return;
        }
        if let Err(e) = accept.verify_signed_for(&self.me, self.now()) {
            return self.audit_friend_post(&from, "friend-accept", topic, &e.to_string());
        }
        let (inner, topic) = (self.clone(), topic.to_string());
        tokio::spawn(async move {
            let key = accept.from.key;
            if !inner.admit_post(&key, &from, "friend-accept", &topic).await {
                return;
            }
            let signature = accept.signature.to_vec();
            match inner.take_accept(accept, None).await {
                Ok(friend) => {
                    let what =
                        Audited { action: "friend-accept", signature: Some(signature), ..Audited::default() };
                    let why = format!(
                        "friends with {} in {} (accept posted in topic {topic})",
                        friend.name, friend.session
                    );
                    inner.record(&key, &what, Decision::Accepted, Some(why)).await;
                }
                Err(e) => inner.audit_friend_post(&from, "friend-accept", &topic, &e.to_string()),
            }
        });
    }

    /// Counts a verified post of `signer` against the connect limits of its key; a refusal is audited.
    /// Returns whether the post may be handled.
    async fn admit_post(
        &self,
        signer: &PublicId,
        from: &PublicId,
        action: &'static str,
        topic: &str,
    ) -> bool {
        let standing = self.standing(signer).await;
        let allowed = lock(&self.limits).connect(&standing, self.now());
        match allowed {
            Ok(()) => true,
            Err(refusal) => {
                self.audit_friend_post(from, action, topic, &refusal.message);
                false
            }
        }
    }

    fn audit_friend_post(&self, from: &PublicId, action: &'static str, topic: &str, reason: &str) {
        if lock(&self.limits).audit_flood(from, self.now()) {
            let what = Audited { action, ..Audited::default() };
            self.record_soon(
                from,
                &what,
                Decision::Refused,
                Some(format!("posted in topic {topic}: {reason}")),
            );
        }
    }
}
