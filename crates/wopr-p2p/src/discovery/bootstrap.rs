//! Where a node finds the first members of a topic, without a central server.
//!
//! Sources, each switchable in `config.json` and reported by `discover status`: the static
//! `discover.bootstrap` list (endpoint ids, or iroh tickets such as `wopr daemon status --json` prints,
//! which also carry addresses); the address hints of known peers (`peers.json`, `access.json`, filled
//! from invites and claims); LAN discovery (mDNS); and the mainline DHT rendezvous. Gossip only needs one
//! reachable member: HyParView then spreads the rest.

use std::str::FromStr;

use iroh::EndpointId;
use iroh_tickets::endpoint::EndpointTicket;
use serde::{Deserialize, Serialize};
use wopr_identity::PublicId;

use super::endpoint_of;
use crate::endpoint::endpoint_addr;
use crate::inner::{Inner, lock};

/// One bootstrap source's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// Switched on in the settings.
    pub enabled: bool,
    /// Nodes it named at the last join.
    pub found: usize,
    /// What went wrong, or what it is waiting for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Every source, for `discover status` and `doctor net`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sources {
    /// `discover.bootstrap`.
    pub static_nodes: SourceStatus,
    /// `peers.json` and `access.json` addresses.
    pub known_peers: SourceStatus,
    /// LAN (mDNS).
    pub mdns: SourceStatus,
    /// The mainline DHT rendezvous.
    pub dht: SourceStatus,
}

/// A `discover.bootstrap` entry: an iroh ticket (with addresses) or an endpoint id (hex or `wopr://`).
pub(crate) fn parse_entry(entry: &str) -> Result<(EndpointId, Option<iroh::EndpointAddr>), String> {
    let entry = entry.trim();
    if let Ok(ticket) = EndpointTicket::from_str(entry) {
        let addr = ticket.endpoint_addr().clone();
        return Ok((addr.id, Some(addr)));
    }
    let key =
        PublicId::parse(entry).map_err(|e| format!("{entry:?} is neither an iroh ticket nor an id: {e}"))?;
    let id = endpoint_of(&key).ok_or_else(|| format!("{entry:?} is not a valid endpoint key"))?;
    Ok((id, None))
}

impl Inner {
    /// Gives the address lookup where `key` is (its `hints`) and returns its endpoint id, or `None` for
    /// hints that name no address.
    pub(crate) fn learn_address(&self, key: &PublicId, hints: &[String]) -> Option<EndpointId> {
        let (id, addr) = (endpoint_of(key)?, endpoint_addr(key, hints).ok()?);
        self.lookup.add_endpoint_info(addr);
        Some(id)
    }

    /// The nodes to join a topic through, from every enabled source; their addresses go to the lookup.
    pub(crate) async fn bootstrap_ids(&self) -> Vec<EndpointId> {
        let settings = lock(&self.discovery.settings).clone();
        let mut ids: Vec<EndpointId> = Vec::new();
        let mut sources = Sources::default();

        sources.static_nodes.enabled = !settings.bootstrap.is_empty();
        let mut bad = Vec::new();
        for entry in &settings.bootstrap {
            match parse_entry(entry) {
                Ok((id, addr)) => {
                    if let Some(addr) = addr {
                        self.lookup.add_endpoint_info(addr);
                    }
                    ids.push(id);
                    sources.static_nodes.found += 1;
                }
                Err(e) => bad.push(e),
            }
        }
        if !bad.is_empty() {
            sources.static_nodes.note = Some(bad.join("; "));
        }

        sources.known_peers.enabled = settings.known_peers;
        if settings.known_peers {
            let mut known: Vec<(PublicId, Vec<String>)> = Vec::new();
            if let Ok(peers) = self.peers_doc().await {
                known.extend(peers.peers.iter().map(|p| (p.public_key, p.addrs.clone())));
            }
            if let Ok(access) = self.access_doc().await {
                known.extend(access.grants.iter().map(|g| (g.peer_key, g.addrs.clone())));
            }
            for (key, addrs) in known.into_iter().filter(|(_, a)| !a.is_empty()) {
                if let Some(id) = self.learn_address(&key, &addrs) {
                    ids.push(id);
                    sources.known_peers.found += 1;
                }
            }
        }

        let lan = self.discovery.lan_now();
        sources.mdns.enabled = self.config.mdns;
        sources.mdns.found = lan.len();
        if sources.mdns.enabled && self.discovery.lan_peers_closed() {
            sources.mdns.note = Some("mDNS could not start here (see `wopr doctor net`)".into());
        }
        ids.extend(lan.iter().filter_map(endpoint_of));
        sources.dht.enabled = settings.dht;
        let previous = lock(&self.discovery.sources).dht.clone();
        if settings.dht {
            sources.dht.found = previous.found;
            sources.dht.note = previous.note.or(Some("looking up and announcing in the background".into()));
        }

        let me = endpoint_of(&self.me);
        ids.retain(|id| Some(*id) != me);
        ids.sort();
        ids.dedup();
        *lock(&self.discovery.sources) = sources;
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_tickets_or_ids_and_junk_says_so() {
        let id = wopr_identity::Identity::from_seeds([5; 32], [6; 32], 0).public_id();
        let (eid, addr) = parse_entry(&id.to_hex()).unwrap();
        assert_eq!(eid.as_bytes(), id.as_bytes());
        assert!(addr.is_none());
        let ticket = EndpointTicket::new(iroh::EndpointAddr::new(eid)).to_string();
        let (from_ticket, addr) = parse_entry(&ticket).unwrap();
        assert_eq!(from_ticket, eid);
        assert!(addr.is_some());
        let e = parse_entry("bogus").unwrap_err();
        assert!(e.contains("neither an iroh ticket nor an id"), "{e}");
    }
}
