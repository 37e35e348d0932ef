//! Security properties every backend must hold, written once and run against each backend. Each check
//! fails if its property broke.
#![allow(dead_code)]

pub mod probe;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::time::Duration;

use probe::Answer;
use wopr_sandbox::{Command, Output, Policy, SANDBOX_ID, Sandbox, TRUNCATION_MARKER, Trust};

/// A temporary session workspace, and an untrusted policy for it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    pub fn policy(&self) -> Policy {
        Policy::for_trust(Trust::Untrusted, self.workspace())
    }
}

pub fn run(sb: &dyn Sandbox, policy: &Policy, script: &str) -> Output {
    sb.run(policy, &Command::shell(script))
        .unwrap_or_else(|e| panic!("{} sandbox failed to run {script:?}: {e}", sb.name()))
}

fn show(o: &Output) -> String {
    format!("status {:?}\nstdout: {}\nstderr: {}", o.status, o.stdout_text(), o.stderr_text())
}

pub fn runs_as_an_unprivileged_user(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let o = run(sb, &s.policy(), "id -u; id -g");
    assert!(o.success(), "{}", show(&o));
    assert_eq!(o.stdout_text(), format!("{SANDBOX_ID}\n{SANDBOX_ID}\n"), "{}", show(&o));
}

pub fn workspace_is_writable_and_persists(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy();
    let o = run(sb, &p, "mkdir -p sub && echo kept > sub/note.txt && pwd");
    assert!(o.success(), "{}", show(&o));
    assert_eq!(o.stdout_text().trim(), "/workspace");
    let o = run(sb, &p, "cat /workspace/sub/note.txt");
    assert_eq!(o.stdout_text(), "kept\n", "{}", show(&o));
    assert_eq!(std::fs::read_to_string(s.workspace().join("sub/note.txt")).unwrap(), "kept\n");
    let o = sb.run(&p, &Command::new(["cat", "note.txt"]).cwd("sub")).unwrap();
    assert_eq!(o.stdout_text(), "kept\n", "{}", show(&o));
}

pub fn stdin_env_and_exit_codes_pass_through(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let o = sb
        .run(
            &s.policy(),
            &Command::shell("cat; echo \"$GREETING\"; exit 3").env("GREETING", "hi").stdin("in\n"),
        )
        .unwrap();
    assert_eq!(o.stdout_text(), "in\nhi\n", "{}", show(&o));
    assert_eq!(o.status, wopr_sandbox::ExitStatus::Exited(3));
    let o = sb.run(&s.policy(), &Command::new(["no-such-program-here"])).unwrap();
    assert_eq!(o.status, wopr_sandbox::ExitStatus::Exited(127), "{}", show(&o));
}

/// identity.json in a `$WOPR_HOME` on the host, and a file in the host's home, stay unreadable.
pub fn host_secrets_are_unreadable(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let home = s.dir.path().join("wopr-home");
    std::fs::create_dir(&home).unwrap();
    let identity = home.join("identity.json");
    std::fs::write(&identity, "CANARY-IDENTITY-SECRET").unwrap();
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    let user_home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
    let in_home = tempfile::tempdir_in(&user_home).expect("temp dir in the home directory");
    let home_file = in_home.path().join("secret.txt");
    std::fs::write(&home_file, "CANARY-HOME-SECRET").unwrap();
    std::fs::set_permissions(&home_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let policy = s.policy().hide(&home);
    for p in [identity.as_path(), home_file.as_path()] {
        let script =
            format!("cat {0}; cat /proc/1/root{0}; ls {1}", p.display(), p.parent().unwrap().display());
        let o = run(sb, &policy, &script);
        assert!(!o.stdout_text().contains("CANARY"), "{} read {p:?}: {}", sb.name(), show(&o));
        assert!(!o.stdout_text().contains("secret.txt") && !o.stdout_text().contains("identity.json"));
    }
    let o = run(sb, &policy, &format!("ls {}", user_home.display()));
    assert!(o.stdout_text().trim().is_empty(), "the host home is listed: {}", show(&o));
}

/// Nothing outside the workspace can be written: not `/`, `/etc`, `/usr`, and `/tmp` is private.
pub fn writes_outside_the_workspace_fail(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let name = format!("wopr-sandbox-canary-{}", std::process::id());
    for target in [format!("/{name}"), format!("/etc/{name}"), format!("/usr/{name}"), format!("/bin/{name}")]
    {
        let o = run(sb, &s.policy(), &format!("echo x > {target}"));
        assert!(!o.status.success(), "{} wrote {target}: {}", sb.name(), show(&o));
        assert!(!Path::new(&target).exists(), "{target} appeared on the host");
    }
    let o = run(sb, &s.policy(), &format!("echo x > /tmp/{name} && cat /tmp/{name}"));
    assert!(o.success(), "the private /tmp is not writable: {}", show(&o));
    assert!(!Path::new(&format!("/tmp/{name}")).exists(), "the sandbox's /tmp is the host's");
}

/// A TCP listener on the host's loopback and a UDP "resolver" there are unreachable; DNS lookups fail.
pub fn network_is_unreachable(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let script = format!(
        "echo hello | busybox nc -w 2 127.0.0.1 {tcp}; echo tcp=$?; echo hello | busybox nc -u -w 1 127.0.0.1 {udp}; \
         busybox nslookup example.com; echo dns=$?; busybox wget -q -T 2 -O - http://1.1.1.1/; echo wget=$?",
        tcp = tcp.local_addr().unwrap().port(),
        udp = udp.local_addr().unwrap().port()
    );
    let o = run(sb, &s.policy(), &script);
    let out = o.stdout_text();
    assert!(!out.contains("tcp=0") && !out.contains("dns=0") && !out.contains("wget=0"), "{}", show(&o));
    assert!(tcp.accept().is_err(), "{}: a connection reached the host's loopback", sb.name());
    let mut buf = [0u8; 64];
    assert!(udp.recv_from(&mut buf).is_err(), "{}: a datagram reached the host's loopback", sb.name());
}

/// A fork bomb hits the process limit and the call still returns at the timeout, leaving nothing behind.
pub fn fork_bomb_is_contained(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let policy = s.policy().with_timeout(Duration::from_secs(3));
    let o = run(sb, &policy, ":(){ :|:& };:; sleep 60");
    assert!(o.duration < Duration::from_secs(12), "the bomb ran for {:?}", o.duration);
    assert!(!o.success());
    // The sandbox still works afterwards.
    let o = run(sb, &s.policy(), "echo alive");
    assert_eq!(o.stdout_text(), "alive\n", "{}", show(&o));
}

/// No more than the policy's 100 processes exist at once.
pub fn process_limit_holds(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let o = run(
        sb,
        &s.policy(),
        // Only builtins after the start, so the shell itself never needs a fork once the limit is hit.
        "seq 150 | busybox xargs -n1 -P150 sleep 5 2>/dev/null & i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; \
         set -- /proc/[0-9]*; echo $#",
    );
    let n: u32 = o.stdout_text().trim().parse().unwrap_or_else(|_| panic!("no count: {}", show(&o)));
    assert!((50..=100).contains(&n), "{} processes alive at once: {}", n, show(&o));
}

/// A memory bomb is stopped well before it takes the host down, and the call returns.
pub fn memory_bomb_is_contained(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let policy = s.policy().with_timeout(Duration::from_secs(25));
    let o = run(sb, &policy, "x=aaaaaaaaaaaaaaaa; while :; do x=\"$x$x\"; done");
    assert!(!o.timed_out, "the bomb was not stopped by the memory limit: {}", show(&o));
    assert!(!o.success(), "{}", show(&o));
}

/// A CPU spin is killed at the wall-clock limit.
pub fn cpu_spin_is_killed_at_the_timeout(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let policy = s.policy().with_timeout(Duration::from_secs(1));
    let o = run(sb, &policy, "while :; do :; done");
    assert!(o.timed_out, "{}", show(&o));
    assert!(o.duration < Duration::from_secs(5), "killed only after {:?}", o.duration);
    assert!(!o.success());
}

/// `mount` fails, and so does creating new namespaces with `unshare`.
pub fn mount_and_unshare_fail(sb: &dyn Sandbox) {
    let s = Scratch::new();
    for script in [
        "busybox mount -t tmpfs none /tmp",
        "busybox mount -o remount,rw /",
        "busybox unshare -r -m id -u",
        "busybox unshare -n true",
    ] {
        let o = run(sb, &s.policy(), script);
        assert!(!o.status.success(), "{} allowed {script:?}: {}", sb.name(), show(&o));
        assert!(!o.stderr_text().contains("applet not found"), "{}", show(&o));
    }
}

/// The host's processes are invisible: the sandbox's /proc shows only its own.
pub fn host_processes_are_invisible(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let me = std::process::id();
    let o = run(
        sb,
        &s.policy(),
        &format!("ls /proc | grep -c '^[0-9]'; cat /proc/{me}/cmdline; cat /proc/1/cmdline"),
    );
    let out = o.stdout_text();
    let count: u32 = out.lines().next().and_then(|l| l.trim().parse().ok()).unwrap_or(999);
    assert!(count < 10, "{count} processes visible: {}", show(&o));
    assert!(!out.contains("properties") && !out.contains("cargo"), "a host process is visible: {}", show(&o));
}

/// A setuid-root copy of busybox in the workspace does not make anyone root.
pub fn setuid_binaries_do_not_grant_root(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy();
    wopr_sandbox::prepare_workspace(&s.workspace(), Path::new("/workspace")).unwrap();
    let bb = s.workspace().join("busybox");
    std::fs::copy("/bin/busybox", &bb).unwrap();
    chown(&bb, Some(0), Some(0)).expect("this test runs as root (it creates a setuid-root file)");
    std::fs::set_permissions(&bb, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let o = run(sb, &p, "./busybox id -u; ./busybox grep -E '^(Uid|CapEff|NoNewPrivs)' /proc/self/status");
    assert_eq!(o.stdout_text().lines().next(), Some(SANDBOX_ID.to_string().as_str()), "{}", show(&o));
    assert!(o.stdout_text().contains("CapEff:\t0000000000000000"), "{}", show(&o));
    assert!(o.stdout_text().contains("NoNewPrivs:\t1"), "{}", show(&o));
}

/// An output flood is cut at the cap, marked, and stopped.
pub fn output_flood_is_capped(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let mut policy = s.policy();
    policy.limits.output_bytes = 64 * 1024;
    let o = run(sb, &policy, "yes; echo never-reached");
    assert!(o.stdout_truncated, "{}", o.stdout.len());
    assert!(o.stdout.len() <= 64 * 1024 + TRUNCATION_MARKER.len());
    assert!(o.stdout_text().ends_with(TRUNCATION_MARKER));
    assert!(o.duration < Duration::from_secs(10), "the flood ran for {:?}", o.duration);
    let o = run(sb, &policy, "yes >&2");
    assert!(o.stderr_truncated && o.stderr.len() <= 64 * 1024 + TRUNCATION_MARKER.len());
}

const EPERM: i32 = 1;
const EACCES: i32 = 13;
const ENOSYS: i32 = 38;
const SIGSYS: i32 = 31;

/// Only unix sockets can be created: AF_VSOCK (which no network namespace fences: it reaches the
/// hypervisor), raw packet, netlink, Bluetooth, crypto and IP sockets are all refused when the policy has
/// no network.
pub fn socket_families_other_than_unix_are_refused(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy();
    probe::install(&p);
    assert!(
        matches!(probe::answer(sb, &p, &["socket", "1"]), Answer::Ok(_)),
        "{}: AF_UNIX refused",
        sb.name()
    );
    // inet, netlink (raw, route), inet6, packet, bluetooth, alg, vsock, xdp
    for (family, kind) in [
        ("2", "1"),
        ("16", "3"),
        ("10", "1"),
        ("17", "3"),
        ("31", "1"),
        ("38", "5"),
        ("40", "1"),
        ("44", "3"),
    ] {
        let a = probe::answer(sb, &p, &["socket", family, kind]);
        assert!(!matches!(a, Answer::Ok(_)), "{}: socket({family}, {kind}) was created: {a:?}", sb.name());
    }
}

/// System calls through another ABI (x32 numbers on x86-64, `int 0x80` into the i386 table) never run:
/// the seccomp filter is written for the native table only.
pub fn foreign_system_call_abis_are_refused(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy();
    probe::install(&p);
    for abi in ["x32", "int80"] {
        let a = probe::answer(sb, &p, &[abi]);
        assert!(!matches!(a, Answer::Ok(_)), "{}: a {abi} system call ran: {a:?}", sb.name());
    }
}

/// Calls that widen the kernel's attack surface or reach other processes fail with EPERM, each with
/// arguments an unfiltered kernel would accept or answer differently (EFAULT, EINVAL, success).
pub fn attack_surface_system_calls_are_refused(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy();
    probe::install(&p);
    let nr = |name: &str| -> String {
        match name {
            "io_uring_setup" => libc::SYS_io_uring_setup,
            "io_uring_enter" => libc::SYS_io_uring_enter,
            "io_uring_register" => libc::SYS_io_uring_register,
            "bpf" => libc::SYS_bpf,
            "keyctl" => libc::SYS_keyctl,
            "add_key" => libc::SYS_add_key,
            "request_key" => libc::SYS_request_key,
            "userfaultfd" => libc::SYS_userfaultfd,
            "perf_event_open" => libc::SYS_perf_event_open,
            "process_vm_writev" => libc::SYS_process_vm_writev,
            other => panic!("no number for {other}"),
        }
        .to_string()
    };
    let calls: [(&str, &[&str]); 10] = [
        ("io_uring_setup", &["1", "0"]),                        // unfiltered: EFAULT
        ("io_uring_enter", &["-1", "0", "0", "0", "0", "0"]),   // EBADF
        ("io_uring_register", &["-1", "0", "0", "0"]),          // EBADF
        ("bpf", &["9999", "0", "0"]),                           // EINVAL
        ("keyctl", &["0", "-3", "0"]),                          // the session keyring's id
        ("add_key", &["0", "0", "0", "0", "-2"]),               // EFAULT
        ("request_key", &["0", "0", "0", "0"]),                 // EFAULT
        ("userfaultfd", &["0x80001"]),                          // a descriptor (user-mode only)
        ("perf_event_open", &["0", "0", "-1", "-1", "0"]),      // EFAULT
        ("process_vm_writev", &["1", "0", "0", "0", "0", "0"]), // 0
    ];
    for (name, args) in calls {
        let mut argv = vec!["raw".to_string(), nr(name)];
        argv.extend(args.iter().map(|a| a.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let a = probe::answer(sb, &p, &argv);
        assert_eq!(a, Answer::Errno(EPERM), "{}: {name} was not refused by the filter", sb.name());
    }
    for call in ["traceme", "vmread"] {
        let a = probe::answer(sb, &p, &[call]);
        assert_eq!(a, Answer::Errno(EPERM), "{}: {call} was not refused by the filter", sb.name());
    }
}

/// `clone` cannot create namespaces; `clone3`, whose flags a filter cannot read, fails with ENOSYS so
/// libc falls back to `clone`; a plain fork still works.
pub fn namespace_clones_are_refused_and_clone3_falls_back(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy();
    probe::install(&p);
    assert!(matches!(probe::answer(sb, &p, &["clone", "0"]), Answer::Ok(_)), "{}: fork refused", sb.name());
    for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET, libc::CLONE_NEWPID] {
        let a = probe::answer(sb, &p, &["clone", &format!("{flag:#x}")]);
        assert!(!matches!(a, Answer::Ok(_)), "{}: clone({flag:#x}) made a namespace: {a:?}", sb.name());
    }
    assert_eq!(probe::answer(sb, &p, &["clone3"]), Answer::Errno(ENOSYS), "{}: clone3", sb.name());
}

/// A system call the filter does not know (here `listmount`, which this kernel implements) fails as if
/// the kernel lacked it: the filter is an allow-list, so calls added to later kernels stay out too.
pub fn system_calls_outside_the_allow_list_are_not_implemented(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy();
    probe::install(&p);
    let a = probe::answer(sb, &p, &["raw", "458", "0", "0", "0", "0"]);
    assert_eq!(a, Answer::Errno(ENOSYS), "{}: listmount got past the filter", sb.name());
}

/// 50 processes of 400 MiB each (touching every page and keeping it) never hold more than the policy's
/// memory at once: the bound covers the whole sandbox, not each process. The probe stops launching as
/// soon as the living holders exceed twice the limit, so a broken bound cannot take the host down.
pub fn memory_is_bounded_for_the_whole_sandbox(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let mut p = s.policy().with_timeout(Duration::from_secs(600));
    p.limits.cpus = 1.0;
    probe::install(&p);
    let limit_mib = p.limits.memory_bytes >> 20;
    let o = probe::run(sb, &p, &["hold", "50", "400", &(2 * limit_mib).to_string()]);
    let out = o.stdout_text();
    let field = |k: &str| -> u64 {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in the probe's answer: {}", show(&o)))
    };
    let (held, launched) = (field("held="), field("launched="));
    assert!(
        held * 400 <= limit_mib,
        "{}: {held} processes held 400 MiB each at once ({} MiB) under a {limit_mib} MiB limit ({launched} launched)",
        sb.name(),
        held * 400
    );
    assert_eq!(launched, 50, "{}: {}", sb.name(), show(&o));
}

/// Session names as the seeds write them (`friend:p2p:alice(abc123)`) work as workspace directory names,
/// also below a directory whose name has a comma.
pub fn workspace_names_with_colons_and_commas_work(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let workspace = s.dir.path().join("home,1").join("friend:p2p:alice(abc123)");
    let p = Policy::for_trust(Trust::Untrusted, &workspace);
    let o = run(sb, &p, "echo kept > note && pwd && cat note");
    assert!(o.success(), "{}", show(&o));
    assert_eq!(o.stdout_text(), "/workspace\nkept\n", "{}", show(&o));
    assert_eq!(std::fs::read_to_string(workspace.join("note")).unwrap(), "kept\n");
}

/// A symlink a sandboxed command planted in its workspace is never followed on the host when the next run
/// prepares its working directory: nothing is created or handed to the sandbox user outside.
pub fn planted_symlinks_are_not_followed_when_preparing_the_workspace(sb: &dyn Sandbox) {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new();
    let p = s.policy();
    let victim = s.dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
    let before = std::fs::metadata(&victim).unwrap();
    let o = run(sb, &p, &format!("ln -s {} escape && echo planted", victim.display()));
    assert_eq!(o.stdout_text(), "planted\n", "{}", show(&o));
    let next = sb.run(&p, &Command::new(["true"]).cwd("escape/sub"));
    let after = std::fs::metadata(&victim).unwrap();
    assert!(!victim.join("sub").exists(), "{}: the host followed the planted symlink ({next:?})", sb.name());
    assert_eq!(
        (after.uid(), after.mode()),
        (before.uid(), before.mode()),
        "{}: the victim changed",
        sb.name()
    );
    assert!(next.is_err() || !next.as_ref().unwrap().success(), "{}: {next:?}", sb.name());
}

/// Waits (at most `patience`, to fail rather than hang) until `ready` says yes.
fn wait_for<T>(what: &str, patience: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + patience;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(std::time::Instant::now() < until, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The host pids of the processes whose command line is exactly `argv` (zombies have none).
pub fn host_pids_of(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Cancelling a run, or dropping its guard (what a dropped turn does), kills every process of the sandbox
/// before the run returns: the probe's grandchild `sleep` is gone from the host at once.
pub fn cancelling_a_run_kills_its_whole_process_tree(sb: &dyn Sandbox) {
    let s = Scratch::new();
    let p = s.policy().with_timeout(Duration::from_secs(600));
    probe::install(&p);
    for (i, how) in ["cancel", "drop the guard"].into_iter().enumerate() {
        let marker = format!("{}{i}", 900_000 + std::process::id() % 90_000);
        let cancel = wopr_sandbox::Cancel::new();
        let guard = cancel.on_drop();
        std::thread::scope(|scope| {
            let cmd = Command::new(["./sysprobe", "tree", marker.as_str()]);
            let running = {
                let cancel = cancel.clone();
                let p = &p;
                scope.spawn(move || sb.run_cancellable(p, &cmd, &cancel))
            };
            let sleeper = ["sleep", marker.as_str()];
            let pid = wait_for("the grandchild sleep", Duration::from_secs(120), || {
                host_pids_of(&sleeper).first().copied()
            });
            match how {
                "cancel" => cancel.cancel(),
                _ => drop(guard),
            }
            let ended = running.join().expect("the run's thread");
            assert!(
                matches!(ended, Err(wopr_sandbox::SandboxError::Cancelled)),
                "{} ({how}): {ended:?}",
                sb.name()
            );
            assert!(
                host_pids_of(&sleeper).is_empty(),
                "{} ({how}): the grandchild {pid} outlived the cancelled run",
                sb.name()
            );
        });
    }
}

/// However many runs are asked for at once, at most `sandbox.maxConcurrent` are alive; the others wait
/// for a slot without starting anything, then run.
pub fn at_most_max_concurrent_runs_are_alive_at_once(sb: &dyn Sandbox) {
    const MAX: usize = 2;
    const RUNS: usize = 5;
    wopr_sandbox::set_max_concurrent_runs(MAX);
    let s = Scratch::new();
    let p = s.policy().with_timeout(Duration::from_secs(600));
    wopr_sandbox::prepare_workspace(p.workspace(), Path::new("/workspace")).unwrap();
    let alive = || {
        std::fs::read_dir(s.workspace())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("running."))
            .count()
    };
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..RUNS)
            .map(|i| {
                let p = &p;
                scope.spawn(move || {
                    let script =
                        "touch running.$ID; while [ ! -e release ]; do sleep 0.05; done; rm running.$ID";
                    sb.run(p, &Command::shell(script).env("ID", i.to_string()))
                })
            })
            .collect();
        wait_for("two runs alive and three waiting", Duration::from_secs(120), || {
            let n = alive();
            assert!(n <= MAX, "{}: {n} runs alive at once with a limit of {MAX}", sb.name());
            let slots = wopr_sandbox::run_slots();
            (n == MAX && slots.waiting >= RUNS - MAX).then_some(())
        });
        assert_eq!(alive(), MAX, "{}: a waiting run started", sb.name());
        std::fs::write(s.workspace().join("release"), "").unwrap();
        for r in runs {
            let o = r.join().unwrap().unwrap_or_else(|e| panic!("{}: a run failed: {e}", sb.name()));
            assert!(o.success(), "{}", show(&o));
        }
    });
    assert_eq!(alive(), 0);
    wopr_sandbox::set_max_concurrent_runs(wopr_sandbox::DEFAULT_MAX_CONCURRENT_RUNS);
}

/// Read everything from a file, for diagnostics.
pub fn slurp(p: &Path) -> String {
    let mut s = String::new();
    let _ = std::fs::File::open(p).and_then(|mut f| f.read_to_string(&mut s));
    s
}

/// Generates one `#[test]` per property for a backend constructor.
#[macro_export]
macro_rules! property_tests {
    ($backend:expr) => {
        property_tests!(@each $backend;
            runs_as_an_unprivileged_user, workspace_is_writable_and_persists, stdin_env_and_exit_codes_pass_through,
            host_secrets_are_unreadable, writes_outside_the_workspace_fail, network_is_unreachable,
            fork_bomb_is_contained, process_limit_holds, memory_bomb_is_contained, cpu_spin_is_killed_at_the_timeout,
            mount_and_unshare_fail, host_processes_are_invisible, setuid_binaries_do_not_grant_root,
            output_flood_is_capped, socket_families_other_than_unix_are_refused,
            foreign_system_call_abis_are_refused, attack_surface_system_calls_are_refused,
            namespace_clones_are_refused_and_clone3_falls_back,
            system_calls_outside_the_allow_list_are_not_implemented, memory_is_bounded_for_the_whole_sandbox,
            workspace_names_with_colons_and_commas_work,
            planted_symlinks_are_not_followed_when_preparing_the_workspace,
            cancelling_a_run_kills_its_whole_process_tree, at_most_max_concurrent_runs_are_alive_at_once);
    };
    (@each $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let sb = $backend;
                common::$name(&*sb);
            }
        )*
    };
}
