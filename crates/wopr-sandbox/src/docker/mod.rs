//! The Docker backend (in progress).

/// Runs commands with the Docker CLI.
#[derive(Debug, Default)]
pub struct DockerSandbox;

impl DockerSandbox {
    /// A Docker sandbox using `DOCKER_HOST`.
    pub fn new() -> Self {
        DockerSandbox
    }
}

impl crate::Sandbox for DockerSandbox {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn run(&self, _: &crate::Policy, _: &crate::Command) -> Result<crate::Output, crate::SandboxError> {
        Err(crate::SandboxError::Unavailable { backend: "docker", reason: "not implemented yet".into() })
    }
}
