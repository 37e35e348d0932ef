//! `wopr discover`: topics, profiles, connect-requests. The daemon holds topics; without one, `join`
//! runs a node in the foreground until Ctrl+C.
//!
//! Profiles are strangers' words: human output passes them through `output::printable`.

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wopr_daemon::client;
use wopr_daemon::ipc::{DiscoverOp, Request};
use wopr_daemon::service::discover as service;
use wopr_daemon::service::types::{ConnectReply, Decided, ProfileSet, TopicChange};
use wopr_p2p::discovery::{
    DiscoverSettings, DiscoverStatus, DiscoveryEvent, PeerView, PendingView, SourceStatus, TopicStatus,
    VerdictWord,
};

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
            let _: TopicChange = rt.block_on(daemon_op(ctx, DiscoverOp::Leave { topic: topic.clone() }))?;
            println!("{}", printable(&format!("Left {topic}; your profile was withdrawn.")));
            Ok(())
        }
        DiscoverCmd::Topics { json } => {
            let topics: Vec<TopicStatus> = rt.block_on(daemon_op(ctx, DiscoverOp::Topics))?;
            if json {
                return output::json(&topics);
            }
            if topics.is_empty() {
                println!("No topics. Join one: wopr discover join <topic>");
            }
            for t in &topics {
                println!("{}", printable(&topic_line(t)));
            }
            Ok(())
        }
        DiscoverCmd::Peers { topic, only, all, json } => {
            let only = (!only.is_empty()).then(|| only.join(","));
            let peers: Vec<PeerView> = rt.block_on(daemon_op(ctx, DiscoverOp::Peers { topic, all, only }))?;
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
            let c: ConnectReply = rt.block_on(daemon_op(ctx, op))?;
            if json {
                return output::json(&c);
            }
            let short = c.peer.public_key.short();
            println!("{}", printable(&format!("Connected: {short} accepted ({}).", c.reason)));
            let reach = c.peer.sessions.iter().map(|s| format!("{short}:{s}")).collect::<Vec<_>>().join(", ");
            println!("{}", printable(&format!("You can now reach {reach}; see `wopr peers`.")));
            Ok(())
        }
        DiscoverCmd::Status { json } => rt.block_on(status(ctx, json)),
        DiscoverCmd::Requests { json } => {
            let requests: Vec<PendingView> = rt.block_on(daemon_op(ctx, DiscoverOp::Requests))?;
            if json {
                return output::json(&requests);
            }
            if requests.is_empty() {
                println!("No connect-requests waiting.");
            }
            for r in &requests {
                println!("{}", printable(&format!("{}  note: {}", peer_line(&r.peer), r.note)));
            }
            Ok(())
        }
        DiscoverCmd::Accept { peer } => decide(ctx, &rt, peer, true),
        DiscoverCmd::Decline { peer } => decide(ctx, &rt, peer, false),
    }
}

fn decide(ctx: &Ctx, rt: &tokio::runtime::Runtime, peer: String, accept: bool) -> Result<()> {
    let d: Decided = rt.block_on(daemon_op(ctx, DiscoverOp::Decide { peer, accept }))?;
    println!("{} the connect-request of {}.", if accept { "Accepted" } else { "Declined" }, d.peer);
    Ok(())
}

/// Runs `op` on the daemon, whose answer is a `T`; discovery state lives there.
pub(crate) async fn daemon_op<T: DeserializeOwned>(ctx: &Ctx, op: DiscoverOp) -> Result<T> {
    let Some(stream) = client::connect(&ctx.home).await else {
        return Err(Exit::failure("no daemon is running: topics are held by the daemon (`WOPR_TOPICS=<topic> wopr daemon start`) or by a foreground `wopr discover join <topic>`")
        .into());
    };
    client::call_as(stream, &Request::Discover(op), |_| {}).await.map_err(|e| Exit::from(e).into())
}

fn topic_line(t: &TopicStatus) -> String {
    format!("{}  ({} peers, {} neighbours)", t.name, t.peers, t.neighbors)
}

/// One peer, for people: short id, topic, content, and the filter's word if it dropped it.
fn peer_line(p: &PeerView) -> String {
    let mut line = format!("{}  [{}]  {}", p.id, p.topic, p.content);
    if p.verdict == VerdictWord::Filtered {
        line.push_str(&format!("  (filtered: {})", p.reason.as_deref().unwrap_or("")));
    }
    line
}

fn print_event(event: &DiscoveryEvent, json: bool) {
    if json {
        println!("{}", serde_json::to_string(event).unwrap_or_default());
        return;
    }
    let line = match event {
        DiscoveryEvent::Appeared { peer } => format!("+ {}", peer_line(peer)),
        DiscoveryEvent::Updated { peer } => format!("~ {}", peer_line(peer)),
        DiscoveryEvent::Filtered { peer } => format!("x {}", peer_line(peer)),
        DiscoveryEvent::Gone { id, why, .. } => format!("- {id} ({})", why.as_str()),
        DiscoveryEvent::Joined { topic } => format!("Joined {topic}"),
        DiscoveryEvent::Left { topic } => format!("Left {topic}"),
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
            if let Ok(ev) = serde_json::from_str::<DiscoveryEvent>(line) {
                print_event(&ev, json);
            }
        });
        // Ctrl+C stops watching; the daemon stays in the topic.
        tokio::select! {
            r = watching => { r.map_err(Exit::from)?; }
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
                Ok(ev) => print_event(&ev, json),
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
            let p: PeerView = match client::connect(&ctx.home).await {
                Some(_) => daemon_op(ctx, DiscoverOp::Profile { topic: None }).await?,
                None => {
                    let node = start_node(ctx).await?;
                    let p = node.profile(None);
                    node.shutdown().await;
                    p.map_err(p2p_exit)?
                }
            };
            if args.json {
                return output::json(&p);
            }
            println!("{}", printable(&format!("id:         {}", p.id)));
            println!("{}", printable(&format!("publicKey:  {}", p.public_key)));
            println!("{}", printable(&format!("encryptPub: {}", p.encrypt_pub)));
            println!("{}", printable(&format!("content:    {}", p.content)));
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
    let set = set_profile(ctx, value).await?;
    if set.announced {
        println!("Profile set ({} bytes) and announced in your topics.", set.bytes);
    } else {
        println!("Profile set ({} bytes); it is announced when you join a topic.", set.bytes);
    }
    Ok(())
}

/// Stores `value` as `discover.profile` (refusing one too large for an announce) and has a running
/// daemon announce it: `wopr discover profile set` and the agent's `discover_profile_set` tool.
pub(crate) async fn set_profile(ctx: &Ctx, value: &Value) -> Result<ProfileSet> {
    let set = service::set_profile(&ctx.home, None, value)?;
    if client::connect(&ctx.home).await.is_some() {
        let _: bool = daemon_op(ctx, DiscoverOp::Reload).await?;
        return Ok(ProfileSet { announced: true, ..set });
    }
    Ok(set)
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
    if client::connect(&ctx.home).await.is_none() {
        let s = DiscoverSettings::load(&ctx.home).map_err(p2p_exit)?;
        let mdns = wopr_p2p::NodeConfig::load(&ctx.home).map_err(p2p_exit)?.mdns;
        let configured = serde_json::json!({
            "topics": s.topics, "bootstrap": s.bootstrap, "knownPeers": s.known_peers,
            "mdns": mdns, "dht": s.dht, "dhtBootstrap": s.dht_bootstrap,
            "filter": s.filter.to_string(), "accept": s.accept.to_string(),
        });
        if json_out {
            return output::json(
                &serde_json::json!({"running": false, "topics": [], "configured": configured}),
            );
        }
        println!("No daemon running; discovery is off. Configured:");
        println!("{}", printable(&serde_json::to_string_pretty(&configured)?));
        return Ok(());
    }
    let v: DiscoverStatus = daemon_op(ctx, DiscoverOp::Status).await?;
    if json_out {
        let mut out = serde_json::to_value(&v)?;
        out["running"] = true.into();
        return output::json(&out);
    }
    println!("Topics:");
    for t in &v.topics {
        println!("{}", printable(&format!("  {}", topic_line(t))));
    }
    println!("Bootstrap sources:");
    let s = &v.sources;
    for (name, source) in [
        ("static (discover.bootstrap)", &s.static_nodes),
        ("known peers", &s.known_peers),
        ("LAN (mDNS)", &s.mdns),
        ("mainline DHT", &s.dht),
    ] {
        println!("{}", printable(&format!("  {name}: {}", source_line(source))));
    }
    let only = v.only.as_ref().map_or("off".to_string(), |keys| format!("{} keys", keys.len()));
    println!(
        "{}",
        printable(&format!(
            "Layers: signatures always; only-list {only}; content filter {}; accept {}",
            v.filter, v.accept
        ))
    );
    Ok(())
}

fn source_line(s: &SourceStatus) -> String {
    let state = if s.enabled { format!("on, {} found", s.found) } else { "off".into() };
    let note = s.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    format!("{state}{note}")
}
