//! `peers.json`: the peers I can reach (issuers of invites I claimed), with how to reach them.
//!
//! A peer record holds the peer's keys, what it granted me (sessions and capabilities), the address hints
//! from its invite, and when I last reached it. When a peer rotates its key, the record moves to the new
//! key and keeps the old one as accepted until the grace period ends. Names are unique, so a name always
//! means one peer.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use wopr_identity::PublicId;

use crate::access::Capability;
use crate::peer_ref::{self, OldKey, PeerKeyed, validate_peer_name};
use crate::{Home, StoreError, StoreResult};

/// File name of the peers document in the home.
pub const PEERS_FILE: &str = "peers.json";

/// One reachable peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerRecord {
    /// Local name (unique; the short id until renamed).
    pub name: String,
    /// The peer's current Ed25519 key (its WOPR id).
    pub public_key: PublicId,
    /// The peer's X25519 key, hex.
    #[serde(default)]
    pub encrypt_pub: String,
    /// Short id of `public_key` (first 8 hex of its SHA-256), for display.
    pub short_id: String,
    /// Sessions the peer granted me.
    #[serde(default)]
    pub sessions: BTreeSet<String>,
    /// What I may do there.
    #[serde(default)]
    pub capabilities: BTreeSet<Capability>,
    /// How to reach it: socket addresses and relay URLs.
    #[serde(default)]
    pub addrs: Vec<String>,
    /// When the record was created, ms since the Unix epoch.
    #[serde(default)]
    pub added_at: u64,
    /// When I last reached the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
    /// Keys the peer rotated away from, accepted until their grace period ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_keys: Vec<OldKey>,
}

impl PeerRecord {
    /// A record for `public_key`, named after its short id.
    pub fn new(public_key: PublicId, encrypt_pub: [u8; 32], now_ms: u64) -> Self {
        PeerRecord {
            name: public_key.short(),
            public_key,
            encrypt_pub: hex::encode(encrypt_pub),
            short_id: public_key.short(),
            sessions: BTreeSet::new(),
            capabilities: BTreeSet::new(),
            addrs: Vec::new(),
            added_at: now_ms,
            last_seen: None,
            old_keys: Vec::new(),
        }
    }
}

impl PeerKeyed for PeerRecord {
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

/// The whole `peers.json` document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersFile {
    /// Every peer, in the order they were added.
    #[serde(default)]
    pub peers: Vec<PeerRecord>,
}

impl PeersFile {
    /// The peer `query` names: full id, `wopr://` id, short id (an error if ambiguous) or name.
    pub fn resolve(&self, query: &str, now_ms: u64) -> StoreResult<&PeerRecord> {
        peer_ref::resolve(&self.peers, query, "peer", now_ms)
    }

    /// The peer with current key `key`, or with `key` as a retired key still accepted at `now_ms`.
    pub fn by_key(&self, key: &PublicId, now_ms: u64) -> Option<&PeerRecord> {
        self.peers
            .iter()
            .find(|p| p.public_key == *key)
            .or_else(|| self.peers.iter().find(|p| p.answers_to(key, now_ms)))
    }

    fn free_name(&self, wanted: &str, key: &PublicId) -> String {
        let taken = |n: &str| self.peers.iter().any(|p| p.name == n && p.public_key != *key);
        if !taken(wanted) {
            return wanted.to_string();
        }
        (2..).map(|i| format!("{wanted}-{i}")).find(|n| !taken(n)).unwrap_or_else(|| key.to_hex())
    }
}

/// The peers of one home.
#[derive(Clone, Debug)]
pub struct Peers {
    home: Home,
}

impl Peers {
    /// The peers in `home`.
    pub fn of(home: &Home) -> Self {
        Peers { home: home.clone() }
    }

    /// Reads the document (empty if absent).
    pub fn load(&self) -> StoreResult<PeersFile> {
        self.home.read_json(PEERS_FILE)
    }

    fn update<R>(&self, f: impl FnOnce(&mut PeersFile) -> StoreResult<R>) -> StoreResult<R> {
        self.home.update_json(PEERS_FILE, f)
    }

    /// Adds `record`, or merges it into the record of the same key: sessions and capabilities are added,
    /// the encryption key and non-empty address hints replace the old ones, and the existing name stays.
    /// A new record whose name is taken gets a `-2`, `-3`... suffix. Returns the stored record.
    pub fn upsert(&self, record: PeerRecord) -> StoreResult<PeerRecord> {
        validate_peer_name(&record.name)?;
        self.update(|doc| {
            if let Some(existing) = doc.peers.iter_mut().find(|p| p.public_key == record.public_key) {
                existing.sessions.extend(record.sessions);
                existing.capabilities.extend(record.capabilities);
                if !record.encrypt_pub.is_empty() {
                    existing.encrypt_pub = record.encrypt_pub;
                }
                if !record.addrs.is_empty() {
                    existing.addrs = record.addrs;
                }
                existing.last_seen = record.last_seen.or(existing.last_seen);
                return Ok(existing.clone());
            }
            let mut record = record;
            record.name = doc.free_name(&record.name, &record.public_key);
            record.short_id = record.public_key.short();
            doc.peers.push(record.clone());
            Ok(record)
        })
    }

    /// Renames the peer `query` names. Names are unique.
    pub fn rename(&self, query: &str, name: &str, now_ms: u64) -> StoreResult<PeerRecord> {
        validate_peer_name(name)?;
        self.update(|doc| {
            let key = doc.resolve(query, now_ms)?.public_key;
            if doc.peers.iter().any(|p| p.name == name && p.public_key != key) {
                return Err(StoreError::AlreadyExists(format!("another peer is already named {name}")));
            }
            let peer = doc
                .peers
                .iter_mut()
                .find(|p| p.public_key == key)
                .ok_or_else(|| StoreError::NotFound(format!("no peer {query}")))?;
            peer.name = name.to_string();
            Ok(peer.clone())
        })
    }

    /// Forgets the peer `query` names. Returns its record.
    pub fn remove(&self, query: &str, now_ms: u64) -> StoreResult<PeerRecord> {
        self.update(|doc| {
            let key = doc.resolve(query, now_ms)?.public_key;
            let at = doc
                .peers
                .iter()
                .position(|p| p.public_key == key)
                .ok_or_else(|| StoreError::NotFound(format!("no peer {query}")))?;
            Ok(doc.peers.remove(at))
        })
    }

    /// Moves the record of `old` to `new` (with its new encryption key), keeping `old` accepted until
    /// `accepted_until` (the keys `old` itself replaced keep their own dates); `addrs`, if not empty,
    /// replace the address hints. Returns whether a record moved; if none did, the file is not written.
    pub fn rotate_key(
        &self,
        old: &PublicId,
        new: &PublicId,
        new_encrypt_pub: [u8; 32],
        accepted_until: u64,
        addrs: &[String],
    ) -> StoreResult<bool> {
        if !self.load()?.peers.iter().any(|p| p.public_key == *old) {
            return Ok(false);
        }
        self.update(|doc| {
            let Some(peer) = doc.peers.iter_mut().find(|p| p.public_key == *old) else {
                return Ok(false);
            };
            peer.public_key = *new;
            peer.short_id = new.short();
            peer.encrypt_pub = hex::encode(new_encrypt_pub);
            peer_ref::retire_key(&mut peer.old_keys, old, accepted_until);
            if !addrs.is_empty() {
                peer.addrs = addrs.to_vec();
            }
            Ok(true)
        })
    }

    /// Records that the peer with `key` was reached at `now_ms`.
    pub fn touch(&self, key: &PublicId, now_ms: u64) -> StoreResult<()> {
        self.update(|doc| {
            for p in doc.peers.iter_mut().filter(|p| p.answers_to(key, now_ms)) {
                p.last_seen = Some(now_ms);
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

    fn alice(k: PublicId) -> PeerRecord {
        let mut r = PeerRecord::new(k, [7; 32], 1);
        r.name = "alice".into();
        r.sessions.insert("dev".into());
        r.capabilities.insert(Capability::Inject);
        r.addrs = vec!["127.0.0.1:4000".into()];
        r
    }

    #[test]
    fn upsert_merges_by_key_and_keeps_names_unique() {
        let (_d, home) = home();
        let peers = Peers::of(&home);
        let (a, other) = (key(), key());
        peers.upsert(alice(a)).unwrap();
        let mut again = PeerRecord::new(a, [8; 32], 2);
        again.sessions.insert("ops".into());
        let merged = peers.upsert(again).unwrap();
        assert_eq!(merged.name, "alice");
        assert_eq!(merged.sessions.len(), 2);
        assert_eq!(merged.addrs, ["127.0.0.1:4000"]);
        assert_eq!(merged.encrypt_pub, hex::encode([8; 32]));
        let second = peers.upsert(alice(other)).unwrap();
        assert_eq!(second.name, "alice-2");
        let doc = peers.load().unwrap();
        assert_eq!(doc.peers.len(), 2);
        assert_eq!(doc.resolve("alice", 0).unwrap().public_key, a);
        assert_eq!(doc.resolve(&other.short(), 0).unwrap().name, "alice-2");
        assert_eq!(doc.resolve(&other.to_url(), 0).unwrap().name, "alice-2");
        let mode = std::fs::metadata(home.file(PEERS_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn rename_and_remove() {
        let (_d, home) = home();
        let peers = Peers::of(&home);
        let (a, b) = (key(), key());
        peers.upsert(alice(a)).unwrap();
        peers.upsert(PeerRecord::new(b, [0; 32], 1)).unwrap();
        assert!(matches!(peers.rename(&b.short(), "alice", 0), Err(StoreError::AlreadyExists(_))));
        assert!(peers.rename(&b.short(), "bad name", 0).unwrap_err().is_invalid_input());
        assert_eq!(peers.rename(&b.short(), "bob", 0).unwrap().public_key, b);
        assert_eq!(peers.remove("bob", 0).unwrap().public_key, b);
        assert!(matches!(peers.load().unwrap().resolve("bob", 0), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn rotation_moves_the_record_and_accepts_the_old_key_for_the_grace_period() {
        let (_d, home) = home();
        let peers = Peers::of(&home);
        let (old, new) = (key(), key());
        peers.upsert(alice(old)).unwrap();
        assert!(peers.rotate_key(&old, &new, [9; 32], 1_000, &["127.0.0.1:5000".into()]).unwrap());
        let stamp = || {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(home.file(PEERS_FILE)).unwrap();
            (m.ino(), m.mtime(), m.mtime_nsec())
        };
        let before = stamp();
        assert!(!peers.rotate_key(&old, &new, [9; 32], 1_000, &[]).unwrap());
        assert!(!peers.rotate_key(&key(), &key(), [9; 32], 1_000, &[]).unwrap());
        assert_eq!(stamp(), before, "nothing moved, so nothing was written");
        let doc = peers.load().unwrap();
        let p = doc.resolve("alice", 0).unwrap();
        assert_eq!((p.public_key, p.short_id.clone()), (new, new.short()));
        assert_eq!(p.addrs, ["127.0.0.1:5000"]);
        assert_eq!(doc.by_key(&old, 999).unwrap().name, "alice");
        assert!(doc.by_key(&old, 1_000).is_none());
        peers.touch(&new, 42).unwrap();
        assert_eq!(peers.load().unwrap().peers[0].last_seen, Some(42));
    }
}
