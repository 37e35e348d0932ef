//! Inbound `Claim`: an invite's subject turning the token into a grant.
//!
//! Checks, in order: 5 claims per minute per remote key; `verify_claim` (issued by me, my signature,
//! not expired, remote key = subject); the subject key was never rotated away from (an invite to a
//! retired key would otherwise give it a grant of its own, outliving its grace period); the single-use
//! nonce, recorded in `wopr.db` (a store failure refuses the claim). Then the grant goes into
//! `access.json` and the claimant gets `ClaimAccepted`.

use std::sync::Arc;

use iroh::endpoint::Connection;
use wopr_identity::PublicId;
use wopr_proto::invite::{UsedNonces, verify_claim};
use wopr_proto::message::{Claim, Message};
use wopr_store::{AuditLog, Decision, Grant};

use super::limits::{Kind, Refusal, Standing};
use crate::endpoint::observed_hints;
use crate::inner::{Audited, Inner, lock, off_workers};
use crate::invite::store_capabilities;
use crate::wire::SealedStream;

/// The issuer's used-nonce set, in `wopr.db`.
struct NonceTable<'a> {
    audit: &'a AuditLog,
    claimant: PublicId,
}

impl UsedNonces for NonceTable<'_> {
    fn mark_used(&mut self, nonce: &[u8; 16], expires_ms: u64) -> bool {
        self.audit.mark_nonce_used(nonce, expires_ms, &self.claimant, wopr_store::now_ms()).unwrap_or_else(
            |e| {
                // Fail closed: an unrecordable nonce must not allow the invite to be claimed twice.
                tracing::error!(%e, "cannot record an invite nonce; refusing the claim");
                false
            },
        )
    }
}

impl Inner {
    pub(super) async fn claim(
        self: &Arc<Self>,
        remote: PublicId,
        standing: &Standing,
        conn: &Connection,
        m: &Claim,
        what: &Audited,
        stream: &mut SealedStream,
    ) -> Result<(), Refusal> {
        let now = self.now();
        lock(&self.limits).check(Kind::Claim, standing, now)?;
        let verified = verify_claim(&m.token, &self.me, &remote, now)
            .map_err(|e| Refusal::new(e.code(), e.to_string()))?;
        if let Some(successor) = self.successor_of(&remote).await? {
            return Err(Refusal::unauthorized(format!(
                "key {} was rotated to {}: invites to the old key no longer count; ask for an invite to the new one",
                remote.short(),
                successor.short()
            )));
        }
        let inner = self.clone();
        let token = off_workers(move || {
            let audit = lock(&inner.audit);
            verified.consume(&mut NonceTable { audit: &audit, claimant: remote })
        })
        .await
        .map_err(|e| Refusal::new(e.code(), e.to_string()))?;

        let mut grant =
            Grant::new(remote, token.sessions.iter().cloned(), store_capabilities(token.capabilities), now);
        grant.source_invite = Some(hex::encode(token.nonce));
        grant.addrs = observed_hints(conn);
        grant.last_seen = Some(now);
        let home = self.home.clone();
        off_workers(move || home.access().add(grant)).await.map_err(|e| {
            tracing::error!(%e, "cannot record a claimed grant");
            Refusal::rejected("the issuer could not record the grant; ask it to check its access.json")
        })?;
        // The claimant is a known peer now, on this very connection.
        self.registry.promote(&remote, conn);
        self.record(
            &remote,
            what,
            Decision::Accepted,
            Some(format!("granted {}", token.sessions.join(", "))),
        )
        .await;
        let accepted = Message::ClaimAccepted { sessions: token.sessions, capabilities: token.capabilities };
        let _ = stream.send_message(accepted).await;
        stream.finish();
        Ok(())
    }
}

impl Inner {
    /// The current key of the peer that rotated away from `key`, if any did (in its grace period or
    /// not), per `access.json` and `peers.json`.
    pub(super) async fn successor_of(&self, key: &PublicId) -> Result<Option<PublicId>, Refusal> {
        let retired = |old: &[wopr_store::OldKey]| old.iter().any(|o| o.key == *key);
        let access = self.access_doc().await.map_err(Refusal::rejected)?;
        let peers = self.peers_doc().await.map_err(|e| {
            tracing::error!(%e, "cannot read peers.json");
            Refusal::rejected("this node cannot read its peers right now")
        })?;
        let granted = access.grants.iter().find(|g| g.peer_key != *key && retired(&g.old_keys));
        let known = peers.peers.iter().find(|p| p.public_key != *key && retired(&p.old_keys));
        Ok(granted.map(|g| g.peer_key).or(known.map(|p| p.public_key)))
    }
}
