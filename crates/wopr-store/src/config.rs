//! `config.json`: the central configuration, addressed with dotted keys (`plugins.data.router`).

use std::fmt;

use serde_json::{Map, Value};

use crate::fsutil::{read_json, update_json};
use crate::{Home, StoreError, StoreResult};

/// The longest key.
pub const MAX_KEY: usize = 256;

/// A validated dotted key: segments of letters, digits, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigKey(Vec<String>);

impl ConfigKey {
    /// Parses `a.b.c`.
    pub fn parse(key: &str) -> StoreResult<Self> {
        if key.len() > MAX_KEY {
            return Err(StoreError::InvalidConfig(format!("a config key is at most {MAX_KEY} bytes")));
        }
        let parts: Vec<String> = key.split('.').map(str::to_string).collect();
        let valid = |p: &String| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if parts.iter().all(valid) {
            Ok(ConfigKey(parts))
        } else {
            Err(StoreError::InvalidConfig(format!(
                "invalid config key {key:?}: use dot-separated names of letters, digits, '_' and '-' (e.g. plugins.data.router)"
            )))
        }
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// The configuration document.
#[derive(Clone, Debug)]
pub struct Config {
    path: std::path::PathBuf,
}

impl Config {
    /// The configuration of `home`.
    pub fn of(home: &Home) -> Self {
        Config { path: home.config_path() }
    }

    /// The whole document (`{}` if absent).
    pub fn load(&self) -> StoreResult<Value> {
        let v: Value = read_json(&self.path)?;
        Ok(if v.is_null() { Value::Object(Map::new()) } else { v })
    }

    /// The value at `key`, if set.
    pub fn get(&self, key: &ConfigKey) -> StoreResult<Option<Value>> {
        let doc = self.load()?;
        Ok(key.0.iter().try_fold(&doc, |v, k| v.get(k)).cloned())
    }

    /// Sets `key` to `value`, creating intermediate objects.
    pub fn set(&self, key: &ConfigKey, value: Value) -> StoreResult<()> {
        if let Some(parent) = self.path.parent() {
            crate::create_private_dir(parent)?;
        }
        update_json(&self.path, |doc: &mut Value| {
            if doc.is_null() {
                *doc = Value::Object(Map::new());
            }
            let (last, parents) = key.0.split_last().expect("a key has at least one segment");
            let mut cur = doc;
            for (i, seg) in parents.iter().enumerate() {
                let obj = as_object(cur, &key.0[..i])?;
                cur = obj.entry(seg.clone()).or_insert_with(|| Value::Object(Map::new()));
            }
            as_object(cur, parents)?.insert(last.clone(), value);
            Ok(())
        })
    }

    /// Removes `key`; returns whether it was set.
    pub fn unset(&self, key: &ConfigKey) -> StoreResult<bool> {
        if !self.path.exists() {
            return Ok(false);
        }
        update_json(&self.path, |doc: &mut Value| {
            let (last, parents) = key.0.split_last().expect("a key has at least one segment");
            let mut cur = doc;
            for seg in parents {
                match cur.get_mut(seg) {
                    Some(v) => cur = v,
                    None => return Ok(false),
                }
            }
            Ok(cur.as_object_mut().is_some_and(|o| o.remove(last).is_some()))
        })
    }

    /// Every leaf as `(dotted key, value)`, sorted. Arrays and empty objects are leaves.
    pub fn list(&self) -> StoreResult<Vec<(String, Value)>> {
        let mut out = Vec::new();
        flatten("", &self.load()?, &mut out);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn as_object<'a>(v: &'a mut Value, at: &[String]) -> StoreResult<&'a mut Map<String, Value>> {
    let kind = json_kind(v);
    // A conflict with what is stored, not a malformed key.
    v.as_object_mut().ok_or_else(|| {
        StoreError::AlreadyExists(format!(
            "config key {} holds {kind}, not an object: unset it first",
            if at.is_empty() { "(root)".to_string() } else { at.join(".") }
        ))
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, child, out);
            }
        }
        _ if !prefix.is_empty() => out.push((prefix.to_string(), v.clone())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cfg() -> (tempfile::TempDir, Config) {
        let d = tempfile::tempdir().unwrap();
        let c = Config::of(&Home::at(d.path().join("h")));
        (d, c)
    }

    #[test]
    fn set_get_unset_list_with_dotted_keys() {
        let (_d, c) = cfg();
        let k = ConfigKey::parse("plugins.data.router").unwrap();
        let v = json!({"routes":[{"sourceSession":"support","targetSessions":["billing"]}]});
        c.set(&k, v.clone()).unwrap();
        c.set(&ConfigKey::parse("p2p.relay").unwrap(), json!("disabled")).unwrap();
        assert_eq!(c.get(&k).unwrap(), Some(v.clone()));
        assert_eq!(c.get(&ConfigKey::parse("plugins.data").unwrap()).unwrap(), Some(json!({"router": v})));
        let keys: Vec<String> = c.list().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["p2p.relay", "plugins.data.router.routes"]);
        assert!(c.unset(&k).unwrap());
        assert!(!c.unset(&k).unwrap());
        assert_eq!(c.get(&k).unwrap(), None);
    }

    #[test]
    fn setting_below_a_scalar_is_refused_and_changes_nothing() {
        let (_d, c) = cfg();
        c.set(&ConfigKey::parse("a").unwrap(), json!(1)).unwrap();
        let err = c.set(&ConfigKey::parse("a.b").unwrap(), json!(2)).unwrap_err();
        assert!(err.to_string().contains("not an object"), "{err}");
        assert_eq!(c.load().unwrap(), json!({"a": 1}));
    }

    #[test]
    fn bad_keys_are_refused() {
        for k in ["", ".", "a..b", "a.", "a b", "a/b"] {
            assert!(ConfigKey::parse(k).is_err(), "{k}");
        }
    }
}
