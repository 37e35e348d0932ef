//! `wopr daemon run`: the node, the socket, and a graceful stop.

use std::fs::OpenOptions;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{RwLock, mpsc, watch};
use wopr_identity::{PublicId, RotationReason};
use wopr_p2p::discovery::DiscoverSettings;
use wopr_p2p::{DoneStatus, Node, NodeConfig, P2pError, RotationReport};
use wopr_store::{Home, write_atomic};

use crate::AgentBackend;
use crate::ipc::{DiscoverOp, Reply, Request};
use crate::lifecycle;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds this home.
    #[error("a daemon is already running for {0} (see `wopr daemon status`)")]
    AlreadyRunning(String),
    /// No identity to run as.
    #[error("no identity yet: run `wopr id init` first")]
    NoIdentity,
    /// The home directory failed.
    #[error(transparent)]
    Store(#[from] wopr_store::StoreError),
    /// The P2P node failed to start.
    #[error(transparent)]
    P2p(#[from] P2pError),
    /// A file or socket failed.
    #[error("{0}")]
    Io(String),
}

struct State {
    home: Home,
    node: RwLock<Option<Node>>,
    started: Instant,
    stop: watch::Sender<bool>,
}

/// Runs the daemon in the foreground until SIGTERM, SIGINT or a `Stop` request.
pub async fn run(home: Home) -> Result<(), DaemonError> {
    home.ensure()?;
    let io = |what: &str, e: std::io::Error| DaemonError::Io(format!("{what}: {e}"));
    // The lock is held for the life of the process: a second daemon on this home fails here.
    let lock_path = home.file("daemon.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io("opening daemon.lock", e))?;
    if lock.try_lock().is_err() {
        return Err(DaemonError::AlreadyRunning(home.root().display().to_string()));
    }
    let identity = home.load_identity()?.ok_or(DaemonError::NoIdentity)?.identity;
    let config = NodeConfig::load(&home)?;
    let node = Node::start(identity, home.clone(), config, AgentBackend::new(home.clone())).await?;
    tracing::info!(id = %node.id(), addrs = ?node.addr_hints(), "P2P node listening");
    join_topics(&node, &DiscoverSettings::load(&home)?.topics).await;

    let sock = lifecycle::socket_path(&home);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(|e| io("binding daemon.sock", e))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("daemon.sock", e))?;
    write_atomic(&lifecycle::pid_path(&home), format!("{}\n", std::process::id()).as_bytes())?;

    let (stop, mut stopped) = watch::channel(false);
    let state =
        Arc::new(State { home: home.clone(), node: RwLock::new(Some(node)), started: Instant::now(), stop });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| io("installing the SIGTERM handler", e))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((conn, _)) => { tokio::spawn(serve(state.clone(), conn)); }
                Err(e) => tracing::warn!(%e, "accepting a CLI connection"),
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = stopped.changed() => break,
        }
    }
    tracing::info!("stopping");
    if let Some(node) = state.node.write().await.take() {
        node.shutdown().await;
    }
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(lifecycle::pid_path(&home));
    drop(lock);
    Ok(())
}

/// Joins `topics` (from `WOPR_TOPICS` or `discover.topics`); a topic that fails is logged, not fatal.
async fn join_topics(node: &Node, topics: &[String]) {
    for topic in topics {
        match node.join(topic).await {
            Ok(_) => tracing::info!(topic, "joined topic"),
            Err(e) => tracing::warn!(%e, topic, "could not join topic"),
        }
    }
}

async fn serve(state: Arc<State>, conn: UnixStream) {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    let request = match lines.next_line().await {
        Ok(Some(l)) => serde_json::from_str::<Request>(&l),
        _ => return,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let Ok(mut bytes) = serde_json::to_vec(&reply) else { break };
            bytes.push(b'\n');
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let reply = match request {
        Ok(req) => handle(&state, req, &tx).await,
        Err(e) => Reply::Error { code: 3, message: format!("malformed request: {e}") },
    };
    let _ = tx.send(reply);
    drop(tx);
    let _ = writer.await;
}

fn p2p_error(e: P2pError) -> Reply {
    Reply::Error { code: e.exit_code(), message: e.to_string() }
}

async fn handle(state: &State, req: Request, tx: &mpsc::UnboundedSender<Reply>) -> Reply {
    if let Request::Rotate { reason } = req {
        return rotate(state, &reason).await;
    }
    if let Request::Stop = req {
        let _ = state.stop.send(true);
        return Reply::Ok(json!({"stopping": true}));
    }
    if let Request::Discover(DiscoverOp::Join { topic, watch: true }) = req {
        return join_and_watch(state, topic, tx).await;
    }
    let guard = state.node.read().await;
    let Some(node) = guard.as_ref() else {
        return Reply::Error { code: 1, message: "the daemon is stopping".into() };
    };
    match req {
        Request::Status => {
            let peers = node.connected_peers();
            let paths: serde_json::Map<_, _> = peers
                .iter()
                .filter_map(|p| Some((p.to_hex(), node.path_to(p)?.to_string().into())))
                .collect();
            Reply::Ok(json!({
            "pid": std::process::id(),
            "uptimeSecs": state.started.elapsed().as_secs(),
            "id": node.id().to_hex(),
            "shortId": node.id().short(),
            "addresses": node.addr_hints(),
            "relay": node.config().relay.to_string(),
            "connectedPeers": peers.iter().map(PublicId::to_hex).collect::<Vec<_>>(),
            "peerPaths": paths,
            "ticket": node.ticket(),
            "home": state.home.root(),
            }))
        }
        Request::Hints => Reply::Ok(json!({"hints": node.addr_hints()})),
        Request::Claim { token } => match node.claim(&token).await {
            Ok(peer) => Reply::Ok(serde_json::to_value(peer).unwrap_or_default()),
            Err(e) => p2p_error(e),
        },
        Request::Inject { peer, session, text, hops } => {
            let result = node.inject_forwarded(&peer, &session, &text, hops, |d| {
                let _ = tx.send(Reply::Delta(d.to_string()));
            });
            match result.await {
                Ok(status) => Reply::Ok(json!({"status": status_word(status)})),
                Err(e) => p2p_error(e),
            }
        }
        Request::Revoke { peer } => match resolve_grantee(&state.home, &peer) {
            Ok(key) => match node.revoke(&key) {
                Ok(n) => Reply::Ok(json!({"peer": key.to_hex(), "removed": n})),
                Err(e) => p2p_error(e),
            },
            Err(r) => r,
        },
        Request::Discover(op) => crate::discover::handle(node, op).await,
        Request::Friend(op) => crate::friend::handle(node, op).await,
        Request::Rotate { .. } | Request::Stop => unreachable_reply(),
    }
}

/// `discover join` with a daemon: the daemon joins, then streams the topic's events to the CLI, without
/// holding the node (a rotation may replace it meanwhile; the watch then ends).
async fn join_and_watch(state: &State, topic: String, tx: &mpsc::UnboundedSender<Reply>) -> Reply {
    let (listed, events) = {
        let guard = state.node.read().await;
        let Some(node) = guard.as_ref() else {
            return Reply::Error { code: 1, message: "the daemon is stopping".into() };
        };
        if let Err(e) = node.join(&topic).await {
            return p2p_error(e);
        }
        (node.discovered(Some(&topic), false), node.discovery_events())
    };
    crate::discover::watch(listed, events, Some(topic), tx).await
}

fn unreachable_reply() -> Reply {
    Reply::Error { code: 1, message: "internal: request handled elsewhere".into() }
}

/// The key of a peer with grants (name, short id or full id), or a full id given directly.
pub(crate) fn resolve_grantee(home: &Home, query: &str) -> Result<PublicId, Reply> {
    let now = wopr_store::now_ms();
    match home.access().load().and_then(|a| a.resolve(query, now).map(|g| g.peer_key)) {
        Ok(k) => Ok(k),
        Err(e) => PublicId::parse(query).map_err(|_| Reply::Error { code: 3, message: e.to_string() }),
    }
}

/// `DoneStatus` as the word the CLI prints.
pub fn status_word(s: DoneStatus) -> &'static str {
    match s {
        DoneStatus::Completed => "completed",
        DoneStatus::Logged => "logged",
        DoneStatus::Failed => "failed",
        DoneStatus::Cancelled => "cancelled",
    }
}

async fn rotate(state: &State, reason: &str) -> Reply {
    let Some(reason) = RotationReason::parse(reason) else {
        return Reply::Error {
            code: 3,
            message: format!("unknown reason {reason:?}: use scheduled, compromise or upgrade"),
        };
    };
    let mut guard = state.node.write().await;
    let config = guard.as_ref().map(|n| n.config().clone());
    let (identity, record) = match state.home.rotate_identity(reason) {
        Ok(r) => r,
        Err(e) => return Reply::Error { code: 1, message: e.to_string() },
    };
    let topics: Vec<String> =
        guard.as_ref().map(|n| n.topics().into_iter().map(|t| t.name).collect()).unwrap_or_default();
    if let Some(old) = guard.take() {
        old.shutdown().await;
    }
    let config = match config.map(Ok).unwrap_or_else(|| NodeConfig::load(&state.home)) {
        Ok(c) => c,
        Err(e) => return p2p_error(e),
    };
    let node = match Node::start(identity, state.home.clone(), config, AgentBackend::new(state.home.clone()))
        .await
    {
        Ok(n) => n,
        Err(e) => return p2p_error(e),
    };
    join_topics(&node, &topics).await;
    let report = node.broadcast_rotation(&record).await;
    *guard = Some(node);
    match report {
        Ok(r) => Reply::Ok(json!({"record": record, "report": report_json(&r)})),
        Err(e) => p2p_error(e),
    }
}

/// A rotation report as JSON.
pub fn report_json(r: &RotationReport) -> serde_json::Value {
    let pairs = |v: &[(PublicId, String)]| {
        v.iter().map(|(k, why)| json!({"peer": k.to_hex(), "reason": why})).collect::<Vec<_>>()
    };
    json!({
        "delivered": r.delivered.iter().map(PublicId::to_hex).collect::<Vec<_>>(),
        "refused": pairs(&r.refused),
        "pending": pairs(&r.pending),
    })
}
