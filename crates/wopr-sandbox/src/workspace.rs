//! The session workspace on the host: the one host directory a sandbox may write.
//!
//! Preparing it never follows a symbolic link. A sandboxed command owns everything inside its workspace,
//! and one whose workspace contains another's (`wopr sandbox exec --workspace` on a parent directory) can
//! plant links next to it; following such a link as root would create and hand over directories anywhere
//! on the host (`/etc/cron.d`, ...). So the path is walked one component at a time with `O_NOFOLLOW`,
//! directories are created and handed over through the descriptors opened on the way, and the native
//! backend bind-mounts the workspace from the descriptor this returns, never from the path again.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, fchownat};

use crate::{SANDBOX_ID, SandboxError};

/// Creates the workspace (mode 0700) and the working directory `cwd` (a path below
/// [`crate::WORKSPACE_MOUNT`]) in it, and, when running as root, hands them to the sandbox user
/// [`SANDBOX_ID`] so the sandboxed process can write there. Refuses a path that passes through a
/// symbolic link. Backends call this before each run.
pub fn prepare_workspace(workspace: &Path, cwd: &Path) -> Result<(), SandboxError> {
    open_workspace(workspace, cwd).map(drop)
}

/// [`prepare_workspace`], returning an `O_PATH` descriptor of the workspace.
pub(crate) fn open_workspace(workspace: &Path, cwd: &Path) -> Result<OwnedFd, SandboxError> {
    let root = nix::unistd::geteuid().is_root();
    let err =
        |source: Errno| SandboxError::Workspace { path: workspace.to_path_buf(), source: source.into() };
    let mut walk = Walk { workspace, walked: PathBuf::new(), dir: None };
    for part in workspace.components() {
        walk.step(part, false)?;
    }
    let ws = walk.dir.take().ok_or_else(|| err(Errno::EINVAL))?;
    let meta = fstat(&ws).map_err(err)?;
    if root && meta.st_uid != SANDBOX_ID {
        hand_over(&ws).map_err(err)?;
    }
    let inside = cwd.strip_prefix(crate::WORKSPACE_MOUNT).unwrap_or(cwd);
    let mut walk = Walk {
        workspace,
        walked: workspace.to_path_buf(),
        dir: Some(
            ws.try_clone()
                .map_err(|e| SandboxError::Workspace { path: workspace.to_path_buf(), source: e })?,
        ),
    };
    for part in inside.components() {
        walk.step(part, root)?;
    }
    Ok(ws)
}

/// A walk down a path, one directory descriptor at a time.
struct Walk<'a> {
    workspace: &'a Path,
    /// The part walked so far, for error messages.
    walked: PathBuf,
    /// The directory reached (`None`: the current directory, before the first component).
    dir: Option<OwnedFd>,
}

impl Walk<'_> {
    /// Enters `part`, creating it (0700, handed to the sandbox user if `hand_over`) when missing.
    fn step(&mut self, part: Component<'_>, hand: bool) -> Result<(), SandboxError> {
        let name: &OsStr = match part {
            Component::RootDir => "/".as_ref(),
            Component::CurDir => return Ok(()),
            Component::ParentDir => "..".as_ref(),
            Component::Normal(name) => name,
            Component::Prefix(_) => return Err(self.error(Errno::EINVAL)),
        };
        self.walked.push(name);
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let open = |dir: &Option<OwnedFd>| match dir {
            Some(d) => openat(d, name, flags, Mode::empty()),
            None => openat(AT_FDCWD, name, flags, Mode::empty()),
        };
        let next = match open(&self.dir) {
            Err(Errno::ENOENT) => {
                let made = match &self.dir {
                    Some(d) => mkdirat(d, name, Mode::S_IRWXU),
                    None => mkdirat(AT_FDCWD, name, Mode::S_IRWXU),
                };
                match made {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(self.error(e)),
                }
                let fd = open(&self.dir).map_err(|e| self.refusal(e))?;
                if hand {
                    hand_over(&fd).map_err(|e| self.error(e))?;
                }
                fd
            }
            other => other.map_err(|e| self.refusal(e))?,
        };
        self.dir = Some(next);
        Ok(())
    }

    /// The error for a component that could not be opened: a symbolic link is named as such.
    fn refusal(&self, e: Errno) -> SandboxError {
        let name = self.walked.file_name().unwrap_or_default();
        let is_link = |stat: nix::sys::stat::FileStat| {
            SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
        };
        let link = match &self.dir {
            Some(d) => fstatat(d, name, AtFlags::AT_SYMLINK_NOFOLLOW),
            None => fstatat(AT_FDCWD, name, AtFlags::AT_SYMLINK_NOFOLLOW),
        }
        .is_ok_and(is_link);
        if link {
            SandboxError::WorkspaceSymlink {
                workspace: self.workspace.to_path_buf(),
                link: self.walked.clone(),
            }
        } else {
            self.error(e)
        }
    }

    fn error(&self, e: Errno) -> SandboxError {
        SandboxError::Workspace { path: self.walked.clone(), source: e.into() }
    }
}

/// Gives a directory, by descriptor, to the sandbox user.
fn hand_over(dir: impl AsFd) -> nix::Result<()> {
    let id = (Some(Uid::from_raw(SANDBOX_ID)), Some(Gid::from_raw(SANDBOX_ID)));
    fchownat(dir, "", id.0, id.1, AtFlags::AT_EMPTY_PATH)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    /// A root-owned directory standing in for `/etc`.
    fn victim(dir: &Path) -> (PathBuf, (u32, u32)) {
        let victim = dir.join("etc");
        std::fs::create_dir(&victim).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let meta = std::fs::metadata(&victim).unwrap();
        (victim, (meta.uid(), meta.mode()))
    }

    fn unchanged(victim: &Path, before: (u32, u32)) {
        let meta = std::fs::metadata(victim).unwrap();
        assert_eq!((meta.uid(), meta.mode()), before, "{victim:?} was changed");
        assert_eq!(std::fs::read_dir(victim).unwrap().count(), 0, "something was created in {victim:?}");
    }

    #[test]
    fn a_symlink_at_the_workspace_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (victim, before) = victim(dir.path());
        let ws = dir.path().join("ws");
        symlink(&victim, &ws).unwrap();
        let err = prepare_workspace(&ws, Path::new("/workspace/sub")).unwrap_err();
        assert!(matches!(&err, SandboxError::WorkspaceSymlink { link, .. } if link == &ws), "{err}");
        unchanged(&victim, before);
    }

    #[test]
    fn a_symlink_among_the_parents_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (victim, before) = victim(dir.path());
        let parent = dir.path().join("peers");
        symlink(&victim, &parent).unwrap();
        let err = prepare_workspace(&parent.join("session"), Path::new("/workspace")).unwrap_err();
        assert!(matches!(&err, SandboxError::WorkspaceSymlink { link, .. } if link == &parent), "{err}");
        unchanged(&victim, before);
    }

    #[test]
    fn a_symlink_inside_the_workspace_is_not_followed_to_make_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (victim, before) = victim(dir.path());
        let ws = dir.path().join("ws");
        prepare_workspace(&ws, Path::new("/workspace")).unwrap();
        symlink(&victim, ws.join("escape")).unwrap();
        let err = prepare_workspace(&ws, Path::new("/workspace/escape/cron.d")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        unchanged(&victim, before);
    }

    #[test]
    fn missing_directories_are_created_private_and_handed_to_the_sandbox_user() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("a/b/ws");
        prepare_workspace(&ws, Path::new("/workspace/x/y")).unwrap();
        for d in [dir.path().join("a"), ws.clone(), ws.join("x/y")] {
            let meta = std::fs::metadata(&d).unwrap();
            assert!(meta.is_dir() && meta.mode() & 0o077 == 0, "{d:?} mode {:o}", meta.mode());
        }
        if nix::unistd::geteuid().is_root() {
            for d in [ws.clone(), ws.join("x"), ws.join("x/y")] {
                assert_eq!(std::fs::metadata(&d).unwrap().uid(), SANDBOX_ID, "{d:?}");
            }
            assert_eq!(std::fs::metadata(dir.path().join("a")).unwrap().uid(), 0, "a parent was handed over");
        }
        // Preparing again is harmless.
        prepare_workspace(&ws, Path::new("/workspace/x/y")).unwrap();
    }
}
