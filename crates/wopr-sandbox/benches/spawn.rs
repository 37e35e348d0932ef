//! Sandbox spawn latency of a trivial command (`/bin/true`) with every limit on, in one run: native
//! against `docker run` of the same command (and against `bwrap` when installed), printed as ratios.
//! Docker runs on a private daemon (test-support's `Dockerd`) unless `DOCKER_HOST` is set.
//!
//! `cargo bench -p wopr-sandbox --bench spawn` (set `SPAWN_RUNS` to change the number of runs).

use std::time::{Duration, Instant};

use wopr_sandbox::{Command, DockerSandbox, NativeSandbox, Policy, Sandbox, Trust};

fn percentiles(mut t: Vec<Duration>) -> (f64, f64) {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(t[t.len() / 2]), ms(t[(t.len() * 99 / 100).min(t.len() - 1)]))
}

fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm-up
    percentiles(
        (0..runs)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let runs: usize = std::env::var("SPAWN_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = Policy::for_trust(Trust::Untrusted, dir.path().join("workspace"));
    let cmd = Command::new(["/bin/true"]);

    let native = NativeSandbox::new().expect("native sandbox");
    println!(
        "native: cgroups {}, landlock ABI {}",
        native.cgroups().unwrap_or_else(|| "none (rlimits only)".into()),
        native.landlock_abi().map_or("none".into(), |v| v.to_string())
    );
    let (n50, n99) = time(runs, || assert!(native.run(&policy, &cmd).expect("native run").success()));
    println!("native  /bin/true  p50 {n50:7.2} ms  p99 {n99:7.2} ms  ({runs} runs)");

    let docker = match std::env::var("DOCKER_HOST") {
        Ok(_) => DockerSandbox::new(),
        Err(_) => DockerSandbox::new().with_host(test_support::Dockerd::shared().host()),
    };
    docker.build_image(&mut |_| {}).expect("building the docker image");
    let druns = (runs / 4).max(10);
    let (d50, d99) = time(druns, || assert!(docker.run(&policy, &cmd).expect("docker run").success()));
    println!("docker  /bin/true  p50 {d50:7.2} ms  p99 {d99:7.2} ms  ({druns} runs)");
    println!("ratio   docker/native p50 {:.1}x", d50 / n50);

    let bwrap =
        std::process::Command::new("bwrap").arg("--version").output().is_ok_and(|o| o.status.success());
    if bwrap {
        let (b50, b99) = time(runs, || {
            let ok = std::process::Command::new("bwrap")
                .args(["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"])
                .args([
                    "--ro-bind",
                    "/usr",
                    "/usr",
                    "--symlink",
                    "usr/bin",
                    "/bin",
                    "--symlink",
                    "usr/lib",
                    "/lib",
                ])
                .args([
                    "--symlink",
                    "usr/lib64",
                    "/lib64",
                    "--proc",
                    "/proc",
                    "--dev",
                    "/dev",
                    "--tmpfs",
                    "/tmp",
                ])
                .args(["/bin/true"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "bwrap failed");
        });
        println!("bwrap   /bin/true  p50 {b50:7.2} ms  p99 {b99:7.2} ms  ({runs} runs)");
        println!("ratio   bwrap/native p50 {:.2}x", b50 / n50);
    } else {
        println!("bwrap   not installed: no comparison");
    }
}
