//! `wopr sandbox doctor`: probes every sandbox property on this host, for each backend, by running small
//! attacks inside the sandbox (read a canary file, reach a listener on the host's loopback, fork past the
//! process limit, ...) and checking the outcome from outside.

mod fences;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde::Serialize;

use crate::{Backend, Command, DockerSandbox, NativeSandbox, Output, Policy, SANDBOX_ID, Sandbox, Trust};

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The property holds.
    Ok,
    /// The property does not hold: do not rely on this backend for it.
    Failed,
    /// This host cannot provide or check it (the detail says why).
    Unsupported,
}

/// One probed property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Probe {
    /// The property, in words.
    pub property: &'static str,
    /// Whether it holds.
    pub verdict: Verdict,
    /// What was observed.
    pub detail: String,
}

/// All probes of one backend.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackendReport {
    /// The backend.
    pub backend: Backend,
    /// Whether it can run commands at all here.
    pub available: bool,
    /// Why not, or a short description of the set-up.
    pub detail: String,
    /// The probes (empty when unavailable).
    pub probes: Vec<Probe>,
}

impl BackendReport {
    /// Available and no probe failed.
    pub fn usable(&self) -> bool {
        self.available && self.probes.iter().all(|p| p.verdict != Verdict::Failed)
    }
}

/// The doctor's report for every backend.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// One entry per backend, the default first.
    pub backends: Vec<BackendReport>,
}

impl Report {
    /// The backends that are available and passed every probe.
    pub fn usable(&self) -> Vec<Backend> {
        self.backends.iter().filter(|b| b.usable()).map(|b| b.backend).collect()
    }

    /// A plain-text table: backend, property, result, detail.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<[String; 4]> = vec![["BACKEND", "PROPERTY", "RESULT", "DETAIL"].map(String::from)];
        for b in &self.backends {
            let status = if b.usable() {
                "usable"
            } else if b.available {
                "failing"
            } else {
                "unavailable"
            };
            rows.push([b.backend.to_string(), "(backend)".into(), status.into(), b.detail.clone()]);
            for p in &b.probes {
                let v = serde_json::to_value(p.verdict).ok().and_then(|v| v.as_str().map(String::from));
                rows.push([
                    b.backend.to_string(),
                    p.property.into(),
                    v.unwrap_or_default(),
                    p.detail.clone(),
                ]);
            }
        }
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        let mut out = String::new();
        for r in rows {
            out.push_str(
                &format!("{:w0$}  {:w1$}  {:w2$}  {}\n", r[0], r[1], r[2], r[3]).replace(" \n", "\n"),
            );
        }
        out
    }
}

/// Probes both backends with their default settings (Docker through `DOCKER_HOST`).
pub fn run() -> Report {
    let native = match NativeSandbox::new() {
        Ok(n) => {
            let detail = format!(
                "limits: {}; landlock: {}",
                n.cgroups().map_or_else(
                    || "rlimits only (no writable cgroup): memory and processes are bounded per process"
                        .into(),
                    |c| format!("{c}, bounding the whole sandbox")
                ),
                n.landlock_abi().map_or("not in this kernel".into(), |v| format!("ABI {v}"))
            );
            probe_backend(Backend::Native, &n, detail)
        }
        Err(e) => unavailable(Backend::Native, e.to_string()),
    };
    Report { backends: vec![native, probe_docker(&DockerSandbox::new())] }
}

/// Probes one Docker set-up (its daemon and image).
pub fn probe_docker(docker: &DockerSandbox) -> BackendReport {
    match docker.image_exists() {
        Ok(true) => probe_backend(Backend::Docker, docker, format!("image {}", docker.image())),
        Ok(false) => unavailable(
            Backend::Docker,
            format!("image {} missing: run `wopr sandbox build-image`", docker.image()),
        ),
        Err(e) => unavailable(Backend::Docker, e.to_string()),
    }
}

fn unavailable(backend: Backend, detail: String) -> BackendReport {
    BackendReport { backend, available: false, detail, probes: Vec::new() }
}

/// Runs every probe against `sb`.
pub fn probe_backend(backend: Backend, sb: &dyn Sandbox, detail: String) -> BackendReport {
    let Ok(scratch) = tempfile::tempdir() else {
        return unavailable(backend, "cannot create a temporary directory".into());
    };
    let policy = Policy::for_trust(Trust::Untrusted, scratch.path().join("workspace"));
    let run = |p: &Policy, script: &str| sb.run(p, &Command::shell(script));
    match run(&policy, "echo ready") {
        Ok(o) if o.stdout_text() == "ready\n" => {}
        Ok(o) => {
            return unavailable(backend, format!("a trivial command failed: {}", o.stderr_text().trim()));
        }
        Err(e) => return unavailable(backend, e.to_string()),
    }
    let mut probes = Vec::new();
    let mut add = |property, verdict, detail: String| probes.push(Probe { property, verdict, detail });
    let check = |ok: bool| if ok { Verdict::Ok } else { Verdict::Failed };
    let err = |e: crate::SandboxError| (Verdict::Failed, format!("could not run the probe: {e}"));
    let busybox = backend == Backend::Docker
        || ["/bin/busybox", "/usr/bin/busybox"].iter().any(|p| std::path::Path::new(p).exists());
    let no_busybox = || (Verdict::Unsupported, "install busybox-static to run this probe".to_string());

    let (v, d) = match run(&policy, "id -u") {
        Ok(o) => {
            let uid = o.stdout_text().trim().to_string();
            (check(uid != "0" && !uid.is_empty()), format!("uid {uid} (sandbox id {SANDBOX_ID})"))
        }
        Err(e) => err(e),
    };
    add("never root inside", v, d);

    let (v, d) = secret_probe(sb, &policy, scratch.path());
    add("host secrets unreadable", v, d);

    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let (v, d) = match run(&policy, &format!("ls -A {home} 2>/dev/null | head -3")) {
        Ok(o) => (
            check(o.stdout.is_empty()),
            format!("{home} {}", if o.stdout.is_empty() { "not visible" } else { "is listed" }),
        ),
        Err(e) => err(e),
    };
    add("host home hidden", v, d);

    let (v, d) = match run(
        &policy,
        "echo x > /probe || echo x > /etc/probe || echo x > /usr/probe; echo x > probe && echo ws-ok",
    ) {
        Ok(o) => {
            let on_host = scratch.path().join("workspace/probe").exists();
            (
                check(!o.stdout_text().contains("x") && o.stdout_text().contains("ws-ok") && on_host),
                format!(
                    "/, /etc, /usr read-only; workspace {}",
                    if on_host { "writable" } else { "NOT writable" }
                ),
            )
        }
        Err(e) => err(e),
    };
    add("read-only root, writable workspace", v, d);

    let (v, d) = if busybox { network_probe(sb, &policy) } else { no_busybox() };
    add("no network", v, d);

    let (v, d) = match run(&policy, "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status") {
        Ok(o) => {
            let s = o.stdout_text();
            let caps = s.contains("CapEff:\t0000000000000000");
            let nnp = s.contains("NoNewPrivs:\t1");
            let seccomp = s.contains("Seccomp:\t2");
            (
                check(caps && nnp && seccomp),
                format!("no capabilities: {caps}, no_new_privs: {nnp}, seccomp filter: {seccomp}"),
            )
        }
        Err(e) => err(e),
    };
    add("capabilities dropped, no_new_privs, seccomp", v, d);

    let (v, d) = if busybox {
        match run(
            &policy,
            "busybox mount -t tmpfs none /tmp 2>&1; echo m=$?; busybox unshare -r -n true 2>&1; echo u=$?",
        ) {
            Ok(o) => {
                let s = o.stdout_text();
                (check(!s.contains("m=0") && !s.contains("u=0")), "mount and unshare refused".into())
            }
            Err(e) => err(e),
        }
    } else {
        no_busybox()
    };
    add("mount and new namespaces denied", v, d);

    let (v, d) = match run(&policy, "set -- /proc/[0-9]*; echo $#") {
        Ok(o) => {
            let n: u32 = o.stdout_text().trim().parse().unwrap_or(u32::MAX);
            (check(n < 10), format!("{n} processes visible"))
        }
        Err(e) => err(e),
    };
    add("host processes invisible", v, d);

    let (v, d) = if busybox {
        let script = "seq 150 | busybox xargs -n1 -P150 sleep 3 2>/dev/null & i=0; \
                      while [ $i -lt 200000 ]; do i=$((i+1)); done; set -- /proc/[0-9]*; echo $#";
        match run(&policy, script) {
            Ok(o) => {
                let n: u32 = o.stdout_text().trim().parse().unwrap_or(u32::MAX);
                (
                    check(n <= policy.limits.pids),
                    format!("{n} of 150 processes started (limit {})", policy.limits.pids),
                )
            }
            Err(e) => err(e),
        }
    } else {
        no_busybox()
    };
    add("process limit", v, d);

    let (v, d) = if busybox { fences::whole_memory(sb, &policy) } else { no_busybox() };
    add("memory bounded for the whole sandbox", v, d);

    if backend == Backend::Native {
        let (v, d) = fences::landlock(sb, &policy);
        add("Landlock fence", v, d);
    }

    let short = policy.clone().with_timeout(Duration::from_secs(5));
    let (v, d) = match run(&short, "x=aaaaaaaaaaaaaaaa; while :; do x=\"$x$x\"; done") {
        Ok(o) => (
            check(!o.timed_out && !o.success()),
            format!("memory bomb ended with {:?} after {:?}", o.status, o.duration),
        ),
        Err(e) => err(e),
    };
    add("memory limit", v, d);

    let spin = policy.clone().with_timeout(Duration::from_millis(500));
    let (v, d) = match run(&spin, "while :; do :; done") {
        Ok(o) => (
            check(o.timed_out && o.duration < Duration::from_secs(3)),
            format!("CPU spin killed after {:?}", o.duration),
        ),
        Err(e) => err(e),
    };
    add("wall-clock timeout", v, d);

    let mut capped = policy.clone();
    capped.limits.output_bytes = 16 * 1024;
    let (v, d) = match run(&capped, "yes") {
        Ok(o) => (
            check(o.stdout_truncated && o.stdout.len() < 32 * 1024),
            format!("flood cut at {} bytes", o.stdout.len()),
        ),
        Err(e) => err(e),
    };
    add("output cap", v, d);

    BackendReport { backend, available: true, detail, probes }
}

fn secret_probe(sb: &dyn Sandbox, policy: &Policy, scratch: &std::path::Path) -> (Verdict, String) {
    let home = scratch.join("wopr-home");
    let identity = home.join("identity.json");
    let written = std::fs::create_dir(&home)
        .and_then(|_| std::fs::File::create(&identity))
        .and_then(|mut f| f.write_all(b"CANARY-SECRET"))
        .and_then(|_| std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)));
    if let Err(e) = written {
        return (Verdict::Unsupported, format!("cannot write the canary: {e}"));
    }
    match sb.run(policy, &Command::shell(format!("cat {0} /proc/1/root{0}", identity.display()))) {
        Ok(o) => {
            let leaked = o.stdout_text().contains("CANARY");
            (
                if leaked { Verdict::Failed } else { Verdict::Ok },
                format!(
                    "a 0600 identity.json on the host was {}",
                    if leaked { "READ" } else { "not readable" }
                ),
            )
        }
        Err(e) => (Verdict::Failed, format!("could not run the probe: {e}")),
    }
}

fn network_probe(sb: &dyn Sandbox, policy: &Policy) -> (Verdict, String) {
    let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
        return (Verdict::Unsupported, "cannot listen on the host's loopback".into());
    };
    let _ = listener.set_nonblocking(true);
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let out: Result<Output, _> =
        sb.run(policy, &Command::shell(format!("echo x | busybox nc -w 1 127.0.0.1 {port}; echo rc=$?")));
    match out {
        Ok(o) => {
            let reached = listener.accept().is_ok() || o.stdout_text().contains("rc=0");
            (
                if reached { Verdict::Failed } else { Verdict::Ok },
                format!("host loopback listener {}", if reached { "REACHED" } else { "unreachable" }),
            )
        }
        Err(e) => (Verdict::Failed, format!("could not run the probe: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_probe_and_marks_unusable_backends() {
        let report = Report {
            backends: vec![
                BackendReport {
                    backend: Backend::Native,
                    available: true,
                    detail: "d".into(),
                    probes: vec![Probe {
                        property: "no network",
                        verdict: Verdict::Failed,
                        detail: "REACHED".into(),
                    }],
                },
                unavailable(Backend::Docker, "no daemon".into()),
            ],
        };
        let table = report.to_table();
        assert!(table.contains("native   no network  failed"), "{table}");
        assert!(table.contains("docker   (backend)   unavailable  no daemon"), "{table}");
        assert!(report.usable().is_empty());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["backends"][0]["probes"][0]["verdict"], "failed");
    }
}
