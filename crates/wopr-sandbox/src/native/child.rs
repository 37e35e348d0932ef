//! The forked child: walks the [`Plan`] with raw system calls, then executes the command.
//!
//! Runs between `clone` and `execve` in a copy of a possibly multi-threaded process, so it must not
//! allocate, lock or unwind: only libc calls on data the parent prepared. A failing step writes
//! `(step, errno)` to the error pipe and exits; a successful `execve` closes that pipe.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::ptr::null;

use super::plan::{Op, Plan, Step};

/// Index of the file-system operation being run, reported with a failure (`u32::MAX`: none).
static mut CURRENT_OP: u32 = u32::MAX;

const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

/// Reports a failed step to the parent and exits.
fn fail(plan: &Plan, step: Step, err: i32) -> ! {
    let mut msg = [0u8; 12];
    msg[..4].copy_from_slice(&(step as u32).to_ne_bytes());
    msg[4..8].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: a plain read of a static counter set by this (single-threaded) child.
    let op = unsafe { CURRENT_OP };
    msg[8..].copy_from_slice(&op.to_ne_bytes());
    // SAFETY: writing a stack buffer to an open pipe, then leaving without running any Rust cleanup.
    unsafe {
        libc::write(plan.fds.err_write, msg.as_ptr().cast(), msg.len());
        libc::_exit(126)
    }
}

fn check(plan: &Plan, step: Step, r: libc::c_long) {
    if r < 0 {
        fail(plan, step, errno());
    }
}

fn ptr(s: &Option<std::ffi::CString>) -> *const libc::c_char {
    s.as_deref().map_or(null(), CStr::as_ptr)
}

/// Sets up the sandbox and executes the command. Never returns.
///
/// # Safety
/// Call only in the child of a `clone` without `CLONE_VM`, with `plan` built by the parent before it.
pub(super) unsafe fn run(plan: &Plan) -> ! {
    // SAFETY (whole block): raw system calls on NUL-terminated strings and buffers owned by `plan`, which
    // lives in this process's copy of the parent's memory and is not touched by anything else.
    unsafe {
        // No descriptor of the daemon may survive into the command.
        libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC);
        let mut go = 0u8;
        if libc::read(plan.fds.sync_read, (&raw mut go).cast(), 1) != 1 {
            libc::_exit(126); // the parent gave up
        }
        // The same directory the parent reached without following symlinks, or nothing: a path swapped
        // in the meantime fails here.
        let ws = libc::open(plan.workspace.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
        check(plan, Step::Workspace, ws.into());
        let mut st: libc::stat = std::mem::zeroed();
        check(plan, Step::Workspace, libc::fstat(ws, &raw mut st).into());
        if (st.st_dev, st.st_ino) != plan.workspace_id {
            fail(plan, Step::Workspace, libc::ELOOP);
        }
        check(plan, Step::Workspace, libc::dup3(ws, plan.fds.workspace, libc::O_CLOEXEC).into());
        libc::close(ws);
        for (from, to) in [(plan.fds.stdin, 0), (plan.fds.stdout, 1), (plan.fds.stderr, 2)] {
            check(plan, Step::Stdio, libc::dup2(from, to).into());
        }

        // Become the unprivileged sandbox user now (uid 0 is not even mapped; files created while building the
        // root need a mapped owner). The capabilities in the new user namespace survive this, because the old
        // uid was not that namespace's root; they are dropped below.
        // Raw system calls: glibc's wrappers would try to change the ids of the parent's other threads,
        // which do not exist in this copy, and wait for them forever.
        if plan.drop_groups {
            check(plan, Step::Groups, libc::syscall(libc::SYS_setgroups, 0, null::<libc::gid_t>()));
        }
        check(plan, Step::User, libc::syscall(libc::SYS_setresgid, plan.id, plan.id, plan.id));
        check(plan, Step::User, libc::syscall(libc::SYS_setresuid, plan.id, plan.id, plan.id));
        let root = c"/";
        check(
            plan,
            Step::Private,
            libc::mount(null(), root.as_ptr(), null(), libc::MS_REC | libc::MS_PRIVATE, null()).into(),
        );
        for (i, op) in plan.ops.iter().enumerate() {
            CURRENT_OP = i as u32;
            match op {
                Op::Mkdir(p) => {
                    if libc::mkdir(p.as_ptr(), 0o755) < 0 && errno() != libc::EEXIST {
                        fail(plan, Step::MountPoint, errno());
                    }
                }
                Op::Touch(p) => {
                    let fd = libc::open(p.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                    check(plan, Step::MountPoint, fd.into());
                    libc::close(fd);
                }
                Op::Symlink { target, link } => {
                    check(plan, Step::MountPoint, libc::symlink(target.as_ptr(), link.as_ptr()).into());
                }
                Op::Write { path, data } => {
                    let fd =
                        libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                    check(plan, Step::WriteFile, fd.into());
                    if libc::write(fd, data.as_ptr().cast(), data.len()) != data.len() as isize {
                        fail(plan, Step::WriteFile, errno());
                    }
                    libc::close(fd);
                }
                Op::Mount { src, target, fstype, flags, data, step } => {
                    let r = libc::mount(ptr(src), target.as_ptr(), ptr(fstype), *flags, ptr(data).cast());
                    check(plan, *step, r.into());
                }
            }
        }

        CURRENT_OP = u32::MAX;
        // Enter the new root and drop the old one entirely.
        check(plan, Step::Pivot, libc::chdir(plan.stage.as_ptr()).into());
        let dot = c".";
        check(plan, Step::Pivot, libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()));
        check(plan, Step::Pivot, libc::umount2(dot.as_ptr(), libc::MNT_DETACH).into());
        check(plan, Step::Pivot, libc::chdir(root.as_ptr()).into());
        let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
        check(plan, Step::Remount, libc::mount(null(), root.as_ptr(), null(), ro, null()).into());
        let name = plan.hostname.as_bytes();
        check(plan, Step::Hostname, libc::sethostname(name.as_ptr().cast(), name.len()).into());

        // Credential changes clear the parent-death signal, so set it now: the sandbox dies with its caller.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        for &(resource, value) in &plan.rlimits {
            let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
            check(plan, Step::Rlimit, libc::setrlimit(resource, &lim).into());
        }
        check(plan, Step::Cwd, libc::chdir(plan.cwd.as_ptr()).into());

        // No capabilities, now or after execve.
        for cap in 0..=plan.cap_last {
            check(plan, Step::Caps, libc::prctl(libc::PR_CAPBSET_DROP, cap).into());
        }
        check(
            plan,
            Step::Caps,
            libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0).into(),
        );
        let mut header = CapHeader { version: CAP_VERSION_3, pid: 0 };
        let data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
        check(plan, Step::Caps, libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()));
        check(plan, Step::NoNewPrivs, libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into());
        if let Some(landlock) = &plan.landlock
            && let Err(e) = landlock.apply()
        {
            fail(plan, Step::Landlock, e);
        }
        for prog in &plan.seccomp {
            let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr().cast_mut() };
            check(
                plan,
                Step::Seccomp,
                libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &raw const fprog).into(),
            );
        }

        for path in &plan.exec {
            libc::execve(path.as_ptr(), plan.argv_ptrs.as_ptr(), plan.envp_ptrs.as_ptr());
        }
        libc::write(2, plan.not_found.as_ptr().cast(), plan.not_found.len());
        libc::_exit(127)
    }
}
