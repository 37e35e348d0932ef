//! The iroh endpoint: built from the WOPR identity, with the chosen relays, and the address hints and
//! ticket that tell others how to reach it.
//!
//! The endpoint's secret key is the WOPR Ed25519 key, so the QUIC/TLS handshake already authenticates
//! every connection as the peer's WOPR id; the v3 handshake then checks that its signer is that same key.
//! A [`MemoryLookup`] holds the addresses learnt from invites, `peers.json` and incoming connections, so
//! peers are reachable with relays and external lookups disabled.
//!
//! The QUIC transport is configured for what the protocol needs and no more ([`transport_config`]), so
//! what a peer can make this node hold in memory is bounded: no datagrams (nothing uses them), a few
//! unidirectional streams (gossip opens one per topic it shares with a neighbour, in both directions of
//! one connection, so every connection allows them; `wopr/3` never reads one, and their bytes count
//! against the connection window like any other), a few bidirectional streams at once, and receive windows that fit one
//! largest frame per stream. Every connection starts on the budget of a stranger (a key with no grant and
//! no `peers.json` record): two streams (the handshake and one request) and a 16 KiB connection window,
//! enough for a claim or a rotation. A known peer's connections, and every connection this node dials,
//! are widened ([`widen`]) once the peer is known.

use std::net::SocketAddr;

use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::{Connection, QuicTransportConfig, VarInt, presets};
use iroh::tls::CaTlsConfig;
use iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey, TransportAddr};
use iroh_tickets::endpoint::EndpointTicket;
use rustls_pki_types::CertificateDer;
use wopr_identity::{Identity, PublicId};
use wopr_proto::frame::{HEADER_LEN, MAX_FRAME};
use wopr_proto::invite::{MAX_HINT_LEN, MAX_HINTS};

use crate::{NodeConfig, P2pError, RelayChoice};

/// Unidirectional streams a peer may have open at once: one per topic two nodes share in gossip.
pub(crate) const UNI_STREAMS: u32 = crate::discovery::MAX_JOINED_TOPICS as u32;
/// Bidirectional streams a stranger may have open at once: the handshake's and one request's.
pub(crate) const STRANGER_STREAMS: u32 = 2;
/// Bidirectional streams a known peer may have open at once (concurrent requests).
pub(crate) const KNOWN_STREAMS: u32 = 8;
/// Bytes a peer may send on one stream before it is read: one largest frame with its header.
pub(crate) const STREAM_WINDOW: u32 = (MAX_FRAME + HEADER_LEN) as u32;
/// Bytes a stranger may have in flight on a connection, all streams together: its handshake and the
/// largest claim fit (`server::tests` checks it).
pub(crate) const STRANGER_WINDOW: u32 = 16 * 1024;
/// Bytes a known peer may have in flight on a connection (two largest frames).
pub(crate) const KNOWN_WINDOW: u32 = 2 * STREAM_WINDOW;
/// How long a connection may stay silent before it is dropped, in ms (iroh keeps live ones alive every
/// 5 s).
pub(crate) const IDLE_TIMEOUT_MS: u32 = 30_000;

/// The QUIC transport settings of every WOPR endpoint (see the module docs).
pub(crate) fn transport_config() -> QuicTransportConfig {
    QuicTransportConfig::builder()
        .max_concurrent_uni_streams(VarInt::from_u32(UNI_STREAMS))
        .max_concurrent_bidi_streams(VarInt::from_u32(STRANGER_STREAMS))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
        .receive_window(VarInt::from_u32(STRANGER_WINDOW))
        .send_window(u64::from(KNOWN_WINDOW))
        .datagram_receive_buffer_size(None)
        .max_idle_timeout(Some(VarInt::from_u32(IDLE_TIMEOUT_MS).into()))
        .build()
}

/// Gives a connection a known peer's budget: more concurrent streams and a wider connection window.
pub(crate) fn widen(conn: &Connection) {
    conn.set_receive_window(VarInt::from_u32(KNOWN_WINDOW));
    conn.set_max_concurrent_bi_streams(VarInt::from_u32(KNOWN_STREAMS));
}

/// How the packets of a connection to a peer travel right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerPath {
    /// Straight to the peer's socket address: on the same network, or through holes punched in NATs.
    Direct(SocketAddr),
    /// Through a relay server, when no direct path works (yet).
    Relay(RelayUrl),
}

impl std::fmt::Display for PeerPath {
    /// `direct <socket address>` or `relay <url>`, for `daemon status`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerPath::Direct(addr) => write!(f, "direct {addr}"),
            PeerPath::Relay(url) => write!(f, "relay {url}"),
        }
    }
}

/// Binds an endpoint for `identity` with `config`'s relays and socket, using `lookup` for addresses.
pub(crate) async fn bind(
    identity: &Identity,
    config: &NodeConfig,
    lookup: MemoryLookup,
) -> Result<Endpoint, P2pError> {
    let secret = SecretKey::from_bytes(&identity.signing_seed());
    let mut builder = match &config.relay {
        // The public relays come with n0's DNS/pkarr lookup, so peers are found by id alone.
        RelayChoice::Default => Endpoint::builder(presets::N0),
        RelayChoice::Disabled => {
            Endpoint::builder(presets::Minimal).relay_mode(RelayMode::Disabled).clear_address_lookup()
        }
        RelayChoice::Custom(url) => Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::custom([url.clone()]))
            .clear_address_lookup(),
    };
    builder = builder
        .secret_key(secret)
        .address_lookup(lookup)
        .alpns(vec![wopr_proto::ALPN.to_vec(), iroh_gossip::ALPN.to_vec()])
        .transport_config(transport_config());
    if !config.relay_roots.is_empty() {
        let roots = config.relay_roots.iter().map(|der| CertificateDer::from(der.clone()));
        builder = builder.ca_tls_config(CaTlsConfig::embedded().with_extra_roots(roots));
    }
    if let Some(addr) = config.bind {
        // Clear the default wildcard sockets first, or they are bound as well.
        builder = builder
            .clear_ip_transports()
            .bind_addr(addr)
            .map_err(|e| P2pError::Offline(format!("cannot use p2p.bind {addr}: {e}")))?;
    }
    builder.bind().await.map_err(|e| P2pError::Offline(format!("cannot start the P2P endpoint: {e}")))
}

/// The iroh endpoint id of a WOPR id (they are the same Ed25519 key).
pub(crate) fn endpoint_id(id: &PublicId) -> Result<iroh::EndpointId, P2pError> {
    iroh::EndpointId::from_bytes(id.as_bytes())
        .map_err(|e| P2pError::Invalid(format!("{} is not a valid endpoint key: {e}", id.short())))
}

/// The WOPR id of a connection's authenticated remote end.
pub(crate) fn remote_id(conn: &Connection) -> PublicId {
    PublicId(*conn.remote_id().as_bytes())
}

/// Address hints for invites: direct socket addresses, then relay URLs, at most as many as an invite
/// carries.
pub(crate) fn hints(endpoint: &Endpoint) -> Vec<String> {
    let addr = endpoint.addr();
    addr.ip_addrs()
        .map(SocketAddr::to_string)
        .chain(addr.relay_urls().map(RelayUrl::to_string))
        .filter(|h| h.len() <= MAX_HINT_LEN)
        .take(MAX_HINTS)
        .collect()
}

/// Turns address hints back into transport addresses; hints that are neither a socket address nor a
/// relay URL are skipped.
pub(crate) fn parse_hints(hints: &[String]) -> Vec<TransportAddr> {
    hints
        .iter()
        .filter_map(|h| {
            let h = h.trim();
            h.parse::<SocketAddr>()
                .map(TransportAddr::Ip)
                .ok()
                .or_else(|| h.parse::<RelayUrl>().ok().map(TransportAddr::Relay))
        })
        .collect()
}

/// The addresses a connection's peer is using, as hints (so it can be reached again later).
pub(crate) fn observed_hints(conn: &Connection) -> Vec<String> {
    conn.paths()
        .iter()
        .filter_map(|p| match p.remote_addr() {
            TransportAddr::Ip(a) => Some(a.to_string()),
            TransportAddr::Relay(u) => Some(u.to_string()),
            _ => None,
        })
        .take(MAX_HINTS)
        .collect()
}

/// The path a connection currently sends on (QUIC multipath keeps several open and selects one).
pub(crate) fn selected_path(conn: &Connection) -> Option<PeerPath> {
    conn.paths().iter().find(|p| p.is_selected()).and_then(|p| match p.remote_addr() {
        TransportAddr::Ip(a) => Some(PeerPath::Direct(*a)),
        TransportAddr::Relay(u) => Some(PeerPath::Relay(u.clone())),
        _ => None,
    })
}

/// An endpoint address for `id` with `hints`.
pub(crate) fn endpoint_addr(id: &PublicId, hints: &[String]) -> Result<EndpointAddr, P2pError> {
    Ok(EndpointAddr::from_parts(endpoint_id(id)?, parse_hints(hints)))
}

/// An iroh endpoint ticket (`endpoint...`) for the current address, for standard iroh tools.
pub(crate) fn ticket(endpoint: &Endpoint) -> String {
    EndpointTicket::new(endpoint.addr()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_parse_as_socket_addresses_or_relay_urls() {
        let hints = vec![
            "127.0.0.1:4433".to_string(),
            "[::1]:5".to_string(),
            "https://relay.example.org./".to_string(),
            "not an address".to_string(),
        ];
        let parsed = parse_hints(&hints);
        assert_eq!(parsed.len(), 3);
        assert!(matches!(parsed[0], TransportAddr::Ip(a) if a.port() == 4433));
        assert!(matches!(parsed[2], TransportAddr::Relay(_)));
    }

    #[test]
    fn paths_print_their_kind_and_address() {
        assert_eq!(PeerPath::Direct("10.0.0.3:4433".parse().unwrap()).to_string(), "direct 10.0.0.3:4433");
        let relay = PeerPath::Relay("https://relay.example.org./".parse().unwrap());
        assert_eq!(relay.to_string(), "relay https://relay.example.org./");
    }

    #[test]
    fn the_endpoint_id_is_the_wopr_id() {
        let id = Identity::generate();
        let secret = SecretKey::from_bytes(&id.signing_seed());
        assert_eq!(secret.public().as_bytes(), id.public_id().as_bytes());
        assert_eq!(endpoint_id(&id.public_id()).unwrap(), secret.public());
    }
}
