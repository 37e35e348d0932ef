//! Discovery's settings: the `discover.*` keys of `config.json`, and `WOPR_TOPICS`.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `discover.topics` | topics the daemon joins on start (`WOPR_TOPICS="a,b"` wins) | none |
//! | `discover.profile` | the profile content (any JSON) | `{}` |
//! | `discover.bootstrap` | static bootstrap nodes: endpoint ids or iroh tickets | none |
//! | `discover.knownPeers` | use the addresses of `peers.json` and `access.json` as bootstrap | `true` |
//! | `discover.mdns` | LAN discovery (read with the network settings, `NodeConfig::mdns`, where `WOPR_DISCOVER_MDNS` wins) | `true` |
//! | `discover.dht` | rendezvous on the mainline DHT (`false`, or `{ "bootstrap": ["host:port"] }`) | `true` |
//! | `discover.only` | list only these keys (layer 2) | everyone |
//! | `discover.filter` | AI content filter (layer 3): `auto`, `on`, `off` | `auto` |
//! | `discover.accept` | connect-requests (layer 4): `auto`, `ask`, `ai`, `never` | `auto` |
//! | `discover.sessions` | sessions an accepted requester gets | a dedicated `discover:<id>` |

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use wopr_identity::PublicId;
use wopr_proto::discovery::{MAX_CONTENT, check_topic_name};
use wopr_store::{Config, ConfigKey, Home, SessionName};

use crate::P2pError;

/// Environment variable naming the topics to join on start, comma-separated.
pub const ENV_TOPICS: &str = "WOPR_TOPICS";

/// What layer 4 does with a connect-request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptPolicy {
    /// Accept, granting `message` only (the spec's default).
    #[default]
    Auto,
    /// Keep it for the owner to decide (`wopr discover requests`, `wopr discover accept`).
    Ask,
    /// Let the owner's AI decide from the profile and the note.
    Ai,
    /// Refuse every request.
    Never,
}

impl FromStr for AcceptPolicy {
    type Err = P2pError;
    fn from_str(s: &str) -> Result<Self, P2pError> {
        match s.trim() {
            "auto" => Ok(AcceptPolicy::Auto),
            "ask" => Ok(AcceptPolicy::Ask),
            "ai" => Ok(AcceptPolicy::Ai),
            "never" => Ok(AcceptPolicy::Never),
            other => Err(P2pError::Invalid(format!(
                "discover.accept: {other:?} is not one of auto, ask, ai, never"
            ))),
        }
    }
}

impl fmt::Display for AcceptPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcceptPolicy::Auto => "auto",
            AcceptPolicy::Ask => "ask",
            AcceptPolicy::Ai => "ai",
            AcceptPolicy::Never => "never",
        })
    }
}

/// Whether layer 3 (the AI content filter) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterMode {
    /// On when the owner's AI is a capable provider, off with the weak local model.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl FromStr for FilterMode {
    type Err = P2pError;
    fn from_str(s: &str) -> Result<Self, P2pError> {
        match s.trim() {
            "auto" => Ok(FilterMode::Auto),
            "on" | "true" => Ok(FilterMode::On),
            "off" | "false" => Ok(FilterMode::Off),
            other => Err(P2pError::Invalid(format!("discover.filter: {other:?} is not auto, on or off"))),
        }
    }
}

impl fmt::Display for FilterMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterMode::Auto => "auto",
            FilterMode::On => "on",
            FilterMode::Off => "off",
        })
    }
}

/// Everything discovery reads from `config.json` and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverSettings {
    /// Topics to join on start.
    pub topics: Vec<String>,
    /// The profile content, as JSON text.
    pub content: String,
    /// Static bootstrap nodes: endpoint ids or tickets.
    pub bootstrap: Vec<String>,
    /// Use known peers' addresses as bootstrap.
    pub known_peers: bool,
    /// DHT rendezvous.
    pub dht: bool,
    /// DHT bootstrap nodes (`host:port`); `None`: the public ones.
    pub dht_bootstrap: Option<Vec<String>>,
    /// Layer 2: only these keys.
    pub only: Option<HashSet<PublicId>>,
    /// Layer 3.
    pub filter: FilterMode,
    /// Layer 4.
    pub accept: AcceptPolicy,
    /// Sessions an accepted requester gets (empty: a dedicated one).
    pub sessions: Vec<String>,
}

impl Default for DiscoverSettings {
    fn default() -> Self {
        DiscoverSettings {
            topics: Vec::new(),
            content: "{}".into(),
            bootstrap: Vec::new(),
            known_peers: true,
            dht: true,
            dht_bootstrap: None,
            only: None,
            filter: FilterMode::Auto,
            accept: AcceptPolicy::Auto,
            sessions: Vec::new(),
        }
    }
}

impl DiscoverSettings {
    /// Reads the `discover.*` keys of `home` and `WOPR_TOPICS`; a bad value is an error naming its key.
    pub fn load(home: &Home) -> Result<Self, P2pError> {
        let doc = Config::of(home).get(&ConfigKey::parse("discover")?)?.unwrap_or(Value::Null);
        let env = std::env::var(ENV_TOPICS).ok().filter(|v| !v.trim().is_empty());
        Self::from_json(&doc, env.as_deref())
    }

    /// Builds the settings from the `discover` object and the value of `WOPR_TOPICS`.
    pub fn from_json(doc: &Value, env_topics: Option<&str>) -> Result<Self, P2pError> {
        let mut s = DiscoverSettings::default();
        let get = |k: &str| doc.get(k).filter(|v| !v.is_null());
        s.topics = match env_topics {
            Some(list) => {
                list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
            }
            None => get("topics").map(|v| strings(v, "discover.topics")).transpose()?.unwrap_or_default(),
        };
        for t in &s.topics {
            check_topic_name(t).map_err(|e| P2pError::Invalid(format!("topic {t:?}: {e}")))?;
        }
        if let Some(v) = get("profile") {
            s.content = content_text(v)?;
        }
        if let Some(v) = get("bootstrap") {
            s.bootstrap = strings(v, "discover.bootstrap")?;
        }
        s.known_peers = flag(get("knownPeers"), "discover.knownPeers", true)?;
        match get("dht") {
            Some(Value::Object(o)) => {
                s.dht = flag(o.get("enabled"), "discover.dht.enabled", true)?;
                s.dht_bootstrap =
                    o.get("bootstrap").map(|v| strings(v, "discover.dht.bootstrap")).transpose()?;
            }
            other => s.dht = flag(other, "discover.dht", true)?,
        }
        if let Some(v) = get("only") {
            let keys = strings(v, "discover.only")?
                .iter()
                .map(|k| {
                    PublicId::parse(k).map_err(|e| P2pError::Invalid(format!("discover.only: {k:?}: {e}")))
                })
                .collect::<Result<HashSet<_>, _>>()?;
            s.only = Some(keys);
        }
        if let Some(v) = get("filter") {
            s.filter = text(v).parse()?;
        }
        if let Some(v) = get("accept") {
            s.accept = text(v).parse()?;
        }
        if let Some(v) = get("sessions") {
            s.sessions = strings(v, "discover.sessions")?;
            for name in &s.sessions {
                SessionName::new(name)?;
            }
        }
        Ok(s)
    }
}

/// A profile content value as the JSON text announced: at most [`MAX_CONTENT`] bytes.
pub fn content_text(v: &Value) -> Result<String, P2pError> {
    let text = v.to_string();
    if text.len() > MAX_CONTENT {
        return Err(P2pError::Invalid(format!(
            "the profile content takes {} bytes; at most {MAX_CONTENT} fit in an announce",
            text.len()
        )));
    }
    Ok(text)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list of strings, given as a JSON array or a comma-separated string.
fn strings(v: &Value, key: &str) -> Result<Vec<String>, P2pError> {
    match v {
        Value::String(s) => {
            Ok(s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect())
        }
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| P2pError::Invalid(format!("{key}: every item must be a string"))),
        _ => Err(P2pError::Invalid(format!("{key}: expected a list of strings"))),
    }
}

fn flag(v: Option<&Value>, key: &str, default: bool) -> Result<bool, P2pError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "on" => Ok(true),
        Some(Value::String(s)) if s == "false" || s == "off" => Ok(false),
        Some(other) => Err(P2pError::Invalid(format!("{key}: {other} is not true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_are_the_specs_and_every_key_is_read() {
        let d = DiscoverSettings::from_json(&Value::Null, None).unwrap();
        assert_eq!(d, DiscoverSettings::default());
        assert_eq!((d.accept, d.filter, d.dht), (AcceptPolicy::Auto, FilterMode::Auto, true));
        let key = PublicId([3; 32]).to_hex();
        let doc = json!({
            "topics": ["a", "b"], "profile": {"name": "Bob"}, "bootstrap": ["x"], "knownPeers": false,
            "mdns": false, "dht": {"bootstrap": ["127.0.0.1:6881"]}, "only": [key], "filter": "on",
            "accept": "never", "sessions": ["help"],
        });
        let s = DiscoverSettings::from_json(&doc, None).unwrap();
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.content, r#"{"name":"Bob"}"#);
        assert!(!s.known_peers && s.dht);
        assert_eq!(s.dht_bootstrap, Some(vec!["127.0.0.1:6881".to_string()]));
        assert_eq!(s.only, Some([PublicId([3; 32])].into()));
        assert_eq!((s.filter, s.accept), (FilterMode::On, AcceptPolicy::Never));
        assert!(!DiscoverSettings::from_json(&json!({"dht": false}), None).unwrap().dht);
    }

    #[test]
    fn the_environment_names_the_topics() {
        let s = DiscoverSettings::from_json(&json!({"topics": ["a"]}), Some(" x, y ,")).unwrap();
        assert_eq!(s.topics, ["x", "y"]);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (doc, key) in [
            (json!({"accept": "maybe"}), "discover.accept"),
            (json!({"filter": 3}), "discover.filter"),
            (json!({"only": ["not-a-key"]}), "discover.only"),
            (json!({"bootstrap": 5}), "discover.bootstrap"),
            (json!({"profile": "x".repeat(MAX_CONTENT)}), "profile content"),
        ] {
            let e = DiscoverSettings::from_json(&doc, None).unwrap_err().to_string();
            assert!(e.contains(key), "{doc}: {e}");
        }
        assert!(DiscoverSettings::from_json(&json!({"topics": [""]}), None).is_err());
        assert!(DiscoverSettings::from_json(&json!({"sessions": ["../x"]}), None).is_err());
    }
}
