//! The Docker backend against every security property, on a private `dockerd` started by the test (and
//! `docker.io` installed when missing). These tests fail, never skip, when Docker cannot run.

mod common;

use std::sync::OnceLock;

use test_support::Dockerd;
use wopr_sandbox::{DockerSandbox, Sandbox};

fn docker() -> Box<dyn Sandbox> {
    static BUILT: OnceLock<DockerSandbox> = OnceLock::new();
    let sb = BUILT.get_or_init(|| {
        let sb = DockerSandbox::new().with_host(Dockerd::shared().host());
        sb.build_image(&mut |_| {}).unwrap_or_else(|e| panic!("building the sandbox image failed: {e}"));
        sb
    });
    Box::new(sb.clone())
}

property_tests!(docker());

#[test]
fn run_uses_exactly_the_seed_flags_plus_hardening() {
    let s = common::Scratch::new();
    let args =
        DockerSandbox::new().run_args(&s.policy(), &wopr_sandbox::Command::new(["true"]), "n").unwrap();
    let line = args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    for flag in [
        "--network none",
        "--read-only",
        "--cap-drop ALL",
        "--pids-limit 100",
        "--memory 512m",
        "--cpus 0.5",
        "--security-opt no-new-privileges",
        "--pull never",
    ] {
        assert!(line.contains(flag), "missing {flag}: {line}");
    }
    assert!(!line.contains("--user 0:"), "{line}");
}

#[test]
fn image_is_built_locally_and_runs_as_the_sandbox_user() {
    let sb = docker();
    let o = sb
        .run(&common::Scratch::new().policy(), &wopr_sandbox::Command::new(["sh", "-c", "ls /bin | wc -l"]))
        .unwrap();
    let n: u32 = o.stdout_text().trim().parse().unwrap_or(0);
    assert!(n > 100, "busybox applets missing: {}", o.stdout_text());
}

#[test]
fn the_image_works_when_built_under_wopr_s_private_umask() {
    // `wopr` runs with umask 077; the image's directories must still open to the unprivileged user.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let sb = DockerSandbox::new().with_host(Dockerd::shared().host()).with_image("wopr-sandbox:umask-test");
    let built = sb.build_image(&mut |_| {});
    nix::sys::stat::umask(old);
    built.unwrap_or_else(|e| panic!("building under umask 077 failed: {e}"));
    let o = sb
        .run(
            &common::Scratch::new().policy(),
            &wopr_sandbox::Command::new(["sh", "-c", "id -u; ls /bin | wc -l"]),
        )
        .unwrap();
    assert!(o.success(), "{o:?}");
    let lines: Vec<&str> = o.stdout.split(|b| *b == b'\n').map(|l| std::str::from_utf8(l).unwrap()).collect();
    assert_eq!(lines[0], wopr_sandbox::SANDBOX_ID.to_string());
    assert!(lines[1].trim().parse::<u32>().unwrap_or(0) > 100, "{lines:?}");
}
