//! The web UI in a real browser: headless Chromium driven by playwright-core runs
//! `tests/ui/ui.test.mjs` against two real daemons (log in, chat on the local model, invite and claim,
//! revoke, every page screenshotted and checked with axe-core, a hostile origin refused). The browser
//! and the Node packages come from `scripts/test` (`WOPR_TEST_UI_TOOLS`); the test fails, never skips,
//! without them. Screenshots are kept in `target/ui-screenshots/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{StopDaemon, TestHome, start_api_daemon, stderr, stdout};
use serde_json::Value;

fn tools() -> PathBuf {
    let p = std::env::var_os("WOPR_TEST_UI_TOOLS").map(PathBuf::from).expect(
        "WOPR_TEST_UI_TOOLS is not set: run the suite with scripts/test, which installs Chromium and playwright-core",
    );
    assert!(p.join("node_modules/playwright-core").is_dir(), "no playwright-core in {}", p.display());
    p
}

struct Daemon<'a> {
    _guard: StopDaemon<'a>,
    api: String,
    link: String,
    token: String,
    key: String,
}

fn daemon(h: &TestHome) -> Daemon<'_> {
    let d = start_api_daemon(h);
    let id: Value =
        serde_json::from_slice(&h.wopr().args(["id", "--json"]).output().unwrap().stdout).unwrap();
    let out = h.wopr().arg("ui").output().unwrap();
    assert!(out.status.success(), "wopr ui: {}", stderr(&out));
    Daemon {
        _guard: d.guard,
        api: d.api,
        link: stdout(&out).trim().to_string(),
        token: d.token,
        key: id["publicKey"].as_str().unwrap().to_string(),
    }
}

#[test]
fn the_web_ui_works_end_to_end_in_chromium_and_another_origin_cannot_drive_it() {
    let tools = tools();
    let (ha, hb) = (TestHome::new(), TestHome::new());
    let (a, b) = (daemon(&ha), daemon(&hb));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/ui.test.mjs");
    let out = Command::new("node")
        .arg(&script)
        .env("WOPR_UI_TOOLS", &tools)
        .env("WOPR_A_LINK", &a.link)
        .env("WOPR_A_API", &a.api)
        .env("WOPR_A_TOKEN", &a.token)
        .env("WOPR_B_LINK", &b.link)
        .env("WOPR_B_KEY", &b.key)
        .env("WOPR_SHOTS", &shots)
        .output()
        .unwrap();
    assert!(out.status.success(), "browser test:\n{}\n{}", stdout(&out), stderr(&out));
    for page in [
        "sessions",
        "chat",
        "peers-invite",
        "peers-claimed",
        "peers-revoked",
        "audit",
        "providers",
        "sandbox",
        "identity",
        "config",
        "sessions-phone",
    ] {
        let png = shots.join(format!("{page}.png"));
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(bytes.starts_with(b"\x89PNG"), "no screenshot {}", png.display());
    }
    // The claim made B a peer of A, and the revoke took A's grant away again.
    let peers: Value =
        serde_json::from_slice(&hb.wopr().args(["peers", "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(peers[0]["publicKey"].as_str(), Some(ha_key(&ha).as_str()));
    let access: Value =
        serde_json::from_slice(&ha.wopr().args(["access", "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(access, Value::Array(vec![]), "the revoke left a grant");
}

fn ha_key(h: &TestHome) -> String {
    let id: Value =
        serde_json::from_slice(&h.wopr().args(["id", "--json"]).output().unwrap().stdout).unwrap();
    id["publicKey"].as_str().unwrap().to_string()
}
