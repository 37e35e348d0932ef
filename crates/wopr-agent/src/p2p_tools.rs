//! The agent's own P2P tools: what the AI of one of the owner's own turns may do on the P2P network
//! for the owner (ask a peer's session, grant access, rotate keys, make friends, discover peers).
//!
//! Only a turn at owner trust gets them (see [`crate::policy`]): never a peer's turn, and never an
//! owner's turn in a session holding text from a peer or any other non-owner source, so words a peer
//! wrote can never make this node grant, befriend, rotate or inject. A turn without them that calls one
//! by name anyway is refused ([`refusal`]). Work sent by `p2p_inject` travels with a hop count of 1
//! (peers refuse more than 8).
//!
//! Each call's arguments are checked here against the tool's schema (an object with exactly the
//! declared keys, of the declared types, within bounds) before an action runs; the action itself goes
//! through the same checks as the matching `wopr` command (the [`P2pActions`] the CLI implements).

use serde_json::{Map, Value, json};
use wopr_providers::{ToolCall, ToolSpec};
use wopr_store::Capability;

use crate::tools::{BoxFuture, ToolOutput};

/// `p2p_inject(peer, session, message)`: asks a session on a peer's node; returns the peer AI's answer.
pub const P2P_INJECT: &str = "p2p_inject";
/// `p2p_grant_access(peerKey, sessions, caps)`: lets a known peer reach sessions of this node.
pub const P2P_GRANT_ACCESS: &str = "p2p_grant_access";
/// `p2p_rotate_keys(reason)`: rotates this node's identity and tells every peer.
pub const P2P_ROTATE_KEYS: &str = "p2p_rotate_keys";
/// `friend_request(peer)`: asks a peer for friendship.
pub const FRIEND_REQUEST: &str = "friend_request";
/// `friend_accept(name)`: accepts a waiting friend request.
pub const FRIEND_ACCEPT: &str = "friend_accept";
/// `friend_list()`: friends and waiting requests.
pub const FRIEND_LIST: &str = "friend_list";
/// `discover_join(topic)`: joins a discovery topic (announcing the profile there).
pub const DISCOVER_JOIN: &str = "discover_join";
/// `discover_peers(topic?)`: the peers seen in the joined topics.
pub const DISCOVER_PEERS: &str = "discover_peers";
/// `discover_profile_set(content)`: sets the profile announced in topics.
pub const DISCOVER_PROFILE_SET: &str = "discover_profile_set";

/// Every P2P tool, in the order they are offered.
pub const P2P_TOOLS: [&str; 9] = [
    P2P_INJECT,
    P2P_GRANT_ACCESS,
    P2P_ROTATE_KEYS,
    FRIEND_REQUEST,
    FRIEND_ACCEPT,
    FRIEND_LIST,
    DISCOVER_JOIN,
    DISCOVER_PEERS,
    DISCOVER_PROFILE_SET,
];

/// The reasons `p2p_rotate_keys` takes (those of `wopr id rotate`).
pub const ROTATION_REASONS: [&str; 3] = ["scheduled", "compromise", "upgrade"];

/// Hop count of work forwarded by the AI (a person's own inject has 0).
pub const FORWARDED_HOPS: u8 = 1;

/// Longest peer, session, name or topic argument, in bytes (names and ids are far shorter; a topic
/// name is at most 128 bytes on the wire).
const MAX_NAME: usize = 256;
/// Longest `p2p_inject` message, in bytes.
const MAX_MESSAGE: usize = 64 * 1024;
/// Most sessions one `p2p_grant_access` call names.
const MAX_SESSIONS: usize = 32;
/// Largest profile content, in bytes of JSON (an announce holds less; the action says how much).
const MAX_PROFILE: usize = 8 * 1024;

/// What the P2P tools do on this node. The CLI implements it by sending the daemon the requests its
/// own commands send (or running them on a node started for the call), so a tool can do nothing the
/// owner's `wopr` commands could not, and is checked the same way. Each method returns a result for
/// the model (JSON, as the matching command's `--json` prints it) or what went wrong, in words.
pub trait P2pActions: Send + Sync {
    /// `wopr inject`: sends `message` to `session` on `peer` (a name, short id or full id from `wopr
    /// peers`) with `hop_count`, and returns the peer AI's whole answer.
    fn inject<'a>(
        &'a self,
        peer: &'a str,
        session: &'a str,
        message: &'a str,
        hop_count: u8,
    ) -> BoxFuture<'a, Result<String, String>>;

    /// `wopr access grant`: grants `peer` (a name, short id or full id) `caps` on every session of
    /// `sessions` (each must exist).
    fn grant_access<'a>(
        &'a self,
        peer: &'a str,
        sessions: &'a [String],
        caps: &'a [Capability],
    ) -> BoxFuture<'a, Result<Value, String>>;

    /// `wopr id rotate --broadcast`: rotates the identity for `reason` (one of [`ROTATION_REASONS`]).
    fn rotate_keys<'a>(&'a self, reason: &'a str) -> BoxFuture<'a, Result<Value, String>>;

    /// `wopr friend request`: asks `peer` (seen in a topic, known, or a full key) for friendship.
    fn friend_request<'a>(&'a self, peer: &'a str) -> BoxFuture<'a, Result<Value, String>>;

    /// `wopr friend accept`: accepts the waiting request of `name` (a name or id).
    fn friend_accept<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Value, String>>;

    /// `wopr friend list --json`: friends, incoming and outgoing requests.
    fn friend_list(&self) -> BoxFuture<'_, Result<Value, String>>;

    /// `wopr discover join` (without watching): joins `topic`.
    fn discover_join<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Value, String>>;

    /// `wopr discover peers --json`: the peers seen, in `topic` only if given.
    fn discover_peers<'a>(&'a self, topic: Option<&'a str>) -> BoxFuture<'a, Result<Value, String>>;

    /// `wopr discover profile set`: sets the announced profile to `content` (a JSON object).
    fn discover_profile_set<'a>(&'a self, content: &'a Value) -> BoxFuture<'a, Result<Value, String>>;
}

/// Whether `name` is one of the P2P tools.
pub fn is_p2p_tool(name: &str) -> bool {
    P2P_TOOLS.contains(&name)
}

/// What a turn without the P2P tools answers a call to one of them (the model was never offered it).
pub fn refusal(name: &str) -> ToolOutput {
    ToolOutput::error(format!(
        "{name} is not available in this turn: P2P tools run only in the owner's own turns, in sessions \
         holding no text from peers or other sources"
    ))
}

/// The definitions offered to the model, one per tool of [`P2P_TOOLS`]. Every schema is closed
/// (`additionalProperties: false`) and every argument is checked again when called.
pub fn specs() -> Vec<ToolSpec> {
    let string =
        |what: &str| json!({"type": "string", "minLength": 1, "maxLength": MAX_NAME, "description": what});
    let tool = |name: &str, description: &str, properties: Value, required: &[&str]| ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }),
    };
    let caps: Vec<&str> = [Capability::Message, Capability::Inject].map(Capability::as_str).to_vec();
    vec![
        tool(
            P2P_INJECT,
            "Sends a message to a session on a peer's WOPR node (see `wopr peers`) and returns the answer \
             of that peer's AI.",
            json!({
                "peer": string("the peer's name, short id or full id"),
                "session": string("the session on the peer"),
                "message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE,
                            "description": "what to send"},
            }),
            &["peer", "session", "message"],
        ),
        tool(
            P2P_GRANT_ACCESS,
            "Grants a known peer access to sessions of this node: `message` logs text there, `inject` also \
             lets the peer ask the session's AI (sandboxed, untrusted).",
            json!({
                "peerKey": string("the peer's name, short id or full id"),
                "sessions": {"type": "array", "minItems": 1, "maxItems": MAX_SESSIONS,
                             "items": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                             "description": "sessions of this node"},
                "caps": {"type": "array", "minItems": 1, "maxItems": caps.len(),
                         "items": {"type": "string", "enum": caps}, "description": "what the peer may do"},
            }),
            &["peerKey", "sessions", "caps"],
        ),
        tool(
            P2P_ROTATE_KEYS,
            "Replaces this node's identity key with a new one and tells every peer (signed by both keys).",
            json!({"reason": {"type": "string", "enum": ROTATION_REASONS, "description": "why"}}),
            &["reason"],
        ),
        tool(
            FRIEND_REQUEST,
            "Asks a peer (seen in a discovery topic, known, or by full key) to become friends.",
            json!({"peer": string("the peer's short id, full id or name")}),
            &["peer"],
        ),
        tool(
            FRIEND_ACCEPT,
            "Accepts a waiting friend request (see friend_list).",
            json!({"name": string("the requester's name or id")}),
            &["name"],
        ),
        tool(FRIEND_LIST, "Lists friends and the friend requests waiting on either side.", json!({}), &[]),
        tool(
            DISCOVER_JOIN,
            "Joins a discovery topic: this node's profile is announced there and its peers become visible.",
            json!({"topic": string("the topic name")}),
            &["topic"],
        ),
        tool(
            DISCOVER_PEERS,
            "Lists the peers seen in the joined discovery topics.",
            json!({"topic": string("only this topic")}),
            &[],
        ),
        tool(
            DISCOVER_PROFILE_SET,
            "Sets the profile this node announces in its discovery topics (public: anyone in them reads it).",
            json!({"content": {"type": "object", "description": "the profile, such as {\"name\": \"Alice\"}"}}),
            &["content"],
        ),
    ]
}

/// One call, its arguments checked.
#[derive(Clone, Debug, PartialEq)]
enum P2pCall {
    Inject { peer: String, session: String, message: String },
    GrantAccess { peer: String, sessions: Vec<String>, caps: Vec<Capability> },
    RotateKeys { reason: String },
    FriendRequest { peer: String },
    FriendAccept { name: String },
    FriendList,
    DiscoverJoin { topic: String },
    DiscoverPeers { topic: Option<String> },
    DiscoverProfileSet { content: Value },
}

/// A call's arguments, read strictly: an object holding only the tool's keys.
struct Args<'a> {
    tool: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    fn of(call: &'a ToolCall, keys: &[&str]) -> Result<Self, String> {
        let tool = call.name.as_str();
        let map = match &call.arguments {
            Value::Object(map) => map,
            // Some models send no arguments at all for a tool that takes none.
            Value::Null => return Err(format!("{tool} needs its arguments as a JSON object")),
            other => return Err(format!("{tool} needs its arguments as a JSON object, got {other}")),
        };
        if let Some(extra) = map.keys().find(|k| !keys.contains(&k.as_str())) {
            let known = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
            return Err(format!("{tool} has no argument `{extra}` (its arguments: {known})"));
        }
        Ok(Args { tool, map })
    }

    fn string(&self, key: &str, max: usize) -> Result<String, String> {
        self.optional_string(key, max)?.ok_or_else(|| format!("{} needs the argument `{key}`", self.tool))
    }

    fn optional_string(&self, key: &str, max: usize) -> Result<Option<String>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => bounded(self.tool, key, s, max).map(Some),
            Some(other) => Err(format!("{}: `{key}` must be a string, got {other}", self.tool)),
        }
    }

    fn strings(&self, key: &str, max_items: usize) -> Result<Vec<String>, String> {
        let items = match self.map.get(key) {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => return Err(format!("{} needs the argument `{key}`", self.tool)),
            Some(other) => {
                return Err(format!("{}: `{key}` must be an array of strings, got {other}", self.tool));
            }
        };
        if items.is_empty() || items.len() > max_items {
            return Err(format!(
                "{}: `{key}` needs 1 to {max_items} entries, not {}",
                self.tool,
                items.len()
            ));
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => bounded(self.tool, key, s, MAX_NAME),
                other => Err(format!("{}: `{key}` must hold strings only, got {other}", self.tool)),
            })
            .collect()
    }
}

fn bounded(tool: &str, key: &str, s: &str, max: usize) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(format!("{tool}: `{key}` must not be empty"));
    }
    if s.len() > max {
        return Err(format!("{tool}: `{key}` takes at most {max} bytes, not {}", s.len()));
    }
    Ok(s.to_string())
}

/// Reads and checks the arguments of a call to one of [`P2P_TOOLS`].
fn parse(call: &ToolCall) -> Result<P2pCall, String> {
    match call.name.as_str() {
        P2P_INJECT => {
            let a = Args::of(call, &["peer", "session", "message"])?;
            Ok(P2pCall::Inject {
                peer: a.string("peer", MAX_NAME)?,
                session: a.string("session", MAX_NAME)?,
                message: a.string("message", MAX_MESSAGE)?,
            })
        }
        P2P_GRANT_ACCESS => {
            let a = Args::of(call, &["peerKey", "sessions", "caps"])?;
            let peer = a.string("peerKey", MAX_NAME)?;
            let sessions = a.strings("sessions", MAX_SESSIONS)?;
            let mut caps = Vec::new();
            for cap in a.strings("caps", 2)? {
                let cap = Capability::parse(&cap).map_err(|_| {
                    format!("{P2P_GRANT_ACCESS}: unknown capability {cap:?} (message or inject)")
                })?;
                if !caps.contains(&cap) {
                    caps.push(cap);
                }
            }
            Ok(P2pCall::GrantAccess { peer, sessions, caps })
        }
        P2P_ROTATE_KEYS => {
            let a = Args::of(call, &["reason"])?;
            let reason = a.string("reason", MAX_NAME)?;
            if !ROTATION_REASONS.contains(&reason.as_str()) {
                return Err(format!(
                    "{P2P_ROTATE_KEYS}: `reason` is one of {}, not {reason:?}",
                    ROTATION_REASONS.join(", ")
                ));
            }
            Ok(P2pCall::RotateKeys { reason })
        }
        FRIEND_REQUEST => {
            let a = Args::of(call, &["peer"])?;
            Ok(P2pCall::FriendRequest { peer: a.string("peer", MAX_NAME)? })
        }
        FRIEND_ACCEPT => {
            let a = Args::of(call, &["name"])?;
            Ok(P2pCall::FriendAccept { name: a.string("name", MAX_NAME)? })
        }
        FRIEND_LIST => match call.arguments {
            // No arguments at all is the same as an empty object here.
            Value::Null => Ok(P2pCall::FriendList),
            _ => Args::of(call, &[]).map(|_| P2pCall::FriendList),
        },
        DISCOVER_JOIN => {
            let a = Args::of(call, &["topic"])?;
            Ok(P2pCall::DiscoverJoin { topic: a.string("topic", MAX_NAME)? })
        }
        DISCOVER_PEERS => match call.arguments {
            Value::Null => Ok(P2pCall::DiscoverPeers { topic: None }),
            _ => {
                let a = Args::of(call, &["topic"])?;
                Ok(P2pCall::DiscoverPeers { topic: a.optional_string("topic", MAX_NAME)? })
            }
        },
        DISCOVER_PROFILE_SET => {
            let a = Args::of(call, &["content"])?;
            match a.map.get("content") {
                Some(content @ Value::Object(_)) => {
                    let len = content.to_string().len();
                    if len > MAX_PROFILE {
                        return Err(format!(
                            "{DISCOVER_PROFILE_SET}: `content` takes {len} bytes of JSON, at most {MAX_PROFILE}"
                        ));
                    }
                    Ok(P2pCall::DiscoverProfileSet { content: content.clone() })
                }
                None | Some(Value::Null) => {
                    Err(format!("{DISCOVER_PROFILE_SET} needs the argument `content`"))
                }
                Some(other) => Err(format!(
                    "{DISCOVER_PROFILE_SET}: `content` must be a JSON object such as {{\"name\": \"Alice\"}}, got {other}"
                )),
            }
        }
        other => Err(format!("{other:?} is not a P2P tool")),
    }
}

/// Runs one call to a P2P tool through `actions`: bad arguments are explained to the model and run
/// nothing; a failed action says why.
pub async fn run(actions: &dyn P2pActions, call: &ToolCall) -> ToolOutput {
    let parsed = match parse(call) {
        Ok(parsed) => parsed,
        Err(explained) => return ToolOutput::error(explained),
    };
    let done = match &parsed {
        P2pCall::Inject { peer, session, message } => {
            return match actions.inject(peer, session, message, FORWARDED_HOPS).await {
                Ok(answer) => ToolOutput::ok(answer),
                Err(why) => ToolOutput::error(format!("the inject to {peer}:{session} failed: {why}")),
            };
        }
        P2pCall::GrantAccess { peer, sessions, caps } => actions.grant_access(peer, sessions, caps).await,
        P2pCall::RotateKeys { reason } => actions.rotate_keys(reason).await,
        P2pCall::FriendRequest { peer } => actions.friend_request(peer).await,
        P2pCall::FriendAccept { name } => actions.friend_accept(name).await,
        P2pCall::FriendList => actions.friend_list().await,
        P2pCall::DiscoverJoin { topic } => actions.discover_join(topic).await,
        P2pCall::DiscoverPeers { topic } => actions.discover_peers(topic.as_deref()).await,
        P2pCall::DiscoverProfileSet { content } => actions.discover_profile_set(content).await,
    };
    match done {
        Ok(result) => ToolOutput::ok(result.to_string()),
        Err(why) => ToolOutput::error(format!("{} failed: {why}", call.name)),
    }
}

#[cfg(test)]
pub(crate) mod tests;
