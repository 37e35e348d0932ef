//! `wopr session ...`: create, inject, log, list, show, delete, set-provider.

use std::io::{IsTerminal, Write};

use anyhow::{Result, anyhow};
use serde_json::json;
use wopr_agent::policy::{Source, toolbox_for};
use wopr_agent::{TurnError, TurnEvent, run_turn};
use wopr_providers::{ErrorKind, ProviderName};
use wopr_store::{HistoryMessage, MessageStatus, Role, SessionMeta, SessionName};

use super::Ctx;
use crate::cli::{OnOff, SessionCmd};
use crate::exit::Exit;
use crate::output;

pub fn run(ctx: &Ctx, cmd: SessionCmd) -> Result<()> {
    match cmd {
        SessionCmd::Create { name, context, provider, model, sandbox } => {
            let name = SessionName::new(&name)?;
            let provider = provider.map(|p| parse_provider(&p)).transpose()?.flatten();
            let context =
                context.map(|c| output::arg_or_stdin(&c, "context")).transpose()?.unwrap_or_default();
            let mut meta = ctx.home.sessions().create(&name, &context, provider, model)?;
            if sandbox == OnOff::Off {
                meta = ctx.home.sessions().update(&name, |m| m.sandbox = false)?;
            }
            println!("Created session {name} (provider: {}{})", provider_label(&meta), sandbox_label(&meta));
            Ok(())
        }
        SessionCmd::SetSandbox { name, mode } => {
            let name = SessionName::new(&name)?;
            let meta = ctx.home.sessions().update(&name, |m| m.sandbox = mode == OnOff::On)?;
            println!("Session {name}: {}", sandbox_label(&meta).trim_start_matches(", "));
            Ok(())
        }
        SessionCmd::Inject { name, message, json } => inject(ctx, &name, &message, json),
        SessionCmd::Log { name, message } => {
            let name = SessionName::new(&name)?;
            let message = output::arg_or_stdin(&message, "message")?;
            ctx.home.sessions().get(&name)?;
            ctx.home.history()?.append(&name, Role::User, &message, MessageStatus::Ok, "cli", None)?;
            Ok(())
        }
        SessionCmd::List { json } => list(ctx, json),
        SessionCmd::Show { name, limit, json } => show(ctx, &name, limit, json),
        SessionCmd::Delete { name, yes } => delete(ctx, &name, yes),
        SessionCmd::SetProvider { name, provider, model } => {
            let name = SessionName::new(&name)?;
            let provider = parse_provider(&provider)?;
            let meta = ctx.home.sessions().update(&name, |m| {
                m.provider = provider;
                m.model = model;
            })?;
            println!("Session {name} now uses {}", provider_label(&meta));
            Ok(())
        }
    }
}

/// A provider name, or `None` for `auto`.
fn parse_provider(p: &str) -> Result<Option<String>> {
    if p == "auto" {
        return Ok(None);
    }
    p.parse::<ProviderName>().map_err(Exit::invalid)?;
    Ok(Some(p.to_string()))
}

fn sandbox_label(meta: &SessionMeta) -> &'static str {
    match meta.sandbox {
        true => "",
        false => ", sandbox off for your own turns; peers' turns stay sandboxed",
    }
}

fn provider_label(meta: &SessionMeta) -> String {
    let p = meta.provider.as_deref().unwrap_or("auto");
    match &meta.model {
        Some(m) => format!("{p}, model {m}"),
        None => p.to_string(),
    }
}

fn inject(ctx: &Ctx, name: &str, message: &str, json: bool) -> Result<()> {
    let name = SessionName::new(name)?;
    let message = output::arg_or_stdin(message, "message")?;
    let meta = ctx.home.sessions().get(&name)?;
    let settings = ctx.provider_settings()?;
    let wanted =
        meta.provider.as_deref().map(str::parse::<ProviderName>).transpose().map_err(Exit::invalid)?;
    let provider = match wopr_providers::resolve(wanted, meta.model.as_deref(), &settings) {
        Ok(p) => p,
        Err(e) => {
            // The message is kept even when no provider could be set up.
            let history = ctx.home.history()?;
            let id = history.append(&name, Role::User, &message, MessageStatus::Pending, "cli", None)?;
            history.mark_failed(id, &e.to_string())?;
            return Err(provider_failure(&name, e));
        }
    };

    let injector = std::sync::Arc::new(super::node::CliInjector(ctx.home.clone()));
    let tools = toolbox_for(&ctx.home, &name, &meta, Source::Local).with_peer_injector(injector);
    let interactive = !json && std::io::stdout().is_terminal();
    let spinner = (!json && std::io::stderr().is_terminal()).then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!("waiting for {} ({})", provider.name(), provider.model()));
        s.enable_steady_tick(std::time::Duration::from_millis(100));
        s
    });
    let mut stdout = std::io::stdout().lock();
    let mut wrote_any = false;
    let on_event = |ev: TurnEvent| {
        if let Some(s) = &spinner {
            s.finish_and_clear();
        }
        if json {
            return;
        }
        match ev {
            TurnEvent::Text(t) => {
                let _ = stdout.write_all(output::printable(&t).as_bytes());
                let _ = stdout.flush();
                wrote_any = true;
            }
            tool => {
                if let Some(line) = tool.tool_line() {
                    eprintln!("{}", output::printable(&line));
                }
            }
        }
    };
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        tokio::select! {
            r = run_turn(&ctx.home, &name, &message, "cli", provider.as_ref(), &tools, on_event) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    if let Some(s) = &spinner {
        s.finish_and_clear();
    }
    let outcome = match result {
        None => {
            return Err(Exit {
                code: 130,
                message: format!("interrupted; your message is kept in the history of {name}"),
            }
            .into());
        }
        Some(Err(TurnError::Provider(e))) => return Err(provider_failure(&name, e)),
        Some(Err(TurnError::ToolRefused(r))) => {
            return Err(Exit {
                code: 1,
                message: format!("{r}\n  your message is kept in the history of {name}, marked as failed"),
            }
            .into());
        }
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(o)) => o,
    };
    if json {
        return output::json(&json!({
            "session": name,
            "provider": provider.name(),
            "model": provider.model(),
            "response": outcome.text,
            "usage": outcome.usage,
            "stopReason": outcome.stop_reason,
        }));
    }
    if wrote_any && !outcome.text.ends_with('\n') || interactive && !wrote_any {
        println!();
    }
    Ok(())
}

fn provider_failure(name: &SessionName, e: wopr_providers::ProviderError) -> anyhow::Error {
    let code = match e.kind {
        ErrorKind::RateLimited { .. } => 4,
        _ => 1,
    };
    Exit {
        code,
        message: format!(
            "{e}\n  what to do: {}\n  your message is kept in the history of {name}, marked as failed",
            e.hint()
        ),
    }
    .into()
}

fn list(ctx: &Ctx, json: bool) -> Result<()> {
    let sessions = ctx.home.sessions().list()?;
    let history = if sessions.is_empty() { None } else { Some(ctx.home.history()?) };
    let mut rows = Vec::new();
    for (name, meta) in &sessions {
        let (count, last) = match &history {
            Some(h) => (h.count(name)?, h.last_activity(name)?),
            None => (0, None),
        };
        rows.push((name, meta, count, last));
    }
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(name, meta, count, last)| {
                json!({
                    "name": name, "id": meta.id, "provider": meta.provider, "model": meta.model,
                    "created": meta.created, "messages": count, "lastActivity": last,
                })
            })
            .collect();
        return output::json(&out);
    }
    if rows.is_empty() {
        println!("No sessions yet: create one with `wopr session create <name> \"<context>\"`");
        return Ok(());
    }
    let w = rows.iter().map(|r| r.0.as_str().len()).max().unwrap_or(4).max(4) + 2;
    println!("{:<w$}{:<26}{:<10}LAST ACTIVITY", "NAME", "PROVIDER", "MESSAGES");
    for (name, meta, count, last) in rows {
        let last = last.map(output::time).unwrap_or_else(|| "-".into());
        println!("{:<w$}{:<26}{:<10}{last}", name.as_str(), provider_label(meta), count);
    }
    Ok(())
}

fn show(ctx: &Ctx, name: &str, limit: Option<usize>, json: bool) -> Result<()> {
    let name = SessionName::new(name)?;
    let sessions = ctx.home.sessions();
    let meta = sessions.get(&name)?;
    let context = sessions.context(&name)?;
    let messages = ctx.home.history()?.messages(&name, limit)?;
    if json {
        return output::json(&json!({
            "name": name, "id": meta.id, "provider": meta.provider, "model": meta.model,
            "created": meta.created, "sandbox": meta.sandbox, "context": context, "messages": messages,
        }));
    }
    println!("Session {name}");
    println!("  provider: {}", provider_label(&meta));
    println!("  created:  {}", output::time(meta.created));
    println!("  context:  {}", sessions.context_path(&name).display());
    for line in context.lines() {
        println!("    {line}");
    }
    println!();
    if messages.is_empty() {
        println!("No messages yet.");
    }
    for m in &messages {
        print_message(m);
    }
    Ok(())
}

fn print_message(m: &HistoryMessage) {
    let who = match m.role {
        Role::User if m.source == "cli" => "you".to_string(),
        Role::User => m.source.clone(),
        Role::Assistant => "ai".to_string(),
        Role::Tool => "tool".to_string(),
    };
    let status = match m.status {
        MessageStatus::Ok => String::new(),
        MessageStatus::Pending => " (no answer: interrupted)".into(),
        MessageStatus::Failed => format!(" (failed: {})", m.error.as_deref().unwrap_or("unknown error")),
    };
    println!("[{}] {who}{status}:", output::time(m.created));
    for line in output::printable(&m.content).lines() {
        println!("  {line}");
    }
}

fn delete(ctx: &Ctx, name: &str, yes: bool) -> Result<()> {
    let name = SessionName::new(name)?;
    ctx.home.sessions().get(&name)?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Exit::invalid(format!(
                "deleting {name} needs confirmation: run it in a terminal or pass --yes"
            ))
            .into());
        }
        eprint!("Delete session {name}, its context and its history? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| anyhow!("reading the answer: {e}"))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("Kept {name}.");
            return Ok(());
        }
    }
    let removed = ctx.home.history()?.delete_session(&name)?;
    ctx.home.sessions().delete(&name)?;
    println!("Deleted session {name} ({removed} messages)");
    Ok(())
}
