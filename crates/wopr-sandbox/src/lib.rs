//! Sandboxes for the commands an agent's tools run.
//!
//! Every message from a P2P peer that reaches the AI runs its tools under a [`Policy`] derived from the
//! source's [`Trust`] level; local sessions are sandboxed by default too. Two backends implement
//! [`Sandbox`]:
//! - [`NativeSandbox`] (default): user/pid/mount/ipc/uts/net namespaces, a read-only root assembled from
//!   a few host system directories, Landlock, seccomp, rlimits and cgroups where available;
//! - [`DockerSandbox`]: the Docker CLI with the seeds' flags, on a local image built from a static busybox.
//!
//! Both run under the same seccomp allow-list, hold one of this process's [`set_max_concurrent_runs`]
//! slots while alive, and kill their whole sandbox at once when a [`Cancel`] fires.
//!
//! [`doctor`] probes every property on this host for each backend. No network use of its own.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod cancel;
mod command;
pub mod docker;
pub mod doctor;
mod error;
mod limit;
mod native;
mod policy;
mod pump;
mod seccomp;
mod sys;
mod trust;
mod workspace;

pub use cancel::{Cancel, CancelOnDrop};
pub use command::{Command, ExitStatus, Output, TRUNCATION_MARKER};
pub use docker::DockerSandbox;
pub use error::SandboxError;
pub use limit::{DEFAULT_MAX_CONCURRENT_RUNS, RunSlots, run_slots, set_max_concurrent_runs};
pub use native::NativeSandbox;
pub use policy::{Filesystem, Hardening, Limits, Network, Policy, SYSTEM_DIRS, WORKSPACE_MOUNT};
pub use trust::{Trust, UnknownTrust};
pub use workspace::prepare_workspace;

/// The uid and gid a sandboxed process runs as, inside and (when the caller is root) on the host: an
/// unprivileged id far from any regular user's or subordinate range, never 0.
pub const SANDBOX_ID: u32 = 1_879_048_192;

/// A way to run a [`Command`] under a [`Policy`].
///
/// A run blocks until the command ends, is killed at the policy's wall-clock limit, floods its output or
/// is cancelled; from async code call it in `tokio::task::spawn_blocking`, keeping a
/// [`Cancel::on_drop`] guard in the future so a dropped future kills the sandbox at once.
pub trait Sandbox: Send + Sync {
    /// The backend's name (`native`, `docker`).
    fn name(&self) -> &'static str;

    /// Runs `cmd` with the policy's workspace mounted at [`WORKSPACE_MOUNT`], killing every process of
    /// the sandbox and returning [`SandboxError::Cancelled`] as soon as `cancel` fires.
    fn run_cancellable(
        &self,
        policy: &Policy,
        cmd: &Command,
        cancel: &Cancel,
    ) -> Result<Output, SandboxError>;

    /// Runs `cmd` to its end (or its limits).
    fn run(&self, policy: &Policy, cmd: &Command) -> Result<Output, SandboxError> {
        self.run_cancellable(policy, cmd, &Cancel::new())
    }
}

/// The available backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// [`NativeSandbox`].
    Native,
    /// [`DockerSandbox`].
    Docker,
}

impl Backend {
    /// Both backends, the default first.
    pub const ALL: [Backend; 2] = [Backend::Native, Backend::Docker];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Docker => "docker",
        }
    }

    /// Creates this backend with its default settings (Docker honours `DOCKER_HOST`).
    pub fn create(self) -> Result<Box<dyn Sandbox>, SandboxError> {
        Ok(match self {
            Backend::Native => Box::new(NativeSandbox::new()?),
            Backend::Docker => Box::new(DockerSandbox::new()),
        })
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("unknown sandbox backend {s:?}: expected native or docker"))
    }
}
