//! The session registry (`sessions.json`) and context files (`sessions/<name>.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::fsutil::{read_json, update_json};
use crate::{SessionName, StoreError, StoreResult, create_private_dir, now_ms, write_atomic};

/// What `sessions.json` records about a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMeta {
    /// Stable random id (hex).
    pub id: String,
    /// Provider name, or `None` for auto-detection at each inject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created: u64,
    /// Whether the session's own tools run sandboxed (default on).
    #[serde(default = "yes")]
    pub sandbox: bool,
}

fn yes() -> bool {
    true
}

type Registry = BTreeMap<String, SessionMeta>;

/// Sessions in a home.
#[derive(Clone, Debug)]
pub struct Sessions {
    registry: PathBuf,
    dir: PathBuf,
}

impl Sessions {
    pub(crate) fn new(registry: PathBuf, dir: PathBuf) -> Self {
        Sessions { registry, dir }
    }

    /// Path of the context file. The name is validated, so this stays inside `sessions/`.
    pub fn context_path(&self, name: &SessionName) -> PathBuf {
        self.dir.join(format!("{}.md", name.as_str()))
    }

    /// Creates a session with its context file. Fails if it exists.
    pub fn create(
        &self,
        name: &SessionName,
        context: &str,
        provider: Option<String>,
        model: Option<String>,
    ) -> StoreResult<SessionMeta> {
        create_private_dir(&self.dir)?;
        update_json(&self.registry, |reg: &mut Registry| {
            if reg.contains_key(name.as_str()) {
                return Err(StoreError::AlreadyExists(format!(
                    "session {name} already exists: pick another name or `wopr session delete {name}`"
                )));
            }
            let meta = SessionMeta {
                id: hex::encode(wopr_identity::random_bytes::<8>()),
                provider,
                model,
                created: now_ms(),
                sandbox: true,
            };
            let mut text = context.to_string();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            write_atomic(&self.context_path(name), text.as_bytes())?;
            reg.insert(name.to_string(), meta.clone());
            Ok(meta)
        })
    }

    /// The session's record, or a NotFound error that says how to create it.
    pub fn get(&self, name: &SessionName) -> StoreResult<SessionMeta> {
        let reg: Registry = read_json(&self.registry)?;
        reg.get(name.as_str()).cloned().ok_or_else(|| {
            StoreError::NotFound(format!(
                "no session named {name}: create it with `wopr session create {name} \"<context>\"`"
            ))
        })
    }

    /// All sessions, sorted by name.
    pub fn list(&self) -> StoreResult<Vec<(SessionName, SessionMeta)>> {
        let reg: Registry = read_json(&self.registry)?;
        Ok(reg.into_iter().filter_map(|(n, m)| SessionName::new(&n).ok().map(|n| (n, m))).collect())
    }

    /// The context (system prompt), read fresh so hand edits count. Missing file = empty context.
    pub fn context(&self, name: &SessionName) -> StoreResult<String> {
        let p = self.context_path(name);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(StoreError::io("reading", p)(e)),
        }
    }

    /// Changes a session's record under the registry lock.
    pub fn update(&self, name: &SessionName, f: impl FnOnce(&mut SessionMeta)) -> StoreResult<SessionMeta> {
        update_json(&self.registry, |reg: &mut Registry| {
            let meta = reg.get_mut(name.as_str()).ok_or_else(|| {
                StoreError::NotFound(format!("no session named {name}: see `wopr session list`"))
            })?;
            f(meta);
            Ok(meta.clone())
        })
    }

    /// Removes the record and the context file. History is removed by the caller (`History`).
    pub fn delete(&self, name: &SessionName) -> StoreResult<()> {
        update_json(&self.registry, |reg: &mut Registry| {
            reg.remove(name.as_str())
                .ok_or_else(|| StoreError::NotFound(format!("no session named {name}")))?;
            let p = self.context_path(name);
            match std::fs::remove_file(&p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StoreError::io("removing", p)(e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Home;

    #[test]
    fn create_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h"));
        let s = home.sessions();
        let n = SessionName::new("friend:p2p:alice(abc123)").unwrap();
        s.create(&n, "Be terse.", Some("local".into()), None).unwrap();
        assert!(matches!(s.create(&n, "x", None, None), Err(StoreError::AlreadyExists(_))));
        assert_eq!(s.context(&n).unwrap(), "Be terse.\n");
        assert_eq!(s.get(&n).unwrap().provider.as_deref(), Some("local"));
        assert_eq!(s.list().unwrap().len(), 1);
        std::fs::write(s.context_path(&n), "Edited by hand.").unwrap();
        assert_eq!(s.context(&n).unwrap(), "Edited by hand.");
        s.delete(&n).unwrap();
        assert!(matches!(s.get(&n), Err(StoreError::NotFound(_))));
        assert!(!s.context_path(&n).exists());
    }
}
