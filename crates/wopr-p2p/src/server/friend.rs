//! Inbound friend requests and accepts (see `crate::friends`).
//!
//! Both count against the connect limits (per key and for everyone together). A request must be
//! signed by the connection's key, fresh and addressed to this node; then an auto-accept rule decides
//! whether it is answered with an accept at once or kept for the owner. An accept must answer one of
//! our pending requests to that key. Every decision is audited.

use std::sync::Arc;

use iroh::endpoint::Connection;
use wopr_identity::PublicId;
use wopr_proto::friend::{FriendAccept, FriendRequest};
use wopr_proto::invite::Capabilities;
use wopr_proto::message::Message;
use wopr_store::{Decision, IncomingRequest};

use super::limits::{Refusal, Standing};
use crate::P2pError;
use crate::friends::{befriend, my_friend_name};
use crate::inner::{Audited, Inner, lock, off_workers};
use crate::wire::SealedStream;

fn refusal(e: P2pError) -> Refusal {
    match e {
        P2pError::Refused { code, message, .. } => Refusal::new(code, message),
        P2pError::Invalid(m) => Refusal::invalid(m),
        other => {
            tracing::error!(%other, "friend protocol");
            Refusal::rejected("this node could not record the friendship")
        }
    }
}

/// What a verified friend request led to.
pub(crate) enum Received {
    /// No auto-accept rule matched: kept in `friends.json` for the owner.
    Kept,
    /// A rule matched: friends now; the accept goes back to the requester.
    Befriended(Box<FriendAccept>),
}

impl Inner {
    pub(super) async fn friend_request(
        self: &Arc<Self>,
        remote: PublicId,
        standing: &Standing,
        conn: &Connection,
        m: &FriendRequest,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        lock(&self.limits).connect(standing, self.now())?;
        if m.from.key != remote {
            return Err(Refusal::unauthorized("a friend request must come from the key that signed it"));
        }
        match self.receive_friend_request(m, None).await? {
            Received::Kept => {
                let reply = Message::ConnectResponse {
                    accepted: false,
                    sessions: Vec::new(),
                    capabilities: Capabilities::default(),
                    reason: "request received; it waits for the owner to accept it".into(),
                };
                let _ = stream.send_message(reply).await;
            }
            Received::Befriended(accept) => {
                self.registry.promote(&remote, conn);
                let _ = stream.send_message(Message::FriendAccept(*accept)).await;
            }
        }
        stream.finish();
        Ok(())
    }

    /// Checks a friend request signed by `m.from.key` (fresh, addressed to this node) and lets the
    /// auto-accept rules decide: befriend now, or keep it for the owner (with `topic`, the one it was
    /// posted in, if so). Audited either way; the caller has counted it against the connect limits.
    pub(crate) async fn receive_friend_request(
        self: &Arc<Self>,
        m: &FriendRequest,
        topic: Option<&str>,
    ) -> Result<Received, Refusal> {
        let now = self.now();
        let remote = m.from.key;
        m.verify(&self.me, now).map_err(|e| Refusal::new(e.code(), format!("friend request: {e}")))?;
        let what =
            Audited { action: "friend-request", signature: Some(m.signature.to_vec()), ..Audited::default() };
        let (home, me, request) = (self.home.clone(), self.me, m.clone());
        let rule = off_workers(move || {
            home.friends().load().map(|f| f.auto_accept.matches(&request.from.name, &request.from.key))
        })
        .await
        .map_err(|e| refusal(e.into()))?;
        if !rule {
            let pending = IncomingRequest {
                from: remote,
                name: m.from.name.clone(),
                line: m.to_line(),
                received_at: now,
                topic: topic.map(str::to_string),
            };
            let home = self.home.clone();
            off_workers(move || home.friends().add_incoming(pending, now))
                .await
                .map_err(|e| refusal(e.into()))?;
            self.record(
                &remote,
                &what,
                Decision::Accepted,
                Some(format!("friend request from {:?} kept for the owner", m.from.name)),
            )
            .await;
            return Ok(Received::Kept);
        }
        let home = self.home.clone();
        let my_name = my_friend_name(&home, &me);
        let accept = FriendAccept::new(&self.identity, &my_name, self.addr_hints(), m, now)
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        let card = m.from.clone();
        let friend =
            off_workers(move || befriend(&home, &card, &my_name, &me, true, now)).await.map_err(refusal)?;
        self.record(
            &remote,
            &what,
            Decision::Accepted,
            Some(format!("auto-accepted as friend {} in {}", friend.name, friend.session)),
        )
        .await;
        Ok(Received::Befriended(Box::new(accept)))
    }

    pub(super) async fn friend_accept(
        self: &Arc<Self>,
        remote: PublicId,
        standing: &Standing,
        conn: &Connection,
        m: &FriendAccept,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        lock(&self.limits).connect(standing, self.now())?;
        let what =
            Audited { action: "friend-accept", signature: Some(m.signature.to_vec()), ..Audited::default() };
        let friend = self.take_accept(m.clone(), Some(remote)).await.map_err(refusal)?;
        self.registry.promote(&remote, conn);
        self.record(
            &remote,
            &what,
            Decision::Accepted,
            Some(format!("friends with {} in {}", friend.name, friend.session)),
        )
        .await;
        let reply = Message::ConnectResponse {
            accepted: true,
            sessions: vec![friend.session.to_string()],
            capabilities: Capabilities::MESSAGE,
            reason: format!("friends now; your session here is {}", friend.session),
        };
        let _ = stream.send_message(reply).await;
        stream.finish();
        Ok(())
    }
}
