//! Trust levels: who asked for a command decides how tightly it is confined.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much the source of a command is trusted.
///
/// Every P2P peer is [`Trust::Untrusted`]; `trusted` and `owner` are reserved for local sources (the CLI,
/// the daemon's own sessions, cron). The level only selects a [`crate::Policy`]: every level runs sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// The person running this installation.
    Owner,
    /// A local source the owner vouches for (local sessions, cron jobs).
    Trusted,
    /// Anything else, and always every P2P peer.
    Untrusted,
}

impl Trust {
    /// All levels, most trusted first.
    pub const ALL: [Trust; 3] = [Trust::Owner, Trust::Trusted, Trust::Untrusted];

    /// The lowercase name, as in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Owner => "owner",
            Trust::Trusted => "trusted",
            Trust::Untrusted => "untrusted",
        }
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trust level name that is not `owner`, `trusted` or `untrusted`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trust level {0:?}: expected owner, trusted or untrusted")]
pub struct UnknownTrust(pub String);

impl FromStr for Trust {
    type Err = UnknownTrust;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Trust::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownTrust(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_from_str_and_serde() {
        for t in Trust::ALL {
            assert_eq!(t.to_string().parse::<Trust>().unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(serde_json::from_str::<Trust>(&json).unwrap(), t);
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_accepted_ones_listed() {
        let err = "root".parse::<Trust>().unwrap_err();
        assert!(err.to_string().contains("owner, trusted or untrusted"));
    }
}
