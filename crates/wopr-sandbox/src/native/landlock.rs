//! Landlock: a second, inode-based fence inside the mount namespace. Even if a mount were misconfigured, the
//! process can only read and execute below the system directories, and write below the workspace, `/tmp`
//! and `/dev`. It also fences what the mount layout must allow: `/proc` is a writable procfs and the
//! process owns its own entries there, but Landlock grants it read-only, so `/proc/self/mem` (the way into
//! Dirty COW-style kernel bugs) and the other writable entries are refused. With ABI 4+ it cannot bind or connect TCP sockets when the policy has no network, and with
//! ABI 6+ it cannot signal processes or reach abstract unix sockets outside its own domain.
//!
//! The ruleset is built in the forked child from paths prepared by the parent, with raw system calls: after
//! `fork` in a threaded program nothing may allocate, which rules out the higher-level crates.
#![allow(unsafe_code)]

use std::ffi::CString;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
const CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the running kernel, or `None` when Landlock is absent or disabled.
pub(crate) fn abi() -> Option<u32> {
    // SAFETY: with a null attribute and size 0 this call only reports the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

/// What the child applies: built by the parent, applied without allocating.
pub(super) struct Plan {
    attr: RulesetAttr,
    attr_size: usize,
    rules: Vec<(CString, u64)>,
}

/// How a directory inside the sandbox may be used.
#[derive(Clone, Copy)]
pub(super) enum Access {
    /// List directories only (for `/`).
    List,
    /// Read and execute (system directories, `/etc`).
    ReadExec,
    /// Read only (`/proc`).
    Read,
    /// Read and write files, no creation (`/dev`).
    ReadWriteFiles,
    /// Everything (workspace, `/tmp`).
    Full,
}

impl Plan {
    /// A plan for `abi`, denying TCP when `no_network`, with `dirs` (paths inside the sandbox).
    pub(super) fn new(abi: u32, no_network: bool, dirs: &[(&str, Access)]) -> Plan {
        let mut fs = (1u64 << 13) - 1;
        if abi >= 2 {
            fs |= 1 << 13; // REFER
        }
        if abi >= 3 {
            fs |= TRUNCATE;
        }
        if abi >= 5 {
            fs |= IOCTL_DEV;
        }
        let net = if abi >= 4 && no_network { NET_BIND_TCP | NET_CONNECT_TCP } else { 0 };
        let scoped = if abi >= 6 { SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL } else { 0 };
        let attr_size = match abi {
            1..=3 => 8,
            4 | 5 => 16,
            _ => 24,
        };
        let rules = dirs
            .iter()
            .filter_map(|(path, access)| {
                let bits = match access {
                    Access::List => READ_DIR,
                    Access::ReadExec => READ_DIR | READ_FILE | EXECUTE,
                    Access::Read => READ_DIR | READ_FILE,
                    Access::ReadWriteFiles => READ_DIR | READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV,
                    Access::Full => fs,
                } & fs;
                Some((CString::new(*path).ok()?, bits))
            })
            .collect();
        Plan {
            attr: RulesetAttr { handled_access_fs: fs, handled_access_net: net, scoped },
            attr_size,
            rules,
        }
    }

    /// Restricts the calling process. Needs no_new_privs already set. Allocation-free.
    ///
    /// # Safety
    /// Only raw system calls on data owned by `self`; safe to call in a forked child.
    pub(super) unsafe fn apply(&self) -> Result<(), i32> {
        let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL);
        // SAFETY: attr points to a live RulesetAttr of at least attr_size bytes.
        let ruleset = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &self.attr as *const RulesetAttr,
                self.attr_size,
                0,
            )
        };
        if ruleset < 0 {
            return Err(errno());
        }
        let ruleset = ruleset as libc::c_int;
        for (path, access) in &self.rules {
            // SAFETY: path is a NUL-terminated string owned by self.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd < 0 {
                continue; // not present in this sandbox: nothing to allow
            }
            let rule = PathBeneathAttr { allowed_access: *access, parent_fd: fd };
            // SAFETY: rule is a live PathBeneathAttr; ruleset and fd are open descriptors.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset,
                    RULE_PATH_BENEATH,
                    &rule as *const PathBeneathAttr,
                    0,
                )
            };
            // SAFETY: fd was opened above and is not used again.
            unsafe { libc::close(fd) };
            if r < 0 {
                return Err(errno());
            }
        }
        // SAFETY: ruleset is an open Landlock ruleset descriptor.
        let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0) };
        // SAFETY: the descriptor is not used again.
        unsafe { libc::close(ruleset) };
        if r < 0 { Err(errno()) } else { Ok(()) }
    }
}
