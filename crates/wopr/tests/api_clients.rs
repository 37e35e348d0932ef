//! Real clients against a real daemon: the official `openai` SDK streams a chat completion from a
//! session on the local model, the official `a2a-sdk` verifies the agent card's signature and streams
//! a `SendStreamingMessage` reply, and `schemathesis` fuzzes every route from `/openapi.json` (no 5xx, every
//! answer matching its schema). The clients live in the virtualenv `scripts/test` makes
//! (`WOPR_TEST_PYTHON`); the test fails, never skips, without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{StopDaemon, TestHome, start_api_daemon, stderr, stdout};
use serde_json::Value;

fn python() -> PathBuf {
    let p = std::env::var_os("WOPR_TEST_PYTHON").map(PathBuf::from).expect(
        "WOPR_TEST_PYTHON is not set: run the suite with scripts/test, which installs the API's test clients",
    );
    assert!(p.is_file(), "WOPR_TEST_PYTHON={} does not exist", p.display());
    p
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn start(h: &TestHome) -> (StopDaemon<'_>, String, String) {
    let d = start_api_daemon(h);
    let out = h.wopr().args(["session", "create", "s", "You are terse."]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (d.guard, d.api, d.token)
}

#[test]
fn the_openai_and_a2a_sdks_stream_from_a_session_and_schemathesis_finds_no_fault() {
    let py = python();
    let h = TestHome::new();
    let (_d, api, token) = start(&h);
    let out = Command::new(&py)
        .arg(clients_dir().join("openai_stream.py"))
        .env("WOPR_API", &api)
        .env("WOPR_TOKEN", &token)
        .env("WOPR_SESSION", "s")
        .output()
        .unwrap();
    assert!(out.status.success(), "openai SDK:\n{}\n{}", stdout(&out), stderr(&out));
    let out = h.wopr().args(["id", "--json"]).output().unwrap();
    let id: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = Command::new(&py)
        .arg(clients_dir().join("a2a_stream.py"))
        .env("WOPR_API", &api)
        .env("WOPR_TOKEN", &token)
        .env("WOPR_SESSION", "s")
        .env("WOPR_PUBLIC_KEY", id["publicKey"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "a2a-sdk:\n{}\n{}", stdout(&out), stderr(&out));

    // Every route but the model download (98 MB from PyPI), with the checks' defaults (all of them);
    // the routes that run a turn or restart the endpoint get fewer examples.
    let schemathesis = |extra: &[&str]| {
        let mut cmd = Command::new(&py);
        cmd.args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
            .arg(clients_dir().join("schemathesis.toml"))
            .args(["run", &format!("{api}/openapi.json"), "-H", &format!("Authorization: Bearer {token}")])
            .args(["--workers", "1", "--seed", "1"])
            .args(extra)
            .current_dir(h.dir.path())
            .output()
            .unwrap()
    };
    let out = schemathesis(&[
        "--exclude-path-regex",
        "(inject|completions|pull|rotate|generate)",
        "--max-examples",
        "30",
    ]);
    assert!(out.status.success(), "schemathesis:\n{}\n{}", stdout(&out), stderr(&out));
    let out = schemathesis(&[
        "--include-path-regex",
        "(inject|completions|rotate|generate)",
        "--max-examples",
        "4",
    ]);
    assert!(out.status.success(), "schemathesis (turns, rotation):\n{}\n{}", stdout(&out), stderr(&out));
}
