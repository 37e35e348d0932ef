//! The native backend against every security property, on this host as it is (root or not).

mod common;

use wopr_sandbox::{Command, NativeSandbox, Policy, Sandbox, Trust};

fn native() -> Box<dyn Sandbox> {
    Box::new(NativeSandbox::new().expect("the native sandbox is available on this host"))
}

property_tests!(native());

/// With the host's `/etc` visible (trusted), `/etc/shadow` still cannot be read: the process is not uid 0
/// and uid 0 is not even mapped.
#[test]
fn shadow_file_is_unreadable_even_with_host_etc_visible() {
    let s = common::Scratch::new();
    let policy = Policy::for_trust(Trust::Trusted, s.workspace());
    let o = common::run(&*native(), &policy, "cat /etc/shadow; echo rc=$?; ls /etc/passwd");
    assert!(o.stdout_text().contains("rc=1"), "{}", o.stdout_text());
    assert!(o.stdout_text().contains("/etc/passwd"), "/etc is not visible: {}", o.stderr_text());
}

/// ptrace is refused by the seccomp filter (perl is part of every Debian install).
#[test]
fn ptrace_is_denied() {
    let nr = if cfg!(target_arch = "aarch64") { 117 } else { 101 };
    let s = common::Scratch::new();
    let script = format!("sleep 5 & perl -e '$r = syscall({nr}, 16, $ARGV[0], 0, 0); print \"$r $!\\n\"' $!");
    let o = common::run(&*native(), &s.policy(), &script);
    assert_eq!(o.stdout_text().trim(), "-1 Operation not permitted", "stderr: {}", o.stderr_text());
}

/// The owner policy shares the host network (loopback reachable), unlike every other level.
#[test]
fn owner_policy_reaches_the_host_loopback() {
    let s = common::Scratch::new();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server =
        std::thread::spawn(move || l.accept().map(|(mut c, _)| std::io::Write::write_all(&mut c, b"pong")));
    let policy =
        Policy::for_trust(Trust::Owner, s.workspace()).with_timeout(std::time::Duration::from_secs(10));
    let o =
        native().run(&policy, &Command::shell(format!("busybox nc 127.0.0.1 {port} </dev/null"))).unwrap();
    assert!(server.join().unwrap().is_ok());
    assert_eq!(o.stdout_text(), "pong", "{}", o.stderr_text());
}

/// The native filter kills a process that makes a system call through another ABI (x32 numbers, the
/// i386 table through `int 0x80`) instead of letting the kernel answer it.
#[test]
fn foreign_abi_system_calls_kill_the_process() {
    let s = common::Scratch::new();
    let p = s.policy();
    common::probe::install(&p);
    for abi in ["x32", "int80"] {
        let a = common::probe::answer(&*native(), &p, &[abi]);
        assert_eq!(a, common::probe::Answer::Killed(libc::SIGSYS), "{abi}");
    }
}

/// The kernel's Landlock ABI, asked directly (not through the sandbox, whose detection is under test).
fn kernel_landlock_abi() -> Option<i64> {
    // SAFETY: with a null attribute and size 0 this call only reports the ABI version.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    (v > 0).then_some(v)
}

/// Landlock is applied wherever the kernel offers it. `/proc` must stay mounted read-write (a fresh procfs
/// for the pid namespace) and `/proc/self/mem` and `/proc/self/comm` belong to the process itself, so the
/// mount layout and file permissions allow writing them: only Landlock, which grants `/proc` read-only,
/// refuses (a write to `/proc/self/mem` is how Dirty COW-style kernel bugs are reached). Reading stays
/// allowed. Where the kernel has no Landlock, the doctor must say so.
#[test]
fn landlock_fences_what_the_mount_layout_allows() {
    let sb = native();
    let s = common::Scratch::new();
    let p = s.policy();
    common::probe::install(&p);
    match kernel_landlock_abi() {
        Some(abi) => {
            for (path, mode) in [("/proc/self/mem", "rw"), ("/proc/self/comm", "w")] {
                let a = common::probe::answer(&*sb, &p, &["open", path, mode]);
                assert_eq!(
                    a,
                    common::probe::Answer::Errno(libc::EACCES),
                    "{path} ({mode}), Landlock ABI {abi}"
                );
            }
            let a = common::probe::answer(&*sb, &p, &["open", "/proc/self/status", "r"]);
            assert!(matches!(a, common::probe::Answer::Ok(_)), "reading /proc: {a:?}");
        }
        None => {
            let native = NativeSandbox::new().unwrap();
            assert_eq!(native.landlock_abi(), None);
            let report =
                wopr_sandbox::doctor::probe_backend(wopr_sandbox::Backend::Native, &native, "native".into());
            let row = report.probes.iter().find(|p| p.property.contains("Landlock")).expect("a Landlock row");
            assert!(row.detail.contains("no Landlock"), "{row:?}");
        }
    }
}
