//! What to run in a sandbox, and what came back.

use std::path::{Component, PathBuf};
use std::time::Duration;

use crate::SandboxError;

/// A command to run inside a sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// Program and arguments. A program without `/` is looked up in the sandbox's `PATH`.
    pub argv: Vec<String>,
    /// Extra environment variables (the sandbox starts from an empty environment with `PATH`, `HOME`,
    /// `TMPDIR` and `LANG` set).
    pub env: Vec<(String, String)>,
    /// Working directory relative to the workspace (the workspace itself when `None`).
    pub cwd: Option<PathBuf>,
    /// Bytes fed to the command's standard input, which is then closed.
    pub stdin: Vec<u8>,
}

impl Command {
    /// A command from its program and arguments.
    pub fn new<I, S>(argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command { argv: argv.into_iter().map(Into::into).collect(), ..Command::default() }
    }

    /// `sh -c script`.
    pub fn shell(script: impl Into<String>) -> Command {
        Command::new(["sh".to_string(), "-c".to_string(), script.into()])
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Command {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the working directory, relative to the workspace.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Command {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the bytes fed to standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Command {
        self.stdin = bytes.into();
        self
    }

    /// Checks the command and returns the working directory inside the sandbox.
    pub(crate) fn validated_cwd(&self) -> Result<PathBuf, SandboxError> {
        if self.argv.first().is_none_or(|p| p.is_empty()) {
            return Err(SandboxError::EmptyCommand);
        }
        if self.argv.iter().chain(self.env.iter().flat_map(|(k, v)| [k, v])).any(|s| s.contains('\0')) {
            return Err(SandboxError::NulByte);
        }
        if self.env.iter().any(|(k, _)| k.is_empty() || k.contains('=')) {
            return Err(SandboxError::BadEnvName);
        }
        let mut cwd = PathBuf::from(crate::WORKSPACE_MOUNT);
        if let Some(rel) = &self.cwd {
            let rel = rel.strip_prefix(crate::WORKSPACE_MOUNT).unwrap_or(rel);
            if !rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
                return Err(SandboxError::CwdOutsideWorkspace(rel.to_path_buf()));
            }
            cwd.push(rel);
        }
        Ok(cwd)
    }
}

/// How a sandboxed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal (also after a timeout or an output flood).
    Signaled(i32),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

/// What a sandboxed command produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Standard output, at most the policy's output cap plus [`TRUNCATION_MARKER`].
    #[serde(serialize_with = "lossy")]
    pub stdout: Vec<u8>,
    /// Standard error, capped like `stdout`.
    #[serde(serialize_with = "lossy")]
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the cap (the command was then killed).
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the cap (the command was then killed).
    pub stderr_truncated: bool,
    /// Whether the wall-clock limit killed it.
    pub timed_out: bool,
    /// Wall-clock time from spawn to exit.
    pub duration: Duration,
}

/// Appended to a stream that was cut at the output cap.
pub const TRUNCATION_MARKER: &str = "\n[wopr-sandbox: output truncated]\n";

impl Output {
    /// Exited with code 0, not killed.
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out && !self.truncated()
    }

    /// Either stream was cut at the cap.
    pub fn truncated(&self) -> bool {
        self.stdout_truncated || self.stderr_truncated
    }

    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn working_directories_cannot_leave_the_workspace() {
        for bad in ["..", "a/../../etc", "/etc"] {
            assert!(Command::new(["true"]).cwd(bad).validated_cwd().is_err(), "{bad}");
        }
        assert_eq!(Command::new(["true"]).cwd("a/b").validated_cwd().unwrap(), Path::new("/workspace/a/b"));
        assert_eq!(Command::new(["true"]).validated_cwd().unwrap(), Path::new("/workspace"));
    }

    #[test]
    fn empty_commands_and_nul_bytes_are_rejected() {
        assert!(matches!(
            Command::new(Vec::<String>::new()).validated_cwd(),
            Err(SandboxError::EmptyCommand)
        ));
        assert!(matches!(Command::new(["a\0b"]).validated_cwd(), Err(SandboxError::NulByte)));
    }
}
