//! The WOPR daemon.
//!
//! One process per identity owns the P2P [`wopr_p2p::Node`]. It answers peers through [`AgentBackend`]
//! (the real agent, at trust `untrusted`) and serves the local CLI over `$WOPR_HOME/daemon.sock`, a Unix
//! socket inside the 0700 home, so only the owner can talk to it. The CLI uses [`client`] when a daemon
//! runs and starts an in-process node otherwise, so there is always one endpoint per identity.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
pub mod client;
pub mod discover;
pub mod friend;
pub mod ipc;
mod judge;
pub mod lifecycle;
mod server;
mod turn_limits;

pub use backend::AgentBackend;
pub use server::{DaemonError, report_json, run, status_word};
pub use turn_limits::{DEFAULT_MAX_TURNS_PER_PEER, KEY_MAX_SANDBOX_RUNS, KEY_MAX_TURNS_PER_PEER, TurnLimits};
