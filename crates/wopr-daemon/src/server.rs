//! `wopr daemon run`: the node, the socket, the HTTP API, and a graceful stop.

use std::fs::OpenOptions;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use wopr_identity::PublicId;
use wopr_p2p::discovery::DiscoverSettings;
use wopr_p2p::{Node, NodeConfig, P2pError};
use wopr_store::{ExitCode, Home, write_atomic};

use crate::AgentBackend;
use crate::ipc::{DiscoverOp, Hints, InjectStatus, LoginLink, Reply, Request, TokenReply};
use crate::lifecycle;
use crate::service::{ApiError, Core, DRAIN_DEADLINE};

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
    let bind = crate::http::bind_address(&home).map_err(DaemonError::Io)?;
    let config = NodeConfig::load(&home)?;
    // The API's port is taken before the node starts: a clash fails the start, not later.
    let http_listener = match bind {
        Some(bind) => Some(crate::http::listen(bind).await.map_err(|e| {
            io(&format!("binding the HTTP API to {} (set daemon.bind or WOPR_DAEMON_BIND)", bind.addr), e)
        })?),
        None => None,
    };
    let node = Node::start(identity, home.clone(), config, AgentBackend::new(home.clone())).await?;
    tracing::info!(id = %node.id(), addrs = ?node.addr_hints(), "P2P node listening");
    join_topics(&node, &DiscoverSettings::load(&home)?.topics).await;
    let core = Core::new(home.clone(), node).map_err(|e| DaemonError::Io(e.message))?;

    let sock = lifecycle::socket_path(&home);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(|e| io("binding daemon.sock", e))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("daemon.sock", e))?;

    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http_task = match http_listener {
        Some(l) => {
            let addr = l.local_addr().map_err(|e| io("the HTTP API's address", e))?;
            core.set_api_address(format!("http://{addr}"));
            tracing::info!(%addr, "HTTP API listening");
            let stop = async move {
                let _ = http_stopped.await;
            };
            Some(tokio::spawn(crate::http::serve(core.clone(), l, stop)))
        }
        None => None,
    };
    write_atomic(&lifecycle::pid_path(&home), format!("{}\n", std::process::id()).as_bytes())?;
    // Idle from here on: what start-up ran need not stay mapped.
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let released = tokio::task::spawn_blocking(crate::trim::release_startup_pages).await.unwrap_or(0);
        tracing::debug!(released, "start-up pages let go");
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| io("installing the SIGTERM handler", e))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((conn, _)) => {
                    let c = core.clone();
                    core.spawn(serve(c, conn), || {});
                }
                Err(e) => tracing::warn!(%e, "accepting a CLI connection"),
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            () = core.stop_requested() => break,
        }
    }
    tracing::info!("stopping");
    drop(listener);
    let _ = std::fs::remove_file(&sock);
    let _ = http_stop.send(());
    let started = std::time::Instant::now();
    core.shutdown(DRAIN_DEADLINE).await;
    tracing::info!(ms = started.elapsed().as_millis() as u64, "tasks drained and the node closed");
    if let Some(task) = http_task {
        // Streams ended with the drain; idle connections close now.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    tracing::info!(ms = started.elapsed().as_millis() as u64, "stopped");
    let _ = std::fs::remove_file(lifecycle::pid_path(&home));
    drop(lock);
    Ok(())
}

/// Joins `topics` (from `WOPR_TOPICS` or `discover.topics`); a topic that fails is logged, not fatal.
pub(crate) async fn join_topics(node: &Node, topics: &[String]) {
    for topic in topics {
        match node.join(topic).await {
            Ok(_) => tracing::info!(topic, "joined topic"),
            Err(e) => tracing::warn!(%e, topic, "could not join topic"),
        }
    }
}

async fn serve(core: Arc<Core>, conn: UnixStream) {
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
        Ok(req) => handle(&core, req, &tx).await,
        Err(e) => Reply::Error { code: ExitCode::Invalid, message: format!("malformed request: {e}") },
    };
    let _ = tx.send(reply);
    drop(tx);
    let _ = writer.await;
}

fn p2p_error(e: P2pError) -> Reply {
    Reply::Error { code: e.exit_code(), message: e.to_string() }
}

fn api_error(e: ApiError) -> Reply {
    Reply::of::<()>(Err(e))
}

async fn handle(core: &Core, req: Request, tx: &mpsc::UnboundedSender<Reply>) -> Reply {
    match req {
        Request::Rotate { reason } => return Reply::of(core.rotate(&reason).await),
        Request::Stop => {
            core.request_stop();
            return Reply::Ok(json!({"stopping": true}));
        }
        Request::Status => return Reply::of(core.status().await),
        Request::Token { rotate } => {
            let c = core.credentials();
            let token = if rotate { c.rotate().map_err(ApiError::from) } else { Ok(c.token()) };
            return Reply::of(
                token.map(|token| TokenReply { token, api: core.api_address().map(str::to_string) }),
            );
        }
        Request::UiLogin => {
            return match core.api_address() {
                Some(api) => {
                    let code = core.credentials().logins.new_code();
                    Reply::of(Ok(LoginLink { url: format!("{api}/login?code={code}") }))
                }
                None => api_error(ApiError::failure(
                    "the daemon's HTTP API is off (daemon.bind is `off`): set daemon.bind and restart the daemon",
                )),
            };
        }
        Request::Discover(DiscoverOp::Join { topic, watch: true }) => {
            let node = match core.node().await {
                Ok(n) => n,
                Err(e) => return api_error(e),
            };
            if let Err(e) = node.join(&topic).await {
                return p2p_error(e);
            }
            let (listed, events) = (node.discovered(Some(&topic), false), node.discovery_events());
            drop(node);
            return crate::discover::watch(listed, events, Some(topic), tx).await;
        }
        _ => {}
    }
    let node = match core.node().await {
        Ok(n) => n,
        Err(e) => return api_error(e),
    };
    match req {
        Request::Hints => Reply::of(Ok(Hints { hints: node.addr_hints() })),
        Request::Claim { token } => match node.claim(&token).await {
            Ok(peer) => Reply::Ok(serde_json::to_value(peer).unwrap_or_default()),
            Err(e) => p2p_error(e),
        },
        Request::Inject { peer, session, text, hops } => {
            let result = node.inject_forwarded(&peer, &session, &text, hops, |d| {
                let _ = tx.send(Reply::Delta(d.to_string()));
            });
            match result.await {
                Ok(status) => {
                    Reply::of(Ok(InjectStatus { status: crate::service::status_word(status).into() }))
                }
                Err(e) => p2p_error(e),
            }
        }
        Request::Revoke { peer } => Reply::of(core.revoke(&peer).await),
        Request::Discover(op) => crate::discover::handle(&node, op).await,
        Request::Friend(op) => crate::friend::handle(&node, op).await,
        Request::NetReport { peer, wait } => {
            let peer = match peer.as_deref().map(PublicId::parse).transpose() {
                Ok(p) => p,
                Err(e) => return Reply::Error { code: ExitCode::Invalid, message: format!("peer: {e}") },
            };
            let report = node.net_report(peer.as_ref(), std::time::Duration::from_secs(wait)).await;
            Reply::Ok(serde_json::to_value(report).unwrap_or_default())
        }
        Request::Rotate { .. }
        | Request::Stop
        | Request::Status
        | Request::Token { .. }
        | Request::UiLogin => {
            Reply::Error { code: ExitCode::Failure, message: "internal: request handled elsewhere".into() }
        }
    }
}
