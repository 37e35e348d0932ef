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
    /// Create an invite for a peer's public key, or claim one (`wopr invite claim <token>`).
    Invite(InviteArgs),
    /// Send a message to a peer's session (`<peer>:<session>`); the AI's answer streams back.
    Inject {
        /// `<peer>:<session>`, where peer is a name, short id or full id from `wopr peers`.
        target: String,
        /// The message; `-` reads it from standard input.
        message: String,
    },
    /// Who can reach which of my sessions; `access grant` to grant explicitly.
    Access(AccessArgs),
    /// Revoke every grant of a peer and close its connections now.
    Revoke {
        /// Name, short id or full id.
        peer: String,
    },
    /// Whom I can reach.
    Peers(PeersArgs),
    /// The audit log of every accepted or refused P2P request.
    Audit {
        /// Only this peer (name, short id or full id).
        #[arg(long)]
        peer: Option<String>,
        /// Show at most this many of the latest entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sandboxes for the AI's tools: doctor, exec, build-image.
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// Show the security policy in force.
    #[command(subcommand)]
    Security(SecurityCmd),
    /// Connectivity checks: `doctor net` (relays, NAT, LAN, the path to a peer).
    #[command(subcommand)]
    Doctor(DoctorCmd),
    /// Run the background daemon that answers peers and serves the HTTP API and web UI.
    #[command(subcommand)]
    Daemon(DaemonCmd),
    /// Print a one-time link that logs the web UI in (the daemon must run).
    Ui {
        /// Also open it in the browser.
        #[arg(long)]
        open: bool,
    },
    /// Friends: signed requests and accepts, each friend with a dedicated session.
    #[command(subcommand)]
    Friend(FriendCmd),
    /// Find peers in topics, with no central server: join, profiles, connect.
    #[command(subcommand)]
    Discover(DiscoverCmd),
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
        /// Tell every known peer (peers that are offline learn it at the next connection).
        #[arg(long)]
        broadcast: bool,
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
        /// Whether the AI's tools run in the sandbox for your own messages (peers' turns always do).
        #[arg(long, value_enum, default_value_t = OnOff::On)]
        sandbox: OnOff,
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
    /// Copy a session (settings, context and history) under a new name.
    Fork {
        name: String,
        /// Name of the copy.
        new: String,
        /// Copy only what you wrote and the answers to it: nothing a peer (or any other source) wrote,
        /// nor anything produced after it, so the copy starts untainted.
        #[arg(long)]
        owner_only: bool,
    },
    /// Drop a session's history, keeping its settings and context (it is no longer tainted).
    Clear {
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
    /// Sandbox your own turns' tools or not (peers' turns always are).
    SetSandbox {
        name: String,
        /// on or off.
        #[arg(value_enum)]
        mode: OnOff,
    },
}

/// A switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// Probe every sandbox property on this host for each backend.
    Doctor {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a command in the sandbox under a trust level's policy.
    Exec {
        /// native or docker (default: config `sandbox.backend`, else native).
        #[arg(long)]
        backend: Option<String>,
        /// untrusted, trusted or owner.
        #[arg(long, default_value = "untrusted")]
        trust: String,
        /// Host directory mounted as the writable /workspace (default: $WOPR_HOME/workspaces/exec).
        #[arg(long)]
        workspace: Option<std::path::PathBuf>,
        /// Print the outcome as JSON (status, stdout, stderr, truncation, timing).
        #[arg(long)]
        json: bool,
        /// The program and its arguments.
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// Build the Docker backend's image locally from a static busybox (nothing is pulled).
    BuildImage,
}

#[derive(Debug, Subcommand)]
pub enum DoctorCmd {
    /// Bound addresses, relay reachability and latency, whether a NAT is in the way and of which kind,
    /// LAN discovery, and (with --peer) whether the path to a peer is direct or relayed.
    Net {
        /// Also show how this node reaches this peer (name, short id or full id), dialling it if needed.
        #[arg(long)]
        peer: Option<String>,
        /// How long to wait for the relay, the measurements and a direct path, in seconds.
        #[arg(long, default_value_t = 10)]
        wait: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecurityCmd {
    /// The effective policy per session and per source.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
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

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct InviteArgs {
    #[command(subcommand)]
    pub command: Option<InviteCmd>,
    /// The recipient's public key (64 hex, `wopr://<hex>`, or a known peer).
    #[arg(required = true)]
    pub pubkey: Option<String>,
    /// The session they may reach.
    #[arg(required = true)]
    pub session: Option<String>,
    /// message (log only) or inject (AI answers).
    #[arg(long, default_value = "inject")]
    pub cap: String,
    /// How long the invite is valid: 30m, 12h, 7d.
    #[arg(long, default_value = "7d")]
    pub expires: String,
}

#[derive(Debug, Subcommand)]
pub enum InviteCmd {
    /// Claim an invite: connect to its issuer and prove you are its subject.
    Claim {
        /// The `wop1://` token.
        token: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AccessArgs {
    #[command(subcommand)]
    pub command: Option<AccessCmd>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccessCmd {
    /// Grant a known peer access to a session.
    Grant {
        /// Name, short id or full id.
        peer: String,
        session: String,
        /// message or inject.
        #[arg(long, default_value = "message")]
        cap: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PeersArgs {
    #[command(subcommand)]
    pub command: Option<PeersCmd>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PeersCmd {
    /// Give a peer a name.
    Rename {
        /// Current name, short id or full id.
        peer: String,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DaemonCmd {
    /// Start in the background (logs to $WOPR_HOME/daemon.log).
    Start,
    /// Run in the foreground.
    Run,
    /// Show pid, uptime, id, addresses, relay, connected peers and an iroh ticket.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the daemon's log.
    Logs {
        /// Keep printing new lines.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Stop gracefully: running answers get a few seconds to finish, then are cancelled.
    Stop,
    /// Print the HTTP API's bearer token (in $WOPR_HOME/daemon-token, made at the first start).
    Token {
        /// Make a new token; the old one and every web UI login stop working.
        #[arg(long)]
        rotate: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DiscoverCmd {
    /// Join a topic and show peers as their profiles arrive or expire (Ctrl+C to stop watching). With a
    /// daemon running, the daemon holds the topic and stays in it after you stop watching.
    Join {
        /// The topic name (a secret name makes a private meeting place).
        topic: String,
        /// Print each event as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Leave a topic, withdrawing your profile.
    Leave { topic: String },
    /// The topics the daemon is in.
    Topics {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Peers seen in your topics now (profiles are signed; forged ones never appear).
    Peers {
        /// Only this topic.
        topic: Option<String>,
        /// Only these keys (comma-separated short or full ids); `discover.only` sets it for good.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Also what the AI content filter dropped, and why.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show your profile, or set or generate its content.
    Profile(ProfileArgs),
    /// Ask a peer seen in a topic for mutual trust (it decides; `discover.accept` on its side).
    Connect {
        /// Its short id, full id or profile name.
        peer: String,
        /// The session you would like on its side.
        #[arg(long)]
        session: Option<String>,
        /// Why you ask.
        #[arg(long, default_value = "")]
        message: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Topics, bootstrap sources and the spam layers' settings.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Connect-requests waiting for you (with `discover.accept ask`).
    Requests {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept a waiting connect-request.
    Accept { peer: String },
    /// Decline a waiting connect-request.
    Decline { peer: String },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProfileArgs {
    #[command(subcommand)]
    pub command: Option<ProfileCmd>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Set the content: any JSON, public to everyone in your topics (at most 2,048 bytes).
    Set { json: String },
    /// Let a session's AI write the content; shows it and asks before publishing.
    Generate {
        /// The session whose AI writes it.
        #[arg(long, default_value = "main")]
        session: String,
        /// Publish without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FriendCmd {
    /// Ask a peer to become friends (a peer seen in a topic, a name or id from `wopr peers`, or a key).
    Request {
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept a waiting request (its name or id), or a pasted FRIEND_REQUEST or FRIEND_ACCEPT line.
    Accept {
        query: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Friends, and requests waiting either way.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a friendship and revoke its grant.
    Remove { name: String },
    /// Rules that accept friend requests without asking (`*`, a name, `a|b`, or a full key).
    #[command(subcommand)]
    AutoAccept(AutoAcceptCmd),
}

#[derive(Debug, Subcommand)]
pub enum AutoAcceptCmd {
    /// Add a rule.
    Add { pattern: String },
    /// Remove a rule.
    Remove { pattern: String },
    /// List the rules.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
