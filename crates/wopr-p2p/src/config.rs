//! How a node reaches the network: relay choice and bind address.
//!
//! The CLI fills [`NodeConfig`] from the config keys `p2p.relay` and `p2p.bind` and the environment
//! variables `WOPR_P2P_RELAY` and `WOPR_P2P_BIND` (the environment wins, as for every WOPR setting);
//! [`NodeConfig::load`] does exactly that, and reads `discover.mdns` (`WOPR_DISCOVER_MDNS`), the switch of
//! LAN discovery by mDNS, on unless turned off. Tests and offline demos use [`NodeConfig::loopback`]: no
//! relay, no address lookup, no mDNS, a socket on 127.0.0.1 only, so nothing tries to leave the machine.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;

use iroh::RelayUrl;
use wopr_store::{Config, ConfigKey, Home};

use crate::{Clock, P2pError, PeerLimits};

/// Environment variable overriding `p2p.relay`.
pub const ENV_RELAY: &str = "WOPR_P2P_RELAY";
/// Environment variable overriding `p2p.bind`.
pub const ENV_BIND: &str = "WOPR_P2P_BIND";
/// Config key of the relay choice.
pub const KEY_RELAY: &str = "p2p.relay";
/// Config key of the bind address.
pub const KEY_BIND: &str = "p2p.bind";
/// Environment variable overriding `p2p.relayCa`.
pub const ENV_RELAY_CA: &str = "WOPR_P2P_RELAY_CA";
/// Config key of a PEM or DER file with the CA certificate(s) of a self-hosted relay whose certificate
/// is not signed by a public CA.
pub const KEY_RELAY_CA: &str = "p2p.relayCa";
/// Environment variable overriding `discover.mdns`.
pub const ENV_MDNS: &str = "WOPR_DISCOVER_MDNS";
/// Config key of the LAN discovery switch: `true` (the default) or `false` (also `on`/`off`, `1`/`0`).
pub const KEY_MDNS: &str = "discover.mdns";

/// Which relay servers the endpoint uses to be reachable behind NATs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RelayChoice {
    /// The public n0 relays, plus DNS/pkarr address lookup (what real users get).
    #[default]
    Default,
    /// No relay and no external address lookup: direct addresses only (LAN, loopback, tests).
    Disabled,
    /// Self-hosted relays (one or more; with two, `doctor net` can tell a symmetric NAT from one that is
    /// not); no external address lookup.
    Custom(Vec<RelayUrl>),
}

impl FromStr for RelayChoice {
    type Err = P2pError;

    /// `default`, `disabled` (or `off`, `none`), or `http(s)://` relay URLs separated by commas.
    fn from_str(s: &str) -> Result<Self, P2pError> {
        match s.trim() {
            "" | "default" => Ok(RelayChoice::Default),
            "disabled" | "off" | "none" => Ok(RelayChoice::Disabled),
            urls => urls.split(',').map(parse_relay_url).collect::<Result<_, _>>().map(RelayChoice::Custom),
        }
    }
}

impl fmt::Display for RelayChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayChoice::Default => f.write_str("default"),
            RelayChoice::Disabled => f.write_str("disabled"),
            RelayChoice::Custom(urls) => {
                let urls: Vec<String> = urls.iter().map(RelayUrl::to_string).collect();
                f.write_str(&urls.join(","))
            }
        }
    }
}

fn parse_relay_url(url: &str) -> Result<RelayUrl, P2pError> {
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(P2pError::Invalid(format!(
            "p2p.relay: {url:?} is not `default`, `disabled` or http(s):// relay URLs"
        )));
    }
    url.parse::<RelayUrl>()
        .map_err(|e| P2pError::Invalid(format!("p2p.relay: {url:?} is not a valid relay URL ({e})")))
}

/// Network settings of a [`crate::Node`]. The default is what a real user gets with no settings: n0's
/// relays, every interface, mDNS on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Relay servers.
    pub relay: RelayChoice,
    /// The one UDP socket to bind (`None`: every interface, IPv4 and IPv6, on a random port).
    pub bind: Option<SocketAddr>,
    /// Extra trust anchors (DER certificates) for the TLS certificate of a self-hosted relay, added to the
    /// Mozilla roots built in: read from the file `p2p.relayCa` names by [`NodeConfig::load`].
    pub relay_roots: Vec<Vec<u8>>,
    /// LAN discovery: advertise this endpoint by mDNS and find others on the local network by id
    /// (`discover.mdns`, default on). The ids found are [`crate::Node::lan_peers`].
    pub mdns: bool,
    /// Limits on inbound work per peer. Always the protocol's defaults when built from settings
    /// ([`NodeConfig::load`], [`NodeConfig::from_values`], [`NodeConfig::loopback`]); benchmarks raise them.
    pub limits: PeerLimits,
    /// The clock the node's checks read: the system's, except in tests that need to cross a grace
    /// period or a rate window without waiting.
    pub clock: Clock,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            relay: RelayChoice::Default,
            bind: None,
            relay_roots: Vec::new(),
            mdns: true,
            limits: PeerLimits::default(),
            clock: Clock::system(),
        }
    }
}

impl NodeConfig {
    /// Relays and mDNS off, bound to `127.0.0.1` on a random port: for tests and single-machine demos.
    pub fn loopback() -> Self {
        NodeConfig {
            relay: RelayChoice::Disabled,
            bind: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            relay_roots: Vec::new(),
            mdns: false,
            limits: PeerLimits::default(),
            clock: Clock::system(),
        }
    }

    /// Builds a config from the textual values of `p2p.relay` and `p2p.bind` (absent = default; mDNS on).
    pub fn from_values(relay: Option<&str>, bind: Option<&str>) -> Result<Self, P2pError> {
        let relay = relay.map(str::parse).transpose()?.unwrap_or_default();
        let bind = bind
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.parse::<SocketAddr>().map_err(|_| {
                    P2pError::Invalid(format!("p2p.bind: {b:?} is not a socket address like 127.0.0.1:0"))
                })
            })
            .transpose()?;
        Ok(NodeConfig { relay, bind, ..NodeConfig::default() })
    }

    /// Reads `p2p.relay`, `p2p.bind`, `p2p.relayCa` and `discover.mdns` from `home`'s `config.json`, each
    /// overridden by its environment variable (`WOPR_P2P_RELAY`, `WOPR_P2P_BIND`, `WOPR_P2P_RELAY_CA`,
    /// `WOPR_DISCOVER_MDNS`) when set.
    pub fn load(home: &Home) -> Result<Self, P2pError> {
        let config = Config::of(home);
        let read = |env: &str, key: &str| -> Result<Option<String>, P2pError> {
            if let Some(v) = std::env::var(env).ok().filter(|v| !v.is_empty()) {
                return Ok(Some(v));
            }
            Ok(config.get(&ConfigKey::parse(key)?)?.map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }))
        };
        let relay = read(ENV_RELAY, KEY_RELAY)?;
        let bind = read(ENV_BIND, KEY_BIND)?;
        let mut config = Self::from_values(relay.as_deref(), bind.as_deref())?;
        if let Some(path) = read(ENV_RELAY_CA, KEY_RELAY_CA)? {
            config.relay_roots = read_certificates(Path::new(&path))?;
        }
        if let Some(mdns) = read(ENV_MDNS, KEY_MDNS)? {
            config.mdns = parse_switch(KEY_MDNS, &mdns)?;
        }
        Ok(config)
    }
}

/// An on/off setting: `true`/`false`, `on`/`off`, `1`/`0`, `yes`/`no`.
fn parse_switch(key: &str, value: &str) -> Result<bool, P2pError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        other => Err(P2pError::Invalid(format!("{key}: {other:?} is not true or false"))),
    }
}

/// The certificates in a PEM file (every `CERTIFICATE` block) or a single DER certificate.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>, P2pError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| P2pError::Invalid(format!("{KEY_RELAY_CA}: cannot read {shown}: {e}")))?;
    if !bytes.starts_with(b"-----BEGIN") && bytes.first() == Some(&0x30) {
        return Ok(vec![bytes]);
    }
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            P2pError::Invalid(format!("{KEY_RELAY_CA}: {shown} is not a PEM certificate file: {e}"))
        })?;
    if certs.is_empty() {
        return Err(P2pError::Invalid(format!("{KEY_RELAY_CA}: {shown} holds no certificate")));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_ca_files_are_read_as_pem_or_der_and_junk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)
        );
        let (pem_path, der_path, junk) =
            (dir.path().join("ca.pem"), dir.path().join("ca.der"), dir.path().join("junk"));
        std::fs::write(&pem_path, format!("{pem}{pem}")).unwrap();
        std::fs::write(&der_path, &der).unwrap();
        std::fs::write(&junk, "hello").unwrap();
        assert_eq!(read_certificates(&pem_path).unwrap(), vec![der.clone(), der.clone()]);
        assert_eq!(read_certificates(&der_path).unwrap(), vec![der]);
        for bad in [junk, dir.path().join("missing")] {
            let e = read_certificates(&bad).unwrap_err();
            assert_eq!(e.exit_code(), wopr_store::ExitCode::Invalid);
            assert!(e.to_string().contains("p2p.relayCa"), "{e}");
        }
    }

    #[test]
    fn relay_choices_parse_and_print() {
        assert_eq!("default".parse::<RelayChoice>().unwrap(), RelayChoice::Default);
        assert_eq!("disabled".parse::<RelayChoice>().unwrap(), RelayChoice::Disabled);
        let custom: RelayChoice = "https://relay.example.org".parse().unwrap();
        assert!(matches!(&custom, RelayChoice::Custom(_)));
        assert!(custom.to_string().starts_with("https://relay.example.org"));
        assert_eq!("ftp://x".parse::<RelayChoice>().unwrap_err().exit_code(), wopr_store::ExitCode::Invalid);
        let two: RelayChoice = "https://a.example.org, https://b.example.org".parse().unwrap();
        assert!(matches!(&two, RelayChoice::Custom(urls) if urls.len() == 2), "{two:?}");
        assert_eq!(two.to_string().parse::<RelayChoice>().unwrap(), two);
        assert_eq!(
            "https://a.example.org,ftp://b".parse::<RelayChoice>().unwrap_err().exit_code(),
            wopr_store::ExitCode::Invalid
        );
    }

    #[test]
    fn values_and_config_file_are_read() {
        let c = NodeConfig::from_values(Some("disabled"), Some("127.0.0.1:4444")).unwrap();
        assert_eq!(c.bind, Some("127.0.0.1:4444".parse().unwrap()));
        assert!(NodeConfig::from_values(None, Some("nowhere")).is_err());
        assert_eq!(NodeConfig::from_values(None, None).unwrap(), NodeConfig::default());

        let d = tempfile::tempdir().unwrap();
        let home = Home::at(d.path());
        let config = Config::of(&home);
        config.set(&ConfigKey::parse(KEY_RELAY).unwrap(), "disabled".into()).unwrap();
        config.set(&ConfigKey::parse(KEY_BIND).unwrap(), "127.0.0.1:0".into()).unwrap();
        config.set(&ConfigKey::parse(KEY_MDNS).unwrap(), false.into()).unwrap();
        // The environment may be set by whoever runs the tests; only check the file when it is not.
        if [ENV_RELAY, ENV_BIND, ENV_MDNS].iter().all(|v| std::env::var_os(v).is_none()) {
            assert_eq!(NodeConfig::load(&home).unwrap(), NodeConfig::loopback());
        }
    }

    #[test]
    fn mdns_is_on_by_default_off_in_loopback_and_junk_is_refused() {
        assert!(NodeConfig::default().mdns);
        assert!(NodeConfig::from_values(None, None).unwrap().mdns);
        assert!(!NodeConfig::loopback().mdns);
        for (text, on) in [("true", true), ("off", false), (" 0 ", false), ("Yes", true)] {
            assert_eq!(parse_switch(KEY_MDNS, text).unwrap(), on, "{text}");
        }
        let e = parse_switch(KEY_MDNS, "sometimes").unwrap_err();
        assert_eq!(e.exit_code(), wopr_store::ExitCode::Invalid);
        assert!(e.to_string().contains("discover.mdns"), "{e}");
    }
}
