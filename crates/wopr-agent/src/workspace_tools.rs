//! The four workspace tools the model may call: `shell`, `read_file`, `write_file` and `list_dir`.
//!
//! Each call becomes one command run by a [`Sandbox`] under the turn's [`Policy`], with the session's
//! workspace mounted at `/workspace` as the working directory; file tools are small commands too, so the
//! sandbox, not this code, decides what a path can reach (a symlink planted in the workspace cannot lead
//! a host-side read out of it). Only an owner's session with the sandbox switched off runs them on the
//! host, in the workspace directory. When no sandbox works, every call is refused and the turn stops.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use wopr_providers::{ToolCall, ToolSpec};
use wopr_sandbox::{Command, ExitStatus, Output, Policy, Sandbox, SandboxError};

use crate::p2p_tools::{self, P2pActions};
use crate::tools::{BoxFuture, ToolOutput, ToolRefused, Toolbox};

/// Most characters of a tool's output handed back to the model (the rest is cut with a note).
const MAX_RESULT_CHARS: usize = 16 * 1024;

/// Where the tools run.
enum Runner {
    /// In a sandbox under a policy.
    Sandboxed { sandbox: Arc<dyn Sandbox>, policy: Policy },
    /// Nowhere: the reason is given to whoever asked.
    Refused(String),
    /// On the host in the workspace directory, for an owner who switched the sandbox off.
    Host { workspace: PathBuf },
}

/// `shell`, `read_file`, `write_file` and `list_dir` over a session workspace, plus the P2P tools
/// ([`p2p_tools::P2P_TOOLS`]) when [`P2pActions`] are given (only the owner's own untainted turns get
/// them; without them a call to one is refused).
pub struct WorkspaceTools {
    runner: Runner,
    p2p: Option<Arc<dyn P2pActions>>,
}

impl WorkspaceTools {
    /// Tools that run in `sandbox` under `policy` (whose workspace is the session's).
    pub fn sandboxed(sandbox: Arc<dyn Sandbox>, policy: Policy) -> Self {
        WorkspaceTools { runner: Runner::Sandboxed { sandbox, policy }, p2p: None }
    }

    /// Tools whose every call is refused with `reason` (no sandbox works here, and the source must not
    /// run anything unsandboxed). The model is still offered them, so a refusal is explicit.
    pub fn refused(reason: impl Into<String>) -> Self {
        WorkspaceTools { runner: Runner::Refused(reason.into()), p2p: None }
    }

    /// Tools that run directly on the host in `workspace`: only for the owner's own sessions with the
    /// sandbox switched off.
    pub fn unsandboxed(workspace: PathBuf) -> Self {
        WorkspaceTools { runner: Runner::Host { workspace }, p2p: None }
    }

    /// Adds the P2P tools, acting through `actions`. Never for a turn holding non-owner words: the
    /// only caller is [`crate::policy::SessionTools`], which checks the turn's trust.
    pub(crate) fn with_p2p_actions(mut self, actions: Arc<dyn P2pActions>) -> Self {
        self.p2p = Some(actions);
        self
    }

    /// Where the calls run, in words (`sandbox native, untrusted`, `host`, `refused`).
    pub fn describe(&self) -> String {
        match &self.runner {
            Runner::Sandboxed { sandbox, policy } => format!("sandbox {}, {}", sandbox.name(), policy.trust),
            Runner::Refused(_) => "refused".into(),
            Runner::Host { .. } => "host (sandbox off)".into(),
        }
    }
}

impl Toolbox for WorkspaceTools {
    fn specs(&self) -> Vec<ToolSpec> {
        let mut all = specs();
        if self.p2p.is_some() {
            all.extend(p2p_tools::specs());
        }
        all
    }

    fn run<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, Result<ToolOutput, ToolRefused>> {
        Box::pin(async move {
            if p2p_tools::is_p2p_tool(&call.name) {
                return Ok(match &self.p2p {
                    Some(actions) => p2p_tools::run(actions.as_ref(), call).await,
                    // Never offered in this turn: a call by name is forged or mistaken, and runs nothing.
                    None => p2p_tools::refusal(&call.name),
                });
            }
            let command = match command_for(call) {
                Ok(command) => command,
                Err(explained) => return Ok(ToolOutput::error(explained)),
            };
            match &self.runner {
                Runner::Refused(reason) => Err(ToolRefused(reason.clone())),
                Runner::Sandboxed { sandbox, policy } => {
                    let (sandbox, policy) = (sandbox.clone(), policy.clone());
                    // Dropping this call (its turn was cancelled, its peer left or was revoked) kills the
                    // sandbox at once rather than at its time limit.
                    let cancel = wopr_sandbox::Cancel::new();
                    let _kill_on_drop = cancel.on_drop();
                    let ran = tokio::task::spawn_blocking(move || {
                        sandbox.run_cancellable(&policy, &command, &cancel)
                    })
                    .await;
                    match ran {
                        Ok(Ok(output)) => Ok(describe_output(&call.name, &output)),
                        // The backend itself does not work here: stop, never fall back to the host.
                        Ok(Err(
                            e @ (SandboxError::Unavailable { .. }
                            | SandboxError::ImageMissing(_)
                            | SandboxError::Docker(_)
                            | SandboxError::Setup { .. }),
                        )) => Err(ToolRefused(format!(
                            "tools cannot run safely on this node: {e} (see `wopr sandbox doctor`)"
                        ))),
                        // Something about this call (its arguments, its working directory).
                        Ok(Err(e)) => Ok(ToolOutput::error(format!("the sandbox could not run it: {e}"))),
                        Err(e) => Err(ToolRefused(format!("the sandbox task failed: {e}"))),
                    }
                }
                Runner::Host { workspace } => Ok(run_on_host(workspace, &call.name, &command).await),
            }
        })
    }
}

/// The tool definitions offered to the model.
pub fn specs() -> Vec<ToolSpec> {
    let string = |what: &str| json!({"type": "string", "description": what});
    let tool = |name: &str, description: &str, properties: Value, required: &[&str]| ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters: json!({"type": "object", "properties": properties, "required": required}),
    };
    vec![
        tool(
            "shell",
            "Runs a shell command (sh -c) in the session workspace /workspace and returns its exit status, \
             stdout and stderr. There is no network.",
            json!({"command": string("the command line")}),
            &["command"],
        ),
        tool(
            "read_file",
            "Returns the contents of a text file (relative paths are inside /workspace).",
            json!({"path": string("the file")}),
            &["path"],
        ),
        tool(
            "write_file",
            "Writes text to a file in /workspace, creating or replacing it (and its directories).",
            json!({"path": string("the file"), "content": string("the whole new content")}),
            &["path", "content"],
        ),
        tool(
            "list_dir",
            "Lists a directory (default: /workspace) with sizes and types.",
            json!({"path": string("the directory")}),
            &[],
        ),
    ]
}

/// The command a call runs, or an explanation for the model of what was wrong with the call.
fn command_for(call: &ToolCall) -> Result<Command, String> {
    let arg = |key: &str| -> Result<String, String> {
        match call.arguments.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("`{key}` must be a string, got {other}")),
            None => Err(format!("{} needs the argument `{key}`", call.name)),
        }
    };
    match call.name.as_str() {
        "shell" => Ok(Command::shell(arg("command")?)),
        "read_file" => Ok(Command::new(["cat".to_string(), "--".into(), arg("path")?])),
        "write_file" => {
            let script = r#"case "$1" in */*) mkdir -p -- "${1%/*}" || exit 1;; esac; cat > "$1""#;
            Ok(Command::new([
                "sh".to_string(),
                "-c".into(),
                script.into(),
                "write_file".into(),
                arg("path")?,
            ])
            .stdin(arg("content")?))
        }
        "list_dir" => {
            let path = match call.arguments.get("path") {
                None | Some(Value::Null) => ".".to_string(),
                _ => arg("path")?,
            };
            Ok(Command::new(["ls".to_string(), "-la".into(), "--".into(), path]))
        }
        other => Err(format!(
            "there is no tool named {other:?}; the tools are shell, read_file, write_file, list_dir"
        )),
    }
}

/// What the model is told about a finished command.
fn describe_output(tool: &str, output: &Output) -> ToolOutput {
    let stdout = output.stdout_text();
    let stderr = output.stderr_text();
    let mut text = match tool {
        // A file or a listing that worked is given as it is.
        "read_file" | "list_dir" | "write_file" if output.success() => {
            if tool == "write_file" {
                "written".to_string()
            } else {
                stdout
            }
        }
        _ => {
            let status = match output.status {
                ExitStatus::Exited(code) => format!("exit code {code}"),
                ExitStatus::Signaled(signal) => format!("killed by signal {signal}"),
            };
            let mut text = status;
            if output.timed_out {
                text.push_str(" (time limit reached)");
            }
            if !stdout.is_empty() {
                text.push_str("\nstdout:\n");
                text.push_str(&stdout);
            }
            if !stderr.is_empty() {
                text.push_str("\nstderr:\n");
                text.push_str(&stderr);
            }
            text
        }
    };
    cap(&mut text);
    ToolOutput { content: text, is_error: !output.success() }
}

fn cap(text: &mut String) {
    if text.len() > MAX_RESULT_CHARS {
        let cut = (0..=MAX_RESULT_CHARS).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push_str("\n[output cut]");
    }
}

/// Runs `command` on the host in `workspace` (sandbox off), with the owner's time limit.
async fn run_on_host(workspace: &std::path::Path, tool: &str, command: &Command) -> ToolOutput {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;

    const HOST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
    if let Err(e) = std::fs::create_dir_all(workspace) {
        return ToolOutput::error(format!("cannot create the workspace {}: {e}", workspace.display()));
    }
    let mut child = match tokio::process::Command::new(&command.argv[0])
        .args(&command.argv[1..])
        .current_dir(workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return ToolOutput::error(format!("cannot start {}: {e}", command.argv[0])),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&command.stdin).await;
    }
    let started = std::time::Instant::now();
    match tokio::time::timeout(HOST_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            use std::os::unix::process::ExitStatusExt;
            let status = match (out.status.code(), out.status.signal()) {
                (Some(code), _) => ExitStatus::Exited(code),
                (None, signal) => ExitStatus::Signaled(signal.unwrap_or(0)),
            };
            let output = Output {
                status,
                stdout: out.stdout,
                stderr: out.stderr,
                stdout_truncated: false,
                stderr_truncated: false,
                timed_out: false,
                duration: started.elapsed(),
            };
            describe_output(tool, &output)
        }
        Ok(Err(e)) => ToolOutput::error(format!("the command failed: {e}")),
        Err(_) => ToolOutput::error(format!("killed after {} s", HOST_TIMEOUT.as_secs())),
    }
}
