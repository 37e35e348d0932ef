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
    let profile = std::path::Path::new("/p.json");
    let args = DockerSandbox::new()
        .run_args(&s.policy(), &wopr_sandbox::Command::new(["true"]), "n", profile)
        .unwrap();
    let line = args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    for flag in [
        "--network none",
        "--read-only",
        "--cap-drop ALL",
        "--pids-limit 100",
        "--memory 512m",
        "--cpus 0.5",
        "--security-opt no-new-privileges",
        "--security-opt seccomp=/p.json",
        "--pull never",
    ] {
        assert!(line.contains(flag), "missing {flag}: {line}");
    }
    assert!(!line.contains("--user 0:"), "{line}");
    let mount = format!("--mount type=bind,source={},target=/workspace", s.workspace().display());
    assert!(line.contains(&mount), "{line}");
    assert!(!line.contains(" -v "), "{line}");
}

/// The profile Docker gets is the sandbox's own allow-list (Docker's default lets AF_VSOCK through).
#[test]
fn the_seccomp_profile_is_the_sandboxs_own() {
    let s = common::Scratch::new();
    let file = DockerSandbox::new().seccomp_profile(&s.policy()).unwrap();
    let profile: serde_json::Value = serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let socket_rules: Vec<_> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["names"] == serde_json::json!(["socket"]))
        .collect();
    assert_eq!(socket_rules.len(), 1, "{socket_rules:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o077, 0);
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
