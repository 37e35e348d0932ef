//! `wopr session ...`: create, inject, log, list, show, delete, fork, clear, set-provider, set-sandbox.

use std::io::{IsTerminal, Write};

use anyhow::{Result, anyhow};
use serde_json::json;
use wopr_agent::policy::{SessionTools, Source, session_taint, tainted_workspace};
use wopr_agent::{TurnError, TurnEvent, run_turn};
use wopr_daemon::service::sessions;
use wopr_daemon::service::types::{CreateSession, SetProvider};
use wopr_providers::ProviderName;
use wopr_store::{HistoryMessage, MessageStatus, Role, SessionName};

use super::Ctx;
use crate::cli::{OnOff, SessionCmd};
use crate::exit::{Exit, INTERRUPTED, Status};
use crate::output;

pub fn run(ctx: &Ctx, cmd: SessionCmd) -> Result<()> {
    match cmd {
        SessionCmd::Create { name, context, provider, model, sandbox } => {
            let context = context.map(|c| output::arg_or_stdin(&c, "context")).transpose()?;
            let req = CreateSession { name, context, provider, model, sandbox: Some(sandbox == OnOff::On) };
            let s = sessions::create(&ctx.home, req)?;
            let label = provider_label(s.provider.as_deref(), s.model.as_deref());
            println!("Created session {} (provider: {label}{})", s.name, sandbox_label(s.sandbox));
            Ok(())
        }
        SessionCmd::SetSandbox { name, mode } => {
            let name = SessionName::new(&name)?;
            let meta = ctx.home.sessions().update(&name, |m| m.sandbox = mode == OnOff::On)?;
            println!("Session {name}: {}", sandbox_label(meta.sandbox).trim_start_matches(", "));
            Ok(())
        }
        SessionCmd::Inject { name, message, json } => inject(ctx, &name, &message, json),
        SessionCmd::Log { name, message } => {
            let message = output::arg_or_stdin(&message, "message")?;
            Ok(sessions::log(&ctx.home, &name, &message, &Source::Owner)?)
        }
        SessionCmd::List { json } => list(ctx, json),
        SessionCmd::Show { name, limit, json } => show(ctx, &name, limit, json),
        SessionCmd::Delete { name, yes } => delete(ctx, &name, yes),
        SessionCmd::Fork { name, new, owner_only } => fork(ctx, &name, &new, owner_only),
        SessionCmd::Clear { name, yes } => clear(ctx, &name, yes),
        SessionCmd::SetProvider { name, provider, model } => {
            let s = sessions::set_provider(&ctx.home, &name, SetProvider { provider, model })?;
            println!(
                "Session {} now uses {}",
                s.name,
                provider_label(s.provider.as_deref(), s.model.as_deref())
            );
            Ok(())
        }
    }
}

fn sandbox_label(sandbox: bool) -> &'static str {
    match sandbox {
        true => "",
        false => ", sandbox off for your own turns; peers' turns stay sandboxed",
    }
}

fn provider_label(provider: Option<&str>, model: Option<&str>) -> String {
    let p = provider.unwrap_or("auto");
    match model {
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
            let id =
                history.append(&name, Role::User, &message, MessageStatus::Pending, &Source::Owner, None)?;
            history.mark_failed(id, &e.to_string())?;
            return Err(provider_failure(&name, e));
        }
    };

    let p2p = std::sync::Arc::new(super::agent_p2p::CliP2p::new(ctx.home.clone(), name.clone()));
    // The turn decides its trust from the history it loads; this is only to tell the owner.
    if let (false, Some(taint)) = (json, session_taint(&ctx.home.history()?, &name)?) {
        eprintln!("{}", output::printable(&format!("note: {name} {}; {}", taint.reason(), UNTRUSTED_TURNS)));
    }
    let tools = SessionTools::new(&ctx.home, &name, &meta).with_p2p_actions(p2p);
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
            r = run_turn(&ctx.home, &name, &message, &Source::Owner, provider.as_ref(), &tools, on_event) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    if let Some(s) = &spinner {
        s.finish_and_clear();
    }
    let outcome = match result {
        None => {
            let message = format!("interrupted; your message is kept in the history of {name}");
            return Err(Status::new(INTERRUPTED, message).into());
        }
        Some(Err(TurnError::Provider(e))) => return Err(provider_failure(&name, e)),
        Some(Err(TurnError::ToolRefused(r))) => {
            return Err(Exit::failure(format!(
                "{r}\n  your message is kept in the history of {name}, marked as failed"
            ))
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
    Exit::from(wopr_daemon::service::provider_failure(name, e)).into()
}

fn list(ctx: &Ctx, json: bool) -> Result<()> {
    let rows = sessions::list(&ctx.home)?;
    if json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        println!("No sessions yet: create one with `wopr session create <name> \"<context>\"`");
        return Ok(());
    }
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4) + 2;
    println!("{:<w$}{:<26}{:<10}LAST ACTIVITY", "NAME", "PROVIDER", "MESSAGES");
    for s in &rows {
        let last = s.last_activity.map(output::time).unwrap_or_else(|| "-".into());
        let provider = provider_label(s.provider.as_deref(), s.model.as_deref());
        println!("{:<w$}{provider:<26}{:<10}{last}", s.name, s.messages);
    }
    Ok(())
}

fn show(ctx: &Ctx, name: &str, limit: Option<usize>, json: bool) -> Result<()> {
    let d = sessions::detail(&ctx.home, name, limit)?;
    if json {
        return output::json(&d);
    }
    println!("Session {}", d.name);
    println!("  provider: {}", provider_label(d.provider.as_deref(), d.model.as_deref()));
    println!("  created:  {}", output::time(d.created));
    match &d.taint {
        None => println!("  trust:    owner (only your own words in its history)"),
        Some(t) => {
            println!("  trust:    TAINTED: {} ({})", output::printable(&t.reason), output::time(t.since));
            println!("            {UNTRUSTED_TURNS}");
            println!(
                "            start clean: `wopr session fork {} <new> --owner-only` or `wopr session clear {}`",
                d.name, d.name
            );
        }
    }
    println!("  context:  {}", ctx.home.sessions().context_path(&SessionName::new(&d.name)?).display());
    for line in d.context.lines() {
        println!("    {line}");
    }
    println!();
    if d.messages.is_empty() {
        println!("No messages yet.");
    }
    for m in &d.messages {
        print_message(&m.message);
    }
    Ok(())
}

/// What the owner's turns in a tainted session get, in words.
pub(crate) const UNTRUSTED_TURNS: &str = "your turns here run as that source: sandboxed, no network, no P2P tools, whatever the sandbox switch says";

fn print_message(m: &HistoryMessage) {
    let marked = |who: &str| match m.source {
        Source::Owner => who.to_string(),
        ref other => format!("{who} (carries {})", other.label()),
    };
    let who = match m.role {
        Role::User => m.source.label(),
        Role::Assistant => marked("ai"),
        Role::Tool => marked("tool"),
    };
    let who = output::printable(&who);
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

/// Asks `question` on the terminal unless `yes`; `Ok(false)` if the person said no.
fn confirmed(yes: bool, doing: &str, question: &str) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            Exit::invalid(format!("{doing} needs confirmation: run it in a terminal or pass --yes")).into()
        );
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| anyhow!("reading the answer: {e}"))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn delete(ctx: &Ctx, name: &str, yes: bool) -> Result<()> {
    let name = SessionName::new(name)?;
    ctx.home.sessions().get(&name)?;
    if !confirmed(
        yes,
        &format!("deleting {name}"),
        &format!("Delete session {name}, its context and its history?"),
    )? {
        eprintln!("Kept {name}.");
        return Ok(());
    }
    let deleted = sessions::delete(&ctx.home, name.as_str())?;
    println!("Deleted session {name} ({} messages)", deleted.removed);
    Ok(())
}

fn fork(ctx: &Ctx, name: &str, new: &str, owner_only: bool) -> Result<()> {
    let (from, to) = (SessionName::new(name)?, SessionName::new(new)?);
    let mut history = ctx.home.history()?;
    ctx.home.sessions().fork(&from, &to)?;
    let only = owner_only.then_some(&Source::Owner);
    let copied = match history.copy_session(&from, &to, only) {
        Ok(n) => n,
        Err(e) => {
            // No half-made copy: the new session goes again, the original was never touched.
            let _ = ctx.home.sessions().delete(&to);
            return Err(e.into());
        }
    };
    let total = history.count(&from)?;
    match (owner_only, session_taint(&history, &to)?) {
        (true, _) => {
            println!("Forked {from} to {to}: {copied} of {total} messages, only your own (untainted)")
        }
        (false, None) => println!("Forked {from} to {to}: {copied} messages"),
        (false, Some(t)) => println!(
            "{}",
            output::printable(&format!(
                "Forked {from} to {to}: {copied} messages; the copy is tainted too ({}); use --owner-only for a clean one",
                t.reason()
            ))
        ),
    }
    Ok(())
}

fn clear(ctx: &Ctx, name: &str, yes: bool) -> Result<()> {
    let name = SessionName::new(name)?;
    ctx.home.sessions().get(&name)?;
    if !confirmed(
        yes,
        &format!("clearing {name}"),
        &format!("Drop the whole history of {name} (its context stays)?"),
    )? {
        eprintln!("Kept {name}.");
        return Ok(());
    }
    let removed = ctx.home.history()?.delete_session(&name)?;
    // What tainted turns left in their workspace goes with the history that tainted them.
    let tainted = tainted_workspace(&ctx.home, &name);
    match std::fs::remove_dir_all(&tainted) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow!("removing {}: {e}", tainted.display()));
        }
        _ => {}
    }
    println!("Cleared {name}: {removed} messages removed, context and settings kept");
    Ok(())
}

/// Asks `session`'s AI for profile content (an owner turn, kept in the session's history) and returns
/// the JSON object it wrote.
pub async fn generate_profile(ctx: &Ctx, session: &str) -> Result<serde_json::Value> {
    let name = SessionName::new(session)?;
    let meta = ctx.home.sessions().get(&name)?;
    let settings = ctx.provider_settings()?;
    let wanted =
        meta.provider.as_deref().map(str::parse::<ProviderName>).transpose().map_err(Exit::invalid)?;
    let provider = wopr_providers::resolve(wanted, meta.model.as_deref(), &settings)
        .map_err(|e| provider_failure(&name, e))?;
    let tools = SessionTools::new(&ctx.home, &name, &meta);
    let spinner = output::spinner(format!("asking {} ({}) for a profile", provider.name(), provider.model()));
    let outcome = run_turn(
        &ctx.home,
        &name,
        wopr_daemon::service::discover::PROFILE_PROMPT,
        &Source::Owner,
        provider.as_ref(),
        &tools,
        |_| {},
    )
    .await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let text = match outcome {
        Ok(o) => o.text,
        Err(TurnError::Provider(e)) => return Err(provider_failure(&name, e)),
        Err(e) => return Err(e.into()),
    };
    Ok(wopr_daemon::service::discover::profile_from_answer(&text)?)
}
