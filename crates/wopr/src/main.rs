//! `wopr`: self-sovereign AI session management over P2P.
#![deny(unsafe_code)]

mod cli;
mod cmd;
mod exit;
mod output;

use clap::Parser;

fn main() {
    exit::quiet_on_closed_pipe();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::ExitCode::Invalid.code() } else { 0 };
            if let Err(io) = e.print()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                std::process::exit(exit::CLOSED_PIPE);
            }
            std::process::exit(code);
        }
    };
    // Everything WOPR creates in its home is private to the user.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    if let Err(err) = cmd::run(cli) {
        if exit::is_closed_pipe(&err) {
            std::process::exit(exit::CLOSED_PIPE);
        }
        output::print_error(&err);
        std::process::exit(exit::status_of(&err));
    }
}
