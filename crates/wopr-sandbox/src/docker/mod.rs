//! The Docker backend: the Docker CLI with the seeds' flags (`--network none --read-only --cap-drop ALL
//! --pids-limit 100 --memory 512m --cpus 0.5`, from the policy), plus `--security-opt no-new-privileges`,
//! the sandbox's own seccomp allow-list instead of Docker's default profile (which lets `AF_VSOCK`,
//! `ptrace` and the i386 system call table through), a non-root `--user`, a private `/tmp` tmpfs and the
//! workspace bind-mounted read-write with `--mount` (a `-v` spec would split paths at `:`). The memory
//! limit is the container's cgroup, so it bounds the whole sandbox. The image is built locally from a
//! static busybox ([`DockerSandbox::build_image`]) and never pulled (`--pull never`). `DOCKER_HOST` is
//! honoured like by the CLI itself.

mod image;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use image::{BuildProgress, IMAGE};

use crate::policy::Network;
use crate::pump::{self, Stops, Streams};
use crate::{
    Cancel, Command, ExitStatus, Output, Policy, SANDBOX_ID, Sandbox, SandboxError, WORKSPACE_MOUNT, sys,
};

/// Runs commands in throw-away containers through the Docker CLI.
#[derive(Debug, Clone)]
pub struct DockerSandbox {
    docker: PathBuf,
    host: Option<String>,
    image: String,
}

impl Default for DockerSandbox {
    fn default() -> Self {
        DockerSandbox::new()
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl DockerSandbox {
    /// The `docker` on `PATH`, talking to `DOCKER_HOST` (or the default socket), with the image [`IMAGE`].
    pub fn new() -> DockerSandbox {
        DockerSandbox { docker: "docker".into(), host: None, image: IMAGE.to_string() }
    }

    /// Talks to this daemon (`unix:///path/docker.sock`) instead of `DOCKER_HOST`.
    pub fn with_host(mut self, host: impl Into<String>) -> DockerSandbox {
        self.host = Some(host.into());
        self
    }

    /// Uses another image name.
    pub fn with_image(mut self, image: impl Into<String>) -> DockerSandbox {
        self.image = image.into();
        self
    }

    /// The image commands run in.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The uid:gid the containers run as: [`SANDBOX_ID`] when we are root (the workspace is handed to it),
    /// our own ids otherwise. Never 0.
    pub fn user(&self) -> (u32, u32) {
        if nix::unistd::geteuid().is_root() {
            (SANDBOX_ID, SANDBOX_ID)
        } else {
            (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
        }
    }

    pub(crate) fn cli(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.docker);
        if let Some(host) = &self.host {
            c.env("DOCKER_HOST", host);
        }
        c
    }

    /// Runs `docker args...` to completion; its stdout on success.
    pub(crate) fn call(&self, args: &[&str]) -> Result<String, SandboxError> {
        let out = self.cli().args(args).stdin(Stdio::null()).output().map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(SandboxError::Docker(format!(
                "`docker {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn spawn_error(&self, e: std::io::Error) -> SandboxError {
        SandboxError::Unavailable {
            backend: "docker",
            reason: format!("cannot run {:?} ({e}): install the Docker CLI (Debian: docker.io)", self.docker),
        }
    }

    /// Whether the daemon answers and the image exists.
    pub fn image_exists(&self) -> Result<bool, SandboxError> {
        let out = self
            .cli()
            .args(["image", "inspect", "--format", "{{.Id}}", &self.image])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            return Ok(true);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such image") {
            Ok(false)
        } else {
            Err(SandboxError::Docker(format!("the daemon did not answer: {}", err.trim())))
        }
    }

    /// The full `docker run` argument list for one command, with the seccomp profile at `seccomp`
    /// (written by [`DockerSandbox::seccomp_profile`]).
    pub fn run_args(
        &self,
        policy: &Policy,
        cmd: &Command,
        name: &str,
        seccomp: &Path,
    ) -> Result<Vec<OsString>, SandboxError> {
        let cwd = cmd.validated_cwd()?;
        let l = &policy.limits;
        let (uid, gid) = self.user();
        let mut workspace = OsString::from("type=bind,");
        workspace.push(csv_field(&[b"source=", policy.workspace().as_os_str().as_bytes()].concat()));
        workspace.push(format!(",target={WORKSPACE_MOUNT}"));
        let mut seccomp_opt = OsString::from("seccomp=");
        seccomp_opt.push(seccomp);
        let network = match policy.network {
            Network::None => "none",
            Network::Host => "host",
        };
        let memory = format!("{}m", l.memory_bytes.div_ceil(1024 * 1024));
        let mut args: Vec<OsString> = [
            "run",
            "--rm",
            "-i",
            "--pull",
            "never",
            "--name",
            name,
            "--network",
            network,
            "--read-only",
            "--cap-drop",
            "ALL",
            "--pids-limit",
            &l.pids.to_string(),
            "--memory",
            &memory,
            "--memory-swap",
            &memory,
            "--cpus",
            &l.cpus.to_string(),
            "--security-opt",
            "no-new-privileges",
            "--user",
            &format!("{uid}:{gid}"),
            "--tmpfs",
            &format!("/tmp:rw,size={}k,mode=1777", policy.filesystem.tmp_bytes / 1024),
            "--ulimit",
            "core=0",
            "--hostname",
            "wopr-sandbox",
            "--log-driver",
            "none",
            "-w",
            &cwd.to_string_lossy(),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.extend(["--security-opt".into(), seccomp_opt, "--mount".into(), workspace]);
        for (k, v) in [("HOME", WORKSPACE_MOUNT), ("TMPDIR", "/tmp"), ("USER", "sandbox")]
            .into_iter()
            .chain(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            args.push("-e".into());
            args.push(format!("{k}={v}").into());
        }
        args.push(self.image.as_str().into());
        args.extend(cmd.argv.iter().map(OsString::from));
        Ok(args)
    }

    /// Writes the seccomp profile for `policy` to a private temporary file, kept while the run lasts.
    pub fn seccomp_profile(&self, policy: &Policy) -> Result<tempfile::NamedTempFile, SandboxError> {
        let mut file = tempfile::Builder::new()
            .prefix("wopr-seccomp-")
            .suffix(".json")
            .tempfile()
            .map_err(SandboxError::io("creating the seccomp profile"))?;
        let profile = crate::seccomp::docker_profile(policy.network);
        serde_json::to_writer(&mut file, &profile)
            .map_err(|e| SandboxError::io("writing the seccomp profile")(e.into()))?;
        Ok(file)
    }

    fn remove_in_background(&self, name: &str) -> Option<std::process::Child> {
        let mut c = self.cli();
        c.args(["rm", "-f", name]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().ok()
    }
}

/// One field of Docker's `--mount` value, which is read as CSV: quoted when it holds a comma, a quote or
/// a line break, with quotes doubled.
fn csv_field(field: &[u8]) -> OsString {
    if !field.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        return OsStr::from_bytes(field).to_os_string();
    }
    let mut quoted = vec![b'"'];
    for &b in field {
        if b == b'"' {
            quoted.push(b'"');
        }
        quoted.push(b);
    }
    quoted.push(b'"');
    OsString::from_vec(quoted)
}

impl Sandbox for DockerSandbox {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn run_cancellable(
        &self,
        policy: &Policy,
        cmd: &Command,
        cancel: &Cancel,
    ) -> Result<Output, SandboxError> {
        let cwd = cmd.validated_cwd()?;
        let _slot = crate::limit::acquire(cancel, policy.timeout())?;
        crate::prepare_workspace(policy.workspace(), &cwd)?;
        let watch = cancel.watch().map_err(SandboxError::io("watching for cancellation"))?;
        let Some(cancelled) = watch else { return Err(SandboxError::Cancelled) };
        let profile = self.seccomp_profile(policy)?;
        let name = format!("wopr-sandbox-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let args = self.run_args(policy, cmd, &name, profile.path())?;
        let started = Instant::now();
        let mut child = self
            .cli()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let take = |s: Option<_>| s.ok_or_else(|| SandboxError::Docker("no pipe to the docker CLI".into()));
        let streams = Streams {
            stdin: take(child.stdin.take().map(std::os::fd::OwnedFd::from))?,
            stdout: take(child.stdout.take().map(std::os::fd::OwnedFd::from))?,
            stderr: take(child.stderr.take().map(std::os::fd::OwnedFd::from))?,
        };
        // The container is killed with `docker rm -f` in the background while its output keeps being
        // drained: waiting for it here could deadlock on a full pipe between the daemon and the CLI.
        let mut remover: Option<std::process::Child> = None;
        let collected = sys::pidfd_open(child.id() as i32)
            .map_err(SandboxError::io("watching the docker CLI"))
            .and_then(|exited| {
                let mut kill = || {
                    if remover.is_none() {
                        remover = self.remove_in_background(&name);
                    }
                };
                let stops = Stops {
                    deadline: started + policy.timeout(),
                    cap: policy.limits.output_bytes,
                    cancel: &cancelled,
                };
                pump::pump(streams, &cmd.stdin, &exited, stops, &mut kill)
                    .map_err(SandboxError::io("reading the container's output"))
            });
        if collected.is_err() && remover.is_none() {
            remover = self.remove_in_background(&name);
        }
        let killed = remover.is_some();
        if let Some(mut r) = remover {
            let _ = r.wait();
            let _ = child.kill();
        }
        let status = child.wait().map_err(SandboxError::io("waiting for the docker CLI"))?;
        if killed {
            // A container the daemon created after the first removal (the CLI was still talking to it).
            if let Some(mut r) = self.remove_in_background(&name) {
                let _ = r.wait();
            }
        }
        let duration = started.elapsed();
        let c = collected?;
        if c.cancelled {
            return Err(SandboxError::Cancelled);
        }
        let code = status.code().unwrap_or(-1);
        if code == 125 {
            let err = String::from_utf8_lossy(&c.stderr.bytes);
            if err.contains("No such image") || err.contains("pull access denied") {
                return Err(SandboxError::ImageMissing(self.image.clone()));
            }
            if err.starts_with("docker:") || err.contains("Error response from daemon") {
                return Err(SandboxError::Docker(err.trim().to_string()));
            }
        }
        // Docker reports death by signal n as exit code 128 + n.
        let status = match code {
            129..=192 => ExitStatus::Signaled(code - 128),
            code => ExitStatus::Exited(code),
        };
        Ok(c.into_output(status, duration))
    }
}
