//! CLI output pinned with snapshots (times, ids and temp paths are redacted).

mod common;

use common::{TestHome, stderr, stdout};

fn redact(h: &TestHome, text: &str) -> String {
    text.replace(&h.path().display().to_string(), "[HOME]")
}

fn run(h: &TestHome, args: &[&str]) -> String {
    let out = h.wopr().args(args).output().unwrap();
    let text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        stdout(&out),
        stderr(&out)
    );
    redact(h, &text)
}

macro_rules! snap {
    ($name:literal, $h:expr, $args:expr) => {{
        let text = run($h, $args);
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "[TIME]");
        settings.add_filter(r"[0-9a-f]{64}", "[KEY]");
        settings.add_filter(r"\b[0-9a-f]{8}\b", "[SHORT]");
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!($name, text));
    }};
}

#[test]
fn session_commands_output() {
    let h = TestHome::new();
    snap!("list_empty", &h, &["session", "list"]);
    snap!("create", &h, &["session", "create", "dev", "You are a senior developer. Be concise."]);
    h.wopr()
        .args(["session", "create", "friend:p2p:alice(abc123)", "Hi", "--provider", "local"])
        .assert()
        .success();
    h.wopr().args(["session", "log", "dev", "Context: User prefers Rust"]).assert().success();
    snap!("list", &h, &["session", "list"]);
    snap!("show", &h, &["session", "show", "dev"]);
    snap!("invalid_name", &h, &["session", "create", "../evil", "x"]);
    snap!("missing_session", &h, &["session", "inject", "nope", "hi"]);
    snap!(
        "set_provider",
        &h,
        &["session", "set-provider", "dev", "anthropic", "--model", "claude-sonnet-4-5"]
    );
}

#[test]
fn id_and_providers_output() {
    let h = TestHome::new();
    snap!("id_before_init", &h, &["id"]);
    snap!("id_init", &h, &["id", "init"]);
    snap!("id_init_again", &h, &["id", "init"]);
    snap!("providers_none", &h, &["providers"]);
}

#[test]
fn help_output() {
    let h = TestHome::new();
    snap!("help", &h, &["--help"]);
    snap!("session_help", &h, &["session", "--help"]);
}
