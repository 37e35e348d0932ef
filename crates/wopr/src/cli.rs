//! Command-line arguments (clap). Raw strings are validated into library types in `cmd/`.

use clap::{Args, Parser, Subcommand};

/// Self-sovereign AI session management over P2P.
#[derive(Debug, Parser)]
#[command(name = "wopr", version, about, propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show, create or rotate this installation's identity.
    Id(IdArgs),
    /// Named AI sessions with persistent context.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Read and write config.json with dotted keys.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// List AI providers and whether each is usable here.
    Providers {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage local model files for the embedded provider.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IdArgs {
    #[command(subcommand)]
    pub command: Option<IdCmd>,
    /// Print JSON (`shortId`, `publicKey`, `encryptPub`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum IdCmd {
    /// Create Ed25519 and X25519 keys in $WOPR_HOME/identity.json.
    Init {
        /// Replace an existing identity (peers will no longer recognise you).
        #[arg(long)]
        force: bool,
    },
    /// Replace the keys with new ones, keeping a rotation record signed by both.
    Rotate {
        /// scheduled, compromise or upgrade.
        #[arg(long, default_value = "scheduled")]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Create a session with an optional context (system prompt).
    Create {
        name: String,
        /// The session's context; `-` reads it from standard input.
        context: Option<String>,
        /// Provider for this session (default: auto-detect at each inject).
        #[arg(long)]
        provider: Option<String>,
        /// Model for this session.
        #[arg(long)]
        model: Option<String>,
    },
    /// Send a message and stream the AI's answer.
    Inject {
        name: String,
        /// The message; `-` reads it from standard input.
        message: String,
        /// Print the outcome as JSON instead of streaming text.
        #[arg(long)]
        json: bool,
    },
    /// Store a message in the history without asking the AI.
    Log {
        name: String,
        /// The message; `-` reads it from standard input.
        message: String,
    },
    /// List sessions.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a session's settings, context and history.
    Show {
        name: String,
        /// Show at most this many of the latest messages.
        #[arg(long)]
        limit: Option<usize>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a session, its context and its history.
    Delete {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Change the provider (and model) of a session.
    SetProvider {
        name: String,
        /// kimi, anthropic, openai, openai-compatible, local, or auto.
        provider: String,
        /// Model for this session.
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the value at a dotted key.
    Get {
        key: String,
        /// Print JSON even for strings.
        #[arg(long)]
        json: bool,
    },
    /// Set a dotted key to a JSON value (anything that is not JSON is stored as a string).
    Set { key: String, value: String },
    /// Remove a dotted key.
    Unset { key: String },
    /// List every key and value.
    List {
        /// Print the whole document as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// Download the default model (SmolLM2-135M-Instruct, ~98 MB) into $WOPR_HOME/models.
    Pull {
        /// Download again even if the file is there.
        #[arg(long)]
        force: bool,
    },
    /// List model files and which one the local provider uses.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
