//! Starting a real `llama-server` for tests against a real LLM.
//!
//! The binary and the model come from `WOPR_LLAMA_SERVER` and `WOPR_TEST_MODEL`, which `scripts/test`
//! sets after building llama-server and fetching the model. A test that needs them fails without them:
//! skipping would let a broken provider pass unnoticed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to load the model and answer `/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `llama-server`, killed on drop.
pub struct LlamaServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl LlamaServer {
    /// Starts `llama-server -m $WOPR_TEST_MODEL --host 127.0.0.1 --port <free> -c 2048 -t 1` and waits
    /// until `GET /health` answers 200.
    ///
    /// Blocks the calling thread (up to a minute); call it before starting async work. Panics if either
    /// environment variable is missing, or the server does not come up.
    pub fn start() -> Self {
        let binary = required_path("WOPR_LLAMA_SERVER", "the llama-server binary");
        let model = required_path("WOPR_TEST_MODEL", "the GGUF model");
        let port = free_port();
        let log = std::env::temp_dir().join(format!("wopr-llama-server-{}-{port}.log", std::process::id()));
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let log_err = log_file.try_clone().expect("cannot duplicate the log file handle");
        let child = Command::new(&binary)
            .arg("-m")
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-c", "2048", "-t", "1"])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = LlamaServer { child, port, log };
        server.wait_until_healthy();
        server
    }

    /// `http://127.0.0.1:<port>` (append `/v1` for the OpenAI API; the Anthropic API adds it itself).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("llama-server exited during startup ({status}):\n{}", self.log_tail());
            }
            if health_status(self.port) == Some(200) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "llama-server did not answer GET /health with 200 within {} s:\n{}",
                    STARTUP_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An existing file named by environment variable `var`, or a panic that says how to get one.
fn required_path(var: &str, what: &str) -> PathBuf {
    let value = std::env::var_os(var).filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{var} is not set: it must name {what}. Run the tests with `scripts/test`, which builds \
             llama-server, fetches the model and sets WOPR_LLAMA_SERVER and WOPR_TEST_MODEL"
        )
    });
    let path = PathBuf::from(value);
    assert!(
        Path::new(&path).is_file(),
        "{var}={} does not exist: run `scripts/test`, which builds and sets it",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
    listener.local_addr().expect("listener has no address").port()
}

/// The status of `GET /health`, or `None` while nothing answers.
fn health_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}
