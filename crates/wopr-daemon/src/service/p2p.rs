//! Identity, peers, invites, access and the audit log.

use tokio::sync::mpsc;
use wopr_identity::{Identity, PublicId, RotationReason};
use wopr_p2p::{DoneStatus, Node, P2pError, RotationReport};
use wopr_store::{
    AuditEntry, Capability, Decision, ExitCode, Grant, Home, PayloadSummary, PeerRecord, SessionName, now_ms,
};

use super::error::Kind;
use super::types::{
    AuditQuery, ClaimRequest, Deleted, GrantRequest, IdentityView, InjectDone, InjectEvent, InviteReply,
    InviteRequest, PeerInjectRequest, PeerReason, RotateReply,
};
use super::{ApiError, ApiResult, Core};
use crate::AgentBackend;
use crate::bus::BusEvent;

/// The most audit entries one request returns.
const AUDIT_MAX: usize = 10_000;

/// [`peer_key`] for the API: a peer nobody knows is "not found".
fn known_peer(home: &Home, query: &str) -> ApiResult<PublicId> {
    peer_key(home, query).map_err(|e| ApiError::invalid(e.to_string()).of_kind(Kind::NotFound))
}

/// The key of a peer named in `access.json` or `peers.json` (name, short id, full id), or a full id.
pub fn peer_key(home: &Home, query: &str) -> Result<PublicId, P2pError> {
    let now = now_ms();
    if let Ok(g) = home.access().load().and_then(|a| a.resolve(query, now).map(|g| g.peer_key)) {
        return Ok(g);
    }
    if let Ok(p) = home.peers().load().and_then(|p| p.resolve(query, now).map(|p| p.public_key)) {
        return Ok(p);
    }
    PublicId::parse(query).map_err(|_| {
        P2pError::Invalid(format!(
            "no peer {query:?}: use a name or id from `wopr peers` / `wopr access`, or a full key"
        ))
    })
}

/// Grants `peer` (a name, short id or full id from `peers.json`/`access.json`, or a full key) `caps` on
/// every session of `sessions`, each of which must exist: `wopr access grant`, `POST /access` and the
/// agent's `p2p_grant_access` tool. The grant is written to `access.json` first, then recorded in the
/// audit log as `action` (with the session of the turn that asked, for the tool), so no grant is made
/// unrecorded by a failing log. Nothing is granted unless every session exists.
pub fn grant(
    home: &Home,
    peer: &str,
    sessions: &[String],
    caps: &[Capability],
    action: &str,
    asked_in: Option<&SessionName>,
) -> ApiResult<Grant> {
    let key = known_peer(home, peer)?;
    let mut names = Vec::with_capacity(sessions.len());
    for session in sessions {
        let name = SessionName::new(session)?;
        home.sessions().get(&name)?;
        names.push(name.to_string());
    }
    if caps.is_empty() || names.is_empty() {
        return Err(ApiError::invalid("a grant needs at least one session and one capability"));
    }
    let g = home.access().add(Grant::new(key, names.clone(), caps.iter().copied(), now_ms()))?;
    let caps: Vec<&str> = caps.iter().map(|c| c.as_str()).collect();
    let what = format!("granted {} on {}", caps.join(","), names.join(","));
    let mut entry = AuditEntry::new(now_ms(), &key, action, Decision::Accepted)
        .with_payload(&PayloadSummary::of(what.as_bytes()));
    entry.session = asked_in.map(|s| s.to_string());
    entry.reason = Some(format!("by the owner: {what}"));
    home.audit()?.record(&entry)?;
    Ok(g)
}

/// `30s`, `15m`, `12h`, `7d` to milliseconds.
pub fn parse_duration(s: &str) -> ApiResult<u64> {
    let bad = || ApiError::invalid(format!("invalid duration {s:?}: use e.g. 30m, 12h, 7d"));
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" | "" => 86_400_000,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(ApiError::invalid("an invite must be valid for some time"));
    }
    Ok(n.saturating_mul(ms))
}

/// The public parts of an identity.
pub fn identity_view(id: &Identity) -> IdentityView {
    let pk = id.public_id();
    IdentityView { short_id: pk.short(), public_key: pk.to_hex(), encrypt_pub: hex::encode(id.encrypt_pub()) }
}

/// What a rotation did, for the API, the socket and the CLI.
pub fn rotate_reply(
    record: &wopr_identity::RotationRecord,
    identity: IdentityView,
    report: &RotationReport,
) -> RotateReply {
    let pairs = |v: &[(PublicId, String)]| {
        v.iter().map(|(k, why)| PeerReason { peer: k.to_hex(), reason: why.clone() }).collect()
    };
    RotateReply {
        old_key: record.old_key.to_hex(),
        identity,
        delivered: report.delivered.iter().map(PublicId::to_hex).collect(),
        refused: pairs(&report.refused),
        pending: pairs(&report.pending),
    }
}

/// `DoneStatus` as the word the CLI prints.
pub fn status_word(s: DoneStatus) -> &'static str {
    match s {
        DoneStatus::Completed => "completed",
        DoneStatus::Logged => "logged",
        DoneStatus::Failed => "failed",
        DoneStatus::Cancelled => "cancelled",
    }
}

impl Core {
    fn identity_now(&self) -> ApiResult<Identity> {
        Ok(self
            .home
            .load_identity()?
            .ok_or_else(|| ApiError::failure("no identity yet: run `wopr id init`"))?
            .identity)
    }

    /// This installation's public identity.
    pub fn identity(&self) -> ApiResult<IdentityView> {
        Ok(identity_view(&self.identity_now()?))
    }

    /// Rotates the identity, restarts the endpoint under the new key (rejoining its topics) and tells
    /// every peer.
    pub async fn rotate(&self, reason: &str) -> ApiResult<RotateReply> {
        let parsed = RotationReason::parse(reason).ok_or_else(|| {
            ApiError::invalid(format!("unknown reason {reason:?}: use scheduled, compromise or upgrade"))
        })?;
        let mut guard = self.node.write().await;
        let old = guard.take().ok_or_else(ApiError::stopping)?;
        let config = old.config().clone();
        let topics: Vec<String> = old.topics().into_iter().map(|t| t.name).collect();
        let (identity, record) = match self.home.rotate_identity(parsed) {
            Ok(r) => r,
            Err(e) => {
                *guard = Some(old);
                return Err(e.into());
            }
        };
        super::retire(old).await;
        let view = identity_view(&identity);
        drop(identity);
        let node = match self.restart_node(&config).await {
            Ok(n) => std::sync::Arc::new(n),
            // The lock is still held and the slot empty: nothing else runs on a node meanwhile.
            Err(e) => return Err(e),
        };
        *guard = Some(node.clone());
        drop(guard);
        // Topics and telling the peers are network work: done without holding the lock.
        crate::server::join_topics(&node, &topics).await;
        let report = node.broadcast_rotation(&record).await;
        self.bus.send(BusEvent::IdentityRotated { new_key: record.new_key.to_hex() });
        let report = report.map_err(|e| {
            ApiError::failure(format!(
                "rotated to {}, but telling the peers failed ({e}); they learn the new key at their next connection",
                view.short_id
            ))
        })?;
        Ok(rotate_reply(&record, view, &report))
    }

    /// Starts the node under the identity on disk after a rotation. The old node's sockets can still be
    /// held for a moment by a request that has not let go: a few tries, then a fresh port on the same
    /// address (the new address goes to peers with the rotation).
    async fn restart_node(&self, config: &wopr_p2p::NodeConfig) -> ApiResult<Node> {
        let mut config = config.clone();
        for attempt in 0..4 {
            if attempt == 3 {
                config.bind = config.bind.map(|b| std::net::SocketAddr::new(b.ip(), 0));
            }
            let backend = AgentBackend::new(self.home.clone());
            match Node::start(self.identity_now()?, self.home.clone(), config.clone(), backend).await {
                Ok(n) => return Ok(n),
                Err(e) if attempt < 3 => {
                    tracing::warn!(%e, attempt, "restarting the endpoint after a rotation");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Whom this installation can reach.
    pub fn peers(&self) -> ApiResult<Vec<PeerRecord>> {
        Ok(self.home.peers().load()?.peers)
    }

    /// Renames a peer (in `peers.json`, and in `access.json` when it has a grant too).
    pub fn rename_peer(&self, peer: &str, name: &str) -> ApiResult<PeerRecord> {
        let p = self.home.peers().rename(peer, name, now_ms())?;
        self.bus.send(BusEvent::PeerChanged { peer: p.public_key.to_hex() });
        Ok(p)
    }

    /// A signed invite for `req.pubkey` to one session, carrying this daemon's addresses.
    pub async fn invite(&self, req: InviteRequest) -> ApiResult<InviteReply> {
        let identity = self.identity_now()?;
        let subject = known_peer(&self.home, &req.pubkey)?;
        let name = SessionName::new(&req.session)?;
        self.home.sessions().get(&name)?;
        let cap = req.cap.unwrap_or(Capability::Inject);
        let ttl = parse_duration(req.expires.as_deref().unwrap_or("7d"))?;
        let hints = self.node().await?.addr_hints();
        let token =
            wopr_p2p::create_invite(&identity, &subject, &[name.to_string()], &[cap], Some(ttl), hints)?;
        let qr_svg = qrcode::QrCode::new(token.as_bytes())
            .map(|q| q.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).build())
            .map_err(|e| ApiError::failure(format!("the invite does not fit a QR code: {e}")))?;
        Ok(InviteReply { token, qr_svg, expires_at: now_ms().saturating_add(ttl) })
    }

    /// Claims an invite: the issuer's sessions become reachable.
    pub async fn claim(&self, req: ClaimRequest) -> ApiResult<PeerRecord> {
        let peer = self.node().await?.claim(req.token.trim()).await?;
        self.bus.send(BusEvent::PeerChanged { peer: peer.public_key.to_hex() });
        Ok(peer)
    }

    /// Injects into a peer's session; the answer streams to `events`.
    pub async fn peer_inject(
        &self,
        peer: &str,
        req: PeerInjectRequest,
        hops: u8,
        events: &mpsc::UnboundedSender<InjectEvent>,
    ) -> ApiResult<InjectDone> {
        known_peer(&self.home, peer)?;
        SessionName::new(&req.session)?;
        let node = self.node().await?;
        let mut text = String::new();
        let status = node
            .inject_forwarded(peer, &req.session, &req.message, hops, |d| {
                text.push_str(d);
                let _ = events.send(InjectEvent::Delta { text: d.to_string() });
            })
            .await?;
        match status {
            DoneStatus::Completed | DoneStatus::Logged => {
                Ok(InjectDone { status: status_word(status).into(), text, provider: None, model: None })
            }
            other => Err(ApiError::new(
                ExitCode::Rejected,
                format!("the peer ended the answer: {}", status_word(other)),
            )),
        }
    }

    /// Who may reach my sessions.
    pub fn access(&self) -> ApiResult<Vec<Grant>> {
        Ok(self.home.access().load()?.grants)
    }

    /// Grants a peer a capability on a session.
    pub fn grant_access(&self, req: GrantRequest) -> ApiResult<Grant> {
        let cap = req.cap;
        let g = grant(
            &self.home,
            &req.peer,
            std::slice::from_ref(&req.session),
            &[cap],
            "api:access_grant",
            None,
        )?;
        self.bus.send(BusEvent::AccessChanged { peer: g.peer_key.to_hex() });
        Ok(g)
    }

    /// Removes a peer's grants and closes its connections now.
    pub async fn revoke(&self, peer: &str) -> ApiResult<Deleted> {
        let key = known_peer(&self.home, peer)?;
        let removed = match self.node().await {
            Ok(node) => node.revoke(&key)?,
            Err(_) => self.home.access().revoke(&key.to_hex(), None, now_ms())?.1,
        };
        self.bus.send(BusEvent::AccessChanged { peer: key.to_hex() });
        Ok(Deleted { name: key.to_hex(), removed: removed as u64 })
    }

    /// The audit log, newest last, filtered.
    pub fn audit(&self, q: &AuditQuery) -> ApiResult<Vec<AuditEntry>> {
        let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let key = given(&q.peer).map(|p| known_peer(&self.home, &p)).transpose()?;
        let action = given(&q.action);
        let decision = q.decision;
        let limit = match q.limit.unwrap_or(100) {
            l if l > AUDIT_MAX => return Err(ApiError::invalid(format!("limit is at most {AUDIT_MAX}"))),
            l => l,
        };
        let filtered = action.is_some() || decision.is_some();
        let mut entries = self.home.audit()?.list(key.as_ref(), (!filtered).then_some(limit))?;
        if filtered {
            entries.retain(|e| {
                action.as_deref().is_none_or(|a| e.action == a) && decision.is_none_or(|d| e.decision == d)
            });
            let extra = entries.len().saturating_sub(limit);
            entries.drain(..extra);
        }
        Ok(entries)
    }
}
