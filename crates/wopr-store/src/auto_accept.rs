//! Auto-accept rules for friend requests (seed 004's `/auto-accept add "*"`), kept in `friends.json`.
//!
//! A rule is `*` (anyone), a name (`trusted-bot`), or alternatives `a|b` of those. Names match exactly and
//! case-sensitively (`Alice` is not `alice`, as their session names differ). A requester's name is
//! whatever it says it is, so a name rule admits anyone who picks that name; an alternative may instead
//! be a full id (64 hex or `wopr://<hex>`), which matches the requester's key and nothing else. Either
//! way an auto-accepted friend starts with `message` only (the caller's grant).

use serde::{Deserialize, Serialize};
use wopr_identity::PublicId;

use crate::peer_ref::validate_peer_name;
use crate::{StoreError, StoreResult};

/// The rule that admits every requester.
pub const ANYONE: &str = "*";

/// The auto-accept rules, in the order they were added, each in its normal form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AutoAccept(Vec<String>);

impl AutoAccept {
    /// The rules.
    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    /// Whether a request from `key`, calling itself `name`, is accepted without asking the owner.
    pub fn matches(&self, name: &str, key: &PublicId) -> bool {
        self.0.iter().any(|p| pattern_matches(p, name, key))
    }

    /// Adds `pattern` (validated, in normal form). Returns the normal form and whether it is new.
    pub(crate) fn add(&mut self, pattern: &str) -> StoreResult<(String, bool)> {
        let normal = normalize(pattern)?;
        if self.0.contains(&normal) {
            return Ok((normal, false));
        }
        self.0.push(normal.clone());
        Ok((normal, true))
    }

    /// Removes the rule `pattern` names (compared in normal form). Returns its normal form.
    pub(crate) fn remove(&mut self, pattern: &str) -> StoreResult<String> {
        let normal = normalize(pattern)?;
        let at = self.0.iter().position(|p| *p == normal).ok_or_else(|| {
            StoreError::NotFound(format!(
                "no auto-accept rule {normal:?}; `wopr friend auto-accept list` shows the rules"
            ))
        })?;
        Ok(self.0.remove(at))
    }
}

/// One alternative of a rule.
#[derive(Debug, PartialEq, Eq)]
enum Alternative {
    Anyone,
    Key(PublicId),
    Name(String),
}

impl Alternative {
    fn parse(alt: &str) -> StoreResult<Alternative> {
        if alt == ANYONE {
            return Ok(Alternative::Anyone);
        }
        if PublicId::looks_like_full_id(alt) {
            return PublicId::parse(alt)
                .map(Alternative::Key)
                .map_err(|e| StoreError::InvalidConfig(format!("invalid auto-accept key: {e}")));
        }
        validate_peer_name(alt).map_err(|e| {
            StoreError::InvalidConfig(format!("invalid auto-accept rule: {e}; or use * or a full id"))
        })?;
        Ok(Alternative::Name(alt.to_string()))
    }

    fn matches(&self, name: &str, key: &PublicId) -> bool {
        match self {
            Alternative::Anyone => true,
            Alternative::Key(k) => k == key,
            Alternative::Name(n) => n == name,
        }
    }

    fn normal(&self) -> String {
        match self {
            Alternative::Anyone => ANYONE.to_string(),
            Alternative::Key(k) => k.to_hex(),
            Alternative::Name(n) => n.clone(),
        }
    }
}

fn alternatives(pattern: &str) -> StoreResult<Vec<Alternative>> {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err(StoreError::InvalidConfig(
            "an empty auto-accept rule; use *, a name, a full id, or a|b".into(),
        ));
    }
    pattern.split('|').map(|alt| Alternative::parse(alt.trim())).collect()
}

/// The normal form of a rule: alternatives trimmed, keys as 64 lowercase hex, joined by `|`.
pub fn normalize(pattern: &str) -> StoreResult<String> {
    Ok(alternatives(pattern)?.iter().map(Alternative::normal).collect::<Vec<_>>().join("|"))
}

/// A stored rule that no longer parses (edited by hand) matches nothing.
fn pattern_matches(pattern: &str, name: &str, key: &PublicId) -> bool {
    alternatives(pattern).is_ok_and(|alts| alts.iter().any(|a| a.matches(name, key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicId {
        wopr_identity::Identity::generate().public_id()
    }

    fn rules(patterns: &[&str]) -> AutoAccept {
        let mut r = AutoAccept::default();
        for p in patterns {
            r.add(p).unwrap();
        }
        r
    }

    #[test]
    fn no_rule_accepts_no_one_and_star_accepts_everyone() {
        let k = key();
        assert!(!AutoAccept::default().matches("alice", &k));
        assert!(rules(&["*"]).matches("alice", &k));
        assert!(rules(&["bob|*"]).matches("anyone", &k));
    }

    #[test]
    fn a_name_matches_exactly_and_case_sensitively() {
        let (r, k) = (rules(&["trusted-bot"]), key());
        assert!(r.matches("trusted-bot", &k));
        for other in ["Trusted-bot", "trusted-bot2", "trusted", "", "trusted-bot "] {
            assert!(!r.matches(other, &k), "{other:?}");
        }
    }

    #[test]
    fn alternatives_match_any_of_their_names_and_are_stored_trimmed() {
        let (r, k) = (rules(&[" bot1 | bot2 "]), key());
        assert_eq!(r.patterns(), ["bot1|bot2"]);
        assert!(r.matches("bot1", &k) && r.matches("bot2", &k));
        assert!(!r.matches("bot3", &k) && !r.matches("bot1|bot2", &k));
    }

    #[test]
    fn a_full_id_matches_that_key_whatever_name_it_claims() {
        let (alice, mallory) = (key(), key());
        let r = rules(&[&alice.to_url()]);
        assert_eq!(r.patterns(), [alice.to_hex()]);
        assert!(r.matches("anything", &alice));
        assert!(!r.matches(&alice.to_hex(), &mallory), "a name that spells the key is not the key");
        let mixed = rules(&[&format!("bob|{}", alice.to_hex().to_uppercase())]);
        assert!(
            mixed.matches("x", &alice) && mixed.matches("bob", &mallory) && !mixed.matches("x", &mallory)
        );
    }

    #[test]
    fn malformed_rules_are_refused_and_nothing_is_added() {
        let mut r = AutoAccept::default();
        for bad in [
            "",
            " ",
            "a||b",
            "|",
            "bot*",
            "a b",
            "a/b",
            "**",
            &"x".repeat(65),
            &format!("{}0", "a".repeat(63)),
        ] {
            let err = r.add(bad).unwrap_err();
            assert!(err.is_invalid_input(), "{bad:?}: {err}");
        }
        assert!(r.patterns().is_empty());
    }

    #[test]
    fn rules_are_added_once_and_removed_by_any_spelling() {
        let mut r = AutoAccept::default();
        assert_eq!(r.add("a|b").unwrap(), ("a|b".to_string(), true));
        assert_eq!(r.add(" a | b ").unwrap(), ("a|b".to_string(), false));
        r.add("*").unwrap();
        assert_eq!(r.remove("a |b").unwrap(), "a|b");
        assert!(matches!(r.remove("a|b"), Err(StoreError::NotFound(_))));
        assert_eq!(r.patterns(), ["*"]);
        r.remove("*").unwrap();
        assert!(!r.matches("a", &key()));
    }

    #[test]
    fn a_hand_edited_rule_that_does_not_parse_matches_nothing() {
        let r: AutoAccept = serde_json::from_str(r#"["bot*", "a b"]"#).unwrap();
        assert!(!r.matches("bot1", &key()) && !r.matches("a b", &key()));
    }
}
