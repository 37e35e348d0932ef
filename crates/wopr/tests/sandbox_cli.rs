//! `wopr sandbox exec|doctor`, `wopr security show` and the per-session sandbox switch, as a user runs them.

mod common;

use common::{TestHome, stderr, stdout};
use serde_json::Value;

fn exec(h: &TestHome, args: &[&str]) -> std::process::Output {
    let mut cmd = h.wopr();
    cmd.args(["sandbox", "exec", "--backend", "native", "--trust", "untrusted", "--"]).args(args);
    cmd.output().unwrap()
}

#[test]
fn exec_runs_a_command_under_the_untrusted_policy_and_passes_its_exit_code_on() {
    let h = TestHome::new();
    h.wopr().args(["id", "init"]).assert().success();
    let out = exec(&h, &["/bin/sh", "-c", "echo hi; id -u"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("hi\n"), "{text}");
    assert_ne!(text.lines().nth(1), Some("0"), "root inside the sandbox");

    let identity = h.file("identity.json");
    let out = exec(&h, &["/bin/cat", identity.to_str().unwrap()]);
    assert!(!out.status.success() && out.stdout.is_empty(), "identity.json was readable: {}", stdout(&out));
    let out = exec(&h, &["/bin/sh", "-c", "echo x > /etc/wopr-escape"]);
    assert!(!out.status.success());
    assert!(!std::path::Path::new("/etc/wopr-escape").exists());
    assert_eq!(exec(&h, &["/bin/sh", "-c", "exit 7"]).status.code(), Some(7));

    let out = h
        .wopr()
        .args([
            "sandbox",
            "exec",
            "--backend",
            "native",
            "--json",
            "--",
            "/bin/sh",
            "-c",
            "yes | head -c 5000000",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stdoutTruncated"], true, "{v}");
    assert!(v["stdout"].as_str().unwrap().len() <= 1024 * 1024 + 100);

    let bad = h.wopr().args(["sandbox", "exec", "--trust", "root", "--", "true"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));
}

#[test]
fn doctor_finds_every_native_property_holding_on_this_host() {
    let h = TestHome::new();
    let out = h.wopr().args(["sandbox", "doctor", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let native = v["backends"].as_array().unwrap().iter().find(|b| b["backend"] == "native").unwrap().clone();
    assert_eq!(native["available"], true, "{native}");
    for probe in native["probes"].as_array().unwrap() {
        assert_eq!(probe["verdict"], "ok", "{probe}");
    }
    let table = stdout(&h.wopr().args(["sandbox", "doctor"]).output().unwrap());
    assert!(table.contains("never root inside") && table.contains("native"), "{table}");
}

#[test]
fn security_show_gives_the_policy_per_session_and_source() {
    let h = TestHome::new();
    h.wopr().args(["id", "init"]).assert().success();
    h.wopr().args(["session", "create", "open", "ctx", "--sandbox", "off"]).assert().success();
    h.wopr().args(["session", "create", "boxed", "ctx"]).assert().success();
    let other = TestHome::new();
    other.wopr().args(["id", "init"]).assert().success();
    let id: Value =
        serde_json::from_slice(&other.wopr().args(["id", "--json"]).output().unwrap().stdout).unwrap();
    let peer = id["publicKey"].as_str().unwrap().trim_start_matches("wopr://").to_string();
    h.wopr().args(["access", "grant", &peer, "boxed", "--cap", "inject"]).assert().success();

    let v: Value =
        serde_json::from_slice(&h.wopr().args(["security", "show", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(v["sessions"]["open"]["sandbox"], "off");
    assert_eq!(v["sessions"]["boxed"]["sandbox"], "on");
    assert_eq!(v["sessions"]["boxed"]["access"][0], format!("p2p:{peer}"));
    let source = &v["sources"][format!("p2p:{peer}")];
    assert_eq!(source["trust"], "untrusted");
    assert_eq!(source["sandbox"], "always");
    assert_eq!(source["rateLimit"]["perMinute"], 30);
    assert_eq!(source["policy"]["network"], "none");
    assert_eq!(source["policy"]["limits"]["pids"], 100);
    assert_eq!(source["policy"]["limits"]["memoryBytes"], 512 * 1024 * 1024);
    assert_eq!(v["sources"]["cli"]["trust"], "owner");

    // Switching the owner's sandbox back on.
    h.wopr().args(["session", "set-sandbox", "open", "on"]).assert().success();
    let v: Value =
        serde_json::from_slice(&h.wopr().args(["security", "show", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(v["sessions"]["open"]["sandbox"], "on");
}
