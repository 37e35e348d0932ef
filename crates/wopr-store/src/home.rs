//! `$WOPR_HOME` and the paths inside it.

use std::path::{Path, PathBuf};

use crate::fsutil::{self, FileLock};
use crate::{History, Sessions, StoreError, StoreResult, create_private_dir, identity_file};

/// The WOPR home directory (default `~/.wopr`, or `$WOPR_HOME`).
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$WOPR_HOME`, else `$HOME/.wopr`. Does not touch the disk.
    pub fn from_env() -> StoreResult<Self> {
        if let Some(h) = std::env::var_os("WOPR_HOME").filter(|h| !h.is_empty()) {
            return Ok(Home::at(PathBuf::from(h)));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| StoreError::NotFound("neither WOPR_HOME nor HOME is set".into()))?;
        Ok(Home::at(PathBuf::from(home).join(".wopr")))
    }

    /// A home at `root`. Does not touch the disk.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// Creates the directory (0700) if needed.
    pub fn ensure(&self) -> StoreResult<()> {
        create_private_dir(&self.root)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Any file directly in the home.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `identity.json`.
    pub fn identity_path(&self) -> PathBuf {
        self.file("identity.json")
    }

    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.file("config.json")
    }

    /// `sessions/`.
    pub fn sessions_dir(&self) -> PathBuf {
        self.file("sessions")
    }

    /// `models/`.
    pub fn models_dir(&self) -> PathBuf {
        self.file("models")
    }

    /// `wopr.db`.
    pub fn db_path(&self) -> PathBuf {
        self.file("wopr.db")
    }

    /// The session registry and context files.
    pub fn sessions(&self) -> Sessions {
        Sessions::new(self.file("sessions.json"), self.sessions_dir())
    }

    /// Opens (creating if needed) the history database.
    pub fn history(&self) -> StoreResult<History> {
        self.ensure()?;
        History::open(&self.db_path())
    }

    /// Opens (creating if needed) the audit log and used-invite-nonce tables in `wopr.db`, bounded as
    /// `config.json`'s `audit.*` keys say.
    pub fn audit(&self) -> StoreResult<crate::AuditLog> {
        self.ensure()?;
        let retention = crate::AuditRetention::from_config(&crate::Config::of(self))?;
        crate::AuditLog::open_with(&self.db_path(), retention)
    }

    /// Opens (creating if needed) the outbox table in `wopr.db`.
    pub fn outbox(&self) -> StoreResult<crate::Outbox> {
        self.ensure()?;
        crate::Outbox::open(&self.db_path())
    }

    /// The grants in `access.json`: who may reach my sessions.
    pub fn access(&self) -> crate::Access {
        crate::Access::of(self)
    }

    /// The peers in `peers.json`: whom I can reach.
    pub fn peers(&self) -> crate::Peers {
        crate::Peers::of(self)
    }

    /// The friends, pending friend requests and auto-accept rules in `friends.json`.
    pub fn friends(&self) -> crate::Friends {
        crate::Friends::of(self)
    }

    /// Loads the identity, or `None` if `wopr id init` was never run.
    pub fn load_identity(&self) -> StoreResult<Option<identity_file::Loaded>> {
        identity_file::load(&self.identity_path())
    }

    /// Creates a new identity. Refuses to replace an existing one unless `force`.
    pub fn init_identity(&self, force: bool) -> StoreResult<wopr_identity::Identity> {
        self.ensure()?;
        let path = self.identity_path();
        let _lock = FileLock::acquire(&path)?;
        if !force && path.exists() {
            return Err(StoreError::AlreadyExists(format!(
                "an identity already exists at {}; use --force to replace it (peers will no longer recognise you)",
                path.display()
            )));
        }
        let id = wopr_identity::Identity::generate().with_created(crate::now_ms());
        identity_file::save(&path, &id, Vec::new())?;
        Ok(id)
    }

    /// Replaces the identity with a rotated one, appending the rotation record. Returns the new identity and
    /// the record.
    pub fn rotate_identity(
        &self,
        reason: wopr_identity::RotationReason,
    ) -> StoreResult<(wopr_identity::Identity, wopr_identity::RotationRecord)> {
        let path = self.identity_path();
        let _lock = FileLock::acquire(&path)?;
        let loaded = identity_file::load(&path)?
            .ok_or_else(|| StoreError::NotFound("no identity yet: run `wopr id init` first".into()))?;
        let (next, record) = loaded.identity.rotate(reason, crate::now_ms());
        let mut rotations = loaded.rotations;
        rotations.push(record.clone());
        identity_file::save(&path, &next, rotations)?;
        Ok((next, record))
    }

    /// Reads a JSON document from the home, or its default if absent.
    pub fn read_json<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> StoreResult<T> {
        fsutil::read_json(&self.file(name))
    }

    /// Locked read-modify-write of a JSON document in the home (written atomically, 0600).
    pub fn update_json<T, R>(&self, name: &str, f: impl FnOnce(&mut T) -> StoreResult<R>) -> StoreResult<R>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + Default,
    {
        self.ensure()?;
        fsutil::update_json(&self.file(name), f)
    }
}
