//! `wopr sandbox doctor|exec|build-image`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use wopr_agent::policy::{sandbox_choice, workspaces_root};
use wopr_sandbox::{Backend, Command, DockerSandbox, ExitStatus, Policy, Trust};

use super::Ctx;
use crate::cli::SandboxCmd;
use crate::exit::{Exit, Status};
use crate::output;

pub fn run(ctx: &Ctx, cmd: SandboxCmd) -> Result<()> {
    match cmd {
        SandboxCmd::Doctor { json } => doctor(ctx, json),
        SandboxCmd::Exec { backend, trust, workspace, json, command } => {
            exec(ctx, backend.as_deref(), &trust, workspace, json, command)
        }
        SandboxCmd::BuildImage => build_image(),
    }
}

fn doctor(ctx: &Ctx, json: bool) -> Result<()> {
    let spinner = output::spinner("probing the sandbox backends on this host");
    let report = wopr_sandbox::doctor::run();
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    if json {
        return output::json(&report);
    }
    print!("{}", report.to_table());
    let config = wopr_store::Config::of(&ctx.home).load()?;
    let limits = wopr_daemon::TurnLimits::from_config(&config);
    println!(
        "\nAt most {} sandboxed commands run at once in the daemon (`{}`), and {} AI turns of one peer (`{}`).",
        limits.sandbox_runs,
        wopr_daemon::KEY_MAX_SANDBOX_RUNS,
        limits.turns_per_peer,
        wopr_daemon::KEY_MAX_TURNS_PER_PEER
    );
    let chosen = sandbox_choice(&ctx.home)?;
    if report.usable().contains(&chosen) {
        println!("\nTools run in the {chosen} sandbox (config `sandbox.backend`).");
    } else {
        println!(
            "\nThe configured {chosen} sandbox does not work here: peers' tool calls are refused. \
             Fix it, or choose another backend with `wopr config set sandbox.backend <native|docker>`."
        );
    }
    Ok(())
}

fn exec(
    ctx: &Ctx,
    backend: Option<&str>,
    trust: &str,
    workspace: Option<PathBuf>,
    json: bool,
    argv: Vec<String>,
) -> Result<()> {
    let trust: Trust = trust.parse().map_err(|e: wopr_sandbox::UnknownTrust| Exit::invalid(e.to_string()))?;
    let backend = match backend {
        Some(b) => b.parse::<Backend>().map_err(Exit::invalid)?,
        None => sandbox_choice(&ctx.home)?,
    };
    let workspace = workspace.unwrap_or_else(|| workspaces_root(&ctx.home).join("exec"));
    let policy = Policy::for_trust(trust, workspace).hide(ctx.home.root());
    let sandbox = backend.create().map_err(|e| Exit::failure(e.to_string()))?;
    let output = sandbox.run(&policy, &Command::new(argv)).map_err(|e| Exit::failure(e.to_string()))?;
    if json {
        return output::json(&output);
    }
    std::io::stdout().write_all(&output.stdout)?;
    std::io::stderr().write_all(&output.stderr)?;
    if output.timed_out {
        eprintln!("wopr: killed at the time limit of {} s", policy.timeout().as_secs());
    }
    if output.truncated() {
        eprintln!(
            "wopr: output cut at {} bytes per stream; the command was killed",
            policy.limits.output_bytes
        );
    }
    let code = match output.status {
        ExitStatus::Exited(0) if !output.timed_out && !output.truncated() => return Ok(()),
        ExitStatus::Exited(code) => code.max(1),
        ExitStatus::Signaled(signal) => 128 + signal,
    };
    Err(Status::new(code, "").into())
}

fn build_image() -> Result<()> {
    let docker = DockerSandbox::new();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    docker
        .build_image(&mut |p| {
            bar.set_length(u64::from(p.steps));
            bar.set_position(u64::from(p.step));
            bar.set_message(p.message.clone());
        })
        .map_err(|e| Exit::failure(e.to_string()))?;
    bar.finish_and_clear();
    println!("built {} (from scratch, with a static busybox; nothing was pulled)", docker.image());
    Ok(())
}
