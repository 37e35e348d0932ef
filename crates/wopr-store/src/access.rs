//! `access.json`: who may reach my sessions, with which capabilities (the grants).
//!
//! A grant names one peer key, the sessions it covers and the capabilities it gives there. A peer may
//! hold several grants (say `inject` on one session and `message` on another); what it may do in a
//! session is the union of the grants naming that session. Grants come from claimed invites (the
//! invite's nonce is kept as `sourceInvite`) or from `wopr access grant`. When a peer rotates its key
//! the grants move to the new key and the old one stays accepted for a grace period (`oldKeys`).
//! Every change is a locked read-modify-write of the 0600 file.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use wopr_identity::PublicId;

use crate::peer_ref::{self, OldKey, PeerKeyed, validate_peer_name};
use crate::{Home, StoreError, StoreResult};

/// File name of the grants document in the home.
pub const ACCESS_FILE: &str = "access.json";

/// What a peer may do with a session. There are exactly two capabilities.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Log text to the conversation; no AI answer.
    Message,
    /// Send to the AI (sandboxed, trust `untrusted`) and stream its answer back.
    Inject,
}

impl Capability {
    /// `message` or `inject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Message => "message",
            Capability::Inject => "inject",
        }
    }

    /// Parses `message` or `inject`.
    pub fn parse(s: &str) -> StoreResult<Self> {
        match s.trim() {
            "message" => Ok(Capability::Message),
            "inject" => Ok(Capability::Inject),
            other => {
                Err(StoreError::InvalidConfig(format!("unknown capability {other:?}: use message or inject")))
            }
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The peer's current key.
    pub peer_key: PublicId,
    /// Local name for the peer (its short id until renamed).
    pub peer_name: String,
    /// Sessions the grant covers.
    pub sessions: BTreeSet<String>,
    /// What the peer may do there.
    pub capabilities: BTreeSet<Capability>,
    /// When the grant was made, ms since the Unix epoch.
    pub granted_at: u64,
    /// When the peer last made an accepted request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
    /// Hex nonce of the invite this grant came from (`None` for explicit grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_invite: Option<String>,
    /// Addresses the peer was last seen connecting from, so key rotations can reach it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<String>,
    /// Keys the peer rotated away from, accepted until their grace period ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_keys: Vec<OldKey>,
}

impl Grant {
    /// A new grant for `peer_key` named after its short id, made `now_ms`.
    pub fn new(
        peer_key: PublicId,
        sessions: impl IntoIterator<Item = String>,
        capabilities: impl IntoIterator<Item = Capability>,
        now_ms: u64,
    ) -> Self {
        Grant {
            peer_name: peer_key.short(),
            peer_key,
            sessions: sessions.into_iter().collect(),
            capabilities: capabilities.into_iter().collect(),
            granted_at: now_ms,
            last_seen: None,
            source_invite: None,
            addrs: Vec::new(),
            old_keys: Vec::new(),
        }
    }
}

impl PeerKeyed for Grant {
    fn key(&self) -> &PublicId {
        &self.peer_key
    }
    fn old_keys(&self) -> &[OldKey] {
        &self.old_keys
    }
    fn name(&self) -> &str {
        &self.peer_name
    }
}

/// The whole `access.json` document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessFile {
    /// Every grant, oldest first.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

impl AccessFile {
    /// The first grant of the peer `query` names (full id, `wopr://` id, short id or name).
    pub fn resolve(&self, query: &str, now_ms: u64) -> StoreResult<&Grant> {
        peer_ref::resolve(&self.grants, query, "grant", now_ms)
    }

    /// Grants held by `key` (its current key, or a retired key still in its grace period).
    pub fn grants_of<'a>(&'a self, key: &'a PublicId, now_ms: u64) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants.iter().filter(move |g| g.answers_to(key, now_ms))
    }

    /// What `key` may do in `session` at `now_ms`: the union of its grants naming the session.
    pub fn capabilities(&self, key: &PublicId, session: &str, now_ms: u64) -> BTreeSet<Capability> {
        self.grants_of(key, now_ms)
            .filter(|g| g.sessions.contains(session))
            .flat_map(|g| g.capabilities.iter().copied())
            .collect()
    }

    /// Every distinct current key holding a grant.
    pub fn keys(&self) -> BTreeSet<PublicId> {
        self.grants.iter().map(|g| g.peer_key).collect()
    }

    /// Every key of the peer whose grants answer to `key` at `now_ms`: the current key of each such grant
    /// and every key it rotated away from (in its grace period or not). Empty if no grant answers.
    pub fn chain_of(&self, key: &PublicId, now_ms: u64) -> BTreeSet<PublicId> {
        self.grants_of(key, now_ms)
            .flat_map(|g| std::iter::once(g.peer_key).chain(g.old_keys.iter().map(|o| o.key)))
            .collect()
    }

    fn name_of(&self, key: &PublicId) -> Option<String> {
        self.grants.iter().find(|g| g.peer_key == *key).map(|g| g.peer_name.clone())
    }
}

/// The grants of one home.
#[derive(Clone, Debug)]
pub struct Access {
    home: Home,
}

impl Access {
    /// The grants in `home`.
    pub fn of(home: &Home) -> Self {
        Access { home: home.clone() }
    }

    /// Reads the document (empty if absent).
    pub fn load(&self) -> StoreResult<AccessFile> {
        self.home.read_json(ACCESS_FILE)
    }

    fn update<R>(&self, f: impl FnOnce(&mut AccessFile) -> StoreResult<R>) -> StoreResult<R> {
        self.home.update_json(ACCESS_FILE, f)
    }

    /// Adds a grant. A grant of the same key with the same capabilities absorbs the new sessions instead
    /// of adding a second entry; a known peer keeps its name. Returns the stored grant.
    pub fn add(&self, grant: Grant) -> StoreResult<Grant> {
        validate_peer_name(&grant.peer_name)?;
        self.update(|doc| {
            let mut grant = grant;
            if let Some(name) = doc.name_of(&grant.peer_key) {
                grant.peer_name = name;
            }
            let same = doc
                .grants
                .iter_mut()
                .find(|g| g.peer_key == grant.peer_key && g.capabilities == grant.capabilities);
            Ok(match same {
                Some(existing) => {
                    existing.sessions.extend(grant.sessions);
                    if grant.source_invite.is_some() {
                        existing.source_invite = grant.source_invite;
                    }
                    existing.clone()
                }
                None => {
                    doc.grants.push(grant.clone());
                    grant
                }
            })
        })
    }

    /// Removes every grant of the peer `query` names, or only its grants' `session` if given. Returns the
    /// peer's key and how many grants were removed or narrowed.
    pub fn revoke(&self, query: &str, session: Option<&str>, now_ms: u64) -> StoreResult<(PublicId, usize)> {
        self.update(|doc| {
            let key = doc.resolve(query, now_ms)?.peer_key;
            let mut changed = 0;
            match session {
                None => doc.grants.retain(|g| {
                    let hit = g.peer_key == key;
                    changed += usize::from(hit);
                    !hit
                }),
                Some(s) => {
                    for g in doc.grants.iter_mut().filter(|g| g.peer_key == key) {
                        changed += usize::from(g.sessions.remove(s));
                    }
                    doc.grants.retain(|g| !g.sessions.is_empty());
                }
            }
            Ok((key, changed))
        })
    }

    /// Renames the peer `query` names in every one of its grants.
    pub fn rename(&self, query: &str, name: &str, now_ms: u64) -> StoreResult<PublicId> {
        validate_peer_name(name)?;
        self.update(|doc| {
            let key = doc.resolve(query, now_ms)?.peer_key;
            if doc.grants.iter().any(|g| g.peer_name == name && g.peer_key != key) {
                return Err(StoreError::AlreadyExists(format!("another peer is already named {name}")));
            }
            for g in doc.grants.iter_mut().filter(|g| g.peer_key == key) {
                g.peer_name = name.to_string();
            }
            Ok(key)
        })
    }

    /// Moves `old`'s grants to `new`, keeping `old` accepted until `accepted_until` (the keys `old` itself
    /// replaced keep their own dates). Returns how many grants moved (0 if `old` holds none, or they
    /// already moved); then the file is not written.
    pub fn rotate_key(&self, old: &PublicId, new: &PublicId, accepted_until: u64) -> StoreResult<usize> {
        if !self.load()?.grants.iter().any(|g| g.peer_key == *old) {
            return Ok(0);
        }
        self.update(|doc| {
            let mut moved = 0;
            for g in doc.grants.iter_mut().filter(|g| g.peer_key == *old) {
                g.peer_key = *new;
                g.old_keys.retain(|o| o.key != *old);
                g.old_keys.push(OldKey { key: *old, accepted_until });
                moved += 1;
            }
            Ok(moved)
        })
    }

    /// Records that `key` made an accepted request at `now_ms` from `addrs` (kept if empty).
    pub fn touch(&self, key: &PublicId, now_ms: u64, addrs: &[String]) -> StoreResult<()> {
        self.update(|doc| {
            for g in doc.grants.iter_mut().filter(|g| g.answers_to(key, now_ms)) {
                g.last_seen = Some(now_ms);
                if !addrs.is_empty() {
                    g.addrs = addrs.to_vec();
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn key() -> PublicId {
        wopr_identity::Identity::generate().public_id()
    }

    fn home() -> (tempfile::TempDir, Home) {
        let d = tempfile::tempdir().unwrap();
        let h = Home::at(d.path().join("home"));
        (d, h)
    }

    #[test]
    fn grants_are_stored_0600_and_capabilities_are_per_session() {
        let (_d, home) = home();
        let access = Access::of(&home);
        let bob = key();
        access.add(Grant::new(bob, ["dev".into()], [Capability::Inject], 1)).unwrap();
        access.add(Grant::new(bob, ["notes".into()], [Capability::Message], 2)).unwrap();
        access.add(Grant::new(bob, ["ops".into()], [Capability::Inject], 3)).unwrap();
        let doc = access.load().unwrap();
        assert_eq!(doc.grants.len(), 2, "same capabilities merge into one grant");
        assert_eq!(doc.capabilities(&bob, "dev", 0), BTreeSet::from([Capability::Inject]));
        assert_eq!(doc.capabilities(&bob, "notes", 0), BTreeSet::from([Capability::Message]));
        assert!(doc.capabilities(&bob, "other", 0).is_empty());
        assert!(doc.capabilities(&key(), "dev", 0).is_empty());
        let mode = std::fs::metadata(home.file(ACCESS_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let json = std::fs::read_to_string(home.file(ACCESS_FILE)).unwrap();
        assert!(json.contains("\"peerKey\"") && json.contains("\"inject\""), "{json}");
    }

    #[test]
    fn revoke_by_name_or_short_id_removes_the_peers_grants() {
        let (_d, home) = home();
        let access = Access::of(&home);
        let (bob, carol) = (key(), key());
        access.add(Grant::new(bob, ["dev".into(), "ops".into()], [Capability::Inject], 1)).unwrap();
        access.add(Grant::new(carol, ["dev".into()], [Capability::Message], 1)).unwrap();
        access.rename(&bob.short(), "bob", 0).unwrap();
        assert!(matches!(access.rename("carol-key", "bob", 0), Err(StoreError::NotFound(_))));
        assert!(matches!(access.rename(&carol.to_hex(), "bob", 0), Err(StoreError::AlreadyExists(_))));
        assert_eq!(access.revoke("bob", Some("ops"), 0).unwrap(), (bob, 1));
        assert_eq!(access.load().unwrap().capabilities(&bob, "dev", 0).len(), 1);
        assert_eq!(access.revoke("bob", None, 0).unwrap(), (bob, 1));
        let doc = access.load().unwrap();
        assert!(doc.capabilities(&bob, "dev", 0).is_empty());
        assert_eq!(doc.keys(), BTreeSet::from([carol]));
    }

    #[test]
    fn a_rotated_key_inherits_the_grants_and_the_old_key_works_until_the_grace_period_ends() {
        let (_d, home) = home();
        let access = Access::of(&home);
        let (old, new) = (key(), key());
        access.add(Grant::new(old, ["dev".into()], [Capability::Inject], 1)).unwrap();
        assert_eq!(access.rotate_key(&old, &new, 1_000).unwrap(), 1);
        let stamp = || {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(home.file(ACCESS_FILE)).unwrap();
            (m.ino(), m.mtime(), m.mtime_nsec())
        };
        let before = stamp();
        assert_eq!(access.rotate_key(&old, &new, 1_000).unwrap(), 0, "idempotent");
        assert_eq!(access.rotate_key(&key(), &key(), 1_000).unwrap(), 0);
        assert_eq!(stamp(), before, "nothing moved, so nothing was written");
        let doc = access.load().unwrap();
        assert_eq!(doc.capabilities(&new, "dev", 5_000).len(), 1);
        assert_eq!(doc.capabilities(&old, "dev", 999).len(), 1);
        assert!(doc.capabilities(&old, "dev", 1_000).is_empty());
        access.touch(&old, 500, &["127.0.0.1:5".into()]).unwrap();
        let g = &access.load().unwrap().grants[0];
        assert_eq!((g.last_seen, g.addrs.as_slice()), (Some(500), &["127.0.0.1:5".to_string()][..]));
    }

    #[test]
    fn a_chain_of_rotations_keeps_each_old_keys_own_grace_and_revoke_sees_every_key() {
        let (_d, home) = home();
        let access = Access::of(&home);
        let (k0, k1, k2) = (key(), key(), key());
        access.add(Grant::new(k0, ["dev".into()], [Capability::Inject], 1)).unwrap();
        access.rotate_key(&k0, &k1, 1_000).unwrap();
        access.rotate_key(&k1, &k2, 5_000).unwrap();
        let doc = access.load().unwrap();
        // k0's grace still ends when its own rotation said, not with k1's.
        assert_eq!(doc.capabilities(&k0, "dev", 999).len(), 1);
        assert!(doc.capabilities(&k0, "dev", 1_000).is_empty());
        assert_eq!(doc.capabilities(&k1, "dev", 4_999).len(), 1);
        assert!(doc.capabilities(&k1, "dev", 5_000).is_empty());
        // Whichever key names the peer, its whole chain is found (for closing connections on revoke).
        for k in [k0, k1, k2] {
            assert_eq!(doc.chain_of(&k, 500), BTreeSet::from([k0, k1, k2]));
        }
        assert!(doc.chain_of(&key(), 500).is_empty());
    }

    #[test]
    fn capabilities_parse_and_print() {
        assert_eq!(Capability::parse("inject").unwrap(), Capability::Inject);
        assert_eq!(Capability::Message.to_string(), "message");
        assert!(Capability::parse("owner").unwrap_err().is_invalid_input());
    }
}
