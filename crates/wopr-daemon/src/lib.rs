//! The WOPR daemon.
//!
//! One process per identity owns the P2P [`wopr_p2p::Node`]. It answers peers through [`AgentBackend`]
//! (the real agent, at trust `untrusted`), and serves its owner through one typed core
//! ([`service::Core`]) over two doors: the CLI's `$WOPR_HOME/daemon.sock` (a Unix socket inside the
//! 0700 home) and the HTTP API on `127.0.0.1:7437` ([`http`]: bearer token, loopback `Host` only, no
//! foreign `Origin`), which also serves the OpenAI-compatible door and the web UI. The CLI uses
//! [`client`] when a daemon runs and starts an in-process node otherwise, so there is always one
//! endpoint per identity.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
pub mod bus;
pub mod client;
pub mod discover;
pub mod friend;
pub mod http;
pub mod ipc;
mod judge;
pub mod lifecycle;
mod server;
pub mod service;
pub mod token;
mod trim;
mod turn_limits;

pub use backend::AgentBackend;
pub use server::{DaemonError, run};
pub use service::status_word;
pub use turn_limits::{DEFAULT_MAX_TURNS_PER_PEER, KEY_MAX_SANDBOX_RUNS, KEY_MAX_TURNS_PER_PEER, TurnLimits};
