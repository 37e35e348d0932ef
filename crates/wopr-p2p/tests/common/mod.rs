//! Shared test harness: nodes on loopback with relays disabled, temp homes, and a scripted backend.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use wopr_identity::{Identity, PublicId};
use wopr_p2p::{BoxFuture, Judgement, Node, NodeConfig, Ruling, SessionBackend, create_invite};
use wopr_store::{Capability, Home};

/// What the scripted backend saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub from: PublicId,
    pub session: String,
    pub text: String,
    pub hops: u8,
}

/// A session backend that answers by streaming the words of `"echo: <text>"` one delta each. In the
/// session `slow` it sends one delta, then waits until `release` is notified (or the turn is dropped).
#[derive(Debug, Default)]
pub struct Scripted {
    pub injects: Mutex<Vec<Call>>,
    pub logs: Mutex<Vec<Call>>,
    pub release: Notify,
    pub dropped: Mutex<u32>,
    /// How many times the judge was asked.
    pub judged: Mutex<u32>,
}

/// Counts turns that were cancelled (their future dropped before completing).
struct DropCounter<'a>(&'a Mutex<u32>, bool);
impl Drop for DropCounter<'_> {
    fn drop(&mut self) {
        if !self.1 {
            *self.0.lock().unwrap() += 1;
        }
    }
}

pub fn words(text: &str) -> Vec<String> {
    let answer = format!("echo: {text}");
    let mut out = Vec::new();
    for (i, w) in answer.split(' ').enumerate() {
        out.push(if i == 0 { w.to_string() } else { format!(" {w}") });
    }
    out
}

impl SessionBackend for Scripted {
    fn inject<'a>(
        &'a self,
        from: PublicId,
        session: &'a str,
        text: &'a str,
        hop_count: u8,
        deltas: mpsc::Sender<String>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.injects.lock().unwrap().push(Call {
                from,
                session: session.into(),
                text: text.into(),
                hops: hop_count,
            });
            if session == "broken" {
                return Err("provider unavailable".into());
            }
            let mut guard = DropCounter(&self.dropped, false);
            if session == "slow" {
                deltas.send("thinking".into()).await.map_err(|e| e.to_string())?;
                self.release.notified().await;
            }
            for w in words(text) {
                deltas.send(w).await.map_err(|e| e.to_string())?;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            guard.1 = true;
            Ok(())
        })
    }

    /// A scripted judge: junk is anything shouting about bitcoin; the rest is fine.
    fn judge<'a>(
        &'a self,
        question: Judgement<'a>,
        _capable_only: bool,
    ) -> BoxFuture<'a, Result<Option<Ruling>, String>> {
        let content = match question {
            Judgement::Profile { content, .. } | Judgement::Connect { content, .. } => content.to_string(),
        };
        Box::pin(async move {
            *self.judged.lock().unwrap() += 1;
            Ok(Some(if content.to_lowercase().contains("bitcoin") {
                (false, "spam: advertises free bitcoin".to_string())
            } else {
                (true, "looks like an agent".to_string())
            }))
        })
    }

    fn log<'a>(
        &'a self,
        from: PublicId,
        session: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.logs.lock().unwrap().push(Call {
                from,
                session: session.into(),
                text: text.into(),
                hops: 0,
            });
            Ok(())
        })
    }
}

/// A node with its temp home and backend.
pub struct TestNode {
    pub node: Node,
    pub home: Home,
    pub backend: Arc<Scripted>,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    /// A fresh identity in a fresh home, on loopback.
    pub async fn start() -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("wopr"));
        let identity = home.init_identity(false).unwrap();
        Self::start_with(dir, home, identity, NodeConfig::loopback()).await
    }

    pub async fn start_with(
        dir: tempfile::TempDir,
        home: Home,
        identity: Identity,
        config: NodeConfig,
    ) -> TestNode {
        let backend = Arc::new(Scripted::default());
        let node = Node::start(identity, home.clone(), config, backend.clone()).await.unwrap();
        TestNode { node, home, backend, dir }
    }

    /// Restarts the node on the same home with the identity on disk, bound to `bind`.
    pub async fn restart(self, bind: Option<std::net::SocketAddr>) -> TestNode {
        let TestNode { node, home, dir, .. } = self;
        node.shutdown().await;
        let identity = home.load_identity().unwrap().unwrap().identity;
        let mut config = NodeConfig::loopback();
        if bind.is_some() {
            config.bind = bind;
        }
        Self::start_with(dir, home, identity, config).await
    }

    pub fn id(&self) -> PublicId {
        self.node.id()
    }

    pub fn identity(&self) -> Identity {
        self.home.load_identity().unwrap().unwrap().identity
    }

    /// An invite from this node for `subject`.
    pub fn invite(&self, subject: &PublicId, sessions: &[&str], caps: &[Capability]) -> String {
        let sessions: Vec<String> = sessions.iter().map(|s| s.to_string()).collect();
        create_invite(&self.identity(), subject, &sessions, caps, None, self.node.addr_hints()).unwrap()
    }

    /// The first socket address this node listens on.
    pub fn socket(&self) -> std::net::SocketAddr {
        self.node.addr_hints()[0].parse().unwrap()
    }
}

/// Issuer invites `subject` and `subject` claims it.
pub async fn befriend(issuer: &TestNode, subject: &TestNode, sessions: &[&str], caps: &[Capability]) {
    let token = issuer.invite(&subject.id(), sessions, caps);
    subject.node.claim(&token).await.unwrap();
}

/// Injects and collects the streamed deltas.
pub async fn inject(
    from: &TestNode,
    peer: &str,
    session: &str,
    text: &str,
) -> (Result<wopr_p2p::DoneStatus, wopr_p2p::P2pError>, Vec<String>) {
    let mut deltas = Vec::new();
    let r = from.node.inject(peer, session, text, |d| deltas.push(d.to_string())).await;
    (r, deltas)
}

/// Sets `key` in `home`'s config.json.
pub fn set_config(home: &Home, key: &str, value: serde_json::Value) {
    wopr_store::Config::of(home).set(&wopr_store::ConfigKey::parse(key).unwrap(), value).unwrap();
}

/// A node whose discovery uses only `bootstrap` (no LAN, no DHT), with `extra` config settings.
pub async fn discovery_node(bootstrap: &[String], extra: &[(&str, serde_json::Value)]) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("wopr"));
    let identity = home.init_identity(false).unwrap();
    set_config(&home, "discover.mdns", serde_json::json!(false));
    set_config(&home, "discover.dht", serde_json::json!(false));
    set_config(&home, "discover.bootstrap", serde_json::json!(bootstrap));
    for (k, v) in extra {
        set_config(&home, k, v.clone());
    }
    TestNode::start_with(dir, home, identity, NodeConfig::loopback()).await
}

/// A gossip endpoint of its own under `identity`'s key, with no WOPR node behind it (it serves gossip
/// only), subscribed to `topic` through `hub`: a peer built on the protocol crate alone.
pub async fn raw_gossip_peer(
    hub: &TestNode,
    identity: &Identity,
    topic: &str,
) -> (iroh::protocol::Router, iroh_gossip::api::GossipSender, iroh_gossip::api::GossipReceiver) {
    use iroh::{EndpointAddr, TransportAddr};
    let lookup = iroh::address_lookup::MemoryLookup::new();
    let id = iroh::EndpointId::from_bytes(hub.id().as_bytes()).unwrap();
    lookup.add_endpoint_info(EndpointAddr::from_parts(id, [TransportAddr::Ip(hub.socket())]));
    let endpoint = raw_endpoint(identity, Some(lookup)).await;
    let gossip = iroh_gossip::Gossip::builder().spawn(endpoint.clone());
    let router = iroh::protocol::Router::builder(endpoint).accept(iroh_gossip::ALPN, gossip.clone()).spawn();
    let topic_id = iroh_gossip::TopicId::from_bytes(wopr_proto::discovery::topic_id(topic));
    let mut sub = gossip.subscribe(topic_id, vec![id]).await.unwrap();
    sub.joined().await.unwrap();
    let (sender, receiver) = sub.split();
    (router, sender, receiver)
}

/// Reads a gossip subscription to its end (keeps it alive while a test runs).
pub async fn drain(mut receiver: iroh_gossip::api::GossipReceiver) {
    use futures::StreamExt;
    while receiver.next().await.is_some() {}
}

/// A bare iroh endpoint under `identity`'s key on 127.0.0.1: no relay, no lookup but `lookup`.
pub async fn raw_endpoint(
    identity: &Identity,
    lookup: Option<iroh::address_lookup::MemoryLookup>,
) -> iroh::Endpoint {
    let mut builder = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .relay_mode(iroh::RelayMode::Disabled)
        .clear_address_lookup();
    if let Some(lookup) = lookup {
        builder = builder.address_lookup(lookup);
    }
    builder
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .secret_key(iroh::SecretKey::from_bytes(&identity.signing_seed()))
        .bind()
        .await
        .unwrap()
}
