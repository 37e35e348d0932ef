//! A private Docker daemon for tests: installs `docker.io` (and `busybox-static`, for the sandbox image)
//! from the distribution when missing, then starts `dockerd` with its own data root, exec root, pid file
//! and unix socket, without networking set-up (`--bridge=none --iptables=false ...`). It never touches a
//! system daemon, and dies with the test process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running private `dockerd`. Point the Docker CLI at it with [`Dockerd::host`] (as `DOCKER_HOST`).
#[derive(Debug)]
pub struct Dockerd {
    dir: PathBuf,
    pid: u32,
}

impl Dockerd {
    /// The daemon shared by all tests of this process, started on first use. Panics with the daemon's log
    /// when it cannot be started: Docker tests never skip.
    pub fn shared() -> &'static Dockerd {
        static DAEMON: OnceLock<Dockerd> = OnceLock::new();
        DAEMON.get_or_init(Dockerd::start)
    }

    /// `unix:///.../docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A `docker` command talking to this daemon.
    pub fn cli(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host());
        c
    }

    fn start() -> Dockerd {
        ensure_packages(&[("dockerd", "docker.io"), ("busybox", "busybox-static")]);
        if !Path::new("/bin/busybox").exists() && !Path::new("/usr/bin/busybox").exists() {
            ensure_packages(&[("busybox", "busybox-static")]);
        }
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("wopr-dockerd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the dockerd directory");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("creating the dockerd log");
        let args: Vec<String> = vec![
            format!("--data-root={}", dir.join("data").display()),
            format!("--exec-root={}", dir.join("exec").display()),
            format!("--pidfile={}", dir.join("docker.pid").display()),
            format!("--host=unix://{}", dir.join("docker.sock").display()),
            "--bridge=none".into(),
            "--iptables=false".into(),
            "--ip-forward=false".into(),
            "--ip-masq=false".into(),
        ];
        // Spawned from a thread that lives as long as the process, so the parent-death signal fires only
        // when the test process exits.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let child = spawn_dying_with_parent(
                Command::new("dockerd").args(&args).stdout(log.try_clone().expect("log")).stderr(log),
            );
            let _ = tx.send(child.map(|c| c.id()));
            loop {
                std::thread::park();
            }
        });
        let pid = match rx.recv().expect("dockerd launcher thread") {
            Ok(pid) => pid,
            Err(e) => panic!("cannot start dockerd: {e}"),
        };
        let daemon = Dockerd { dir, pid };
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = daemon
                .cli()
                .args(["version", "--format", "{{.Server.Version}}"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ok.is_ok_and(|s| s.success()) {
                return daemon;
            }
            if Instant::now() > until || !Path::new(&format!("/proc/{pid}")).exists() {
                let log = std::fs::read_to_string(daemon.dir.join("dockerd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "dockerd did not come up (Docker tests need it; run as root with docker.io installed). \
                     Last log lines:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Removes the directories of daemons whose test process is gone (their daemon died with it).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("wopr-dockerd-")
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[allow(unsafe_code)]
fn spawn_dying_with_parent(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
}

/// Installs the Debian packages whose program is not on `PATH` (needs root or sudo). Panics when it fails.
pub fn ensure_packages(wanted: &[(&str, &str)]) {
    let on_path = |prog: &str| {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).exists()))
            || Path::new("/usr/sbin").join(prog).exists()
            || Path::new("/bin").join(prog).exists()
    };
    let missing: Vec<&str> = wanted.iter().filter(|(prog, _)| !on_path(prog)).map(|(_, pkg)| *pkg).collect();
    if missing.is_empty() {
        return;
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "S=; [ \"$(id -u)\" -ne 0 ] && S=sudo; $S apt-get update -q >/dev/null && \
             DEBIAN_FRONTEND=noninteractive $S apt-get install -y -q {} >/dev/null",
            missing.join(" ")
        ))
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "installing {missing:?} with apt-get failed: the tests that use them cannot run"
    );
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}
