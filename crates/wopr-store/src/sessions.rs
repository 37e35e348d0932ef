//! The session registry (`sessions.json`) and context files (`sessions/<name>.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::fsutil::{read_json, update_json};
use crate::{SessionName, StoreError, StoreResult, create_private_dir, now_ms, write_atomic};

/// What `sessions.json` records about a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

    /// Creates `to` as a copy of `from`'s settings (provider, model, sandbox switch) and context file,
    /// with a new id. Fails if `to` exists. History is copied by the caller (`History::copy_session`).
    pub fn fork(&self, from: &SessionName, to: &SessionName) -> StoreResult<SessionMeta> {
        let context = self.context(from)?;
        create_private_dir(&self.dir)?;
        update_json(&self.registry, |reg: &mut Registry| {
            let original = reg.get(from.as_str()).cloned().ok_or_else(|| {
                StoreError::NotFound(format!("no session named {from}: see `wopr session list`"))
            })?;
            if reg.contains_key(to.as_str()) {
                return Err(StoreError::AlreadyExists(format!(
                    "session {to} already exists: pick another name for the copy"
                )));
            }
            let meta = SessionMeta {
                id: hex::encode(wopr_identity::random_bytes::<8>()),
                created: now_ms(),
                ..original
            };
            write_atomic(&self.context_path(to), context.as_bytes())?;
            reg.insert(to.to_string(), meta.clone());
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

    #[test]
    fn a_fork_copies_settings_and_context_under_a_new_id() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h"));
        let s = home.sessions();
        let (from, to) = (SessionName::new("a").unwrap(), SessionName::new("b").unwrap());
        assert!(matches!(s.fork(&from, &to), Err(StoreError::NotFound(_))));
        s.create(&from, "Be terse.", Some("local".into()), Some("m".into())).unwrap();
        let original = s.update(&from, |m| m.sandbox = false).unwrap();
        let copy = s.fork(&from, &to).unwrap();
        assert_ne!(copy.id, original.id);
        assert_eq!((copy.provider, copy.model, copy.sandbox), (original.provider, original.model, false));
        assert_eq!(s.context(&to).unwrap(), "Be terse.\n");
        assert!(matches!(s.fork(&from, &to), Err(StoreError::AlreadyExists(_))));
        assert_eq!(s.list().unwrap().len(), 2);
    }
}
