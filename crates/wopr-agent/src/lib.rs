//! One turn of a WOPR session.
//!
//! A turn takes the session's context (`sessions/<name>.md`) and stored history, adds the new message,
//! calls a provider, streams its events to the caller, and persists the outcome. The user's message is
//! stored before the provider is called, so a failure (or a killed process) never loses it. A turn runs
//! at the trust of the least trusted source in its context ([`policy`]), which picks its [`Toolbox`];
//! when the model calls tools their results go back to the model for up to [`MAX_STEPS`] calls.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod p2p_tools;
pub mod policy;
mod prompt;
mod tools;
mod turn;
mod workspace_tools;

pub use p2p_tools::{
    DISCOVER_JOIN, DISCOVER_PEERS, DISCOVER_PROFILE_SET, FORWARDED_HOPS, FRIEND_ACCEPT, FRIEND_LIST,
    FRIEND_REQUEST, P2P_GRANT_ACCESS, P2P_INJECT, P2P_ROTATE_KEYS, P2P_TOOLS, P2pActions, ROTATION_REASONS,
    is_p2p_tool,
};
pub use prompt::{BYTES_PER_TOKEN, MAX_HISTORY_ROWS, build_request, history_budget, load_history};
pub use tools::{BoxFuture, ToolOutput, ToolRefused, Toolbox};
pub use turn::{MAX_STEPS, TurnContext, TurnError, TurnEvent, TurnOutcome, load_context, run_turn};
pub use workspace_tools::WorkspaceTools;
