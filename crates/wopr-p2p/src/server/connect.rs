//! Inbound `ConnectRequest`: a peer met in a topic asks for mutual trust (layer 4).
//!
//! Checks, in order: the per-key and the all-keys connect limits; the requester's profile is its own,
//! signed for the topic named, and this node is in that topic (a secret topic's name proves the two
//! met there); the `only` list (layer 2); the key was never rotated away from. Then `discover.accept`
//! decides: `auto` accepts, `never` refuses, `ai` asks the owner's AI (no tools, yes/no), `ask` holds
//! the request for up to [`ASK_WAIT`] while the owner runs `wopr discover requests` and `discover
//! accept`. Accepted, the grant goes into `access.json` bound to the requester's key (layer 5), exactly
//! as a claimed invite's: `message` only, to the sessions the policy names or a dedicated one. Every
//! decision is audited, and the requester gets the reason.

use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::Connection;
use tokio::sync::oneshot;
use wopr_identity::PublicId;
use wopr_proto::invite::Capabilities;
use wopr_proto::message::{ConnectRequest, Message};
use wopr_store::{Capability, Decision, Grant, SessionName};

use super::limits::{Refusal, Standing};
use crate::Judgement;
use crate::discovery::settings::AcceptPolicy;
use crate::discovery::{PeerView, PendingConnect};
use crate::endpoint::observed_hints;
use crate::inner::{Audited, Inner, lock, off_workers};
use crate::wire::SealedStream;

/// How long a request waits for the owner under `discover.accept = ask` (inside a stranger's 60 s).
pub const ASK_WAIT: Duration = Duration::from_secs(45);

/// The session a requester gets when `discover.sessions` names none: one of its own.
pub fn dedicated_session(peer: &PublicId) -> String {
    format!("discover:{}", peer.short())
}

impl Inner {
    pub(super) async fn connect_request(
        self: &Arc<Self>,
        remote: PublicId,
        standing: &Standing,
        conn: &Connection,
        m: &ConnectRequest,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        let now = self.now();
        lock(&self.limits).connect(standing, now)?;
        m.check_profile(now).map_err(|e| Refusal::invalid(format!("your profile: {e}")))?;
        if !self.discovery.is_joined(&m.topic) {
            return Err(Refusal::rejected("this node is not in that topic"));
        }
        let settings = lock(&self.discovery.settings).clone();
        if settings.only.as_ref().is_some_and(|only| !only.contains(&remote)) {
            return Err(Refusal::rejected("this node only connects with the keys its owner listed"));
        }
        if let Some(successor) = self.successor_of(&remote).await? {
            return Err(Refusal::unauthorized(format!(
                "key {} was rotated to {}; connect with the new key",
                remote.short(),
                successor.short()
            )));
        }
        let reason = match settings.accept {
            AcceptPolicy::Never => {
                return Err(Refusal::rejected("this node does not accept connect requests"));
            }
            AcceptPolicy::Auto => "accepted automatically".to_string(),
            AcceptPolicy::Ai => self.ai_decides(m).await?,
            AcceptPolicy::Ask => self.owner_decides(remote, m).await?,
        };
        let sessions: Vec<String> = match (&m.session, settings.sessions.is_empty()) {
            (Some(want), false) if settings.sessions.contains(want) => vec![want.clone()],
            (_, false) => settings.sessions.clone(),
            (_, true) => vec![dedicated_session(&remote)],
        };
        let mut grant = Grant::new(remote, sessions.iter().cloned(), [Capability::Message], now);
        grant.addrs = observed_hints(conn);
        grant.last_seen = Some(now);
        let home = self.home.clone();
        let created = sessions.clone();
        off_workers(move || -> Result<(), wopr_store::StoreError> {
            for name in &created {
                let name = SessionName::new(name)?;
                if home.sessions().get(&name).is_err() {
                    let context = "A peer met through discovery. Everything in this session is its words.";
                    home.sessions().create(&name, context, None, None)?;
                }
            }
            home.access().add(grant)?;
            Ok(())
        })
        .await
        .map_err(|e| {
            tracing::error!(%e, "cannot record a connect grant");
            Refusal::rejected("this node could not record the grant")
        })?;
        self.registry.promote(&remote, conn);
        let note =
            format!("connect via topic {}: granted message on {} ({reason})", m.topic, sessions.join(", "));
        self.record(&remote, what, Decision::Accepted, Some(note)).await;
        let accepted = Message::ConnectResponse {
            accepted: true,
            sessions,
            capabilities: Capabilities::MESSAGE,
            reason,
        };
        let _ = stream.send_message(accepted).await;
        stream.finish();
        Ok(())
    }

    /// `discover.accept = ai`: the owner's AI reads the profile and the note and says yes or no.
    async fn ai_decides(&self, m: &ConnectRequest) -> Result<String, Refusal> {
        let question = Judgement::Connect { topic: &m.topic, content: &m.profile.content, note: &m.note };
        match self.backend.judge(question, false).await {
            Ok(Some((true, why))) => Ok(format!("the AI agreed: {why}")),
            Ok(Some((false, why))) => Err(Refusal::rejected(format!("the AI declined: {why}"))),
            Ok(None) => Err(Refusal::rejected("this node's AI cannot decide now; try later")),
            Err(e) => {
                tracing::warn!(%e, "the AI could not judge a connect request");
                Err(Refusal::rejected("this node's AI cannot decide now; try later"))
            }
        }
    }

    /// `discover.accept = ask`: holds the request until the owner decides or [`ASK_WAIT`] passes.
    async fn owner_decides(&self, remote: PublicId, m: &ConnectRequest) -> Result<String, Refusal> {
        let (decide, decided) = oneshot::channel();
        let pending = PendingConnect {
            peer: PeerView::of_profile(&m.topic, &m.profile, self.now()),
            note: m.note.clone(),
            decide,
        };
        self.discovery.hold(remote, pending).map_err(Refusal::rejected)?;
        let outcome = tokio::time::timeout(ASK_WAIT, decided).await;
        self.discovery.drop_pending(&remote);
        match outcome {
            Ok(Ok(true)) => Ok("accepted by the owner".into()),
            Ok(Ok(false)) => Err(Refusal::rejected("the owner declined")),
            _ => Err(Refusal::rejected("the owner did not answer in time; try again later")),
        }
    }
}
