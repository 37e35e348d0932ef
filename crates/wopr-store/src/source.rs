//! Where a stored message came from: the `source` column of the history in `wopr.db`.
//!
//! The stored text is `cli` (the owner, on this machine), `p2p:<64 hex>` (a peer, by its full key),
//! `cron:<job>`, `channel:<name>`, `plugin:<name>` or `skill:<name>`. The owner's own messages carry
//! `cli`; a peer's carry its key. Answers and tool results carry the source of the least trusted words
//! their turn saw, so whatever a peer's words produced stays marked as theirs. How far each source is
//! trusted is decided in one place, `wopr_agent::policy`; this module only names and parses them.

use std::fmt;

use serde::{Serialize, Serializer};
use wopr_identity::PublicId;

/// Who wrote a message (or, for answers and tool results, whose words their turn carried).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The person who runs this installation (the CLI, the daemon's own sessions).
    Owner,
    /// A P2P peer.
    Peer(PublicId),
    /// A scheduled job, by its name.
    Cron(String),
    /// A channel (a chat bridge), by its name.
    Channel(String),
    /// A plugin, by its name.
    Plugin(String),
    /// A skill, by its name.
    Skill(String),
    /// Text that names none of the above (a newer version's source, a damaged row). Never trusted.
    Unknown(String),
}

const OWNER: &str = "cli";

impl Source {
    /// Reads a stored source. Anything unrecognised is [`Source::Unknown`], never the owner.
    pub fn parse(stored: &str) -> Source {
        if stored == OWNER {
            return Source::Owner;
        }
        let unknown = || Source::Unknown(stored.to_string());
        let Some((kind, id)) = stored.split_once(':') else { return unknown() };
        if id.is_empty() {
            return unknown();
        }
        match kind {
            // Only the canonical form (64 lowercase hex), so the stored text names exactly one source.
            "p2p" => match PublicId::parse(id) {
                Ok(key) if key.to_hex() == id => Source::Peer(key),
                _ => unknown(),
            },
            "cron" => Source::Cron(id.to_string()),
            "channel" => Source::Channel(id.to_string()),
            "plugin" => Source::Plugin(id.to_string()),
            "skill" => Source::Skill(id.to_string()),
            _ => unknown(),
        }
    }

    /// Whether this is the owner.
    pub fn is_owner(&self) -> bool {
        *self == Source::Owner
    }

    /// For people: `you`, `p2p:<short id>`, `cron:<job>`...
    pub fn label(&self) -> String {
        match self {
            Source::Owner => "you".into(),
            Source::Peer(key) => format!("p2p:{}", key.short()),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Source {
    /// The stored text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Owner => f.write_str(OWNER),
            Source::Peer(key) => write!(f, "p2p:{}", key.to_hex()),
            Source::Cron(job) => write!(f, "cron:{job}"),
            Source::Channel(name) => write!(f, "channel:{name}"),
            Source::Plugin(name) => write!(f, "plugin:{name}"),
            Source::Skill(name) => write!(f, "skill:{name}"),
            Source::Unknown(text) => f.write_str(text),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl utoipa::PartialSchema for Source {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some(
                "Who wrote it: `cli` (the owner), `p2p:<key>`, `cron:<job>`, `channel:<name>`, ...",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Source {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips_and_junk_is_unknown_never_the_owner() {
        let key = wopr_identity::Identity::generate().public_id();
        for source in [
            Source::Owner,
            Source::Peer(key),
            Source::Cron("nightly".into()),
            Source::Channel("discord-1".into()),
            Source::Plugin("p".into()),
            Source::Skill("s".into()),
        ] {
            assert_eq!(Source::parse(&source.to_string()), source);
        }
        assert_eq!(Source::parse(&format!("p2p:{}", key.to_hex())).label(), format!("p2p:{}", key.short()));
        let upper = format!("p2p:{}", key.to_hex().to_uppercase());
        let url = format!("p2p:{}", key.to_url());
        for junk in ["", "CLI", "cli ", "ai", "p2p:", "p2p:abc", &upper, &url, "mars:1", "cron:"] {
            assert_eq!(Source::parse(junk), Source::Unknown(junk.to_string()), "{junk:?}");
        }
        assert_eq!(serde_json::to_value(Source::Owner).unwrap(), "cli");
    }
}
