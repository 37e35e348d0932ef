//! `wopr friend`: requests, accepts, the list, removal and auto-accept rules.
//!
//! Names in friend messages are the other side's choice: human output goes through `printable`.

use anyhow::Result;
use wopr_daemon::ipc::{FriendOp, Request};
use wopr_daemon::service::discover as service;
use wopr_daemon::service::types::FriendAcceptReply;
use wopr_p2p::FriendOutcome;
use wopr_store::Friend;

use super::Ctx;
use super::node::dispatch_as;
use crate::cli::{AutoAcceptCmd, FriendCmd};
use crate::output::{self, printable};

pub fn run(ctx: &Ctx, cmd: FriendCmd) -> Result<()> {
    let rt = super::runtime()?;
    match cmd {
        FriendCmd::Request { target, json } => {
            let op = FriendOp::Request { target: target.clone() };
            let reply: FriendOutcome = rt.block_on(dispatch_as(ctx, Request::Friend(op), &mut |_| {}))?;
            if json {
                return output::json(&reply);
            }
            print_request(&target, &reply);
            Ok(())
        }
        FriendCmd::Accept { query, json } => {
            let op = FriendOp::Accept { query };
            let a: FriendAcceptReply = rt.block_on(dispatch_as(ctx, Request::Friend(op), &mut |_| {}))?;
            if json {
                return output::json(&a);
            }
            let f = &a.friend;
            let line =
                format!("Friends with {} ({}); their session here is {}.", f.name, f.short_id, f.session);
            println!("{}", printable(&line));
            if let Some(topic) = &a.via_topic {
                let line =
                    format!("They were not reachable directly; the accept was posted in topic {topic}.");
                println!("{}", printable(&line));
            }
            if !a.delivered {
                let why = a.undelivered_reason.as_deref().unwrap_or("");
                println!(
                    "{}",
                    printable(&format!("They could not be reached ({why}); send them this line:"))
                );
                println!("{}", printable(a.line.as_deref().unwrap_or("")));
            }
            Ok(())
        }
        FriendCmd::List { json } => {
            let list = service::friend_list(&ctx.home)?;
            if json {
                return output::json(&list);
            }
            if list.friends.is_empty() && list.incoming.is_empty() && list.outgoing.is_empty() {
                println!("No friends yet: wopr friend request <peer>");
            }
            for f in &list.friends {
                let how = if f.auto_accepted { " (auto-accepted)" } else { "" };
                println!("{}", printable(&format!("{}  {}  session {}{how}", f.name, f.short_id, f.session)));
            }
            for r in &list.incoming {
                let line = format!(
                    "waiting for you: {} ({}) — wopr friend accept {}",
                    r.name,
                    r.from.short(),
                    r.name
                );
                println!("{}", printable(&line));
            }
            for r in &list.outgoing {
                println!("{}", printable(&format!("waiting for them: {} ({})", r.name, r.to.short())));
            }
            Ok(())
        }
        FriendCmd::Remove { name } => {
            let op = FriendOp::Remove { query: name };
            let f: Friend = rt.block_on(dispatch_as(ctx, Request::Friend(op), &mut |_| {}))?;
            println!("{}", printable(&format!("No longer friends with {}; their grant is revoked.", f.name)));
            Ok(())
        }
        FriendCmd::AutoAccept(c) => auto_accept(ctx, c),
    }
}

fn print_request(target: &str, reply: &FriendOutcome) {
    match reply {
        FriendOutcome::Accepted { friend } => {
            let line =
                format!("Friends with {} ({}): their rule accepted you.", friend.name, friend.short_id);
            println!("{}", printable(&line));
        }
        FriendOutcome::Pending { reason, .. } => {
            println!("{}", printable(&format!("Request delivered to {target}: {reason}")));
        }
        FriendOutcome::Posted { topic, reason, line } => {
            println!(
                "{}",
                printable(&format!(
                    "{target} is not reachable directly ({reason}); the request was posted in topic {topic} for them. \
                     Their answer comes back through it. You can also send them this line:"
                ))
            );
            println!("{}", printable(line));
        }
        FriendOutcome::Undelivered { reason, line } => {
            let note = format!(
                "Could not deliver it now ({reason}). It stays pending; you can also send them this line:"
            );
            println!("{}", printable(&note));
            println!("{}", printable(line));
        }
    }
}

fn auto_accept(ctx: &Ctx, cmd: AutoAcceptCmd) -> Result<()> {
    match cmd {
        AutoAcceptCmd::Add { pattern } => {
            let change = service::add_rule(&ctx.home, &pattern)?;
            let rule = &change.rule;
            let note = if rule == "*" { " (anyone: friends still start with `message` only)" } else { "" };
            let verb = if change.changed { "Added" } else { "Already had" };
            println!("{}", printable(&format!("{verb} auto-accept rule {rule}{note}")));
        }
        AutoAcceptCmd::Remove { pattern } => {
            let change = service::remove_rule(&ctx.home, &pattern)?;
            println!("{}", printable(&format!("Removed auto-accept rule {}", change.rule)));
        }
        AutoAcceptCmd::List { json } => {
            let rules = service::friend_list(&ctx.home)?.auto_accept;
            if json {
                return output::json(&rules);
            }
            if rules.is_empty() {
                println!("No auto-accept rules: every friend request waits for you.");
            }
            for p in &rules {
                println!("{}", printable(p));
            }
        }
    }
    Ok(())
}
