//! A tool call whose future is dropped (its turn was cancelled, its peer went away or was revoked, which
//! closes the connection and drops the turn) kills its whole sandbox at once, grandchildren included,
//! instead of leaving it to run to its time limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wopr_agent::{Toolbox, WorkspaceTools};
use wopr_providers::ToolCall;
use wopr_sandbox::{NativeSandbox, Policy, Trust};

/// Host pids of the processes whose command line is exactly `argv`.
fn host_pids_of(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Polls `ready` until it holds; the deadline only stops a broken build from hanging.
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_tool_call_kills_its_sandbox_and_every_process_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy =
        Policy::for_trust(Trust::Untrusted, dir.path().join("ws")).with_timeout(Duration::from_secs(150));
    let sandbox = NativeSandbox::new().expect("the native sandbox works on this host");
    let tools = WorkspaceTools::sandboxed(Arc::new(sandbox), policy);
    let marker = format!("{}", 800_000 + std::process::id() % 90_000);
    // sh runs a subshell that runs sleep: the sleep is a grandchild of the sandbox's first process.
    let script = format!("(sleep {marker}; true) & wait");
    let call = ToolCall { id: "c1".into(), name: "shell".into(), arguments: json!({"command": script}) };
    let sleeper = ["sleep", marker.as_str()];

    let running = tools.run(&call);
    tokio::select! {
        ended = running => panic!("the call ended by itself: {ended:?}"),
        () = until("the grandchild sleep", || !host_pids_of(&sleeper).is_empty()) => {}
    }
    // `select!` dropped the call's future when the sleep appeared.
    until("the sandbox run to end", || wopr_sandbox::run_slots().running == 0).await;
    assert!(host_pids_of(&sleeper).is_empty(), "the grandchild outlived the dropped call");
}
