//! `wopr discover`: topics, profiles, connect-requests. The daemon holds topics; without one, `join`
//! runs a node in the foreground until Ctrl+C.
//!
//! Profiles are strangers' words: human output passes them through `output::printable`.

use anyhow::Result;
use serde_json::{Value, json};
use wopr_daemon::client;
use wopr_daemon::ipc::{DiscoverOp, Request};
use wopr_p2p::discovery::DiscoverSettings;
use wopr_p2p::discovery::settings::content_text;
use wopr_store::{Config, ConfigKey};

use super::Ctx;
use super::node::{p2p_exit, start_node};
use crate::cli::{DiscoverCmd, ProfileArgs, ProfileCmd};
use crate::exit::Exit;
use crate::output::{self, printable};

pub fn run(ctx: &Ctx, cmd: DiscoverCmd) -> Result<()> {
    let rt = super::runtime()?;
    match cmd {
        DiscoverCmd::Join { topic, json } => rt.block_on(join(ctx, topic, json)),
        DiscoverCmd::Leave { topic } => {
            rt.block_on(daemon_op(ctx, DiscoverOp::Leave { topic: topic.clone() }))?;
            println!("{}", printable(&format!("Left {topic}; your profile was withdrawn.")));
            Ok(())
        }
        DiscoverCmd::Topics { json } => {
            let v = rt.block_on(daemon_op(ctx, DiscoverOp::Topics))?;
            if json {
                return output::json(&v["topics"]);
            }
            let topics = v["topics"].as_array().cloned().unwrap_or_default();
            if topics.is_empty() {
                println!("No topics. Join one: wopr discover join <topic>");
            }
            for t in topics {
                let line = format!(
                    "{}  ({} peers, {} neighbours)",
                    t["name"].as_str().unwrap_or("?"),
                    t["peers"],
                    t["neighbors"]
                );
                println!("{}", printable(&line));
            }
            Ok(())
        }
        DiscoverCmd::Peers { topic, only, all, json } => {
            let v = rt.block_on(daemon_op(ctx, DiscoverOp::Peers { topic, all }))?;
            let mut peers = v["peers"].as_array().cloned().unwrap_or_default();
            if !only.is_empty() {
                peers.retain(|p| only.iter().any(|k| p["id"] == k.as_str() || p["publicKey"] == k.as_str()));
            }
            if json {
                return output::json(&peers);
            }
            if peers.is_empty() {
                println!("No peers seen right now (peers are listed only while they are online).");
            }
            for p in &peers {
                println!("{}", printable(&peer_line(p)));
            }
            Ok(())
        }
        DiscoverCmd::Profile(args) => rt.block_on(profile(ctx, args)),
        DiscoverCmd::Connect { peer, session, message, json } => {
            let op = DiscoverOp::Connect { peer, session, note: message };
            let v = rt.block_on(daemon_op(ctx, op))?;
            if json {
                return output::json(&v);
            }
            let short = v["peer"]["shortId"].as_str().unwrap_or("?");
            let sessions: Vec<&str> =
                v["peer"]["sessions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let reason = v["reason"].as_str().unwrap_or("");
            println!("{}", printable(&format!("Connected: {short} accepted ({reason}).")));
            let reach = sessions.iter().map(|s| format!("{short}:{s}")).collect::<Vec<_>>().join(", ");
            println!("{}", printable(&format!("You can now reach {reach}; see `wopr peers`.")));
            Ok(())
        }
        DiscoverCmd::Status { json } => rt.block_on(status(ctx, json)),
        DiscoverCmd::Requests { json } => {
            let v = rt.block_on(daemon_op(ctx, DiscoverOp::Requests))?;
            if json {
                return output::json(&v["requests"]);
            }
            let requests = v["requests"].as_array().cloned().unwrap_or_default();
            if requests.is_empty() {
                println!("No connect-requests waiting.");
            }
            for r in requests {
                let line = format!("{}  note: {}", peer_line(&r["peer"]), r["note"].as_str().unwrap_or(""));
                println!("{}", printable(&line));
            }
            Ok(())
        }
        DiscoverCmd::Accept { peer } => decide(ctx, &rt, peer, true),
        DiscoverCmd::Decline { peer } => decide(ctx, &rt, peer, false),
    }
}

fn decide(ctx: &Ctx, rt: &tokio::runtime::Runtime, peer: String, accept: bool) -> Result<()> {
    let v = rt.block_on(daemon_op(ctx, DiscoverOp::Decide { peer, accept }))?;
    let key = v["peer"].as_str().unwrap_or("?");
    println!("{} the connect-request of {key}.", if accept { "Accepted" } else { "Declined" });
    Ok(())
}

/// Runs `op` on the daemon; discovery state lives there.
pub(crate) async fn daemon_op(ctx: &Ctx, op: DiscoverOp) -> Result<Value> {
    let Some(stream) = client::connect(&ctx.home).await else {
        return Err(Exit {
            code: 1,
            message: "no daemon is running: topics are held by the daemon (`WOPR_TOPICS=<topic> wopr daemon start`) or by a foreground `wopr discover join <topic>`".into(),
        }
        .into());
    };
    client::call(stream, &Request::Discover(op), |_| {})
        .await
        .map_err(|e| Exit { code: e.exit_code(), message: e.to_string() }.into())
}

/// One peer, for people: short id, topic, content, and the filter's word if it judged.
fn peer_line(p: &Value) -> String {
    let mut line = format!(
        "{}  [{}]  {}",
        p["id"].as_str().unwrap_or("?"),
        p["topic"].as_str().unwrap_or("?"),
        p["content"]
    );
    if p["verdict"] == "filtered" {
        line.push_str(&format!("  (filtered: {})", p["reason"].as_str().unwrap_or("")));
    }
    line
}

fn print_event(event: &Value, json: bool) {
    if json {
        println!("{event}");
        return;
    }
    let line = match event["event"].as_str().unwrap_or("") {
        "appeared" => format!("+ {}", peer_line(&event["peer"])),
        "updated" => format!("~ {}", peer_line(&event["peer"])),
        "filtered" => format!("x {}", peer_line(&event["peer"])),
        "gone" => {
            format!("- {} ({})", event["id"].as_str().unwrap_or("?"), event["why"].as_str().unwrap_or(""))
        }
        "joined" => format!("Joined {}", event["topic"].as_str().unwrap_or("?")),
        "left" => format!("Left {}", event["topic"].as_str().unwrap_or("?")),
        _ => return,
    };
    println!("{}", printable(&line));
}

async fn join(ctx: &Ctx, topic: String, json: bool) -> Result<()> {
    if let Some(stream) = client::connect(&ctx.home).await {
        if !json {
            println!(
                "{}",
                printable(&format!(
                    "Listening for peers in {topic}... (Ctrl+C to exit; the daemon stays in the topic)"
                ))
            );
        }
        let request = Request::Discover(DiscoverOp::Join { topic, watch: true });
        let watching = client::call(stream, &request, |line| {
            if let Ok(ev) = serde_json::from_str::<Value>(line) {
                print_event(&ev, json);
            }
        });
        // Ctrl+C stops watching; the daemon stays in the topic.
        tokio::select! {
            r = watching => { r.map_err(|e| Exit { code: e.exit_code(), message: e.to_string() })?; }
            _ = tokio::signal::ctrl_c() => {}
        }
        return Ok(());
    }
    let node = start_node(ctx).await?;
    let mut events = node.discovery_events();
    if let Err(e) = node.join(&topic).await {
        node.shutdown().await;
        return Err(p2p_exit(e).into());
    }
    if !json {
        println!("{}", printable(&format!("Listening for peers in {topic}... (Ctrl+C to exit)")));
    }
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => print_event(&serde_json::to_value(&ev).unwrap_or_default(), json),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    node.shutdown().await;
    Ok(())
}

async fn profile(ctx: &Ctx, args: ProfileArgs) -> Result<()> {
    match args.command {
        None => {
            let v = match client::connect(&ctx.home).await {
                Some(_) => daemon_op(ctx, DiscoverOp::Profile { topic: None }).await?,
                None => {
                    let node = start_node(ctx).await?;
                    let p = node.profile(None);
                    node.shutdown().await;
                    serde_json::to_value(p.map_err(p2p_exit)?)?
                }
            };
            if args.json {
                return output::json(&v);
            }
            println!("{}", printable(&format!("id:         {}", v["id"].as_str().unwrap_or("?"))));
            println!("{}", printable(&format!("publicKey:  {}", v["publicKey"].as_str().unwrap_or("?"))));
            println!("{}", printable(&format!("encryptPub: {}", v["encryptPub"].as_str().unwrap_or("?"))));
            println!("{}", printable(&format!("content:    {}", v["content"])));
            Ok(())
        }
        Some(ProfileCmd::Set { json }) => {
            let value: Value = serde_json::from_str(&json).map_err(|e| {
                Exit::invalid(format!(
                    "the profile content must be JSON, such as '{{\"name\": \"Alice\"}}': {e}"
                ))
            })?;
            publish(ctx, &value).await
        }
        Some(ProfileCmd::Generate { session, yes }) => {
            let value = super::session::generate_profile(ctx, &session).await?;
            println!("{}", printable(&format!("The AI of {session} suggests:\n{value}")));
            if !yes && !confirm("Publish it in your topics?")? {
                println!("Not published.");
                return Ok(());
            }
            publish(ctx, &value).await
        }
    }
}

/// Stores the content as `discover.profile` and has a running daemon announce it.
async fn publish(ctx: &Ctx, value: &Value) -> Result<()> {
    let (bytes, announced) = set_profile(ctx, value).await?;
    if announced {
        println!("Profile set ({bytes} bytes) and announced in your topics.");
    } else {
        println!("Profile set ({bytes} bytes); it is announced when you join a topic.");
    }
    Ok(())
}

/// Stores `value` as `discover.profile` (refusing one too large for an announce) and has a running
/// daemon announce it: `wopr discover profile set` and the agent's `discover_profile_set` tool. Returns
/// its size in bytes and whether a daemon announced it now.
pub(crate) async fn set_profile(ctx: &Ctx, value: &Value) -> Result<(usize, bool)> {
    let text = content_text(value).map_err(p2p_exit)?;
    Config::of(&ctx.home).set(&ConfigKey::parse("discover.profile")?, value.clone())?;
    let announced = client::connect(&ctx.home).await.is_some();
    if announced {
        daemon_op(ctx, DiscoverOp::Reload).await?;
    }
    Ok((text.len(), announced))
}

fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(Exit::invalid("not a terminal: add --yes to publish without asking").into());
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn status(ctx: &Ctx, json_out: bool) -> Result<()> {
    let v = match client::connect(&ctx.home).await {
        Some(_) => {
            let mut v = daemon_op(ctx, DiscoverOp::Status).await?;
            v["running"] = json!(true);
            v
        }
        None => {
            let s = DiscoverSettings::load(&ctx.home).map_err(p2p_exit)?;
            let mdns = wopr_p2p::NodeConfig::load(&ctx.home).map_err(p2p_exit)?.mdns;
            json!({
                "running": false,
                "topics": [],
                "configured": {
                    "topics": s.topics, "bootstrap": s.bootstrap, "knownPeers": s.known_peers,
                    "mdns": mdns, "dht": s.dht, "dhtBootstrap": s.dht_bootstrap,
                    "filter": s.filter.to_string(), "accept": s.accept.to_string(),
                },
            })
        }
    };
    if json_out {
        return output::json(&v);
    }
    if v["running"] == false {
        println!("No daemon running; discovery is off. Configured:");
        println!("{}", printable(&serde_json::to_string_pretty(&v["configured"])?));
        return Ok(());
    }
    println!("Topics:");
    for t in v["topics"].as_array().into_iter().flatten() {
        println!(
            "{}",
            printable(&format!(
                "  {}  ({} peers, {} neighbours)",
                t["name"].as_str().unwrap_or("?"),
                t["peers"],
                t["neighbors"]
            ))
        );
    }
    println!("Bootstrap sources:");
    for (name, key) in [
        ("static (discover.bootstrap)", "staticNodes"),
        ("known peers", "knownPeers"),
        ("LAN (mDNS)", "mdns"),
        ("mainline DHT", "dht"),
    ] {
        let s = &v["sources"][key];
        let state = if s["enabled"] == true { format!("on, {} found", s["found"]) } else { "off".into() };
        let note = s["note"].as_str().map(|n| format!(" ({n})")).unwrap_or_default();
        println!("{}", printable(&format!("  {name}: {state}{note}")));
    }
    println!(
        "{}",
        printable(&format!(
            "Layers: signatures always; only-list {}; content filter {}; accept {}",
            if v["only"].is_null() {
                "off".to_string()
            } else {
                format!("{} keys", v["only"].as_array().map_or(0, Vec::len))
            },
            v["filter"].as_str().unwrap_or("?"),
            v["accept"].as_str().unwrap_or("?")
        ))
    );
    Ok(())
}
