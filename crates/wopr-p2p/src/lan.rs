//! LAN discovery by mDNS: the endpoint advertises its id and direct addresses on the local network and
//! learns those of other WOPR nodes there, so a LAN peer is reachable by id alone, with relays and every
//! other lookup off.
//!
//! Two things come out of it: an address lookup the endpoint consults when it dials an id (the
//! [`LanLookup`] wrapper around iroh's mDNS lookup), and the set of endpoint ids seen on the LAN
//! ([`LanDiscovery::peers`]), which discovery feeds to gossip as bootstrap peers.
//!
//! mDNS is unauthenticated: anyone on the LAN can announce any id with any addresses. That is harmless
//! to authenticity, because a connection to an id completes only if the far end proves that key in the
//! QUIC/TLS handshake; a forged record costs a failed dial. What it can cost is room, so the set of LAN
//! ids is capped at [`MAX_LAN_PEERS`]. Advertising also tells everyone on the LAN this node's WOPR id:
//! `discover.mdns = false` turns both directions off.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use iroh::EndpointId;
use iroh::address_lookup::{AddressLookup, EndpointData, Error as LookupError, Item};
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
use tokio::sync::watch;
use wopr_identity::PublicId;

/// The DNS-SD service WOPR nodes advertise (`<id>._wopr._udp.local`): other iroh applications on the LAN
/// use their own, so only WOPR nodes are found.
pub const MDNS_SERVICE: &str = "wopr";

/// Most LAN endpoint ids kept at once; further ones are ignored until some expire.
pub const MAX_LAN_PEERS: usize = 256;

/// Whether LAN discovery runs, for `doctor net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanState {
    /// Turned off (`discover.mdns = false`).
    Off,
    /// Advertising and listening.
    Running,
    /// Turned on, but the mDNS socket could not be opened (the node runs without it).
    Failed(String),
}

/// The running mDNS side of a node: the ids found on the LAN, and the task that collects them.
#[derive(Debug)]
pub(crate) struct LanDiscovery {
    state: LanState,
    peers: watch::Receiver<BTreeSet<PublicId>>,
    collector: Option<tokio::task::JoinHandle<()>>,
}

impl LanDiscovery {
    /// No LAN discovery: an empty set whose channel is already closed.
    fn inactive(state: LanState) -> Self {
        let (_, peers) = watch::channel(BTreeSet::new());
        LanDiscovery { state, peers, collector: None }
    }

    /// Starts mDNS for `me` if `enabled`, returning the lookup to add to the endpoint (`None` when off or
    /// when it could not start: a node without mDNS still works, and `doctor net` says why).
    pub(crate) async fn start(me: EndpointId, enabled: bool) -> (Self, Option<LanLookup>) {
        if !enabled {
            return (Self::inactive(LanState::Off), None);
        }
        let mdns = match MdnsAddressLookup::builder().service_name(MDNS_SERVICE).build(me) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%e, "LAN discovery (mDNS) is off: cannot open its socket");
                return (Self::inactive(LanState::Failed(e.to_string())), None);
            }
        };
        // Subscribed before the endpoint exists, so no announcement arrives before the subscription:
        // iroh's mDNS lookup tells subscribers of a peer only once, when first seen or changed.
        let mut events = mdns.subscribe().await;
        let (tx, peers) = watch::channel(BTreeSet::new());
        let tx = Arc::new(tx);
        let found = tx.clone();
        let collector = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    DiscoveryEvent::Discovered { endpoint_info, .. } => {
                        found_on_lan(&found, endpoint_info.endpoint_id)
                    }
                    DiscoveryEvent::Expired { endpoint_id } => {
                        found.send_if_modified(|set| set.remove(&PublicId(*endpoint_id.as_bytes())));
                    }
                    _ => {}
                }
            }
        });
        let lan = LanDiscovery { state: LanState::Running, peers, collector: Some(collector) };
        (lan, Some(LanLookup { mdns, found: tx }))
    }

    /// Whether mDNS runs.
    pub(crate) fn state(&self) -> &LanState {
        &self.state
    }

    /// The ids seen on the LAN now; changes as peers appear and expire.
    pub(crate) fn peers(&self) -> watch::Receiver<BTreeSet<PublicId>> {
        self.peers.clone()
    }
}

impl Drop for LanDiscovery {
    fn drop(&mut self) {
        if let Some(task) = self.collector.take() {
            task.abort();
        }
    }
}

/// Adds `id` to the LAN set, unless it is full.
fn found_on_lan(set: &watch::Sender<BTreeSet<PublicId>>, id: EndpointId) {
    let id = PublicId(*id.as_bytes());
    set.send_if_modified(|peers| {
        if peers.len() >= MAX_LAN_PEERS && !peers.contains(&id) {
            tracing::debug!(peer = %id.short(), "LAN peer set full; ignoring");
            return false;
        }
        peers.insert(id)
    });
}

/// iroh's mDNS lookup, also recording the ids it resolves: iroh passes an id that was being looked up
/// (a dial by id) to the dialer only, not to subscribers, and it must still count as seen on the LAN.
#[derive(Debug, Clone)]
pub(crate) struct LanLookup {
    mdns: MdnsAddressLookup,
    found: Arc<watch::Sender<BTreeSet<PublicId>>>,
}

impl AddressLookup for LanLookup {
    fn publish(&self, data: &EndpointData) {
        self.mdns.publish(data);
    }

    fn resolve(&self, id: EndpointId) -> Option<BoxStream<'static, Result<Item, LookupError>>> {
        let found = self.found.clone();
        let stream = self.mdns.resolve(id)?.inspect(move |item| {
            if let Ok(item) = item {
                found_on_lan(&found, item.endpoint_id());
            }
        });
        Some(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u16) -> EndpointId {
        let mut seed = [0u8; 32];
        seed[..2].copy_from_slice(&n.to_le_bytes());
        iroh::SecretKey::from_bytes(&seed).public()
    }

    #[test]
    fn the_lan_set_is_capped_and_keeps_the_ids_it_has() {
        let (tx, rx) = watch::channel(BTreeSet::new());
        for n in 0..(MAX_LAN_PEERS as u16 + 10) {
            found_on_lan(&tx, id(n));
        }
        assert_eq!(rx.borrow().len(), MAX_LAN_PEERS);
        assert!(rx.borrow().contains(&PublicId(*id(0).as_bytes())));
        assert!(!rx.borrow().contains(&PublicId(*id(MAX_LAN_PEERS as u16 + 1).as_bytes())));
        // Seen again while full: still there, and no change is signalled.
        let mut watcher = rx.clone();
        watcher.mark_unchanged();
        found_on_lan(&tx, id(0));
        assert!(!watcher.has_changed().unwrap());
    }

    #[tokio::test]
    async fn off_means_no_lookup_and_a_closed_empty_set() {
        let (lan, lookup) = LanDiscovery::start(id(1), false).await;
        assert!(lookup.is_none());
        assert_eq!(lan.state(), &LanState::Off);
        let mut peers = lan.peers();
        assert!(peers.borrow().is_empty());
        assert!(peers.changed().await.is_err(), "the channel of a node without mDNS is closed");
    }
}
