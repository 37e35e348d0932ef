//! `wopr doctor net`: the node's connectivity as iroh measures it, asked of the daemon if one runs (its
//! endpoint is the one peers use), else of a node started for the check.

use std::fmt::Write as _;

use anyhow::Result;
use wopr_daemon::ipc::Request;
use wopr_p2p::{NatKind, NetReport};

use super::Ctx;
use super::node::{dispatch, p2p_exit, peer_key};
use crate::cli::DoctorCmd;
use crate::output::{self, printable};

pub fn run(ctx: &Ctx, cmd: DoctorCmd) -> Result<()> {
    match cmd {
        DoctorCmd::Net { peer, wait, json } => net(ctx, peer.as_deref(), wait, json),
    }
}

fn net(ctx: &Ctx, peer: Option<&str>, wait: u64, json: bool) -> Result<()> {
    let peer = peer.map(|p| peer_key(ctx, p)).transpose().map_err(p2p_exit)?;
    let request = Request::NetReport { peer: peer.map(|p| p.to_hex()), wait };
    let rt = super::runtime()?;
    let spinner = output::spinner(format!("measuring the network (up to {wait} s per step)"));
    let value = rt.block_on(dispatch(ctx, request, &mut |_| {}));
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let report: NetReport = serde_json::from_value(value?)?;
    if json {
        return output::json(&report);
    }
    print!("{}", render(&report));
    Ok(())
}

/// The report as short lines for a terminal.
fn render(r: &NetReport) -> String {
    let mut out = String::new();
    let list = |items: Vec<String>| if items.is_empty() { "none".to_string() } else { items.join(", ") };
    let _ = writeln!(out, "Bound:       {}", list(r.bound.iter().map(|a| a.to_string()).collect()));
    let _ = writeln!(out, "Interfaces:  {}", list(r.interfaces.iter().map(|a| a.to_string()).collect()));
    let _ = writeln!(out, "Advertised:  {}", list(r.advertised.iter().map(|a| a.to_string()).collect()));
    if !r.relay.enabled {
        let _ = writeln!(
            out,
            "Relay:       disabled (p2p.relay = disabled): peers need this node's direct address"
        );
    } else {
        let _ = writeln!(out, "Relay:       {}", printable(&r.relay.mode));
        if r.relay.relays.is_empty() {
            let _ = writeln!(out, "             no relay answered");
        }
        for relay in &r.relay.relays {
            let latency = match (relay.latency_ms, &relay.latency_probe) {
                (Some(ms), Some(probe)) => format!("{ms:.1} ms ({probe})"),
                (Some(ms), None) => format!("{ms:.1} ms"),
                _ => "no answer".into(),
            };
            let role = match (relay.home, relay.connected) {
                (true, true) => "home, connected",
                (true, false) => "home, NOT connected",
                (false, _) => "probed",
            };
            let _ = writeln!(out, "             {} {latency}, {role}", printable(&relay.url));
            if let Some(e) = &relay.error {
                let _ = writeln!(out, "             last error: {}", printable(e));
            }
        }
        let udp = match (r.relay.udp_v4, r.relay.udp_v6) {
            (true, true) => "IPv4 and IPv6",
            (true, false) => "IPv4",
            (false, true) => "IPv6",
            (false, false) => "no answer (UDP may be blocked)",
        };
        let _ = writeln!(out, "UDP:         {udp}");
        if r.relay.captive_portal == Some(true) {
            let _ = writeln!(out, "             a captive portal seems to intercept HTTP");
        }
    }
    let public: Vec<String> =
        [r.nat.public_v4, r.nat.public_v6].iter().flatten().map(|a| a.to_string()).collect();
    let _ = writeln!(
        out,
        "Public:      {}",
        if public.is_empty() { "unknown".to_string() } else { public.join(", ") }
    );
    let kind = match r.nat.kind {
        NatKind::None => "none",
        NatKind::EndpointIndependent => "endpoint-independent",
        NatKind::Symmetric => "symmetric",
        NatKind::BehindUnknownMapping => "yes, mapping unknown",
        NatKind::Unknown => "unknown",
    };
    let _ = writeln!(out, "NAT:         {kind}: {}", r.nat.explanation);
    let lan = match r.lan.state.as_str() {
        "running" => format!("mDNS on, {} peer(s) seen", r.lan.peers.len()),
        "failed" => format!("mDNS failed: {}", printable(r.lan.error.as_deref().unwrap_or("?"))),
        _ => "mDNS off (discover.mdns = false)".into(),
    };
    let _ = writeln!(out, "LAN:         {lan}");
    if let Some(sources) = &r.bootstrap_sources {
        for s in sources {
            let mark = if s.answered { "answered" } else { "no answer" };
            let _ = writeln!(out, "Bootstrap:   {} {mark}: {}", printable(&s.source), printable(&s.detail));
        }
    }
    if let Some(p) = &r.peer {
        let short = p.id.get(..16).unwrap_or(&p.id);
        let line = match (&p.path, &p.error) {
            (Some(path), _) => {
                let rtt = p.rtt_ms.map(|ms| format!(", round trip {ms:.1} ms")).unwrap_or_default();
                format!("{} ({}{rtt})", printable(path), p.kind)
            }
            (None, Some(e)) => format!("unreachable: {}", printable(e)),
            (None, None) => "unreachable".into(),
        };
        let _ = writeln!(out, "Peer {short}: {line}");
    }
    out
}
