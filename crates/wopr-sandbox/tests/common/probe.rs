//! The static probe program (`tests/probe/sysprobe.c`): compiled once per test process with
//! `gcc -static`, copied into a workspace, run inside the sandbox to issue raw system calls.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wopr_sandbox::{Command, Output, Policy, Sandbox};

/// The compiled probe (built on first use; `gcc` and the static libc of `libc6-dev` are needed).
pub fn binary() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir for the probe");
        let out = dir.path().join("sysprobe");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe/sysprobe.c");
        let built = std::process::Command::new("gcc")
            .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("cannot run gcc to build the probe ({e}): install gcc and libc6-dev"));
        assert!(
            built.status.success(),
            "building the static probe failed (install libc6-dev for the static libc):\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        (dir, out)
    });
    path
}

/// Puts the probe into the policy's workspace as `./sysprobe`.
pub fn install(policy: &Policy) {
    wopr_sandbox::prepare_workspace(policy.workspace(), Path::new("/workspace")).expect("workspace");
    let target = policy.workspace().join("sysprobe");
    std::fs::copy(binary(), &target).expect("copying the probe into the workspace");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).expect("chmod the probe");
}

/// Runs `./sysprobe args...` inside the sandbox.
pub fn run(sb: &dyn Sandbox, policy: &Policy, args: &[&str]) -> Output {
    let argv: Vec<String> = ["./sysprobe"].iter().chain(args).map(|s| s.to_string()).collect();
    sb.run(policy, &Command::new(argv))
        .unwrap_or_else(|e| panic!("{} sandbox failed to run the probe {args:?}: {e}", sb.name()))
}

/// What one probe call reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The call succeeded with this value.
    Ok(i64),
    /// The call failed with this errno.
    Errno(i32),
    /// The probe died of this signal before printing (SIGSYS: killed by the seccomp filter).
    Killed(i32),
}

/// The probe's answer to `args`, run in the sandbox.
pub fn answer(sb: &dyn Sandbox, policy: &Policy, args: &[&str]) -> Answer {
    let o = run(sb, policy, args);
    let out = o.stdout_text();
    let line = out.lines().next().unwrap_or("");
    if let Some(v) = line.strip_prefix("ok=") {
        return Answer::Ok(v.parse().expect("a number after ok="));
    }
    if let Some(v) = line.strip_prefix("errno=") {
        return Answer::Errno(v.parse().expect("a number after errno="));
    }
    match o.status {
        wopr_sandbox::ExitStatus::Signaled(sig) => Answer::Killed(sig),
        // Docker reports a death by signal as 128 + n only through the CLI's exit code, already mapped.
        status => panic!("the probe {args:?} printed nothing useful ({status:?}): {out} {}", o.stderr_text()),
    }
}
