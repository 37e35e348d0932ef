//! The `inject_peer` tool: the AI of one of the owner's own turns asks a peer's session something.
//!
//! Only local turns get it (see [`crate::policy`]); a turn that came over P2P never does, so a peer
//! cannot make this node's AI inject into other peers, and work cannot loop between nodes. Work sent by
//! this tool travels with a hop count of 1 (peers refuse more than 8).

use serde_json::{Value, json};
use wopr_providers::{ToolCall, ToolSpec};

use crate::tools::{BoxFuture, ToolOutput};

/// Name of the tool.
pub const INJECT_PEER: &str = "inject_peer";

/// Hop count of work forwarded by the AI (a person's own inject has 0).
pub const FORWARDED_HOPS: u8 = 1;

/// How the tool reaches peers: the CLI and the daemon fill this with their P2P node.
pub trait PeerInjector: Send + Sync {
    /// Sends `message` to `session` on `peer` (a name, short id or full id from `wopr peers`) with
    /// `hop_count`, and returns the peer AI's whole answer, or what went wrong in words.
    fn inject<'a>(
        &'a self,
        peer: &'a str,
        session: &'a str,
        message: &'a str,
        hop_count: u8,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// The tool's definition for the model.
pub fn spec() -> ToolSpec {
    let string = |what: &str| json!({"type": "string", "description": what});
    ToolSpec {
        name: INJECT_PEER.into(),
        description: "Sends a message to a session on a peer's WOPR node (see `wopr peers`) and returns \
                      the answer of that peer's AI."
            .into(),
        parameters: json!({"type": "object", "properties": {
            "peer": string("the peer's name, short id or full id"),
            "session": string("the session on the peer"),
            "message": string("what to send"),
        }, "required": ["peer", "session", "message"]}),
    }
}

/// Runs one `inject_peer` call through `injector`.
pub async fn run(injector: &dyn PeerInjector, call: &ToolCall) -> ToolOutput {
    let arg = |key: &str| match call.arguments.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        _ => Err(format!("{INJECT_PEER} needs a non-empty string `{key}`")),
    };
    let (peer, session, message) = match (arg("peer"), arg("session"), arg("message")) {
        (Ok(p), Ok(s), Ok(m)) => (p, s, m),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return ToolOutput::error(e),
    };
    match injector.inject(peer, session, message, FORWARDED_HOPS).await {
        Ok(answer) => ToolOutput::ok(answer),
        Err(why) => ToolOutput::error(format!("the inject to {peer}:{session} failed: {why}")),
    }
}
