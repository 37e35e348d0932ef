//! Which tools a turn gets and where they run, from the session's settings and the message's source.
//!
//! | source | trust | tools run |
//! |---|---|---|
//! | a P2P peer | `untrusted`, always | in the sandbox, in a private workspace per peer and session; refused when no sandbox works |
//! | this machine (CLI, daemon) | `owner` | in the sandbox in the session's workspace, or on the host if the owner switched the session's sandbox off |
//!
//! No setting changes the first row: a peer's tools never run outside a sandbox.

use std::path::PathBuf;
use std::sync::Arc;

use wopr_sandbox::{Backend, Policy, Trust};
use wopr_store::{Config, ConfigKey, Home, SessionMeta, SessionName, StoreError};

use crate::workspace_tools::WorkspaceTools;

/// Config key choosing the sandbox backend (`native`, the default, or `docker`).
pub const KEY_BACKEND: &str = "sandbox.backend";

/// Where the message of a turn came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// This machine's owner (CLI or local API).
    Local,
    /// A P2P peer, by its full public key in hex.
    Peer(&'a str),
}

impl Source<'_> {
    /// The trust level: peers are always `untrusted`.
    pub fn trust(self) -> Trust {
        match self {
            Source::Local => Trust::Owner,
            Source::Peer(_) => Trust::Untrusted,
        }
    }
}

/// The sandbox backend chosen in `config.json` (`sandbox.backend`), `native` by default.
pub fn sandbox_choice(home: &Home) -> Result<Backend, StoreError> {
    let key = ConfigKey::parse(KEY_BACKEND)?;
    match Config::of(home).get(&key)? {
        None | Some(serde_json::Value::Null) => Ok(Backend::Native),
        Some(serde_json::Value::String(s)) => s.parse().map_err(StoreError::InvalidConfig),
        Some(other) => Err(StoreError::InvalidConfig(format!(
            "{KEY_BACKEND}: expected \"native\" or \"docker\", got {other}"
        ))),
    }
}

/// Where every sandbox workspace lives: `$WOPR_HOME/workspaces`.
pub fn workspaces_root(home: &Home) -> PathBuf {
    home.root().join("workspaces")
}

/// The workspace of `session` for `source`: the session's own for local turns, a private one per
/// peer and session for P2P turns (a peer never sees the owner's files or another peer's).
pub fn workspace_dir(home: &Home, session: &SessionName, source: Source<'_>) -> PathBuf {
    let root = workspaces_root(home);
    match source {
        Source::Local => root.join("local").join(session.as_str()),
        // The key is hex from the transport; anything else is dropped so it cannot name another path.
        Source::Peer(key) => {
            let key: String = key.chars().filter(char::is_ascii_hexdigit).collect();
            root.join("peers").join(key).join(session.as_str())
        }
    }
}

/// The policy a turn from `source` runs its tools under, in `session`'s workspace.
pub fn policy_for(home: &Home, session: &SessionName, source: Source<'_>) -> Policy {
    Policy::for_trust(source.trust(), workspace_dir(home, session, source)).hide(home.root())
}

/// The tools of a turn of `session` (with settings `meta`) from `source`.
pub fn toolbox_for(
    home: &Home,
    session: &SessionName,
    meta: &SessionMeta,
    source: Source<'_>,
) -> WorkspaceTools {
    if source == Source::Local && !meta.sandbox {
        return WorkspaceTools::unsandboxed(workspace_dir(home, session, source));
    }
    let policy = policy_for(home, session, source);
    let sandbox = sandbox_choice(home)
        .map_err(|e| e.to_string())
        .and_then(|backend| backend.create().map_err(|e| e.to_string()));
    match sandbox {
        Ok(sandbox) => WorkspaceTools::sandboxed(Arc::from(sandbox), policy),
        Err(reason) => WorkspaceTools::refused(format!(
            "tools cannot run safely on this node: {reason} (see `wopr sandbox doctor`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Toolbox;

    #[test]
    fn a_peers_tools_are_the_four_workspace_tools_only() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("wopr"));
        let name = SessionName::new("dev").unwrap();
        let mut meta = home.sessions().create(&name, "", None, None).unwrap();
        // Even with the owner's switch off, a peer's tools never run on the host.
        meta.sandbox = false;
        let peer = "ab".repeat(32);
        let tools = toolbox_for(&home, &name, &meta, Source::Peer(&peer));
        let names: Vec<String> = tools.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["shell", "read_file", "write_file", "list_dir"], "no tool injects into peers");
        assert!(
            tools.describe() == "refused" || tools.describe().ends_with("untrusted"),
            "{}",
            tools.describe()
        );
        assert_eq!(toolbox_for(&home, &name, &meta, Source::Local).describe(), "host (sandbox off)");

        let policy = policy_for(&home, &name, Source::Peer(&peer));
        assert_eq!(policy.trust, Trust::Untrusted);
        assert_ne!(policy.workspace(), workspace_dir(&home, &name, Source::Local));
        assert!(policy.workspace().starts_with(home.root().join("workspaces").join("peers").join(&peer)));
        let sneaky = workspace_dir(&home, &name, Source::Peer("../../etc"));
        assert!(sneaky.starts_with(home.root().join("workspaces").join("peers")), "{}", sneaky.display());
    }

    #[test]
    fn the_backend_comes_from_config_and_defaults_to_native() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("wopr"));
        assert_eq!(sandbox_choice(&home).unwrap(), Backend::Native);
        let config = Config::of(&home);
        let key = ConfigKey::parse(KEY_BACKEND).unwrap();
        config.set(&key, serde_json::json!("docker")).unwrap();
        assert_eq!(sandbox_choice(&home).unwrap(), Backend::Docker);
        config.set(&key, serde_json::json!("chroot")).unwrap();
        assert!(sandbox_choice(&home).unwrap_err().to_string().contains("chroot"));
    }
}
