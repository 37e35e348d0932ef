//! `wopr session inject` against real models: the embedded engine, and llama-server through the OpenAI and
//! Anthropic providers. Also: an inject killed with SIGKILL mid-answer leaves a readable store.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestHome, stderr, stdout, test_model};

fn history(h: &TestHome, session: &str) -> Vec<serde_json::Value> {
    let out = h.wopr().args(["session", "show", session, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["messages"].as_array().unwrap().clone()
}

#[test]
fn inject_streams_an_answer_from_the_embedded_model_and_stores_both_sides() {
    let h = TestHome::new();
    h.wopr().args(["session", "create", "s1", "You are a terse assistant."]).assert().success();
    let out = h
        .wopr()
        .env("WOPR_MODEL", test_model())
        .env("WOPR_THREADS", "1")
        .args(["session", "inject", "s1", "Say hello in one short sentence."])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = stdout(&out);
    assert!(!answer.trim().is_empty());
    let msgs = history(&h, "s1");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["content"], "Say hello in one short sentence.");
    assert_eq!(msgs[0]["status"], "ok");
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["meta"]["provider"], "local");
    assert_eq!(msgs[1]["content"].as_str().unwrap().trim(), answer.trim());

    // A second turn reads the message from standard input and sees the history.
    let out = h
        .wopr()
        .env("WOPR_MODEL", test_model())
        .env("WOPR_THREADS", "1")
        .args(["session", "inject", "s1", "-", "--json"])
        .write_stdin("And goodbye?\n")
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["provider"], "local");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 20, "history was not sent: {v}");
    assert_eq!(history(&h, "s1").len(), 4);
}

#[test]
fn openai_and_anthropic_providers_answer_from_llama_server() {
    let server = test_support::LlamaServer::start();
    let h = TestHome::new();
    h.wopr().args(["session", "create", "so", "Be brief.", "--provider", "openai"]).assert().success();
    h.wopr().args(["session", "create", "sa", "Be brief.", "--provider", "anthropic"]).assert().success();
    let out = h
        .wopr()
        .env("OPENAI_API_KEY", "test")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.base_url()))
        .args(["session", "inject", "so", "Say hi."])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());
    let out = h
        .wopr()
        .env("ANTHROPIC_API_KEY", "test")
        .env("ANTHROPIC_BASE_URL", server.base_url())
        .args(["session", "inject", "sa", "Say hi."])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());
    assert_eq!(history(&h, "sa")[1]["meta"]["provider"], "anthropic");
}

/// An OpenAI-compatible server that streams two deltas and then hangs without finishing.
fn stalling_server() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 65536];
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        conn.write_all(head.as_bytes()).unwrap();
        for text in ["partial ", "answer"] {
            let event = format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
            );
            conn.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes()).unwrap();
            conn.flush().unwrap();
        }
        // Hold the connection open until the client dies.
        let _ = conn.read(&mut buf);
    });
    (url, handle)
}

#[test]
fn sigkill_in_the_middle_of_an_inject_leaves_a_readable_store() {
    let h = TestHome::new();
    h.wopr().args(["session", "create", "s", "ctx", "--provider", "openai-compatible"]).assert().success();
    h.wopr().args(["session", "log", "s", "before"]).assert().success();
    let (url, server) = stalling_server();
    let bin = assert_cmd::cargo::cargo_bin("wopr");
    let mut child = std::process::Command::new(bin)
        .env("WOPR_HOME", h.path())
        .env("OPENAI_COMPATIBLE_BASE_URL", &url)
        .env("OPENAI_COMPATIBLE_MODEL", "m")
        .args(["session", "inject", "s", "doomed question"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the answer is visibly streaming, then kill -9.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("partial") {
        assert!(Instant::now() < deadline, "no streamed text");
        let buf = reader.fill_buf().unwrap();
        got.extend_from_slice(buf);
        let n = buf.len();
        reader.consume(n);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    server.join().unwrap();

    let msgs = history(&h, "s");
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[1]["content"], "doomed question");
    assert_eq!(msgs[1]["status"], "pending");
    let text = stdout(&h.wopr().args(["session", "show", "s"]).output().unwrap());
    assert!(text.contains("interrupted"), "{text}");
    h.wopr().args(["session", "list"]).assert().success();
    h.wopr().args(["session", "log", "s", "after"]).assert().success();
    assert_eq!(history(&h, "s").len(), 3);
}

#[test]
fn killed_writers_never_leave_a_corrupt_json_document() {
    let h = TestHome::new();
    h.wopr().args(["config", "set", "seed", "0"]).assert().success();
    let bin = assert_cmd::cargo::cargo_bin("wopr");
    for round in 0..10u64 {
        let mut kids: Vec<_> = (0..6)
            .map(|i| {
                std::process::Command::new(&bin)
                    .env("WOPR_HOME", h.path())
                    .args(["config", "set", &format!("k.r{round}w{i}"), &"x".repeat(50_000)])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(round * 2));
        for k in &mut kids {
            let _ = k.kill();
        }
        for mut k in kids {
            let _ = k.wait();
        }
        let text = std::fs::read_to_string(h.file("config.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).expect("config.json stays valid JSON");
        assert_eq!(v["seed"], 0);
    }
    h.wopr().args(["config", "list"]).assert().success();
}
