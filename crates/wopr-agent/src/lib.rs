//! One turn of a WOPR session.
//!
//! A turn takes the session's context (`sessions/<name>.md`) and stored history, adds the new message,
//! calls a provider, streams its events to the caller, and persists the outcome. The user's message is
//! stored before the provider is called, so a failure (or a killed process) never loses it. When the
//! model calls tools (`tools`: the [`Toolbox`] the caller chose for this session and source), their
//! results go back to the model for up to [`MAX_STEPS`] calls.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod peer_tool;
pub mod policy;
mod prompt;
mod tools;
mod turn;
mod workspace_tools;

pub use peer_tool::{FORWARDED_HOPS, INJECT_PEER, PeerInjector};
pub use prompt::build_request;
pub use tools::{BoxFuture, ToolOutput, ToolRefused, Toolbox};
pub use turn::{MAX_STEPS, TurnError, TurnEvent, TurnOutcome, run_turn};
pub use workspace_tools::WorkspaceTools;
