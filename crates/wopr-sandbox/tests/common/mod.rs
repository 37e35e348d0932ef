//! Security properties every backend must hold, written once and run against each backend. Each check
//! fails if its property broke.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
            output_flood_is_capped);
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
