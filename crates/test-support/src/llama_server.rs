//! Starting a real `llama-server` for tests against a real LLM.
//!
//! The binary and the model come from `WOPR_LLAMA_SERVER` and `WOPR_TEST_MODEL`, which `scripts/test`
//! sets after building llama-server and fetching the model. A test that needs them fails without them:
//! skipping would let a broken provider pass unnoticed.
//!
//! A server that dies, while starting or while a test uses it, fails that test with what is needed to
//! tell a bad build from a bad test: how it died (the signal, e.g. SIGSEGV or SIGILL), the instruction
//! sets it was built for (the `build-flags` file `scripts/lib.sh` writes next to the binary) and the end
//! of its log.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to load the model and answer `/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of the server's log quoted in a failure.
const LOG_TAIL_LINES: usize = 30;

/// A running `llama-server`, killed on drop. If it died on its own before that, dropping it panics (or,
/// when the test is already panicking, prints) with the diagnosis.
pub struct LlamaServer {
    child: Child,
    port: u16,
    log: PathBuf,
    binary: PathBuf,
    /// Set once a failure has been reported, so dropping does not report it again.
    reported: bool,
}

impl LlamaServer {
    /// Starts `llama-server -m $WOPR_TEST_MODEL --host 127.0.0.1 --port <free> -c 2048 -t 1` and waits
    /// until `GET /health` answers 200.
    ///
    /// Blocks the calling thread (up to a minute); call it before starting async work. Panics if either
    /// environment variable is missing, or the server does not come up.
    pub fn start() -> Self {
        Self::start_with_threads(1)
    }

    /// [`LlamaServer::start`] with `-t threads` (benchmarks compare engines at equal thread counts).
    pub fn start_with_threads(threads: u32) -> Self {
        let binary = required_path("WOPR_LLAMA_SERVER", "the llama-server binary");
        let model = required_path("WOPR_TEST_MODEL", "the GGUF model");
        Self::launch(&binary, &model, threads)
    }

    fn launch(binary: &Path, model: &Path, threads: u32) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("wopr-llama-server-{}-{port}.log", std::process::id()));
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let log_err = log_file.try_clone().expect("cannot duplicate the log file handle");
        let child = Command::new(binary)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-c", "2048"])
            .args(["-t", &threads.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = LlamaServer { child, port, log, binary: binary.to_path_buf(), reported: false };
        server.wait_until_healthy();
        server
    }

    /// `http://127.0.0.1:<port>` (append `/v1` for the OpenAI API; the Anthropic API adds it itself).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reported = true;
                panic!("{}", self.diagnosis("died while starting", status));
            }
            if health_status(self.port) == Some(200) {
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.reported = true;
                panic!(
                    "llama-server did not answer GET /health with 200 within {} s\n{}",
                    STARTUP_TIMEOUT.as_secs(),
                    self.build_and_log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How the server ended, what it was built for, and the end of its log.
    fn diagnosis(&self, when: &str, status: ExitStatus) -> String {
        let hint = match status.signal() {
            Some(libc::SIGILL) => {
                " (an instruction this CPU lacks: compare the build flags below with the flags line of \
                 /proc/cpuinfo)"
            }
            Some(libc::SIGSEGV | libc::SIGBUS) => {
                " (a crash: a build for the native CPU, -DGGML_NATIVE=ON, segfaults on CPUs with AMX; \
                 scripts/lib.sh builds it for fixed instruction sets)"
            }
            _ => "",
        };
        format!("llama-server {when}: {status}{hint}\n{}", self.build_and_log())
    }

    fn build_and_log(&self) -> String {
        format!(
            "binary: {}\nbuild flags: {}\nlast {LOG_TAIL_LINES} lines of its output:\n{}",
            self.binary.display(),
            build_flags(&self.binary),
            self.log_tail()
        )
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        if self.reported {
            let _ = std::fs::remove_file(&self.log);
            return;
        }
        // Still running is the normal case: then our SIGKILL is what ends it. Any other end means it
        // died by itself while the test used it, which must not pass for a test failure of its own.
        let exited = match self.child.try_wait() {
            Ok(Some(status)) => Some(status),
            _ => {
                let _ = self.child.kill();
                self.child.wait().ok().filter(|status| status.signal() != Some(libc::SIGKILL))
            }
        };
        let diagnosis = exited.map(|status| self.diagnosis("died while serving", status));
        let _ = std::fs::remove_file(&self.log);
        let Some(diagnosis) = diagnosis else { return };
        if std::thread::panicking() {
            // A second panic would abort the test binary; the test's own failure is already reported.
            eprintln!("{diagnosis}");
        } else {
            panic!("{diagnosis}");
        }
    }
}

/// The flags `scripts/lib.sh` built `binary` with, from the `build-flags` file next to it, on one line.
fn build_flags(binary: &Path) -> String {
    let file = binary.with_file_name("build-flags");
    match std::fs::read_to_string(&file) {
        Ok(text) => text.split_whitespace().collect::<Vec<_>>().join(" "),
        Err(e) => format!(
            "unknown ({}: {e}; scripts/lib.sh's build_llama_server writes it next to the binary)",
            file.display()
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Writes an executable `llama-server` script and a `build-flags` file into `dir`.
    fn fake_server(dir: &Path, script: &str) -> PathBuf {
        let binary = dir.join("llama-server");
        std::fs::write(&binary, script).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("build-flags"), "-DGGML_NATIVE=OFF\n-DGGML_AVX2=ON\n").unwrap();
        binary
    }

    fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn a_server_that_crashes_at_startup_is_reported_with_its_signal_build_flags_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_server(
            dir.path(),
            "#!/bin/sh\nulimit -c 0\necho 'fake llama-server: starting the thread pool'\nkill -SEGV $$\n",
        );
        let model = dir.path().join("model.gguf");
        std::fs::write(&model, "GGUF").unwrap();
        let caught = std::panic::catch_unwind(|| LlamaServer::launch(&binary, &model, 1));
        let message = panic_message(caught.err().expect("a crashing server must fail the launch"));
        assert!(message.contains("SIGSEGV"), "no signal name in: {message}");
        assert!(message.contains("-DGGML_NATIVE=OFF -DGGML_AVX2=ON"), "no build flags in: {message}");
        assert!(message.contains("starting the thread pool"), "no log tail in: {message}");
    }

    /// Answers `GET /health` with 200, and kills itself with SIGSEGV on any other request.
    const CRASH_ON_REQUEST: &str = r#"#!/usr/bin/env python3
import os, resource, signal, socket, sys
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
port = int(sys.argv[sys.argv.index("--port") + 1])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen()
print("fake llama-server: listening", flush=True)
while True:
    conn, _ = listener.accept()
    if conn.recv(4096).startswith(b"GET /health"):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.close()
    else:
        print("fake llama-server: crashing in the middle of a request", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
"#;

    #[test]
    fn a_server_that_crashes_while_serving_fails_the_test_with_its_signal_build_flags_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let binary = fake_server(dir.path(), CRASH_ON_REQUEST);
        let model = dir.path().join("model.gguf");
        std::fs::write(&model, "GGUF").unwrap();
        let server = LlamaServer::launch(&binary, &model, 1);
        // A request makes it crash; the connection closes when the process is gone.
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream.write_all(b"POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        assert!(rest.is_empty(), "the fake server answered: {rest:?}");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(server)));
        let message = panic_message(caught.expect_err("a server that died while serving must fail the test"));
        assert!(message.contains("SIGSEGV"), "no signal name in: {message}");
        assert!(message.contains("-DGGML_NATIVE=OFF -DGGML_AVX2=ON"), "no build flags in: {message}");
        assert!(message.contains("crashing in the middle of a request"), "no log tail in: {message}");
    }
}
