//! `wopr daemon start|run|status|logs|stop`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wopr_daemon::ipc::{LoginLink, Request, TokenReply};
use wopr_daemon::service::types::DaemonStatus;
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
        DaemonCmd::Token { rotate } => token(ctx, rotate),
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
    let result = rt.block_on(wopr_daemon::run(ctx.home.clone()));
    // Work still on blocking threads (a sandboxed command, a model's prompt) is not waited for.
    rt.shutdown_timeout(Duration::from_millis(500));
    result.map_err(|e| match e {
        wopr_daemon::DaemonError::AlreadyRunning(_) => Exit::failure(e.to_string()).into(),
        e => anyhow::Error::from(e),
    })
}

fn start(ctx: &Ctx) -> Result<()> {
    if let Some(pid) = lifecycle::running_pid(&ctx.home) {
        return Err(Exit::failure(format!("the daemon is already running (pid {pid})")).into());
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
            return Err(Exit::failure(format!(
                "the daemon exited at start ({status}):\n{}",
                tail.trim_end()
            ))
            .into());
        }
        if let Some(stream) = rt.block_on(client::connect(&ctx.home))
            && let Ok(s) = rt.block_on(client::call_as::<DaemonStatus>(stream, &Request::Status, |_| {}))
        {
            println!("Daemon started (pid {}), WOPR ID {}", s.pid, s.short_id);
            if let Some(api) = &s.api {
                println!("API and web UI: {api} (`wopr ui` logs the browser in)");
            }
            println!("Logs: {}", log_path.display());
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Exit::failure(format!(
                "the daemon did not answer within 30 s; see {}",
                log_path.display()
            ))
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
        return Err(Exit::failure("the daemon is not running: `wopr daemon start`").into());
    };
    let s =
        rt.block_on(client::call_as::<DaemonStatus>(stream, &Request::Status, |_| {})).map_err(Exit::from)?;
    if json {
        let mut v = serde_json::to_value(&s)?;
        v["running"] = true.into();
        return output::json(&v);
    }
    println!("Daemon running (pid {}), up {}", s.pid, uptime(s.uptime_secs));
    println!("WOPR ID:   {}", s.short_id);
    println!("Full:      wopr://{}", s.id);
    println!("Addresses: {}", s.addresses.join(", "));
    println!("Relay:     {}", s.relay);
    let shown = s.connected_peers.iter().map(|p| match s.peer_paths.get(p) {
        Some(path) => format!("{} ({path})", &p[..8]),
        None => p[..8].to_string(),
    });
    let shown: Vec<_> = shown.collect();
    let peers = if shown.is_empty() { String::new() } else { format!(": {}", shown.join(", ")) };
    println!("Peers:     {} connected{peers}", shown.len());
    println!("API:       {}", s.api.as_deref().unwrap_or("off"));
    println!("Ticket:    {}", s.ticket);
    Ok(())
}

/// The token and where the API listens, through the daemon when it runs (so a rotation takes effect
/// at once), else from the file (made now if missing).
fn token(ctx: &Ctx, rotate: bool) -> Result<()> {
    let rt = super::runtime()?;
    let token = match rt.block_on(client::connect(&ctx.home)) {
        Some(stream) => {
            let v: TokenReply = rt
                .block_on(client::call_as(stream, &Request::Token { rotate }, |_| {}))
                .map_err(Exit::from)?;
            v.token
        }
        None if rotate => wopr_daemon::token::rotate(&ctx.home)?,
        None => wopr_daemon::token::load_or_create(&ctx.home)?,
    };
    println!("{token}");
    if rotate {
        eprintln!(
            "New token written to {}; the old one no longer works.",
            ctx.home.file(wopr_daemon::token::TOKEN_FILE).display()
        );
    }
    Ok(())
}

/// `wopr ui [--open]`: a one-time login link for the web UI.
pub fn ui(ctx: &Ctx, open: bool) -> Result<()> {
    let rt = super::runtime()?;
    let Some(stream) = rt.block_on(client::connect(&ctx.home)) else {
        return Err(Exit::failure("the daemon is not running: `wopr daemon start`").into());
    };
    let link: LoginLink =
        rt.block_on(client::call_as(stream, &Request::UiLogin, |_| {})).map_err(Exit::from)?;
    let url = link.url.as_str();
    println!("{url}");
    eprintln!(
        "The link works once, for {} s; it logs this browser in for 12 h.",
        wopr_daemon::token::LOGIN_CODE_TTL.as_secs()
    );
    if open {
        let opened = std::process::Command::new("xdg-open")
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if !opened.is_ok_and(|s| s.success()) {
            eprintln!("Could not open a browser (xdg-open); open the link yourself.");
        }
    }
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
        return Err(Exit::failure(format!("no daemon log yet at {}", path.display())).into());
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
            return Err(Exit::failure(format!("the daemon (pid {pid}) did not stop within 15 s")).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(lifecycle::pid_path(&ctx.home));
    println!("Daemon stopped (pid {pid}).");
    Ok(())
}
