//! How commands name a peer, and the rules for peer names.
//!
//! A peer is named by its full id (64 hex characters, or `wopr://<hex>`), its short id (the first 8 hex
//! characters of SHA-256 of the key), or the local name given to it. [`resolve`] applies those rules to
//! any list of records (grants in `access.json`, peers in `peers.json`): a full id matches the current
//! key or a rotated-away key still within its grace period; an exact name wins over a short id; a short
//! id that matches two different keys is an error that lists them.

use serde::{Deserialize, Serialize};
use wopr_identity::PublicId;

use crate::{StoreError, StoreResult};

/// Longest peer name, in characters.
pub const MAX_PEER_NAME: usize = 64;

/// A key a peer rotated away from, still accepted until `accepted_until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OldKey {
    /// The retired key.
    pub key: PublicId,
    /// Until when (ms since the Unix epoch) it is still accepted as this peer.
    pub accepted_until: u64,
}

/// Records `old` as retired, accepted until `accepted_until` (replacing an earlier entry of it).
pub(crate) fn retire_key(old_keys: &mut Vec<OldKey>, old: &PublicId, accepted_until: u64) {
    old_keys.retain(|o| o.key != *old);
    old_keys.push(OldKey { key: *old, accepted_until });
}

/// A record that belongs to one peer: its current key, retired keys and local name.
pub trait PeerKeyed {
    /// The peer's current key.
    fn key(&self) -> &PublicId;
    /// Keys the peer rotated away from.
    fn old_keys(&self) -> &[OldKey];
    /// The local name.
    fn name(&self) -> &str;

    /// The short id of the current key.
    fn short_id(&self) -> String {
        self.key().short()
    }

    /// Whether `key` is this peer's current key, or a retired key still accepted at `now_ms`.
    fn answers_to(&self, key: &PublicId, now_ms: u64) -> bool {
        self.key() == key || self.old_keys().iter().any(|o| o.key == *key && now_ms < o.accepted_until)
    }
}

/// Checks a peer name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`, and not something
/// that reads as a full id.
pub fn validate_peer_name(name: &str) -> StoreResult<()> {
    let refuse = |why: &str| StoreError::InvalidPeer(format!("invalid peer name {name:?}: {why}"));
    if name.is_empty() {
        return Err(refuse("it is empty"));
    }
    if name.chars().count() > MAX_PEER_NAME {
        return Err(refuse("it is longer than 64 characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(refuse(&format!("{c:?} is not allowed; use letters, digits and . _ -")));
    }
    if name.starts_with(['.', '-']) {
        return Err(refuse("it may not start with '.' or '-'"));
    }
    if PublicId::looks_like_full_id(name) {
        return Err(refuse("it looks like a public key"));
    }
    Ok(())
}

/// Finds the record `query` names among `items` (see the module docs). Several records may belong to
/// one key (grants); the first is returned. `what` names the list in errors ("peer", "grant").
pub fn resolve<'a, T: PeerKeyed>(items: &'a [T], query: &str, what: &str, now_ms: u64) -> StoreResult<&'a T> {
    let query = query.trim();
    if PublicId::looks_like_full_id(query) {
        let key = PublicId::parse(query).map_err(|e| StoreError::InvalidPeer(e.to_string()))?;
        return items
            .iter()
            .find(|i| i.key() == &key)
            .or_else(|| items.iter().find(|i| i.answers_to(&key, now_ms)))
            .ok_or_else(|| not_found(query, what));
    }
    if let Some(item) = items.iter().find(|i| i.name() == query) {
        return Ok(item);
    }
    let by_short: Vec<&T> = items.iter().filter(|i| i.short_id() == query.to_ascii_lowercase()).collect();
    match by_short.as_slice() {
        [] => Err(not_found(query, what)),
        [first, rest @ ..] if rest.iter().all(|r| r.key() == first.key()) => Ok(first),
        many => {
            let names: Vec<String> = many.iter().map(|m| format!("{} ({})", m.name(), m.key())).collect();
            Err(StoreError::InvalidPeer(format!(
                "short id {query} is ambiguous: it matches {}; use the full id or the name",
                names.join(", ")
            )))
        }
    }
}

fn not_found(query: &str, what: &str) -> StoreError {
    StoreError::NotFound(format!(
        "no {what} matches {query:?}: give a full id (64 hex or wopr://...), a short id or a name \
         (`wopr peers` and `wopr access` list them)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct P(PublicId, &'static str, Vec<OldKey>);
    impl PeerKeyed for P {
        fn key(&self) -> &PublicId {
            &self.0
        }
        fn old_keys(&self) -> &[OldKey] {
            &self.2
        }
        fn name(&self) -> &str {
            self.1
        }
    }

    fn key() -> PublicId {
        wopr_identity::Identity::generate().public_id()
    }

    #[test]
    fn a_peer_is_found_by_full_id_url_short_id_and_name() {
        let (a, b) = (key(), key());
        let items = [P(a, "alice", vec![]), P(b, "bob", vec![])];
        for q in [a.to_hex(), a.to_url(), a.short(), "alice".to_string(), format!("  {}  ", a.short())] {
            assert_eq!(resolve(&items, &q, "peer", 0).unwrap().0, a, "{q}");
        }
        assert!(matches!(resolve(&items, "carol", "peer", 0), Err(StoreError::NotFound(_))));
        assert!(matches!(resolve(&items, &key().to_hex(), "peer", 0), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn an_ambiguous_short_id_is_an_error_naming_the_candidates() {
        // Two distinct keys with one short id would take 2^32 tries to find; pretend instead.
        #[derive(Debug)]
        struct Colliding(PublicId, &'static str);
        impl PeerKeyed for Colliding {
            fn key(&self) -> &PublicId {
                &self.0
            }
            fn old_keys(&self) -> &[OldKey] {
                &[]
            }
            fn name(&self) -> &str {
                self.1
            }
            fn short_id(&self) -> String {
                "0badc0de".into()
            }
        }
        let (a, b) = (key(), key());
        let items = [Colliding(a, "alice"), Colliding(b, "bob")];
        let err = resolve(&items, "0badc0de", "peer", 0).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidPeer(m) if m.contains("alice") && m.contains("bob")),
            "{err}"
        );
        assert!(err.is_invalid_input());
        // Two grants of one peer share a short id without being ambiguous.
        let twice = [Colliding(a, "alice"), Colliding(a, "alice")];
        assert_eq!(resolve(&twice, "0badc0de", "grant", 0).unwrap().0, a);
        // A name wins over a short id.
        assert_eq!(resolve(&items, "bob", "peer", 0).unwrap().0, b);
    }

    #[test]
    fn a_rotated_away_key_resolves_until_its_grace_period_ends() {
        let (old, new) = (key(), key());
        let items = [P(new, "alice", vec![OldKey { key: old, accepted_until: 100 }])];
        assert_eq!(resolve(&items, &old.to_hex(), "peer", 99).unwrap().0, new);
        assert!(resolve(&items, &old.to_hex(), "peer", 100).is_err());
        assert!(items[0].answers_to(&old, 99) && !items[0].answers_to(&old, 100));
    }

    #[test]
    fn peer_names_are_validated() {
        for ok in ["alice", "bob-2", "a.b_c", "66687aad"] {
            assert!(validate_peer_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a b", "a/b", &"a".repeat(65), &"ab".repeat(32)] {
            assert!(matches!(validate_peer_name(bad), Err(StoreError::InvalidPeer(_))), "{bad}");
        }
    }
}
