//! The sandbox image, built locally from a static busybox and never pulled: a root with `/bin/busybox`,
//! a link for each applet (`/bin/sh`, `ls`, ...), `/etc/passwd` and `/etc/group` naming the sandbox user,
//! an empty `/tmp` and `/workspace`. It is imported from a tar stream (`docker import`), which needs no
//! builder, no base image and no network.

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::DockerSandbox;
use crate::{SANDBOX_ID, SandboxError};

/// The default image name.
pub const IMAGE: &str = "wopr-sandbox:busybox";

/// Where a static busybox is looked for (Debian's `busybox-static` installs `/bin/busybox`).
const BUSYBOX: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];

/// One step of [`DockerSandbox::build_image`], for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildProgress {
    /// 1-based step number.
    pub step: u32,
    /// Number of steps.
    pub steps: u32,
    /// What is being done.
    pub message: String,
}

const STEPS: u32 = 4;

/// Whether an ELF executable needs no dynamic loader (has no `PT_INTERP` program header).
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at =
        |o: usize| bytes.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize);
    if bytes.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        bytes.get(at..at + 4).is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != 3)
    })
}

fn find_busybox() -> Result<PathBuf, SandboxError> {
    for p in BUSYBOX {
        if let Ok(bytes) = std::fs::read(p)
            && is_static_elf(&bytes)
        {
            return Ok(PathBuf::from(p));
        }
    }
    Err(SandboxError::Unavailable {
        backend: "docker",
        reason: "no static busybox to build the image from: install busybox-static (Debian/Ubuntu)".into(),
    })
}

fn assemble(root: &Path, busybox: &Path) -> std::io::Result<usize> {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(busybox, bin.join("busybox"))?;
    std::fs::set_permissions(bin.join("busybox"), std::fs::Permissions::from_mode(0o755))?;
    let list = std::process::Command::new(busybox).arg("--list").output()?;
    let mut applets = 0;
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", bin.join(applet))?;
        applets += 1;
    }
    if !bin.join("sh").exists() {
        symlink("busybox", bin.join("sh"))?;
    }
    for (dir, mode) in
        [("tmp", 0o1777), ("workspace", 0o755), ("etc", 0o755), ("proc", 0o755), ("dev", 0o755)]
    {
        std::fs::create_dir_all(root.join(dir))?;
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(mode))?;
    }
    let id = SANDBOX_ID;
    std::fs::write(
        root.join("etc/passwd"),
        format!("root:x:0:0::/:/bin/false\nsandbox:x:{id}:{id}:sandbox:/workspace:/bin/sh\n"),
    )?;
    std::fs::write(root.join("etc/group"), format!("root:x:0:\nsandbox:x:{id}:\n"))?;
    Ok(applets)
}

impl DockerSandbox {
    /// Builds (or rebuilds) the sandbox image from the host's static busybox, reporting each step.
    pub fn build_image(&self, progress: &mut dyn FnMut(&BuildProgress)) -> Result<(), SandboxError> {
        let mut step = 0;
        let mut say = |message: String| {
            step += 1;
            progress(&BuildProgress { step, steps: STEPS, message });
        };
        say("finding a static busybox".into());
        let busybox = find_busybox()?;
        say(format!("assembling the root file system from {}", busybox.display()));
        let dir = tempfile::tempdir().map_err(SandboxError::io("creating a temporary directory"))?;
        let root = dir.path().join("rootfs");
        let applets = assemble(&root, &busybox).map_err(SandboxError::io("assembling the image's root"))?;
        say(format!("importing {} ({applets} applets) into docker", self.image));
        let tar = std::process::Command::new("tar")
            // Readable and traversable by the sandbox user whatever the caller's umask (wopr runs with
            // 077, which would leave every directory of the image closed to a non-root user).
            .args(["--numeric-owner", "--owner=0", "--group=0", "--mode=go+rX", "-C"])
            .arg(&root)
            .args(["-cf", "-", "."])
            .output()
            .map_err(SandboxError::io("running tar"))?;
        if !tar.status.success() {
            return Err(SandboxError::Docker(format!(
                "tar failed: {}",
                String::from_utf8_lossy(&tar.stderr)
            )));
        }
        let mut import = self
            .cli()
            .args(["import", "--change", "WORKDIR /workspace", "--change", "ENV PATH=/bin"])
            .args(["--change", &format!("USER {SANDBOX_ID}:{SANDBOX_ID}"), "-", &self.image])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        if let Some(mut stdin) = import.stdin.take() {
            stdin.write_all(&tar.stdout).map_err(SandboxError::io("streaming the image to docker"))?;
        }
        let out = import.wait_with_output().map_err(SandboxError::io("waiting for docker import"))?;
        if !out.status.success() {
            return Err(SandboxError::Docker(format!(
                "docker import failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        say("checking the image".into());
        let id =
            self.call(&["run", "--rm", "--pull", "never", "--network", "none", &self.image, "id", "-u"])?;
        if id.trim() != SANDBOX_ID.to_string() {
            return Err(SandboxError::Docker(format!(
                "the new image runs as uid {}, not {SANDBOX_ID}",
                id.trim()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_executables_are_not_taken_for_static_ones() {
        // /bin/sh on any distribution is dynamically linked.
        assert!(!is_static_elf(&std::fs::read("/bin/sh").unwrap()));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }
}
