//! The session workspace on the host: the one host directory a sandbox may write.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;

use crate::{SANDBOX_ID, SandboxError};

/// Creates the workspace (mode 0700) and the working directory `cwd` (a path below
/// [`crate::WORKSPACE_MOUNT`]) in it, and, when running as root, hands them to the sandbox user
/// [`SANDBOX_ID`] so the sandboxed process can write there. Backends call this before each run.
pub fn prepare_workspace(workspace: &Path, cwd: &Path) -> Result<(), SandboxError> {
    let err = |source| SandboxError::Workspace { path: workspace.to_path_buf(), source };
    if !workspace.is_dir() {
        std::fs::create_dir_all(workspace).map_err(err)?;
        std::fs::set_permissions(workspace, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    let root = nix::unistd::geteuid().is_root();
    let hand_over = |dir: &Path| -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        if root && std::fs::metadata(dir)?.uid() != SANDBOX_ID {
            chown(dir, Some(SANDBOX_ID), Some(SANDBOX_ID))?;
        }
        Ok(())
    };
    hand_over(workspace).map_err(err)?;
    let host_cwd = crate::command::host_cwd(workspace, cwd);
    if host_cwd != workspace && !host_cwd.is_dir() {
        std::fs::create_dir_all(&host_cwd).map_err(err)?;
        let mut dir = host_cwd.as_path();
        while dir != workspace {
            hand_over(dir).map_err(err)?;
            dir = dir.parent().unwrap_or(workspace);
        }
    }
    Ok(())
}
