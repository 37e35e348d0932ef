//! The agent's P2P tools for the owner's own turns ([`wopr_agent::P2pActions`]): each does what the
//! matching `wopr` command does, through the same code (the daemon's requests via [`dispatch`], or the
//! command's own helper), so a tool can do nothing the owner's commands could not and is checked the
//! same way. Only `SessionTools` hands them to a turn, and only to one at owner trust.
//!
//! Every action that changes something is recorded in the audit log as `tool:<name>`, accepted or
//! refused, with the session of the turn that asked: the node audits what peers ask of it, and this
//! records what the owner's AI asked of the node.

use serde_json::{Value, json};
use wopr_agent::BoxFuture;
use wopr_daemon::ipc::{DiscoverOp, FriendOp, InjectStatus, Request};
use wopr_daemon::service::types::FriendAcceptReply;
use wopr_identity::PublicId;
use wopr_store::{AuditEntry, Capability, Decision, PayloadSummary, SessionName, now_ms};

use super::Ctx;
use super::node::{dispatch, dispatch_as, peer_key};

/// The P2P actions of the owner's turns in `session`.
pub struct CliP2p {
    ctx: Ctx,
    session: SessionName,
}

impl CliP2p {
    /// The actions of turns of `session` in `home`.
    pub fn new(home: wopr_store::Home, session: SessionName) -> Self {
        CliP2p { ctx: Ctx { home }, session }
    }

    /// Records `result` of the tool `tool` (done with `what`, about `peer` or else this node) and
    /// passes it on. A log that cannot be written is reported to the model with the result: the action
    /// is done, and saying nothing would hide that it is unrecorded.
    fn audited<T>(
        &self,
        tool: &str,
        peer: Option<PublicId>,
        what: &str,
        result: Result<T, String>,
    ) -> Result<T, String> {
        let subject = peer.or_else(|| self.own_key());
        let Some(subject) = subject else { return result };
        let decision = if result.is_ok() { Decision::Accepted } else { Decision::Refused };
        let mut entry = AuditEntry::new(now_ms(), &subject, &format!("tool:{tool}"), decision)
            .with_payload(&PayloadSummary::of(what.as_bytes()));
        entry.session = Some(self.session.to_string());
        entry.reason = Some(match &result {
            Ok(_) => format!("by the owner's AI: {what}"),
            Err(why) => format!("by the owner's AI: {what}: {why}"),
        });
        let logged = self.ctx.home.audit().and_then(|log| log.record(&entry));
        match (result, logged) {
            (Ok(_), Err(e)) => Err(format!("done, but the audit log could not record it: {e}")),
            (result, _) => result,
        }
    }

    fn own_key(&self) -> Option<PublicId> {
        self.ctx.home.load_identity().ok().flatten().map(|l| l.identity.public_id())
    }

    /// The key a peer argument names, if it names a known one (for the audit record).
    fn known_key(&self, peer: &str) -> Option<PublicId> {
        peer_key(&self.ctx, peer).ok()
    }

    async fn request(&self, request: Request) -> Result<Value, String> {
        dispatch(&self.ctx, request, &mut |_| {}).await.map_err(|e| e.message)
    }
}

fn message(e: anyhow::Error) -> String {
    e.to_string()
}

impl wopr_agent::P2pActions for CliP2p {
    fn inject<'a>(
        &'a self,
        peer: &'a str,
        session: &'a str,
        message: &'a str,
        hop_count: u8,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let request = Request::Inject {
                peer: peer.into(),
                session: session.into(),
                text: message.into(),
                hops: hop_count,
            };
            let mut answer = String::new();
            let done = dispatch_as::<InjectStatus>(&self.ctx, request, &mut |d| answer.push_str(d))
                .await
                .map_err(|e| e.message);
            let done = self.audited(wopr_agent::P2P_INJECT, self.known_key(peer), message, done)?;
            Ok(match done.status.as_str() {
                "logged" => "logged there; no AI answer (the peer granted only `message`)".to_string(),
                _ => answer,
            })
        })
    }

    fn grant_access<'a>(
        &'a self,
        peer: &'a str,
        sessions: &'a [String],
        caps: &'a [Capability],
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let action = format!("tool:{}", wopr_agent::P2P_GRANT_ACCESS);
            match super::p2p::grant(&self.ctx, peer, sessions, caps, &action, Some(&self.session)) {
                Ok(g) => Ok(serde_json::to_value(&g).unwrap_or_default()),
                // A refused grant changed nothing; it is recorded as refused.
                Err(e) => {
                    let caps: Vec<&str> = caps.iter().map(|c| c.as_str()).collect();
                    let what = format!("grant {} on {} to {peer}", caps.join(","), sessions.join(","));
                    self.audited(wopr_agent::P2P_GRANT_ACCESS, self.known_key(peer), &what, Err(message(e)))
                }
            }
        })
    }

    fn rotate_keys<'a>(&'a self, reason: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            // Recorded under the key being retired: the record itself names the new one.
            let old = self.own_key();
            let done = super::rotate::rotate_and_tell(&self.ctx, reason)
                .await
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .map_err(|e| e.message);
            self.audited(wopr_agent::P2P_ROTATE_KEYS, old, &format!("rotate ({reason})"), done)
        })
    }

    fn friend_request<'a>(&'a self, peer: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let done = self.request(Request::Friend(FriendOp::Request { target: peer.into() })).await;
            self.audited(
                wopr_agent::FRIEND_REQUEST,
                self.known_key(peer),
                &format!("friend request to {peer}"),
                done,
            )
        })
    }

    fn friend_accept<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let request = Request::Friend(FriendOp::Accept { query: name.into() });
            let done = dispatch_as::<FriendAcceptReply>(&self.ctx, request, &mut |_| {})
                .await
                .map_err(|e| e.message);
            let friend = done.as_ref().ok().map(|a| a.friend.public_key);
            let done = done.map(|a| serde_json::to_value(a).unwrap_or_default());
            self.audited(
                wopr_agent::FRIEND_ACCEPT,
                friend,
                &format!("accept the friend request of {name}"),
                done,
            )
        })
    }

    fn friend_list(&self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let list = wopr_daemon::service::discover::friend_list(&self.ctx.home).map_err(|e| e.message)?;
            Ok(serde_json::to_value(list).unwrap_or_default())
        })
    }

    fn discover_join<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            // Topics live in the daemon: a node started for one call would leave the topic at once.
            let op = DiscoverOp::Join { topic: topic.into(), watch: false };
            let done = super::discover::daemon_op::<Value>(&self.ctx, op).await.map_err(message);
            self.audited(wopr_agent::DISCOVER_JOIN, None, &format!("join topic {topic}"), done)
        })
    }

    fn discover_peers<'a>(&'a self, topic: Option<&'a str>) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let op = DiscoverOp::Peers { topic: topic.map(String::from), all: false, only: None };
            super::discover::daemon_op(&self.ctx, op).await.map_err(message)
        })
    }

    fn discover_profile_set<'a>(&'a self, content: &'a Value) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let done = super::discover::set_profile(&self.ctx, content)
                .await
                .map(|set| json!({"profile": content, "bytes": set.bytes, "announced": set.announced}))
                .map_err(message);
            self.audited(wopr_agent::DISCOVER_PROFILE_SET, None, &format!("profile {content}"), done)
        })
    }
}
