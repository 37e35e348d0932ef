//! Runs `docs/vectors/verify.py`, an implementation of the protocol written in Python from
//! `docs/PROTOCOL.md` alone, over the committed vectors. It must reproduce every positive vector and
//! refuse every negative one with its error. `scripts/test` installs its packages
//! (`docs/vectors/requirements.txt`); without them this test fails and says how to install them.

use std::path::Path;
use std::process::Command;

pub fn run_independent_verifier(dir: &Path) {
    let script = dir.join("verify.py");
    let out = Command::new("python3").arg(&script).arg(dir).output().unwrap_or_else(|e| {
        panic!(
            "cannot run python3 {}: {e}; install Python 3 and `pip install -r docs/vectors/requirements.txt`",
            script.display()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the independent verifier disagrees ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("all vectors agree"), "unexpected verifier output:\n{stdout}\n{stderr}");
}
