//! Probes of the fences that depend on the host: the memory bound of the whole sandbox (a cgroup, which
//! needs root or a delegated subtree) and Landlock (which needs a kernel that offers it).

use std::time::Duration;

use super::Verdict;
use crate::{Command, Policy, Sandbox};

/// Memory each probe process holds, and the limit the probe runs under: two holders cannot fit.
const HOLD_MIB: u64 = 40;
const LIMIT_MIB: u64 = 64;

/// Three `dd` processes each fill a 40 MiB buffer and keep it (blocked writing into a pipe nobody reads)
/// under a 64 MiB limit; once each has finished its read or is gone, the memory they hold is summed. A
/// bound on the whole sandbox keeps the sum under the limit; a bound per process (rlimits) lets it reach
/// 120 MiB. Only shell builtins run while measuring, so the probe itself needs no memory near the limit.
pub(super) fn whole_memory(sb: &dyn Sandbox, policy: &Policy) -> (Verdict, String) {
    let mut p = policy.clone().with_timeout(Duration::from_secs(30));
    p.limits.memory_bytes = LIMIT_MIB << 20;
    // Each `sh` writes its pid, then becomes `dd` (same pid). `rchar` turns non-zero when dd's one read
    // returns; a process killed on the way is a zombie until the shell reaps it. Only private resident
    // pages count (`statm` resident minus shared): the busybox text is mapped by every process.
    let script = format!(
        "for i in 1 2 3; do
           busybox sh -c \"echo \\$\\$ > /tmp/p$i; exec busybox dd if=/dev/zero bs={HOLD_MIB}M count=1 2>/dev/null\" \\
             | busybox sleep 25 &
         done
         t=0; while [ $t -lt 400 ]; do
           kib=0; busy=0
           for i in 1 2 3; do
             read -r p 2>/dev/null < /tmp/p$i || {{ busy=1; continue; }}
             read -r stat 2>/dev/null < /proc/$p/stat || continue
             set -- ${{stat##*) }}
             [ \"$1\" = Z ] && continue
             rchar=0; while read -r k v; do [ \"$k\" = rchar: ] && rchar=$v; done 2>/dev/null < /proc/$p/io
             if [ $rchar -gt 0 ]; then read -r size resident shared rest 2>/dev/null < /proc/$p/statm; kib=$((kib + (resident - shared) * 4)); else busy=1; fi
           done
           [ $busy -eq 0 ] && break
           busybox sleep 0.05; t=$((t+1))
         done
         echo kept=$kib"
    );
    let kept = match sb.run(&p, &Command::shell(script)) {
        Ok(o) => o.stdout_text().lines().find_map(|l| l.strip_prefix("kept=")?.parse::<u64>().ok()),
        Err(e) => return (Verdict::Failed, format!("could not run the probe: {e}")),
    };
    let Some(kept_kib) = kept else { return (Verdict::Failed, "the probe reported nothing".into()) };
    let seen = format!(
        "3 processes filling {HOLD_MIB} MiB each kept {} MiB under a {LIMIT_MIB} MiB limit",
        kept_kib >> 10
    );
    if kept_kib <= LIMIT_MIB << 10 {
        return (Verdict::Ok, seen);
    }
    if nix::unistd::geteuid().is_root() {
        (Verdict::Failed, format!("{seen}: no cgroup bounds the sandbox as a whole"))
    } else {
        (
            Verdict::Unsupported,
            format!(
                "{seen}: without root only each process is bounded (address space {} MiB, at most {} \
                 processes), not the sandbox as a whole; run as root or in a cgroup v2 subtree delegated to \
                 you (memory and pids controllers) to bound it",
                policy.limits.memory_bytes >> 20,
                policy.limits.pids
            ),
        )
    }
}

/// Writing `/proc/self/comm`: the mount layout and file permissions allow it, only Landlock (which grants
/// `/proc` read-only) refuses. Reported as missing when the kernel offers no Landlock.
pub(super) fn landlock(sb: &dyn Sandbox, policy: &Policy) -> (Verdict, String) {
    let Some(abi) = crate::native::landlock::abi() else {
        return (
            Verdict::Unsupported,
            "the kernel offers no Landlock: files are fenced by the mount layout alone (enable \
             CONFIG_SECURITY_LANDLOCK and list landlock in the kernel's lsm= parameter)"
                .into(),
        );
    };
    match sb.run(policy, &Command::shell("echo probe > /proc/self/comm 2>/dev/null && echo WROTE")) {
        Ok(o) if o.stdout_text().contains("WROTE") => {
            (Verdict::Failed, format!("the kernel offers Landlock ABI {abi} but it was not applied"))
        }
        Ok(_) => (Verdict::Ok, format!("ABI {abi}: /proc read-only, writes only in the workspace and /tmp")),
        Err(e) => (Verdict::Failed, format!("could not run the probe: {e}")),
    }
}
