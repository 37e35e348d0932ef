//! The daemon's one typed core: every request from the CLI socket, the HTTP API, the OpenAI and A2A
//! doors and the web UI ends here, as a method taking and giving the types of [`types`]. It owns the
//! P2P node, the event bus and the daemon's tasks; nothing here knows about HTTP or the socket.

mod config;
pub mod discover;
pub mod error;
mod p2p;
mod security;
pub mod sessions;
mod system;
pub mod types;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wopr_p2p::Node;
use wopr_store::Home;

pub use error::{ApiError, ApiResult};
pub use p2p::{grant, identity_view, parse_duration, peer_key, rotate_reply, status_word};
pub use security::security_view;
pub use sessions::{parse_provider, provider_failure, taint_view};
pub use system::model_files;

use crate::bus::{Bus, BusEvent};
use crate::token::Credentials;

/// How long `daemon stop` lets running injects finish before it cancels them.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// The core.
pub struct Core {
    home: Home,
    /// `None` once stopping (and for a moment during a rotation). Requests take a clone of the `Arc`
    /// and let the lock go at once: no lock is held across a streaming answer.
    node: RwLock<Option<Arc<Node>>>,
    bus: Bus,
    started: Instant,
    tasks: TaskTracker,
    cancel: CancellationToken,
    stop: CancellationToken,
    api: OnceLock<String>,
    credentials: Credentials,
}

impl Core {
    /// A core for `home`, owning `node`.
    pub fn new(home: Home, node: Node) -> ApiResult<Arc<Self>> {
        let credentials = Credentials::load(&home)?;
        let core = Arc::new(Core {
            home,
            node: RwLock::new(Some(Arc::new(node))),
            bus: Bus::default(),
            started: Instant::now(),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
            stop: CancellationToken::new(),
            api: OnceLock::new(),
            credentials,
        });
        core.forward_node_events();
        Ok(core)
    }

    /// The HTTP API's token and the web UI's logins.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The home directory.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The event bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The node, unless the daemon is stopping.
    pub async fn node(&self) -> ApiResult<Arc<Node>> {
        self.node.read().await.clone().ok_or_else(ApiError::stopping)
    }

    /// Records where the HTTP API listens (for `daemon status`).
    pub fn set_api_address(&self, url: String) {
        let _ = self.api.set(url);
    }

    /// Where the HTTP API listens.
    pub fn api_address(&self) -> Option<&str> {
        self.api.get().map(String::as_str)
    }

    /// Asks the daemon to stop (what `daemon stop` sends).
    pub fn request_stop(&self) {
        self.stop.cancel();
    }

    /// Resolves when a stop was asked for.
    pub async fn stop_requested(&self) {
        self.stop.cancelled().await;
    }

    /// Whether the daemon is stopping: long answers should end.
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Runs `work` as one of the daemon's tasks: counted for the drain on shutdown, and dropped when
    /// the drain's deadline passes (its `on_cancel` runs then, to tell the client why).
    pub fn spawn<F>(&self, work: F, on_cancel: impl FnOnce() + Send + 'static)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = work => {}
                () = cancel.cancelled() => on_cancel(),
            }
        });
    }

    /// The shutdown: no new work, running tasks get `deadline` to finish, then are cancelled; then the
    /// node closes its connections and endpoint.
    pub async fn shutdown(&self, deadline: Duration) {
        let node = self.node.write().await.take();
        self.tasks.close();
        if tokio::time::timeout(deadline, self.tasks.wait()).await.is_err() {
            tracing::info!(running = self.tasks.len(), "cancelling what is still running");
            self.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), self.tasks.wait()).await;
        }
        self.cancel.cancel();
        if let Some(node) = node {
            retire(node).await;
        }
    }

    /// Puts the node's discovery events, audit records and incoming connections on the bus, following
    /// the node across rotations, until the daemon stops.
    fn forward_node_events(self: &Arc<Self>) {
        use tokio::sync::broadcast::error::RecvError;
        let core = self.clone();
        tokio::spawn(async move {
            while let Ok(node) = core.node().await {
                let (mut discovery, mut audit) = (node.discovery_events(), node.audit_events());
                let mut connected = node.connection_events();
                drop(node);
                loop {
                    let event = tokio::select! {
                        e = discovery.recv() => match e {
                            Ok(e) => BusEvent::Discovery { event: serde_json::to_value(e).unwrap_or_default() },
                            Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => break,
                        },
                        e = audit.recv() => match e {
                            Ok(entry) => BusEvent::Audit { entry },
                            Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => break,
                        },
                        e = connected.recv() => match e {
                            Ok(peer) => BusEvent::PeerConnected { peer: peer.to_hex() },
                            Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => break,
                        },
                    };
                    core.bus.send(event);
                }
            }
        });
    }
}

/// Closes a node that requests may still hold (theirs end with an error), then waits, at most 5 s, for
/// them to let go, so its sockets are free when this returns (a rotation binds the same port again).
pub(crate) async fn retire(node: Arc<Node>) {
    let _ = tokio::time::timeout(Duration::from_secs(5), node.close()).await;
    let mut node = node;
    for _ in 0..250 {
        match Arc::try_unwrap(node) {
            Ok(n) => return drop(n),
            Err(still_held) => node = still_held,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!("a request still holds the old node after 5 s; its sockets go when it ends");
}
