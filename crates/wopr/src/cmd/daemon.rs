//! `wopr daemon start|run|status|logs|stop`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wopr_daemon::ipc::Request;
use wopr_daemon::{client, lifecycle};

use super::Ctx;
use crate::cli::DaemonCmd;
use crate::exit::Exit;
use crate::output;

pub fn run(ctx: &Ctx, cmd: DaemonCmd) -> Result<()> {
    match cmd {
        DaemonCmd::Run => foreground(ctx),
        DaemonCmd::Start => start(ctx),
        DaemonCmd::Status { json } => status(ctx, json),
        DaemonCmd::Logs { follow } => logs(ctx, follow),
        DaemonCmd::Stop => stop(ctx),
    }
}

fn foreground(ctx: &Ctx) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WOPR_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,llama-cpp-2=warn,iroh=warn,iroh_quinn=warn,netwatch=warn,portmapper=warn",
        )
    });
    // Colours only on a terminal: `daemon start` writes to daemon.log, which `daemon logs` shows.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(wopr_daemon::run(ctx.home.clone())).map_err(|e| match e {
        wopr_daemon::DaemonError::AlreadyRunning(_) => Exit { code: 1, message: e.to_string() }.into(),
        e => anyhow::Error::from(e),
    })
}

fn start(ctx: &Ctx) -> Result<()> {
    if let Some(pid) = lifecycle::running_pid(&ctx.home) {
        return Err(Exit { code: 1, message: format!("the daemon is already running (pid {pid})") }.into());
    }
    ctx.home.load_identity()?.ok_or_else(|| anyhow::anyhow!("no identity yet: run `wopr id init` first"))?;
    let log_path = lifecycle::log_path(&ctx.home);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["daemon", "run"])
        .env("WOPR_HOME", ctx.home.root())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the daemon process")?;
    let rt = super::runtime()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            let tail = read_from(&log_path, log_start).unwrap_or_default();
            return Err(Exit {
                code: 1,
                message: format!("the daemon exited at start ({status}):\n{}", tail.trim_end()),
            }
            .into());
        }
        if let Some(stream) = rt.block_on(client::connect(&ctx.home))
            && let Ok(v) = rt.block_on(client::call(stream, &Request::Status, |_| {}))
        {
            println!("Daemon started (pid {}), WOPR ID {}", v["pid"], v["shortId"].as_str().unwrap_or("?"));
            println!("Logs: {}", log_path.display());
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Exit {
                code: 1,
                message: format!("the daemon did not answer within 30 s; see {}", log_path.display()),
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(ctx: &Ctx, json: bool) -> Result<()> {
    let rt = super::runtime()?;
    let Some(stream) = rt.block_on(client::connect(&ctx.home)) else {
        if json {
            output::json(&serde_json::json!({"running": false}))?;
        }
        return Err(Exit { code: 1, message: "the daemon is not running: `wopr daemon start`".into() }.into());
    };
    let mut v = rt
        .block_on(client::call(stream, &Request::Status, |_| {}))
        .map_err(|e| Exit { code: e.exit_code(), message: e.to_string() })?;
    if json {
        v["running"] = true.into();
        return output::json(&v);
    }
    let list = |k: &str| {
        v[k].as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    println!("Daemon running (pid {}), up {}", v["pid"], uptime(v["uptimeSecs"].as_u64().unwrap_or(0)));
    println!("WOPR ID:   {}", v["shortId"].as_str().unwrap_or("?"));
    println!("Full:      wopr://{}", v["id"].as_str().unwrap_or("?"));
    println!("Addresses: {}", list("addresses").join(", "));
    println!("Relay:     {}", v["relay"].as_str().unwrap_or("?"));
    let peers = list("connectedPeers");
    println!(
        "Peers:     {} connected{}",
        peers.len(),
        if peers.is_empty() {
            String::new()
        } else {
            let shown = peers.iter().map(|p| match v["peerPaths"][p].as_str() {
                Some(path) => format!("{} ({path})", &p[..8]),
                None => p[..8].to_string(),
            });
            format!(": {}", shown.collect::<Vec<_>>().join(", "))
        }
    );
    println!("Ticket:    {}", v["ticket"].as_str().unwrap_or("?"));
    Ok(())
}

fn uptime(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    Ok(s)
}

fn logs(ctx: &Ctx, follow: bool) -> Result<()> {
    let path = lifecycle::log_path(&ctx.home);
    if !path.exists() {
        return Err(Exit { code: 1, message: format!("no daemon log yet at {}", path.display()) }.into());
    }
    let mut offset = 0;
    let mut out = std::io::stdout();
    loop {
        let chunk = read_from(&path, offset)?;
        offset += chunk.len() as u64;
        // The log quotes peers (session names, refusals): never raw to the terminal.
        out.write_all(output::printable(&chunk).as_bytes())?;
        out.flush()?;
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(ctx: &Ctx) -> Result<()> {
    let Some(pid) = lifecycle::running_pid(&ctx.home) else {
        println!("The daemon is not running.");
        return Ok(());
    };
    let rt = super::runtime()?;
    let asked = match rt.block_on(client::connect(&ctx.home)) {
        Some(stream) => rt.block_on(client::call(stream, &Request::Stop, |_| {})).is_ok(),
        None => false,
    };
    if !asked {
        lifecycle::terminate(pid);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while lifecycle::alive(pid) {
        if Instant::now() > deadline {
            return Err(Exit {
                code: 1,
                message: format!("the daemon (pid {pid}) did not stop within 15 s"),
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(lifecycle::pid_path(&ctx.home));
    println!("Daemon stopped (pid {pid}).");
    Ok(())
}
