//! P2P commands: invite, invite claim, inject, access, revoke, peers, audit.
//!
//! Peers choose strings (session names, peer names, refusal messages): human output passes each through
//! `output::printable`, so none reaches the terminal raw; `--json` output stays exact.

use std::io::Write;

use anyhow::Result;
use wopr_daemon::ipc::{Hints, InjectStatus, Request};
use wopr_daemon::service::types::Deleted;
use wopr_store::{Capability, Grant, PeerRecord, SessionName, now_ms};

use super::Ctx;
use super::node::{dispatch_as, p2p_exit, peer_key};
use crate::cli::{AccessArgs, AccessCmd, InviteArgs, InviteCmd, PeersArgs, PeersCmd};
use crate::exit::{Exit, ExitCode};
use crate::output;

pub fn invite(ctx: &Ctx, args: InviteArgs) -> Result<()> {
    let rt = super::runtime()?;
    if let Some(InviteCmd::Claim { token }) = args.command {
        let peer: PeerRecord =
            rt.block_on(dispatch_as(ctx, Request::Claim { token: token.trim().to_string() }, &mut |_| {}))?;
        let sessions: Vec<&String> = peer.sessions.iter().collect();
        let short = peer.short_id.as_str();
        let reach = sessions.iter().map(|s| format!("{short}:{s}")).collect::<Vec<_>>().join(", ");
        println!("{}", output::printable(&format!("Claimed: you can now reach {reach}")));
        let first = sessions.first().map(|s| s.as_str()).unwrap_or("<session>");
        println!("{}", output::printable(&format!("Try: wopr inject {short}:{first} \"Hello!\"")));
        return Ok(());
    }
    let (Some(pubkey), Some(session)) = (args.pubkey, args.session) else {
        return Err(Exit::invalid(
            "usage: wopr invite <pubkey> <session> [--cap message|inject] [--expires 7d]",
        )
        .into());
    };
    let identity = ctx
        .home
        .load_identity()?
        .ok_or_else(|| anyhow::anyhow!("no identity yet: run `wopr id init`"))?
        .identity;
    let subject = peer_key(ctx, &pubkey).map_err(|e| Exit::invalid(e.to_string()))?;
    let name = SessionName::new(&session)?;
    ctx.home.sessions().get(&name)?;
    let cap = Capability::parse(&args.cap).map_err(|e| Exit::invalid(e.to_string()))?;
    let ttl = parse_duration(&args.expires)?;
    let hints = match rt.block_on(wopr_daemon::client::connect(&ctx.home)) {
        Some(stream) => {
            let v: Hints = rt
                .block_on(wopr_daemon::client::call_as(stream, &Request::Hints, |_| {}))
                .map_err(Exit::from)?;
            v.hints
        }
        None => {
            return Err(Exit::failure("no daemon is running: start it with `wopr daemon start` so the invite carries an address where the recipient can reach you")
            .into());
        }
    };
    let token = wopr_p2p::create_invite(&identity, &subject, &[name.to_string()], &[cap], Some(ttl), hints)
        .map_err(p2p_exit)?;
    println!("{token}");
    eprintln!(
        "Invite for {} to {name} ({}), valid {}. Only the holder of that key can claim it: `wopr invite claim <token>`",
        subject.short(),
        cap.as_str(),
        args.expires
    );
    Ok(())
}

/// `30s`, `15m`, `12h`, `7d` to milliseconds.
fn parse_duration(s: &str) -> Result<u64, Exit> {
    wopr_daemon::service::parse_duration(s).map_err(Exit::from)
}

pub fn inject(ctx: &Ctx, target: &str, message: &str) -> Result<()> {
    let (peer, session) = target
        .split_once(':')
        .filter(|(p, s)| !p.is_empty() && !s.is_empty())
        .ok_or_else(|| Exit::invalid(format!("{target:?} is not <peer>:<session>")))?;
    SessionName::new(session)?;
    let text = output::arg_or_stdin(message, "message")?;
    let mut stdout = std::io::stdout();
    let mut wrote = false;
    let rt = super::runtime()?;
    let req = Request::Inject { peer: peer.into(), session: session.into(), text, hops: 0 };
    let result: InjectStatus = rt.block_on(dispatch_as(ctx, req, &mut |d| {
        let _ = stdout.write_all(output::printable(d).as_bytes());
        let _ = stdout.flush();
        wrote = true;
    }))?;
    if wrote {
        println!();
    }
    match result.status.as_str() {
        "completed" => Ok(()),
        "logged" => {
            eprintln!("Logged in {peer}:{session} (your capability is `message`: no AI answer)");
            Ok(())
        }
        other => Err(Exit::new(
            ExitCode::Rejected,
            format!("the peer ended the answer: {}", output::printable(other)),
        )
        .into()),
    }
}

pub fn revoke(ctx: &Ctx, peer: &str) -> Result<()> {
    let rt = super::runtime()?;
    let key = peer_key(ctx, peer).map_err(p2p_exit)?;
    let removed = if rt.block_on(wopr_daemon::client::connect(&ctx.home)).is_some() {
        let done: Deleted =
            rt.block_on(dispatch_as(ctx, Request::Revoke { peer: key.to_hex() }, &mut |_| {}))?;
        done.removed as usize
    } else {
        // No daemon: no open connections to close, only the grants to remove.
        ctx.home.access().revoke(&key.to_hex(), None, now_ms())?.1
    };
    println!("Revoked {}: {removed} grant(s) removed, connections closed", key.short());
    Ok(())
}

pub fn access(ctx: &Ctx, args: AccessArgs) -> Result<()> {
    if let Some(AccessCmd::Grant { peer, session, cap }) = args.command {
        let cap = Capability::parse(&cap).map_err(|e| Exit::invalid(e.to_string()))?;
        let g = grant(ctx, &peer, std::slice::from_ref(&session), &[cap], "cli:access_grant", None)?;
        println!(
            "{}",
            output::printable(&format!(
                "Granted {} ({}) {} on {session}",
                g.peer_name,
                g.peer_key.short(),
                cap.as_str()
            ))
        );
        return Ok(());
    }
    let grants = ctx.home.access().load()?.grants;
    if args.json {
        return output::json(&grants);
    }
    if grants.is_empty() {
        println!(
            "Nobody has access to your sessions. Invite someone: `wopr invite <their-pubkey> <session>`"
        );
        return Ok(());
    }
    println!("{:<18}{:<10}{:<28}{:<16}{:<18}LAST SEEN", "PEER", "ID", "SESSIONS", "CAPABILITIES", "SINCE");
    for g in grants {
        let sessions = g.sessions.iter().cloned().collect::<Vec<_>>().join(",");
        let caps = g.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",");
        let seen = g.last_seen.map(output::time).unwrap_or_else(|| "never".into());
        let line = format!(
            "{:<18}{:<10}{:<28}{:<16}{:<18}{seen}",
            g.peer_name,
            g.peer_key.short(),
            sessions,
            caps,
            output::time(g.granted_at)
        );
        println!("{}", output::printable(&line));
    }
    Ok(())
}

/// Grants `peer` `caps` on every session of `sessions` and records it in the audit log as `action`:
/// `wopr access grant` and the agent's `p2p_grant_access` tool (see [`wopr_daemon::service::grant`]).
pub(crate) fn grant(
    ctx: &Ctx,
    peer: &str,
    sessions: &[String],
    caps: &[Capability],
    action: &str,
    asked_in: Option<&SessionName>,
) -> Result<Grant> {
    Ok(wopr_daemon::service::grant(&ctx.home, peer, sessions, caps, action, asked_in).map_err(Exit::from)?)
}

pub fn peers(ctx: &Ctx, args: PeersArgs) -> Result<()> {
    if let Some(PeersCmd::Rename { peer, name }) = args.command {
        let p = ctx.home.peers().rename(&peer, &name, now_ms())?;
        println!("{}", output::printable(&format!("Renamed {} to {}", p.short_id, p.name)));
        return Ok(());
    }
    let peers = ctx.home.peers().load()?.peers;
    if args.json {
        return output::json(&peers);
    }
    if peers.is_empty() {
        println!("You can reach nobody yet. Claim an invite: `wopr invite claim <token>`");
        return Ok(());
    }
    println!("{:<18}{:<10}{:<32}LAST SEEN", "NAME", "ID", "SESSIONS");
    for p in peers {
        let sessions = p.sessions.iter().cloned().collect::<Vec<_>>().join(",");
        let seen = p.last_seen.map(output::time).unwrap_or_else(|| "never".into());
        println!("{}", output::printable(&format!("{:<18}{:<10}{:<32}{seen}", p.name, p.short_id, sessions)));
    }
    Ok(())
}

pub fn audit(ctx: &Ctx, peer: Option<String>, limit: usize, json: bool) -> Result<()> {
    let key = peer.map(|p| peer_key(ctx, &p)).transpose().map_err(|e| Exit::invalid(e.to_string()))?;
    let entries = ctx.home.audit()?.list(key.as_ref(), Some(limit))?;
    if json {
        return output::json(&entries);
    }
    if entries.is_empty() {
        println!("No P2P requests recorded.");
    }
    for e in entries {
        let short = wopr_identity::PublicId::parse(&e.peer).map(|k| k.short()).unwrap_or(e.peer.clone());
        let session = e.session.as_deref().unwrap_or("-");
        let reason = e.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        let signed = if e.signature.is_some() { " signed" } else { "" };
        let line = format!(
            "[{}] {short} {} {session}: {:?}{reason}{signed}",
            output::time(e.time_ms),
            e.action,
            e.decision
        );
        println!("{}", output::printable(&line));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("7d").unwrap(), 7 * 86_400_000);
        assert_eq!(super::parse_duration("30m").unwrap(), 1_800_000);
        assert_eq!(super::parse_duration("12h").unwrap(), 43_200_000);
        assert!(super::parse_duration("7w").is_err());
        assert!(super::parse_duration("0d").is_err());
        assert!(super::parse_duration("d").is_err());
    }
}
