//! The `$WOPR_HOME` directory.
//!
//! Owns the on-disk layout (DESIGN section 4): JSON documents written atomically with mode 0600 under a
//! lock file, session context files `sessions/<name>.md`, the trust records `access.json` (who may reach
//! my sessions), `peers.json` (whom I can reach) and `friends.json` (friends, pending friend requests,
//! auto-accept rules), and the SQLite database `wopr.db` (conversation
//! history, audit log, used invite nonces, outbox). It validates session and peer names so nothing can
//! escape `sessions/`. No network.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod access;
mod audit;
mod auto_accept;
mod config;
mod db;
mod error;
mod exit;
mod friends;
mod fsutil;
mod history;
mod home;
mod identity_file;
mod name;
mod outbox;
mod peer_ref;
mod peers;
mod sessions;
mod source;

pub use access::{ACCESS_FILE, Access, AccessFile, Capability, Grant};
pub use audit::{AuditEntry, AuditLog, AuditRetention, Decision, EXCERPT_MAX, PayloadSummary};
pub use auto_accept::{ANYONE, AutoAccept, normalize as normalize_auto_accept};
pub use config::{Config, ConfigKey};
pub use error::{StoreError, StoreResult};
pub use exit::ExitCode;
pub use friends::{
    FRIENDS_FILE, Friend, Friends, FriendsFile, IncomingRequest, MAX_PENDING_INCOMING, OutgoingRequest,
    PENDING_TTL_MS, friend_session_name,
};
pub use fsutil::{create_private_dir, write_atomic};
pub use history::{History, HistoryMessage, MessageStatus, Role, SourceSeen};
pub use home::Home;
pub use identity_file::Loaded as LoadedIdentity;
pub use name::{MAX_SESSION_NAME, SessionName};
pub use outbox::{Outbox, OutboxItem, ROTATION_KIND};
pub use peer_ref::{MAX_PEER_NAME, OldKey, PeerKeyed, resolve as resolve_peer, validate_peer_name};
pub use peers::{PEERS_FILE, PeerRecord, Peers, PeersFile};
pub use sessions::{SessionMeta, Sessions};
pub use source::Source;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
