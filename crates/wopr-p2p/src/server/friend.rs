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

impl Inner {
    pub(super) async fn friend_request(
        self: &Arc<Self>,
        remote: PublicId,
        standing: &Standing,
        conn: &Connection,
        m: &FriendRequest,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        let now = self.now();
        lock(&self.limits).connect(standing, now)?;
        if m.from.key != remote {
            return Err(Refusal::unauthorized("a friend request must come from the key that signed it"));
        }
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
            let reply = Message::ConnectResponse {
                accepted: false,
                sessions: Vec::new(),
                capabilities: Capabilities::default(),
                reason: "request received; it waits for the owner to accept it".into(),
            };
            let _ = stream.send_message(reply).await;
            stream.finish();
            return Ok(());
        }
        let home = self.home.clone();
        let my_name = my_friend_name(&home, &me);
        let accept = FriendAccept::new(&self.identity, &my_name, self.addr_hints(), m, now)
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        let card = m.from.clone();
        let friend =
            off_workers(move || befriend(&home, &card, &my_name, &me, true, now)).await.map_err(refusal)?;
        self.registry.promote(&remote, conn);
        self.record(
            &remote,
            &what,
            Decision::Accepted,
            Some(format!("auto-accepted as friend {} in {}", friend.name, friend.session)),
        )
        .await;
        let _ = stream.send_message(Message::FriendAccept(accept)).await;
        stream.finish();
        Ok(())
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
