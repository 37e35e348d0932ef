//! Command implementations: each validates its raw arguments into library types, then does one thing.

mod agent_p2p;
mod config;
mod daemon;
mod discover;
mod doctor;
mod friend;
mod id;
mod model;
mod node;
mod p2p;
mod providers;
mod rotate;
mod sandbox;
mod security;
mod session;

use anyhow::Result;
use wopr_store::{Config, Home};

use crate::cli::{Cli, Command};

/// What every command gets: the home directory.
pub struct Ctx {
    pub home: Home,
}

impl Ctx {
    fn new() -> Result<Self> {
        Ok(Ctx { home: Home::from_env()? })
    }

    /// Provider settings from the environment and `config.json`'s `providers` object.
    pub fn provider_settings(&self) -> Result<wopr_providers::Settings> {
        let config = Config::of(&self.home).load()?;
        let providers = config.get("providers").cloned().unwrap_or(serde_json::Value::Null);
        Ok(wopr_providers::Settings::from_env(providers, self.home.models_dir()))
    }
}

pub fn run(cli: Cli) -> Result<()> {
    if let Command::Completions { shell } = cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "wopr", &mut std::io::stdout());
        return Ok(());
    }
    let ctx = Ctx::new()?;
    match cli.command {
        Command::Id(args) => id::run(&ctx, args),
        Command::Session(c) => session::run(&ctx, c),
        Command::Config(c) => config::run(&ctx, c),
        Command::Providers { json } => providers::run(&ctx, json),
        Command::Model(c) => model::run(&ctx, c),
        Command::Invite(args) => p2p::invite(&ctx, args),
        Command::Inject { target, message } => p2p::inject(&ctx, &target, &message),
        Command::Access(args) => p2p::access(&ctx, args),
        Command::Revoke { peer } => p2p::revoke(&ctx, &peer),
        Command::Peers(args) => p2p::peers(&ctx, args),
        Command::Audit { peer, limit, json } => p2p::audit(&ctx, peer, limit, json),
        Command::Sandbox(c) => sandbox::run(&ctx, c),
        Command::Security(crate::cli::SecurityCmd::Show { json }) => security::show(&ctx, json),
        Command::Doctor(c) => doctor::run(&ctx, c),
        Command::Daemon(c) => daemon::run(&ctx, c),
        Command::Ui { open } => daemon::ui(&ctx, open),
        Command::Discover(c) => discover::run(&ctx, c),
        Command::Friend(c) => friend::run(&ctx, c),
        Command::Completions { .. } => Ok(()),
    }
}

/// A single-threaded runtime for the commands that do network or model work.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}
