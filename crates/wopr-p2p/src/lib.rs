//! WOPR's P2P transport: protocol v3 over iroh QUIC.
//!
//! A [`Node`] is one iroh endpoint whose key is the WOPR identity key, answering ALPN `wopr/3`. Each
//! connection starts with the v3 handshake from `wopr-proto` on its first stream; each request then has a
//! bidirectional stream of its own, sealed with keys derived for that stream, carrying one signed
//! envelope one way and the answer the other way (`InjectDelta`s then `InjectDone`, `ClaimAccepted`, or an
//! `Error` with a code and, for limits, a retry time).
//!
//! - Invites: [`create_invite`] signs one (with [`Node::addr_hints`]); [`Node::claim`] claims it; the
//!   issuer checks it, records the grant in `access.json`, and the claimant records the issuer in
//!   `peers.json`.
//! - Inject: [`Node::inject`] streams the remote AI's answer to a callback. Inbound injects reach only
//!   granted sessions, via the [`SessionBackend`] the daemon provides, as trust `untrusted`.
//! - Access: [`Node::revoke`] removes the grants and closes the peer's connections at once.
//! - Rotation: [`Node::broadcast_rotation`] tells every known peer, queuing for the offline ones.
//! - Errors: [`P2pError::exit_code`] gives the CLI's exit code.
//!
//! Every inbound request is rate-limited per peer, replay-checked and audited in `wopr.db`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod client;
mod clock;
mod config;
mod conns;
mod deliver;
pub mod discovery;
mod endpoint;
mod error;
mod friends;
mod handshake;
mod inner;
mod invite;
mod lan;
mod netcheck;
mod node;
mod recorder;
mod server;
mod wire;

pub use backend::{BoxFuture, Judgement, PEER_TRUST, Ruling, SessionBackend};
pub use clock::{Clock, ManualClock};
pub use config::{
    ENV_BIND, ENV_MDNS, ENV_RELAY, ENV_RELAY_CA, KEY_BIND, KEY_MDNS, KEY_RELAY, KEY_RELAY_CA, NodeConfig,
    RelayChoice,
};
pub use deliver::RotationReport;
pub use endpoint::PeerPath;
pub use error::P2pError;
pub use friends::{Accepted, FriendOutcome, KEY_FRIEND_NAME, my_friend_name};
pub use invite::{create_invite, parse_invite, store_capabilities, wire_capabilities};
pub use lan::{LanState, MAX_LAN_PEERS, MDNS_SERVICE};
pub use netcheck::{
    BootstrapSource, LanReport, NatKind, NatReport, NetReport, PeerReport, RelayProbe, RelayReport,
};
pub use node::Node;
pub use server::limits::{CONNECT_LIMIT, CONNECT_TOTAL_LIMIT, MAX_STRANGERS, PeerLimits, REQUEST_LIMIT};
pub use wopr_proto::ErrorCode;
pub use wopr_proto::message::DoneStatus;
pub use wopr_proto::ratelimit::Limit;

/// Most P2P hops a piece of work may have travelled before peers refuse it.
pub const MAX_HOPS: u8 = server::MAX_HOPS;
/// How long a rotated-away key stays accepted: 24 hours after the rotation.
pub const ROTATION_GRACE_MS: u64 = server::ROTATION_GRACE_MS;
