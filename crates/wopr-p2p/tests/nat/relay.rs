//! A self-hosted iroh relay for the NAT test: HTTPS relaying and QUIC address discovery on the WAN
//! address, with a certificate from a private CA that the nodes are told to trust.

use std::net::{Ipv4Addr, SocketAddr};

use iroh::RelayUrl;
use iroh_relay::defaults::DEFAULT_RELAY_QUIC_PORT;
use iroh_relay::server::{CertConfig, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::netns::RELAY_IP;

/// A running relay and what a node needs to use it.
pub struct Relay {
    pub url: RelayUrl,
    /// The private CA's certificate (DER), for `NodeConfig::relay_roots`.
    pub ca_der: Vec<u8>,
    pub server: Server,
}

/// Starts the relay on [`RELAY_IP`] (see [`start_at`]).
pub async fn start() -> Relay {
    start_at(RELAY_IP).await
}

/// Starts a relay on `ip`: HTTPS on 443, the captive-portal probe on 80, and QUIC address discovery on
/// the default port (7842, which clients assume for a relay given by URL alone). Call it on the WAN
/// namespace's thread.
pub async fn start_at(ip: Ipv4Addr) -> Relay {
    let (ca_der, tls) = certificate(ip);
    let mut relay = RelayConfig::new(SocketAddr::from((ip, 80)));
    relay.tls = Some(TlsConfig::new(SocketAddr::from((ip, 443)), CertConfig::Manual { server_config: tls }));
    let mut config = ServerConfig::default();
    config.relay = Some(relay);
    // No TLS config of its own: QUIC uses the relay's.
    config.quic = Some(QuicConfig::new(SocketAddr::from((ip, DEFAULT_RELAY_QUIC_PORT))));
    let server = Server::spawn(config).await.expect("the relay server starts");
    let url = format!("https://{ip}/").parse().expect("a valid relay URL");
    Relay { url, ca_der, server }
}

/// A private CA and a server certificate it signed for the relay's IP address `ip`; returns the CA
/// certificate and the server's TLS config.
fn certificate(ip: Ipv4Addr) -> (Vec<u8>, rustls::ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![ip.to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (ca.der().to_vec(), tls)
}
