//! Everything the forked child needs, prepared by the parent: paths as C strings, mount operations in
//! order, ids, limits, the Landlock plan and the seccomp programs. After `fork` in a threaded program the
//! child must not allocate, so it only walks this plan with raw system calls.

use std::collections::BTreeSet;
use std::ffi::{CString, c_char};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::landlock;
use crate::policy::{Network, Policy, WORKSPACE_MOUNT};
use crate::{Command, SANDBOX_ID, SandboxError};

/// Where the new root is assembled inside the child's private mount namespace (hidden from the host).
const STAGE: &str = "/tmp";

/// Device nodes bind-mounted from the host into the sandbox's `/dev`.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// A step of the child's set-up, reported back to the parent when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Step {
    Wait,
    Workspace,
    Stdio,
    Private,
    MountPoint,
    Bind,
    Remount,
    Proc,
    Tmpfs,
    WriteFile,
    Pivot,
    Hostname,
    Groups,
    User,
    Rlimit,
    Cwd,
    Caps,
    NoNewPrivs,
    Landlock,
    Seccomp,
}

impl Step {
    pub(super) const ALL: [Step; 20] = [
        Step::Wait,
        Step::Workspace,
        Step::Stdio,
        Step::Private,
        Step::MountPoint,
        Step::Bind,
        Step::Remount,
        Step::Proc,
        Step::Tmpfs,
        Step::WriteFile,
        Step::Pivot,
        Step::Hostname,
        Step::Groups,
        Step::User,
        Step::Rlimit,
        Step::Cwd,
        Step::Caps,
        Step::NoNewPrivs,
        Step::Landlock,
        Step::Seccomp,
    ];

    /// The step in words, for error messages.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Step::Wait => "waiting for the id mapping",
            Step::Workspace => "opening the workspace again in the sandbox's mount namespace",
            Step::Stdio => "connecting standard streams",
            Step::Private => "making mounts private",
            Step::MountPoint => "creating a mount point",
            Step::Bind => "bind-mounting a host directory",
            Step::Remount => "remounting a directory read-only",
            Step::Proc => "mounting a fresh /proc",
            Step::Tmpfs => "mounting a tmpfs",
            Step::WriteFile => "writing /etc",
            Step::Pivot => "switching to the new root",
            Step::Hostname => "setting the hostname",
            Step::Groups => "dropping supplementary groups",
            Step::User => "switching to the sandbox user",
            Step::Rlimit => "setting resource limits",
            Step::Cwd => "entering the working directory",
            Step::Caps => "dropping capabilities",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Landlock => "applying Landlock",
            Step::Seccomp => "installing the seccomp filter",
        }
    }

    /// Advice for a failure at this step, if any.
    pub(super) fn hint(self, errno: i32) -> &'static str {
        match (self, errno) {
            (Step::Proc, libc::EPERM) => {
                "; the host's /proc has over-mounted paths (are we inside a container?): run on the host or \
                 use the docker backend"
            }
            (Step::Cwd, libc::ENOENT) => "; create the directory in the workspace first",
            _ => "",
        }
    }
}

/// One file-system operation, with full paths inside the staging root.
pub(super) enum Op {
    Mkdir(CString),
    Touch(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Write {
        path: CString,
        data: Vec<u8>,
    },
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        step: Step,
    },
}

impl Op {
    /// The operation in words, for error messages.
    pub(super) fn describe(&self) -> String {
        let show = |c: &CString| String::from_utf8_lossy(c.as_bytes()).trim_start_matches(STAGE).to_string();
        match self {
            Op::Mkdir(p) | Op::Touch(p) => format!("mount point {}", show(p)),
            Op::Symlink { link, .. } => format!("symlink {}", show(link)),
            Op::Write { path, .. } => format!("file {}", show(path)),
            Op::Mount { src, target, .. } => {
                format!("{} on {}", src.as_ref().map(show).unwrap_or_default(), show(target))
            }
        }
    }
}

/// Descriptors the child uses (all close-on-exec in the parent).
pub(super) struct Fds {
    /// The workspace, opened by [`crate::workspace`] without following any symbolic link. A bind mount
    /// needs a source in the child's own mount namespace, so the child opens the path again there, checks
    /// it reached this same directory, and puts it on this descriptor number.
    pub workspace: RawFd,
    pub sync_read: RawFd,
    pub err_write: RawFd,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
}

/// The child's whole programme.
pub(super) struct Plan {
    pub fds: Fds,
    pub stage: CString,
    pub workspace: CString,
    /// Device and inode of the directory the parent opened as the workspace.
    pub workspace_id: (u64, u64),
    pub ops: Vec<Op>,
    pub hostname: CString,
    pub drop_groups: bool,
    pub id: u32,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    pub cwd: CString,
    pub cap_last: u32,
    pub landlock: Option<landlock::Plan>,
    pub seccomp: Vec<Vec<libc::sock_filter>>,
    pub exec: Vec<CString>,
    /// Owns the strings `argv_ptrs` points into.
    #[allow(dead_code)]
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const c_char>,
    /// Owns the strings `envp_ptrs` points into.
    #[allow(dead_code)]
    pub envp: Vec<CString>,
    pub envp_ptrs: Vec<*const c_char>,
    pub not_found: Vec<u8>,
}

/// Host facts the plan depends on.
pub(super) struct Host<'a> {
    pub workspace_id: (u64, u64),
    pub drop_groups: bool,
    pub landlock_abi: Option<u32>,
    pub seccomp: &'a [Vec<libc::sock_filter>],
    pub cap_last: u32,
}

fn c(s: impl AsRef<[u8]>) -> Result<CString, SandboxError> {
    CString::new(s.as_ref()).map_err(|_| SandboxError::NulByte)
}

fn staged(p: &Path) -> Result<CString, SandboxError> {
    c([STAGE.as_bytes(), p.as_os_str().as_bytes()].concat())
}

/// Mount flags the kernel keeps locked on a bind mount made in a user namespace: repeating them is
/// required when remounting.
fn locked_flags(p: &Path) -> libc::c_ulong {
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    if let Ok(st) = nix::sys::statvfs::statvfs(p) {
        use nix::sys::statvfs::FsFlags;
        if st.flags().contains(FsFlags::ST_NOEXEC) {
            flags |= libc::MS_NOEXEC;
        }
        if st.flags().contains(FsFlags::ST_RDONLY) {
            flags |= libc::MS_RDONLY;
        }
    }
    flags
}

/// Mount points strictly below `dir`, from our mount table.
fn submounts(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m != dir && m.starts_with(dir))
        .collect()
}

struct Builder {
    ops: Vec<Op>,
    dirs: BTreeSet<PathBuf>,
}

impl Builder {
    fn mkdir_all(&mut self, p: &Path) -> Result<(), SandboxError> {
        let mut cur = PathBuf::from("/");
        for comp in p.components().skip(1) {
            cur.push(comp);
            if self.dirs.insert(cur.clone()) {
                self.ops.push(Op::Mkdir(staged(&cur)?));
            }
        }
        Ok(())
    }

    fn mount(
        &mut self,
        src: Option<&[u8]>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
        step: Step,
    ) -> Result<(), SandboxError> {
        self.ops.push(Op::Mount {
            src: src.map(c).transpose()?,
            target: staged(target)?,
            fstype: fstype.map(c).transpose()?,
            flags,
            data: data.map(c).transpose()?,
            step,
        });
        Ok(())
    }

    fn tmpfs(&mut self, at: &Path, flags: libc::c_ulong, data: &str) -> Result<(), SandboxError> {
        self.mkdir_all(at)?;
        self.mount(Some(b"tmpfs"), at, Some("tmpfs"), flags, Some(data), Step::Tmpfs)
    }

    fn read_only(&mut self, target: &Path, source: &Path) -> Result<(), SandboxError> {
        let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked_flags(source);
        self.mount(None, target, None, flags, None, Step::Remount)
    }

    /// Host directory `dir` visible read-only at the same path, its submounts too, minus `hidden`.
    fn host_dir(&mut self, dir: &Path, hidden: &[PathBuf]) -> Result<(), SandboxError> {
        let Ok(meta) = std::fs::symlink_metadata(dir) else { return Ok(()) };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(dir).map_err(SandboxError::io(format!("reading {dir:?}")))?;
            if let Some(parent) = dir.parent() {
                self.mkdir_all(parent)?;
            }
            self.ops.push(Op::Symlink { target: c(target.as_os_str().as_bytes())?, link: staged(dir)? });
            return Ok(());
        }
        if !meta.is_dir() {
            return Ok(());
        }
        self.mkdir_all(dir)?;
        self.mount(
            Some(dir.as_os_str().as_bytes()),
            dir,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
            Step::Bind,
        )?;
        self.read_only(dir, dir)?;
        for sub in submounts(dir) {
            self.read_only(&sub, &sub)?;
        }
        for h in hidden.iter().filter(|h| h.starts_with(dir) && h.is_dir()) {
            let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            self.mount(Some(b"tmpfs"), h, Some("tmpfs"), flags, Some("size=4k,mode=000"), Step::Tmpfs)?;
        }
        Ok(())
    }
}

/// Builds the plan for one run.
pub(super) fn build(
    policy: &Policy,
    cmd: &Command,
    cwd: &Path,
    host: &Host<'_>,
    fds: Fds,
) -> Result<Plan, SandboxError> {
    let mut b = Builder { ops: Vec::new(), dirs: BTreeSet::new() };
    let fs = &policy.filesystem;
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    b.ops.push(Op::Mount {
        src: Some(c("tmpfs")?),
        target: c(STAGE)?,
        fstype: Some(c("tmpfs")?),
        flags: nosuid_nodev,
        data: Some(c("mode=0755,size=1m")?),
        step: Step::Tmpfs,
    });
    for dir in &fs.host_dirs {
        b.host_dir(dir, &fs.hidden)?;
    }
    let etc = Path::new("/etc");
    if !fs.host_dirs.iter().any(|d| d == etc) {
        b.mkdir_all(etc)?;
        let id = SANDBOX_ID;
        for (name, data) in [
            (
                "passwd",
                format!("root:x:0:0::/:/sbin/nologin\nsandbox:x:{id}:{id}:sandbox:/workspace:/bin/sh\n"),
            ),
            ("group", format!("root:x:0:\nsandbox:x:{id}:\n")),
            ("hosts", "127.0.0.1 localhost\n::1 localhost\n".to_string()),
        ] {
            b.ops.push(Op::Write { path: staged(&etc.join(name))?, data: data.into_bytes() });
        }
    }
    // /dev: a read-only tmpfs with a few harmless host devices.
    let dev = Path::new("/dev");
    b.tmpfs(dev, libc::MS_NOSUID | libc::MS_NOEXEC, "mode=0755,size=64k")?;
    for name in DEVICES {
        let node = dev.join(name);
        b.ops.push(Op::Touch(staged(&node)?));
        b.mount(Some(node.as_os_str().as_bytes()), &node, None, libc::MS_BIND, None, Step::Bind)?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        b.ops.push(Op::Symlink { target: c(target)?, link: staged(&dev.join(link))? });
    }
    let ro_dev = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC;
    b.mount(None, dev, None, ro_dev, None, Step::Remount)?;
    // A fresh /proc for the new pid namespace: the host's processes are not in it.
    let proc = Path::new("/proc");
    b.mkdir_all(proc)?;
    b.mount(Some(b"proc"), proc, Some("proc"), nosuid_nodev | libc::MS_NOEXEC, None, Step::Proc)?;
    b.tmpfs(Path::new("/tmp"), nosuid_nodev, &format!("mode=1777,size={}", fs.tmp_bytes))?;
    // The workspace, through the descriptor the parent opened without following symlinks (its host path may
    // lie below the stage, and its parents may be private to the caller).
    let ws = Path::new(WORKSPACE_MOUNT);
    b.mkdir_all(ws)?;
    let ws_src = format!("/proc/self/fd/{}", fds.workspace);
    b.mount(Some(ws_src.as_bytes()), ws, None, libc::MS_BIND | libc::MS_REC, None, Step::Bind)?;
    let ws_flags = libc::MS_REMOUNT | libc::MS_BIND | locked_flags(&fs.workspace);
    b.mount(None, ws, None, ws_flags, None, Step::Remount)?;

    let landlock = host.landlock_abi.map(|abi| {
        use landlock::Access::*;
        let mut dirs: Vec<(&str, landlock::Access)> = vec![("/", List)];
        for d in fs.host_dirs.iter().filter_map(|d| d.to_str()) {
            dirs.push((d, ReadExec));
        }
        dirs.extend([("/etc", ReadExec), ("/dev", ReadWriteFiles), ("/proc", Read)]);
        dirs.extend([("/tmp", Full), (WORKSPACE_MOUNT, Full)]);
        landlock::Plan::new(abi, policy.network == Network::None, &dirs)
    });

    let mut env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"),
        ("HOME", WORKSPACE_MOUNT),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
        ("USER", "sandbox"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    for (k, v) in &cmd.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let program = &cmd.argv[0];
    let exec = if program.contains('/') {
        vec![c(program)?]
    } else {
        let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or("");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| c(format!("{d}/{program}")))
            .collect::<Result<_, _>>()?
    };
    let argv: Vec<CString> = cmd.argv.iter().map(c).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env.iter().map(|(k, v)| c(format!("{k}={v}"))).collect::<Result<_, _>>()?;
    let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect();
    let l = &policy.limits;
    let cpu_seconds = policy.timeout().as_secs() + 1;
    Ok(Plan {
        fds,
        stage: c(STAGE)?,
        workspace: c(fs.workspace.as_os_str().as_bytes())?,
        workspace_id: host.workspace_id,
        ops: b.ops,
        hostname: c("wopr-sandbox")?,
        drop_groups: host.drop_groups,
        id: SANDBOX_ID,
        rlimits: vec![
            (libc::RLIMIT_NPROC, u64::from(l.pids)),
            (libc::RLIMIT_AS, l.memory_bytes),
            (libc::RLIMIT_CPU, cpu_seconds),
            (libc::RLIMIT_CORE, 0),
        ],
        cwd: c(cwd.as_os_str().as_bytes())?,
        cap_last: host.cap_last,
        landlock,
        seccomp: host.seccomp.to_vec(),
        argv_ptrs: ptrs(&argv),
        envp_ptrs: ptrs(&envp),
        exec,
        argv,
        envp,
        not_found: format!("wopr-sandbox: {program}: command not found or not executable\n").into_bytes(),
    })
}
