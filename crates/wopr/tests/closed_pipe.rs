//! A reader that goes away (`wopr completions bash | head -1`) ends the command quietly, as the shell
//! expects (exit 141, 128 + SIGPIPE), never with a panic.

mod common;

use std::process::Stdio;

use common::TestHome;

#[test]
fn a_closed_stdout_ends_the_command_quietly_without_a_panic() {
    let home = TestHome::new();
    for args in [&["completions", "bash"][..], &["--help"][..]] {
        let mut child =
            home.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // The reader closes before anything is written: the first write meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {:?} {stderr}", out.status);
    }
}
