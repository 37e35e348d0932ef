//! Daemon files: `daemon.pid` (which process runs), `daemon.sock` (where it listens), `daemon.log`.

use std::path::PathBuf;

use nix::sys::signal;
use nix::unistd::Pid;
use wopr_store::Home;

/// `daemon.pid`.
pub fn pid_path(home: &Home) -> PathBuf {
    home.file("daemon.pid")
}

/// `daemon.sock`.
pub fn socket_path(home: &Home) -> PathBuf {
    home.file("daemon.sock")
}

/// `daemon.log`.
pub fn log_path(home: &Home) -> PathBuf {
    home.file("daemon.log")
}

/// The pid of a running daemon. A pid file whose process is gone is stale: it is removed, with the socket.
pub fn running_pid(home: &Home) -> Option<i32> {
    let path = pid_path(home);
    let text = std::fs::read_to_string(&path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if alive(pid) {
        Some(pid)
    } else {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(socket_path(home));
        None
    }
}

/// Whether a process with this pid exists (and is not a zombie we could reap).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 || signal::kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    // A zombie still answers kill(0); its /proc status says Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')) != Some(true))
        .unwrap_or(true)
}

/// Sends SIGTERM to the daemon.
pub fn terminate(pid: i32) -> bool {
    signal::kill(Pid::from_raw(pid), signal::Signal::SIGTERM).is_ok()
}
