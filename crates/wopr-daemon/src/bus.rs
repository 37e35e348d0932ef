//! The daemon's event bus: what happened, for `GET /events` and the web UI. Senders never wait; a
//! subscriber that falls behind loses the oldest events and is told how many.

use serde::Serialize;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// How many events a slow subscriber may lag behind.
const CAPACITY: usize = 1024;

/// Something that happened in the daemon.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum BusEvent {
    /// A turn started in a local session.
    #[serde(rename_all = "camelCase")]
    InjectStarted {
        /// The session.
        session: String,
        /// Whose message (`cli` for the owner, `p2p:<key>`, ...).
        source: String,
    },
    /// More answer text in a local session.
    #[serde(rename_all = "camelCase")]
    InjectDelta {
        /// The session.
        session: String,
        /// The text.
        text: String,
    },
    /// A turn in a local session ended.
    #[serde(rename_all = "camelCase")]
    InjectDone {
        /// The session.
        session: String,
        /// `completed`, `failed` or `cancelled`.
        status: String,
    },
    /// A tool started in a local session's turn.
    #[serde(rename_all = "camelCase")]
    ToolStart {
        /// The session.
        session: String,
        /// The tool.
        name: String,
    },
    /// A session was created.
    #[serde(rename_all = "camelCase")]
    SessionCreated {
        /// The session.
        session: String,
    },
    /// A session was deleted.
    #[serde(rename_all = "camelCase")]
    SessionDeleted {
        /// The session.
        session: String,
    },
    /// A configuration key was set or removed.
    #[serde(rename_all = "camelCase")]
    ConfigChanged {
        /// The dotted key.
        key: String,
    },
    /// A grant was made or revoked.
    #[serde(rename_all = "camelCase")]
    AccessChanged {
        /// The peer's key, hex.
        peer: String,
    },
    /// A peer was added (an invite claimed) or renamed.
    #[serde(rename_all = "camelCase")]
    PeerChanged {
        /// The peer's key, hex.
        peer: String,
    },
    /// The identity was rotated.
    #[serde(rename_all = "camelCase")]
    IdentityRotated {
        /// The new key, hex.
        new_key: String,
    },
    /// A request from a peer was recorded in the audit log (accepted or refused).
    #[serde(rename_all = "camelCase")]
    Audit {
        /// The record, as `GET /audit` lists it.
        entry: wopr_store::AuditEntry,
    },
    /// A peer's incoming connection passed the handshake.
    #[serde(rename_all = "camelCase")]
    PeerConnected {
        /// The peer's key, hex.
        peer: String,
    },
    /// Something happened in a joined discovery topic.
    #[serde(rename_all = "camelCase")]
    Discovery {
        /// The discovery event (`appeared`, `updated`, `filtered`, `gone`, ...).
        event: serde_json::Value,
    },
}

impl BusEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            BusEvent::InjectStarted { .. } => "injectStarted",
            BusEvent::InjectDelta { .. } => "injectDelta",
            BusEvent::InjectDone { .. } => "injectDone",
            BusEvent::ToolStart { .. } => "toolStart",
            BusEvent::SessionCreated { .. } => "sessionCreated",
            BusEvent::SessionDeleted { .. } => "sessionDeleted",
            BusEvent::ConfigChanged { .. } => "configChanged",
            BusEvent::AccessChanged { .. } => "accessChanged",
            BusEvent::PeerChanged { .. } => "peerChanged",
            BusEvent::IdentityRotated { .. } => "identityRotated",
            BusEvent::Audit { .. } => "audit",
            BusEvent::PeerConnected { .. } => "peerConnected",
            BusEvent::Discovery { .. } => "discovery",
        }
    }
}

/// The bus.
#[derive(Clone, Debug)]
pub struct Bus(broadcast::Sender<BusEvent>);

impl Default for Bus {
    fn default() -> Self {
        Bus(broadcast::channel(CAPACITY).0)
    }
}

impl Bus {
    /// Tells every subscriber (nobody listening is fine).
    pub fn send(&self, event: BusEvent) {
        let _ = self.0.send(event);
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.0.subscribe()
    }
}
