//! The live bootstrap sources: LAN peers found by mDNS and members found by the DHT rendezvous. Both
//! keep feeding a joined topic while it is joined, so members that arrive later are still met.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use iroh_gossip::api::GossipSender;
use tokio::sync::watch;
use wopr_identity::PublicId;
use wopr_rendezvous::{REFRESH_INTERVAL_MS, Rendezvous, select_hints};

use super::endpoint_of;
use crate::inner::{Inner, lock};

/// How long to wait before retrying a DHT that did not answer.
const DHT_RETRY: Duration = Duration::from_secs(30);

impl Inner {
    /// The DHT client, started on first use with `discover.dht`'s bootstrap nodes.
    async fn rendezvous(&self) -> Result<Rendezvous, String> {
        let bootstrap = lock(&self.discovery.settings).dht_bootstrap.clone();
        self.discovery
            .rendezvous
            .get_or_try_init(|| async move { Rendezvous::start(bootstrap).await.map_err(|e| e.to_string()) })
            .await
            .cloned()
    }
}

/// Feeds LAN peers to every joined topic as they appear.
pub(crate) async fn lan_task(inner: Weak<Inner>, mut peers: watch::Receiver<BTreeSet<PublicId>>) {
    let mut known: BTreeSet<PublicId> = BTreeSet::new();
    loop {
        let fresh: Vec<PublicId> = peers.borrow_and_update().difference(&known).copied().collect();
        if !fresh.is_empty() {
            let Some(inner) = inner.upgrade() else { return };
            known.extend(fresh.iter().copied());
            lock(&inner.discovery.sources).mdns.found = known.len();
            let ids: Vec<_> = fresh.iter().filter_map(endpoint_of).collect();
            for sender in inner.discovery.senders() {
                let _ = sender.join_peers(ids.clone()).await;
            }
        }
        if peers.changed().await.is_err() {
            return;
        }
    }
}

/// Announces this node in `topic` on the DHT and joins the members it finds, every half minute.
pub(crate) async fn dht_task(inner: Weak<Inner>, topic: String, sender: GossipSender) {
    // While nobody else is found, look again sooner (5, 10, 20 s), then every refresh interval.
    let mut lonely = Duration::from_secs(5);
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let wait = match strong.rendezvous().await {
            Ok(dht) => {
                let refresh = Duration::from_millis(REFRESH_INTERVAL_MS);
                if meet_on_dht(&strong, &dht, &topic, &sender).await == 0 && lonely < refresh {
                    lonely *= 2;
                    lonely / 2
                } else {
                    refresh
                }
            }
            Err(e) => {
                lock(&strong.discovery.sources).dht.note = Some(format!("the DHT did not answer: {e}"));
                DHT_RETRY
            }
        };
        drop(strong);
        tokio::time::sleep(wait).await;
    }
}

/// One round: look up the members, join them, announce ourselves. Returns how many others it found.
async fn meet_on_dht(inner: &Arc<Inner>, dht: &Rendezvous, topic: &str, sender: &GossipSender) -> usize {
    let mut found = 0;
    match dht.lookup(topic, inner.now()).await {
        Ok(members) => {
            let others: Vec<_> = members.into_iter().filter(|m| m.key != inner.me).collect();
            let mut ids = Vec::new();
            ids.extend(others.iter().filter_map(|m| inner.learn_address(&m.key, &m.hints)));
            {
                let mut sources = lock(&inner.discovery.sources);
                sources.dht.found = sources.dht.found.max(ids.len());
                sources.dht.note = None;
            }
            found = ids.len();
            if !ids.is_empty() {
                let _ = sender.join_peers(ids).await;
            }
        }
        Err(e) => lock(&inner.discovery.sources).dht.note = Some(format!("lookup in {topic}: {e}")),
    }
    let hints = select_hints(&inner.addr_hints());
    if let Err(e) = dht.announce(topic, &inner.identity, &hints).await {
        lock(&inner.discovery.sources).dht.note = Some(format!("announce in {topic}: {e}"));
    }
    found
}
