//! The native backend: kernel namespaces, an assembled read-only root, Landlock, seccomp, rlimits and
//! (where this process may create them) cgroups. No daemon, no image: a run costs a `clone`, a few mounts
//! and an `execve`.
//!
//! Layers, outermost first:
//! - new user, pid, mount, ipc, uts and cgroup namespaces, plus a new, empty network namespace unless the
//!   policy is `host` network;
//! - the process runs as [`SANDBOX_ID`] inside. uid 0 is not mapped at all. When the caller is root, that id
//!   maps to the same unprivileged host id, so the process's real uid on the host is not root and
//!   `RLIMIT_NPROC` binds (the kernel exempts only real root); otherwise it maps to the caller's own uid,
//!   which needs unprivileged user namespaces (`user.max_user_namespaces` > 0, and on Ubuntu
//!   `kernel.apparmor_restrict_unprivileged_userns=0` or an AppArmor profile);
//! - a root assembled on a private tmpfs: the policy's host directories bind-mounted read-only (nosuid),
//!   a generated `/etc` for untrusted runs, a read-only `/dev` with null/zero/full/random/urandom, a fresh
//!   `/proc` for the new pid namespace, a private `/tmp`, and the workspace read-write (nosuid, nodev).
//!   Home directories and `$WOPR_HOME` are simply not there;
//! - all capabilities dropped (bounding, ambient, effective, permitted, inheritable), no_new_privs;
//! - Landlock (when the kernel has it: read and execute below the system directories, `/proc` read-only,
//!   write only in the workspace, `/tmp` and `/dev`), the seccomp allow-list of [`crate::seccomp`];
//! - limits: `RLIMIT_NPROC`, `RLIMIT_AS`, `RLIMIT_CPU`, no core dumps; with cgroups also the whole tree's
//!   memory, pids and CPU share. The wall-clock limit, an output flood or a cancellation kills pid 1 of the
//!   namespace, which takes every other process in it down too before the run returns.
#![allow(unsafe_code)]

mod cgroup;
mod child;
pub(crate) mod landlock;
mod plan;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::policy::Network;
use crate::pump::{self, Stops, Streams};
use crate::{Cancel, Command, ExitStatus, Output, Policy, SANDBOX_ID, Sandbox, SandboxError, sys};

/// The native sandbox. Create once and reuse: it detects the host's cgroups, Landlock ABI and compiles the
/// seccomp filter up front.
#[derive(Debug)]
pub struct NativeSandbox {
    cgroups: Option<cgroup::Layout>,
    landlock_abi: Option<u32>,
    /// The seccomp programs for policies without network, and with the host's.
    seccomp: [Vec<Vec<libc::sock_filter>>; 2],
    cap_last: u32,
    root: bool,
}

impl NativeSandbox {
    /// Detects what this host offers.
    pub fn new() -> Result<NativeSandbox, SandboxError> {
        let compile = |network| {
            crate::seccomp::bpf(network).map_err(|reason| SandboxError::Unavailable {
                backend: "native",
                reason: format!("seccomp: {reason}"),
            })
        };
        let seccomp = [compile(Network::None)?, compile(Network::Host)?];
        let cap_last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40);
        let root = nix::unistd::geteuid().is_root();
        Ok(NativeSandbox {
            cgroups: cgroup::Layout::detect(),
            landlock_abi: landlock::abi(),
            seccomp,
            cap_last,
            root,
        })
    }

    /// The cgroup hierarchy used for whole-tree limits, or `None` when only rlimits apply.
    pub fn cgroups(&self) -> Option<String> {
        self.cgroups.as_ref().map(cgroup::Layout::describe)
    }

    /// The kernel's Landlock ABI version, or `None` when Landlock is unavailable.
    pub fn landlock_abi(&self) -> Option<u32> {
        self.landlock_abi
    }

    fn spawn_and_wait(
        &self,
        policy: &Policy,
        cmd: &Command,
        cancel: &Cancel,
    ) -> Result<Output, SandboxError> {
        let cwd = cmd.validated_cwd()?;
        let _slot = crate::limit::acquire(cancel, policy.timeout())?;
        let workspace = crate::workspace::open_workspace(policy.workspace(), &cwd)?;
        let watch = cancel.watch().map_err(SandboxError::io("watching for cancellation"))?;
        let Some(cancelled) = watch else { return Err(SandboxError::Cancelled) };
        let started = Instant::now();
        let pipe = |what: &str| sys::pipe().map_err(SandboxError::io(format!("creating the {what} pipe")));
        let (stdin_r, stdin_w) = pipe("stdin")?;
        let (stdout_r, stdout_w) = pipe("stdout")?;
        let (stderr_r, stderr_w) = pipe("stderr")?;
        let (sync_r, sync_w) = pipe("sync")?;
        let (err_r, err_w) = pipe("error")?;
        let fds = plan::Fds {
            workspace: workspace.as_raw_fd(),
            sync_read: sync_r.as_raw_fd(),
            err_write: err_w.as_raw_fd(),
            stdin: stdin_r.as_raw_fd(),
            stdout: stdout_w.as_raw_fd(),
            stderr: stderr_w.as_raw_fd(),
        };
        let id = nix::sys::stat::fstat(&workspace).map_err(|e| SandboxError::Workspace {
            path: policy.workspace().to_path_buf(),
            source: e.into(),
        })?;
        let host = plan::Host {
            workspace_id: (id.st_dev, id.st_ino),
            drop_groups: self.root,
            landlock_abi: self.landlock_abi,
            seccomp: &self.seccomp[usize::from(policy.network == Network::Host)],
            cap_last: self.cap_last,
        };
        let plan = plan::build(policy, cmd, &cwd, &host, fds)?;
        let group =
            match &self.cgroups {
                Some(layout) => Some(cgroup::create(layout, &policy.limits).map_err(|source| {
                    SandboxError::Setup { step: "creating the cgroup", source, hint: "" }
                })?),
                None => None,
            };

        let mut flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWCGROUP;
        if policy.network == Network::None {
            flags |= libc::CLONE_NEWNET;
        }
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack). The child only runs `child::run`, which
        // touches nothing but the prepared plan and ends in execve or _exit.
        let pid =
            unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0, 0, 0, 0) };
        if pid == 0 {
            // SAFETY: we are the freshly cloned child and `plan` was built before the clone.
            unsafe { child::run(&plan) }
        }
        if pid < 0 {
            let source = std::io::Error::last_os_error();
            if let Some(g) = group {
                g.remove();
            }
            return Err(SandboxError::Unavailable {
                backend: "native",
                reason: format!(
                    "cannot create namespaces ({source}): enable unprivileged user namespaces \
                     (sysctl user.max_user_namespaces > 0; on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0) \
                     or use the docker backend"
                ),
            });
        }
        let pid = Pid::from_raw(pid as i32);
        drop((stdin_r, stdout_w, stderr_w, sync_r, err_w, workspace));
        let op_labels: Vec<String> = plan.ops.iter().map(plan::Op::describe).collect();
        drop(plan);

        let release = || -> std::io::Result<()> {
            write_id_maps(pid, self.root)?;
            if let Some(g) = &group {
                g.add(pid.as_raw())?;
            }
            nix::unistd::write(&sync_w, &[1])?;
            Ok(())
        };
        let released = release();
        drop(sync_w);
        let setup_error = match released {
            Err(source) => Some(SandboxError::Setup { step: "mapping the sandbox user", source, hint: "" }),
            Ok(()) => read_setup_error(err_r, &op_labels),
        };
        if let Some(err) = setup_error {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            if let Some(g) = group {
                g.remove();
            }
            return Err(err);
        }

        let exited = sys::pidfd_open(pid.as_raw()).map_err(SandboxError::io("watching the sandbox"));
        let collected = exited.and_then(|exited| {
            let streams = Streams { stdin: stdin_w, stdout: stdout_r, stderr: stderr_r };
            let stops = Stops {
                deadline: started + policy.timeout(),
                cap: policy.limits.output_bytes,
                cancel: &cancelled,
            };
            // Killing pid 1 of the namespace kills every process in it; waitpid returns once all are gone.
            let mut kill_all = || {
                let _ = kill(pid, Signal::SIGKILL);
            };
            pump::pump(streams, &cmd.stdin, &exited, stops, &mut kill_all)
                .map_err(SandboxError::io("reading the sandbox's output"))
        });
        if collected.is_err() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let status = loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => break ExitStatus::Exited(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => break ExitStatus::Signaled(sig as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => break ExitStatus::Signaled(-(e as i32)),
            }
        };
        let duration = started.elapsed();
        if let Some(g) = group {
            g.remove();
        }
        let c = collected?;
        if c.cancelled {
            return Err(SandboxError::Cancelled);
        }
        Ok(c.into_output(status, duration))
    }
}

impl Sandbox for NativeSandbox {
    fn name(&self) -> &'static str {
        "native"
    }

    fn run_cancellable(
        &self,
        policy: &Policy,
        cmd: &Command,
        cancel: &Cancel,
    ) -> Result<Output, SandboxError> {
        self.spawn_and_wait(policy, cmd, cancel)
    }
}

/// Maps [`SANDBOX_ID`] inside the child's user namespace: to the same unprivileged id when we are root,
/// to our own ids otherwise. uid 0 stays unmapped.
fn write_id_maps(pid: Pid, root: bool) -> std::io::Result<()> {
    let proc = format!("/proc/{pid}");
    let (uid, gid) = if root {
        (SANDBOX_ID, SANDBOX_ID)
    } else {
        std::fs::write(format!("{proc}/setgroups"), "deny")?;
        (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    };
    std::fs::write(format!("{proc}/uid_map"), format!("{SANDBOX_ID} {uid} 1\n"))?;
    std::fs::write(format!("{proc}/gid_map"), format!("{SANDBOX_ID} {gid} 1\n"))?;
    Ok(())
}

/// Waits until the child executed the command (the pipe closes) or reported a failed step.
fn read_setup_error(err_r: OwnedFd, op_labels: &[String]) -> Option<SandboxError> {
    let mut msg = [0u8; 12];
    let mut got = 0;
    let mut f = File::from(err_r);
    while got < msg.len() {
        match f.read(&mut msg[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if got < msg.len() {
        return None;
    }
    let step = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let errno = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let op = u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
    let step = plan::Step::ALL.into_iter().find(|s| *s as u32 == step).unwrap_or(plan::Step::Wait);
    let source = std::io::Error::from_raw_os_error(errno);
    let source = match op_labels.get(op as usize) {
        Some(label) => std::io::Error::new(source.kind(), format!("{label}: {source}")),
        None => source,
    };
    Some(SandboxError::Setup { step: step.describe(), source, hint: step.hint(errno) })
}
