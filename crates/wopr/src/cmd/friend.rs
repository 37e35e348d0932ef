//! `wopr friend`: requests, accepts, the list, removal and auto-accept rules.
//!
//! Names in friend messages are the other side's choice: human output goes through `printable`.

use anyhow::Result;
use serde_json::{Value, json};
use wopr_daemon::ipc::{FriendOp, Request};

use super::Ctx;
use super::node::dispatch;
use crate::cli::{AutoAcceptCmd, FriendCmd};
use crate::output::{self, printable};

pub fn run(ctx: &Ctx, cmd: FriendCmd) -> Result<()> {
    let rt = super::runtime()?;
    let call = |op: FriendOp| rt.block_on(dispatch(ctx, Request::Friend(op), &mut |_| {}));
    match cmd {
        FriendCmd::Request { target, json } => {
            let v = call(FriendOp::Request { target: target.clone() })?;
            if json {
                return output::json(&v);
            }
            match v["status"].as_str() {
                Some("accepted") => {
                    let f = &v["friend"];
                    println!(
                        "{}",
                        printable(&format!(
                            "Friends with {} ({}): their rule accepted you.",
                            name(f),
                            f["shortId"].as_str().unwrap_or("?")
                        ))
                    );
                }
                Some("pending") => {
                    println!(
                        "{}",
                        printable(&format!(
                            "Request delivered to {target}: {}",
                            v["reason"].as_str().unwrap_or("")
                        ))
                    );
                }
                Some("posted") => {
                    println!(
                        "{}",
                        printable(&format!(
                            "{target} is not reachable directly ({}); the request was posted in topic {} for them. \
                             Their answer comes back through it. You can also send them this line:",
                            v["reason"].as_str().unwrap_or(""),
                            v["topic"].as_str().unwrap_or("?")
                        ))
                    );
                    println!("{}", printable(v["line"].as_str().unwrap_or("")));
                }
                _ => {
                    println!(
                        "{}",
                        printable(&format!(
                            "Could not deliver it now ({}). It stays pending; you can also send them this line:",
                            v["reason"].as_str().unwrap_or("")
                        ))
                    );
                    println!("{}", printable(v["line"].as_str().unwrap_or("")));
                }
            }
            Ok(())
        }
        FriendCmd::Accept { query, json } => {
            let v = call(FriendOp::Accept { query })?;
            if json {
                return output::json(&v);
            }
            let f = &v["friend"];
            println!(
                "{}",
                printable(&format!(
                    "Friends with {} ({}); their session here is {}.",
                    name(f),
                    f["shortId"].as_str().unwrap_or("?"),
                    f["session"].as_str().unwrap_or("?")
                ))
            );
            if let Some(topic) = v["viaTopic"].as_str() {
                println!(
                    "{}",
                    printable(&format!(
                        "They were not reachable directly; the accept was posted in topic {topic}."
                    ))
                );
            }
            if v["delivered"] == false {
                println!(
                    "{}",
                    printable(&format!(
                        "They could not be reached ({}); send them this line:",
                        v["undeliveredReason"].as_str().unwrap_or("")
                    ))
                );
                println!("{}", printable(v["line"].as_str().unwrap_or("")));
            }
            Ok(())
        }
        FriendCmd::List { json } => {
            let doc = ctx.home.friends().load()?;
            if json {
                return output::json(&list_json(&doc));
            }
            if doc.friends.is_empty() && doc.incoming.is_empty() && doc.outgoing.is_empty() {
                println!("No friends yet: wopr friend request <peer>");
            }
            for f in &doc.friends {
                let how = if f.auto_accepted { " (auto-accepted)" } else { "" };
                println!("{}", printable(&format!("{}  {}  session {}{how}", f.name, f.short_id, f.session)));
            }
            for r in &doc.incoming {
                println!(
                    "{}",
                    printable(&format!(
                        "waiting for you: {} ({}) — wopr friend accept {}",
                        r.name,
                        r.from.short(),
                        r.name
                    ))
                );
            }
            for r in &doc.outgoing {
                println!("{}", printable(&format!("waiting for them: {} ({})", r.name, r.to.short())));
            }
            Ok(())
        }
        FriendCmd::Remove { name: who } => {
            let v = call(FriendOp::Remove { query: who })?;
            println!(
                "{}",
                printable(&format!(
                    "No longer friends with {}; their grant is revoked.",
                    name(&v["removed"])
                ))
            );
            Ok(())
        }
        FriendCmd::AutoAccept(c) => auto_accept(ctx, c),
    }
}

/// The friend list as `wopr friend list --json` prints it (and the agent's `friend_list` tool returns).
pub(crate) fn list_json(doc: &wopr_store::FriendsFile) -> Value {
    json!({
        "friends": doc.friends,
        "incoming": doc.incoming,
        "outgoing": doc.outgoing,
        "autoAccept": doc.auto_accept.patterns(),
    })
}

fn name(f: &Value) -> &str {
    f["name"].as_str().unwrap_or("?")
}

fn auto_accept(ctx: &Ctx, cmd: AutoAcceptCmd) -> Result<()> {
    let friends = ctx.home.friends();
    match cmd {
        AutoAcceptCmd::Add { pattern } => {
            let (rule, new) = friends.add_rule(&pattern)?;
            let note = if rule == "*" { " (anyone: friends still start with `message` only)" } else { "" };
            let verb = if new { "Added" } else { "Already had" };
            println!("{}", printable(&format!("{verb} auto-accept rule {rule}{note}")));
        }
        AutoAcceptCmd::Remove { pattern } => {
            let rule = friends.remove_rule(&pattern)?;
            println!("{}", printable(&format!("Removed auto-accept rule {rule}")));
        }
        AutoAcceptCmd::List { json } => {
            let doc = friends.load()?;
            if json {
                return output::json(&doc.auto_accept.patterns());
            }
            if doc.auto_accept.patterns().is_empty() {
                println!("No auto-accept rules: every friend request waits for you.");
            }
            for p in doc.auto_accept.patterns() {
                println!("{}", printable(p));
            }
        }
    }
    Ok(())
}
