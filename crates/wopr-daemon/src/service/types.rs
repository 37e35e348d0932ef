//! The request and reply types of the daemon's API: what the HTTP routes take and give, and what the
//! socket's streaming answers carry. The OpenAPI document is generated from these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wopr_store::{Capability, ExitCode, HistoryMessage};

/// A session in a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// Its name.
    pub name: String,
    /// Stable random id (hex).
    pub id: String,
    /// Provider name; absent for auto-detection at each inject.
    pub provider: Option<String>,
    /// Model override.
    pub model: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created: u64,
    /// Whether the session's own tools run sandboxed.
    pub sandbox: bool,
    /// Stored messages.
    pub messages: u64,
    /// Time of the last message, ms since the Unix epoch.
    pub last_activity: Option<u64>,
}

/// Why a session's turns do not run as the owner's: a less trusted source wrote into its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaintView {
    /// The source (`p2p:<key>`, `cron:<job>`, ...).
    pub source: String,
    /// The source in words, for people.
    pub label: String,
    /// Its trust level.
    pub trust: String,
    /// The first message it wrote.
    pub since_message: i64,
    /// When, ms since the Unix epoch.
    pub since: u64,
    /// In words.
    pub reason: String,
}

/// A stored message and the trust of its source.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// The message.
    #[serde(flatten)]
    pub message: HistoryMessage,
    /// The trust level of its source.
    pub trust: String,
}

/// A session with its context and conversation: `GET /sessions/{name}` and `wopr session show --json`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDetail {
    /// Its name.
    pub name: String,
    /// Stable random id (hex).
    pub id: String,
    /// Provider name; absent for auto-detection at each inject.
    pub provider: Option<String>,
    /// Model override.
    pub model: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created: u64,
    /// Whether the session's own tools run sandboxed.
    pub sandbox: bool,
    /// Stored messages in all.
    pub message_count: u64,
    /// Time of the last message, ms since the Unix epoch.
    pub last_activity: Option<u64>,
    /// The context (system prompt).
    pub context: String,
    /// `owner`, or the trust its taint gives the owner's turns.
    pub trust: String,
    /// Set when a less trusted source wrote into the history.
    pub taint: Option<TaintView>,
    /// The newest messages asked for, oldest first.
    pub messages: Vec<MessageView>,
}

/// `POST /sessions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSession {
    /// The name: letters, digits and `. _ - : ( )`, not starting with `.`, no `..`.
    #[schema(pattern = r"^[A-Za-z0-9_:()-]+(\.[A-Za-z0-9_:()-]+)*\.?$", max_length = 128)]
    pub name: String,
    /// The context (system prompt).
    #[serde(default)]
    pub context: Option<String>,
    /// A provider name, or `auto`.
    #[serde(default)]
    #[schema(pattern = "^(auto|kimi|anthropic|openai|openai-compatible|local)$")]
    pub provider: Option<String>,
    /// A model for that provider.
    #[serde(default)]
    pub model: Option<String>,
    /// Whether the session's own tools run sandboxed (default on).
    #[serde(default)]
    pub sandbox: Option<bool>,
}

/// `PUT /sessions/{name}/provider`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetProvider {
    /// A provider name, or `auto`.
    #[schema(pattern = "^(auto|kimi|anthropic|openai|openai-compatible|local)$")]
    pub provider: String,
    /// A model for that provider.
    #[serde(default)]
    pub model: Option<String>,
}

/// A message to a session: `POST /sessions/{name}/inject` and `/log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageBody {
    /// The text.
    pub message: String,
}

/// What was deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// The session, key or peer.
    pub name: String,
    /// How many stored items went with it (messages, grants).
    pub removed: u64,
}

/// `GET /sessions/{name}/conversation`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// The session.
    pub session: String,
    /// The newest messages, oldest first.
    pub messages: Vec<MessageView>,
}

/// One event of a streamed answer (`POST .../inject`, as server-sent events named by `type`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum InjectEvent {
    /// More answer text.
    #[serde(rename_all = "camelCase")]
    Delta {
        /// The text.
        text: String,
    },
    /// The model called a tool; it runs now.
    #[serde(rename_all = "camelCase")]
    ToolStart {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        arguments: serde_json::Value,
    },
    /// A tool finished.
    #[serde(rename_all = "camelCase")]
    ToolEnd {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Whether it succeeded.
        ok: bool,
    },
    /// The answer is complete.
    #[serde(rename_all = "camelCase")]
    Done(InjectDone),
    /// The answer failed; the message is kept in the history, marked as failed.
    #[serde(rename_all = "camelCase")]
    Error {
        /// What went wrong.
        problem: Problem,
    },
}

impl InjectEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            InjectEvent::Delta { .. } => "delta",
            InjectEvent::ToolStart { .. } => "toolStart",
            InjectEvent::ToolEnd { .. } => "toolEnd",
            InjectEvent::Done(_) => "done",
            InjectEvent::Error { .. } => "error",
        }
    }
}

/// How an inject ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InjectDone {
    /// `completed`, `logged` (a peer with `message` capability: no AI answer), `failed`, `cancelled`.
    pub status: String,
    /// The whole answer text.
    pub text: String,
    /// The provider that answered (local sessions).
    pub provider: Option<String>,
    /// Its model.
    pub model: Option<String>,
}

/// An error as the API reports it (RFC 9457 problem details, plus the CLI's exit code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong and what to do.
    pub detail: String,
    /// The exit code the CLI would end with.
    pub exit_code: ExitCode,
}

/// `GET /config/{key}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntry {
    /// The dotted key.
    pub key: String,
    /// Its JSON value.
    pub value: serde_json::Value,
}

/// This installation's public identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    /// The short id (first 8 hex of the key's SHA-256).
    pub short_id: String,
    /// The Ed25519 public key, hex.
    pub public_key: String,
    /// The X25519 public key, hex.
    pub encrypt_pub: String,
}

/// `POST /identity/rotate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateRequest {
    /// `scheduled`, `compromise` or `upgrade`.
    #[schema(pattern = "^(scheduled|compromise|upgrade)$")]
    pub reason: String,
}

/// A peer and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerReason {
    /// The peer's key, hex.
    pub peer: String,
    /// Why.
    pub reason: String,
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateReply {
    /// The retired key, hex.
    pub old_key: String,
    /// The new identity.
    pub identity: IdentityView,
    /// Peers told of the new key.
    pub delivered: Vec<String>,
    /// Peers that refused it.
    pub refused: Vec<PeerReason>,
    /// Peers to tell later (offline now).
    pub pending: Vec<PeerReason>,
}

/// `PUT /peers/{peer}/name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenameRequest {
    /// The new local name: letters, digits and `. _ -`, not starting with `.` or `-`.
    #[schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")]
    pub name: String,
}

/// `POST /peers/invite`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteRequest {
    /// The invitee's public key (hex or `wopr://` id), or a known peer's name.
    pub pubkey: String,
    /// The session to share.
    pub session: String,
    /// `message` or `inject` (default `inject`).
    #[serde(default)]
    pub cap: Option<Capability>,
    /// How long it is valid: `30m`, `12h`, `7d` (default `7d`).
    #[serde(default)]
    pub expires: Option<String>,
}

/// A signed invite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteReply {
    /// The `wop1://` token; only the invitee's key can claim it.
    pub token: String,
    /// The token as a QR code (SVG).
    pub qr_svg: String,
    /// When it expires, ms since the Unix epoch.
    pub expires_at: u64,
}

/// `POST /peers/claim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimRequest {
    /// The `wop1://` token.
    #[schema(pattern = r"^\s*wop1://")]
    pub token: String,
}

/// `POST /peers/{peer}/inject`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerInjectRequest {
    /// The peer's session.
    #[schema(pattern = r"^[A-Za-z0-9_:()-]+(\.[A-Za-z0-9_:()-]+)*\.?$", max_length = 128)]
    pub session: String,
    /// The message.
    pub message: String,
}

/// `POST /access`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    /// A name, short id or full id from `peers` or `access`, or a full key.
    pub peer: String,
    /// The session.
    pub session: String,
    /// `message` or `inject`.
    pub cap: Capability,
}

/// `GET /audit` filters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this peer (name, short id or full id).
    pub peer: Option<String>,
    /// Only this action (`inject`, `claim`, `handshake`, ...).
    pub action: Option<String>,
    /// Only `accepted` or `refused`.
    pub decision: Option<wopr_store::Decision>,
    /// At most this many, newest first (default 100, at most 10,000).
    #[param(minimum = 0, maximum = 10000)]
    pub limit: Option<usize>,
}

/// `GET /sessions/{name}/conversation` parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many newest messages.
    #[param(minimum = 0, maximum = 100000)]
    pub limit: Option<usize>,
}

/// A provider and whether it is usable here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    /// Its name.
    pub name: String,
    /// Usable now.
    pub available: bool,
    /// What it would use, or what is missing.
    pub detail: String,
    /// Used by sessions without a provider of their own.
    pub default: bool,
}

/// A model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelFile {
    /// Where it is.
    pub path: String,
    /// Its size in bytes (absent when the file is missing).
    pub size: Option<u64>,
    /// The one the local provider uses.
    pub active: bool,
}

/// One event of `POST /models/pull`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PullEvent {
    /// Bytes downloaded so far.
    #[serde(rename_all = "camelCase")]
    Progress {
        /// Bytes so far.
        done: u64,
        /// The whole size, when known.
        total: Option<u64>,
    },
    /// Installed.
    #[serde(rename_all = "camelCase")]
    Done {
        /// The model file.
        path: String,
        /// Its size.
        size: u64,
        /// Whether it was downloaded now (else it was already there).
        downloaded: bool,
    },
    /// The download failed.
    #[serde(rename_all = "camelCase")]
    Error {
        /// What went wrong.
        problem: Problem,
    },
}

/// What the daemon is and where it listens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStatus {
    /// Its process id.
    pub pid: u32,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// The WOPR id (full, hex).
    pub id: String,
    /// The short id.
    pub short_id: String,
    /// The P2P endpoint's addresses.
    pub addresses: Vec<String>,
    /// The relay setting.
    pub relay: String,
    /// Peers connected now (hex).
    pub connected_peers: Vec<String>,
    /// The path to each connected peer: `direct` or `relayed`.
    pub peer_paths: BTreeMap<String, String>,
    /// An iroh ticket for this endpoint (for `discover.bootstrap` elsewhere).
    pub ticket: String,
    /// `$WOPR_HOME`.
    pub home: String,
    /// The HTTP API's address, when it listens.
    pub api: Option<String>,
}

/// The effective security policy per session and per source (`wopr security show`), shaped like the
/// seeds' security configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityView {
    /// The sandbox that enforces it.
    pub sandbox: SandboxInUse,
    /// Per session: who may reach it and how its turns run.
    pub sessions: BTreeMap<String, SessionSecurity>,
    /// Per source (`cli`, `p2p:<key>`): its trust and the policy its turns get.
    pub sources: BTreeMap<String, SourceSecurity>,
}

/// A session's security.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSecurity {
    /// Sources with a grant here (`p2p:<key>`).
    pub access: Vec<String>,
    /// Their capabilities.
    pub capabilities: Vec<String>,
    /// The owner's sandbox switch: `on` or `off`.
    pub sandbox: String,
    /// The trust the owner's next turn runs at.
    pub local_trust: String,
    /// Set when a less trusted source wrote into the history.
    pub taint: Option<TaintView>,
    /// The sandbox policy of the owner's next turn (absent when it runs on the host).
    pub local_policy: Option<serde_json::Value>,
}

/// A source's security.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceSecurity {
    /// `local` or `p2p`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The peer's local name.
    pub name: Option<String>,
    /// Its trust level.
    pub trust: String,
    /// What it may do.
    pub capabilities: Vec<String>,
    /// The sessions it may reach.
    pub sessions: Vec<String>,
    /// Its request limits.
    pub rate_limit: Option<RateLimit>,
    /// `always` for peers; per session for the owner.
    pub sandbox: String,
    /// The sandbox policy of its turns (absent for the owner).
    pub policy: Option<serde_json::Value>,
}

/// Requests a source may make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Per minute.
    pub per_minute: u32,
    /// Per hour.
    pub per_hour: u32,
}

/// The sandbox backend in use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxInUse {
    /// The backend.
    pub backend: String,
    /// Whether it can run commands here.
    pub available: bool,
    /// Why not.
    pub problem: Option<String>,
}

// Discovery and the friend protocol.

/// `POST /discover/topics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRequest {
    /// The topic's name; it never leaves this node (peers meet under its SHA-256).
    #[schema(min_length = 1, max_length = 128)]
    pub topic: String,
}

/// A topic joined or left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicChange {
    /// The topic.
    pub topic: String,
    /// Whether this changed anything (false: already in it).
    pub changed: bool,
}

/// `GET /discover/peers` filters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PeersQuery {
    /// Only this topic.
    pub topic: Option<String>,
    /// Include what the content filter dropped, with its reason.
    #[serde(default)]
    pub all: bool,
    /// Only these keys or short ids, comma-separated.
    pub only: Option<String>,
}

/// `GET /discover/profile` parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// As announced in this topic.
    pub topic: Option<String>,
}

/// The profile content stored and announced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSet {
    /// Its size as announced, in bytes.
    pub bytes: usize,
    /// Whether a running node announced it now (else at the next join).
    pub announced: bool,
}

/// `POST /discover/profile/generate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateProfile {
    /// The session whose AI writes the content (default `main`).
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9_:()-]+(\.[A-Za-z0-9_:()-]+)*\.?$", max_length = 128)]
    pub session: Option<String>,
}

/// Profile content an AI suggested; nothing is published until it is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedProfile {
    /// The suggested content.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

/// `POST /discover/connect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectRequest {
    /// A peer seen in a topic: short id, full id or profile name.
    #[schema(min_length = 1, max_length = 256)]
    pub peer: String,
    /// The session wanted.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9_:()-]+(\.[A-Za-z0-9_:()-]+)*\.?$", max_length = 128)]
    pub session: Option<String>,
    /// Why, for the other side's owner or AI.
    #[serde(default)]
    pub message: String,
}

/// An accepted connect-request: the spec's `{accepted, sessions, reason}`, with the stored peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectReply {
    /// Always true: a refusal is an error (exit code 2).
    pub accepted: bool,
    /// The accepter, as now stored in `peers.json` (its sessions are what it granted).
    pub peer: wopr_store::PeerRecord,
    /// What it said.
    pub reason: String,
}

/// `POST /discover/requests/{peer}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecideRequest {
    /// Accept (else decline).
    pub accept: bool,
}

/// A waiting connect-request decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decided {
    /// The requester's key, hex.
    pub peer: String,
    /// Whether it was accepted.
    pub accepted: bool,
}

/// `POST /friends/requests`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FriendTarget {
    /// A peer seen in a topic, a name or id from peers or access, or a full key.
    #[schema(min_length = 1, max_length = 256)]
    pub target: String,
}

/// `POST /friends/accept`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FriendAcceptRequest {
    /// A waiting request's name or id, a pasted `FRIEND_REQUEST` line, or a pasted `FRIEND_ACCEPT` line.
    #[schema(min_length = 1)]
    pub query: String,
}

/// A friendship made by an accept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FriendAcceptReply {
    /// The new friend.
    pub friend: wopr_store::Friend,
    /// The accept as one line (absent when a pasted accept was taken).
    pub line: Option<String>,
    /// Whether the other side got the accept.
    pub delivered: bool,
    /// The topic it was posted in, when they were not reachable directly.
    pub via_topic: Option<String>,
    /// Why it could not be delivered.
    pub undelivered_reason: Option<String>,
}

/// The friend list, the requests waiting either way, and the auto-accept rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FriendList {
    /// Friends, oldest first.
    pub friends: Vec<wopr_store::Friend>,
    /// Requests waiting for this owner.
    pub incoming: Vec<wopr_store::IncomingRequest>,
    /// Requests waiting for the other side.
    pub outgoing: Vec<wopr_store::OutgoingRequest>,
    /// Auto-accept rules.
    pub auto_accept: Vec<String>,
}

/// `POST /friends/auto-accept`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleRequest {
    /// `*`, a name, or names joined by `|`.
    #[schema(min_length = 1, max_length = 1024)]
    pub pattern: String,
}

/// An auto-accept rule added or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleChange {
    /// The rule as stored.
    pub rule: String,
    /// Whether this changed the rules (false: it was there already).
    pub changed: bool,
}
