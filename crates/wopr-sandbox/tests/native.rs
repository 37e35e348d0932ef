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
