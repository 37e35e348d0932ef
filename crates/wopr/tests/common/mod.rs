//! Helpers shared by the CLI tests: a temporary WOPR_HOME and a `wopr` command bound to it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub struct TestHome {
    pub dir: tempfile::TempDir,
}

impl Default for TestHome {
    fn default() -> Self {
        TestHome { dir: tempfile::tempdir().expect("temp dir") }
    }
}

impl TestHome {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `wopr` with this home, no provider keys from the environment, and no colours.
    pub fn wopr(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    /// The same as [`TestHome::wopr`], as a plain command to spawn (and kill) as a child process.
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("wopr"));
        // No mDNS: a test's nodes meet only where the test says (and announce nothing on the host's LAN).
        cmd.env("WOPR_HOME", self.path()).env("NO_COLOR", "1").env("WOPR_DISCOVER_MDNS", "off");
        // Each test daemon's HTTP API on a port of its own.
        cmd.env("WOPR_DAEMON_BIND", "127.0.0.1:0");
        for k in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "KIMI_API_KEY",
            "MOONSHOT_API_KEY",
            "OPENAI_COMPATIBLE_BASE_URL",
            "WOPR_MODEL",
            "ANTHROPIC_BASE_URL",
            "OPENAI_BASE_URL",
        ] {
            cmd.env_remove(k);
        }
        cmd
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

/// Stops the daemon of a home when dropped, so a failing test leaves no daemon behind.
pub struct StopDaemon<'a>(pub &'a TestHome);

impl Drop for StopDaemon<'_> {
    fn drop(&mut self) {
        let _ = self.0.command().args(["daemon", "stop"]).output();
    }
}

/// A daemon running for a home, on the test model, with its HTTP API on a port of its own.
pub struct ApiDaemon<'a> {
    pub guard: StopDaemon<'a>,
    /// The API's base URL.
    pub api: String,
    /// The bearer token.
    pub token: String,
}

/// Makes an identity for `h` and starts its daemon (stopped when the result is dropped).
pub fn start_api_daemon(h: &TestHome) -> ApiDaemon<'_> {
    let out = h.wopr().args(["id", "init"]).output().expect("wopr id init");
    assert!(out.status.success(), "id init: {}", stderr(&out));
    // A topic joined through the API never reaches the public DHT.
    let out = h.wopr().args(["config", "set", "discover.dht", "false"]).output().expect("wopr config set");
    assert!(out.status.success(), "config set: {}", stderr(&out));
    let out = h
        .wopr()
        .env("WOPR_P2P_BIND", "127.0.0.1:0")
        .env("WOPR_MODEL", test_model())
        .args(["daemon", "start"])
        .output()
        .expect("wopr daemon start");
    assert!(out.status.success(), "daemon start: {}", stderr(&out));
    let guard = StopDaemon(h);
    let out = h.wopr().args(["daemon", "status", "--json"]).output().expect("wopr daemon status");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("daemon status --json");
    let api = status["api"].as_str().expect("daemon status names the API's address").to_string();
    let token = std::fs::read_to_string(h.file("daemon-token")).expect("daemon-token").trim().to_string();
    ApiDaemon { guard, api, token }
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The model the suite runs on (`scripts/test` sets it). Fails, never skips, when missing.
pub fn test_model() -> PathBuf {
    let p = std::env::var_os("WOPR_TEST_MODEL")
        .map(PathBuf::from)
        .expect("WOPR_TEST_MODEL is not set: run the suite with scripts/test, which downloads the model");
    assert!(p.is_file(), "WOPR_TEST_MODEL={} does not exist", p.display());
    p
}
