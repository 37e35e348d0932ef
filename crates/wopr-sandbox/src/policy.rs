//! What a sandboxed command may do, derived from its [`Trust`] level.
//!
//! A [`Policy`] holds the tunable parts (network, visible host directories, limits). The hardening every
//! policy gets (read-only root, all capabilities dropped, no_new_privs, seccomp, never uid 0 inside) is not
//! tunable: it is printed with the policy so a reader sees it, and every backend applies it unconditionally.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::Trust;

const MIB: u64 = 1024 * 1024;

/// System directories every level sees read-only, so ordinary programs can run.
pub const SYSTEM_DIRS: [&str; 7] = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];

/// Mount point of the session's workspace inside the sandbox.
pub const WORKSPACE_MOUNT: &str = "/workspace";

/// The rules one sandboxed command runs under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// The trust level this policy was derived from.
    pub trust: Trust,
    /// Whether the command can reach any network.
    pub network: Network,
    /// Which host files are visible.
    pub filesystem: Filesystem,
    /// Resource limits.
    pub limits: Limits,
    /// The fixed hardening every policy gets (shown, never switched off).
    #[serde(skip_deserializing)]
    pub hardening: Hardening,
}

/// Network access of a sandboxed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// An empty network namespace: not even the host's loopback is reachable.
    None,
    /// The host's network (owner only).
    Host,
}

/// The file system a sandboxed command sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filesystem {
    /// Host directories mounted read-only at the same path (those that exist). Without `/etc` the sandbox
    /// gets a minimal generated `/etc` (passwd, group, hosts). The Docker backend sees its image instead.
    pub host_dirs: Vec<PathBuf>,
    /// Host directories that stay hidden even when they lie below a visible one (e.g. `$WOPR_HOME`).
    pub hidden: Vec<PathBuf>,
    /// The session's workspace, mounted read-write at [`WORKSPACE_MOUNT`] and kept across runs.
    pub workspace: PathBuf,
    /// Size of the private, empty `/tmp` (a tmpfs thrown away after each run).
    pub tmp_bytes: u64,
}

/// Resource limits of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Processes and threads alive at once.
    pub pids: u32,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// CPU share (0.5 = half of one CPU).
    pub cpus: f64,
    /// Wall-clock limit in milliseconds; the whole process tree is killed when it passes.
    pub timeout_ms: u64,
    /// Bytes kept from each of stdout and stderr; past that the output is cut with a marker and the command
    /// is killed.
    pub output_bytes: usize,
}

/// The hardening applied to every sandboxed command, whatever the trust level.
///
/// It has no settings on purpose: it is serialized so `wopr security show` prints it, and ignored when a
/// policy is read back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hardening(());

impl Serialize for Hardening {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct View {
            read_only_root: bool,
            cap_drop: &'static str,
            no_new_privileges: bool,
            seccomp: &'static str,
            root_inside: bool,
        }
        View {
            read_only_root: true,
            cap_drop: "ALL",
            no_new_privileges: true,
            seccomp: "allow-list (other calls ENOSYS); mount, namespaces, ptrace, process_vm, kernel \
                      modules, kexec, bpf, keyrings, perf, io_uring, userfaultfd refused; sockets unix only \
                      (+ inet, inet6, netlink route with host network); x32 and foreign ABIs killed",
            root_inside: false,
        }
        .serialize(s)
    }
}

impl Policy {
    /// The policy for a trust level.
    ///
    /// | | untrusted | trusted | owner |
    /// |---|---|---|---|
    /// | network | none | none | host |
    /// | host dirs (read-only) | system dirs | + `/etc` | + `/etc`, `/opt` |
    /// | pids | 100 | 256 | 1024 |
    /// | memory | 512 MiB | 1 GiB | 2 GiB |
    /// | cpus | 0.5 | 1 | 2 |
    /// | timeout | 30 s | 120 s | 300 s |
    /// | output (each stream) | 1 MiB | 4 MiB | 8 MiB |
    ///
    /// Home directories and `$WOPR_HOME` are never mounted; the workspace is the only writable host
    /// directory at every level.
    pub fn for_trust(trust: Trust, workspace: impl Into<PathBuf>) -> Policy {
        let mut host_dirs: Vec<PathBuf> = SYSTEM_DIRS.iter().map(PathBuf::from).collect();
        let (network, limits) = match trust {
            Trust::Untrusted => (Network::None, Limits::new(100, 512 * MIB, 0.5, 30, MIB as usize)),
            Trust::Trusted => {
                host_dirs.push("/etc".into());
                (Network::None, Limits::new(256, 1024 * MIB, 1.0, 120, 4 * MIB as usize))
            }
            Trust::Owner => {
                host_dirs.extend(["/etc".into(), "/opt".into()]);
                (Network::Host, Limits::new(1024, 2048 * MIB, 2.0, 300, 8 * MIB as usize))
            }
        };
        Policy {
            trust,
            network,
            filesystem: Filesystem {
                host_dirs,
                hidden: Vec::new(),
                workspace: workspace.into(),
                tmp_bytes: 64 * MIB,
            },
            limits,
            hardening: Hardening::default(),
        }
    }

    /// Keeps `path` hidden even if a visible host directory contains it (give it `$WOPR_HOME`).
    pub fn hide(mut self, path: impl Into<PathBuf>) -> Policy {
        self.filesystem.hidden.push(path.into());
        self
    }

    /// Replaces the wall-clock limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Policy {
        self.limits.timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The wall-clock limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.limits.timeout_ms)
    }

    /// The session workspace on the host.
    pub fn workspace(&self) -> &Path {
        &self.filesystem.workspace
    }

    /// The policy as pretty JSON, as `wopr security show` prints it.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl Limits {
    fn new(pids: u32, memory_bytes: u64, cpus: f64, timeout_s: u64, output_bytes: usize) -> Limits {
        Limits { pids, memory_bytes, cpus, timeout_ms: timeout_s * 1000, output_bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_gets_the_seed_limits_and_no_network() {
        let p = Policy::for_trust(Trust::Untrusted, "/w");
        assert_eq!(p.network, Network::None);
        assert_eq!(p.limits.pids, 100);
        assert_eq!(p.limits.memory_bytes, 512 * MIB);
        assert_eq!(p.limits.cpus, 0.5);
        assert!(!p.filesystem.host_dirs.iter().any(|d| d == Path::new("/etc")));
    }

    #[test]
    fn every_level_is_at_least_as_strict_as_the_one_above() {
        let [o, t, u] = Trust::ALL.map(|t| Policy::for_trust(t, "/w"));
        assert!(u.limits.pids <= t.limits.pids && t.limits.pids <= o.limits.pids);
        assert!(u.limits.memory_bytes <= t.limits.memory_bytes);
        assert_eq!(t.network, Network::None);
    }

    #[test]
    fn json_shows_the_fixed_hardening_and_reads_back() {
        let p = Policy::for_trust(Trust::Untrusted, "/w").hide("/root/.wopr");
        let json: serde_json::Value = serde_json::from_str(&p.to_json_pretty()).unwrap();
        assert_eq!(json["trust"], "untrusted");
        assert_eq!(json["network"], "none");
        assert_eq!(json["limits"]["pids"], 100);
        assert_eq!(json["hardening"]["capDrop"], "ALL");
        assert_eq!(json["hardening"]["rootInside"], false);
        let back: Policy = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
