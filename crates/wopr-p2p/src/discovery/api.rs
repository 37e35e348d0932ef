//! The node's discovery commands: what `wopr discover ...` and the daemon call.

use tokio::sync::broadcast;
use wopr_identity::PublicId;
use wopr_proto::message::{ConnectRequest, Message};
use wopr_store::PeerRecord;

use super::bootstrap::Sources;
use super::settings::{DiscoverSettings, content_text};
use super::{DiscoveryEvent, PeerView, PendingView, TopicStatus};
use crate::client::REPLY_TIMEOUT;
use crate::inner::lock;
use crate::invite::store_capabilities;
use crate::server::ASK_WAIT;
use crate::{Node, P2pError};

/// The result of an accepted connect-request: the stored peer record and what the accepter said.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Connected {
    /// The accepter, as now stored in `peers.json`.
    pub peer: PeerRecord,
    /// Its reason.
    pub reason: String,
}

/// What `discover status` shows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverStatus {
    /// Joined topics.
    pub topics: Vec<TopicStatus>,
    /// Bootstrap sources at the last join.
    pub sources: Sources,
    /// Layer 2: the keys listed only, if set.
    pub only: Option<Vec<String>>,
    /// Layer 3's state.
    pub filter: String,
    /// Layer 4's policy.
    pub accept: String,
    /// Gossip connections open.
    pub gossip_connections: usize,
}

/// Gossip traffic since the node started, every topic together: iroh-gossip's own counters. Data
/// messages carry profiles and withdrawals; control messages are HyParView's and Plumtree's
/// bookkeeping. Sizes are the encoded messages, without QUIC framing. The counters count only in
/// builds where `iroh-metrics` has its `metrics` feature (this crate's tests and benchmarks turn it on);
/// elsewhere they stay 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GossipTraffic {
    /// Data messages sent, and their bytes.
    pub data_sent: (u64, u64),
    /// Data messages received, and their bytes.
    pub data_received: (u64, u64),
    /// Control messages sent, and their bytes.
    pub control_sent: (u64, u64),
    /// Control messages received, and their bytes.
    pub control_received: (u64, u64),
    /// Times a neighbour came up in some topic.
    pub neighbors_up: u64,
}

impl Node {
    /// Joins `topic` (bootstrapping from the enabled sources); `false` if already in it.
    pub async fn join(&self, topic: &str) -> Result<bool, P2pError> {
        self.inner.join_topic(topic).await
    }

    /// Leaves `topic`, withdrawing this node's profile; `false` if not in it.
    pub async fn leave(&self, topic: &str) -> Result<bool, P2pError> {
        self.inner.leave_topic(topic).await
    }

    /// The joined topics.
    pub fn topics(&self) -> Vec<TopicStatus> {
        self.inner.discovery.topics()
    }

    /// Peers seen in `topic` (or every topic) now; with `all`, the filtered ones too.
    pub fn discovered(&self, topic: Option<&str>, all: bool) -> Vec<PeerView> {
        self.inner.discovery.peers(topic, all)
    }

    /// Discovery events from now on.
    pub fn discovery_events(&self) -> broadcast::Receiver<DiscoveryEvent> {
        self.inner.discovery.subscribe()
    }

    /// This node's profile as announced in `topic` (or a topic-less preview).
    pub fn profile(&self, topic: Option<&str>) -> Result<PeerView, P2pError> {
        let topic = topic.unwrap_or("(no topic)");
        let p = self.inner.my_profile(topic)?;
        Ok(PeerView::of_profile(topic, &p, p.updated_ms))
    }

    /// Sets the profile content (any JSON value, at most 2,048 bytes as text) and re-announces it.
    /// The caller stores it in `config.json` as `discover.profile`.
    pub fn set_profile(&self, content: &serde_json::Value) -> Result<String, P2pError> {
        let text = content_text(content)?;
        self.inner.set_profile_content(text.clone());
        Ok(text)
    }

    /// Re-reads the `discover.*` settings (after `wopr config set`).
    pub fn reload_discovery(&self) -> Result<(), P2pError> {
        let settings = DiscoverSettings::load(&self.inner.home)?;
        self.inner.reload_discovery(settings);
        Ok(())
    }

    /// Discovery's state: topics, sources, layers.
    pub fn discover_status(&self) -> DiscoverStatus {
        let d = &self.inner.discovery;
        let settings = lock(&d.settings).clone();
        DiscoverStatus {
            topics: d.topics(),
            sources: lock(&d.sources).clone(),
            only: settings.only.map(|o| {
                let mut keys: Vec<String> = o.iter().map(PublicId::to_hex).collect();
                keys.sort();
                keys
            }),
            filter: d.filter.describe(),
            accept: settings.accept.to_string(),
            gossip_connections: d.open.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Gossip traffic so far (for benchmarks and diagnostics).
    pub fn gossip_traffic(&self) -> GossipTraffic {
        let m = self.inner.discovery.gossip.metrics();
        GossipTraffic {
            data_sent: (m.msgs_data_sent.get(), m.msgs_data_sent_size.get()),
            data_received: (m.msgs_data_recv.get(), m.msgs_data_recv_size.get()),
            control_sent: (m.msgs_ctrl_sent.get(), m.msgs_ctrl_sent_size.get()),
            control_received: (m.msgs_ctrl_recv.get(), m.msgs_ctrl_recv_size.get()),
            neighbors_up: m.neighbor_up.get(),
        }
    }

    /// Connect-requests waiting for the owner (`discover.accept = ask`).
    pub fn connect_requests(&self) -> Vec<PendingView> {
        self.inner.discovery.pending()
    }

    /// Answers a waiting connect-request; returns the requester's key.
    pub fn decide_connect(&self, peer: &str, accept: bool) -> Result<PublicId, P2pError> {
        self.inner.discovery.decide(peer, accept)
    }

    /// Asks a peer seen in a topic for mutual trust: sends a connect-request over a direct connection
    /// to its key, with this node's profile for that topic. Accepted, the peer is stored in `peers.json`
    /// with the sessions and capabilities it granted (it stored the grant in its `access.json`): the
    /// state a claimed invite leaves. Refused, the error carries its reason.
    pub async fn connect(
        &self,
        peer: &str,
        session: Option<&str>,
        note: &str,
    ) -> Result<Connected, P2pError> {
        let (topic, profile) = self.inner.discovery.find(peer).ok_or_else(|| {
            P2pError::NoSuchPeer(format!(
                "no peer {peer:?} in your topics right now: see `wopr discover peers` (peers are listed only while online)"
            ))
        })?;
        if let Some(s) = session {
            wopr_store::SessionName::new(s)?;
        }
        let mine = self.inner.my_profile(&topic)?;
        let request = ConnectRequest::new(&topic, mine, session.map(String::from), note);
        let wait = REPLY_TIMEOUT.max(ASK_WAIT + std::time::Duration::from_secs(5));
        let reply = self
            .inner
            .request(&profile.author, &profile.hints, Message::ConnectRequest(request), wait, &mut |_| {})
            .await?;
        let Message::ConnectResponse { accepted: true, sessions, capabilities, reason } = reply else {
            return Err(P2pError::Protocol {
                peer: profile.author.short(),
                reason: "connect-request answered with something else".into(),
            });
        };
        let now = wopr_store::now_ms();
        // Named by its short id: the profile's `name` is the stranger's choice (`wopr peers rename`).
        let mut record = PeerRecord::new(profile.author, profile.encrypt_pub, now);
        record.sessions = sessions.into_iter().collect();
        record.capabilities = store_capabilities(capabilities);
        record.addrs = profile.hints.clone();
        record.last_seen = Some(now);
        let peer = self.inner.home.peers().upsert(record)?;
        Ok(Connected { peer, reason })
    }
}
