//! The code that runs the commands, kept apart from their grammar in
//! `cli.rs`: [`run`] hands each command to the module of its noun.

mod card;
mod certs;
mod common;
mod config;
mod held;
mod init;
mod invite;
mod key;
mod keys;
mod log;
mod outbox;
mod process;
mod requests;
mod run;
mod subscriber;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Runs the command on the command line, writing its output to standard
/// output (held locked until the command is done).
pub fn run(cli: Cli) -> Result<()> {
    // Whatever a command prints may carry text from posts: no control
    // character of it reaches the terminal.
    let mut out = crate::inert::Inert::new(std::io::stdout().lock());
    match &cli.command {
        Command::Init(args) => init::dispatch(&cli, args, &mut out),
        Command::Key { cmd } => key::dispatch(&cli, cmd, &mut out),
        Command::Keys { cmd } => keys::dispatch(&cli, cmd, &mut out),
        Command::Subscriber { cmd } => subscriber::dispatch(&cli, cmd, &mut out),
        Command::Config { cmd } => config::dispatch(&cli, cmd, &mut out),
        Command::Process { files } => process::dispatch(&cli, files, &mut out),
        Command::Outbox { cmd } => outbox::dispatch(&cli, cmd, &mut out),
        Command::Held { cmd } => held::dispatch(&cli, cmd, &mut out),
        Command::Requests { cmd } => requests::dispatch(&cli, cmd, &mut out),
        Command::Run { once } => run::dispatch(&cli, *once, &mut out),
        Command::Certs { cmd } => certs::dispatch(&cli, cmd, &mut out),
        Command::Card { cmd } => card::dispatch(&cli, cmd, &mut out),
        Command::Invite(args) => invite::dispatch(&cli, args, &mut out),
        Command::Log { limit } => log::dispatch(&cli, *limit, &mut out),
        Command::Bounces { limit } => log::bounces(&cli, *limit, &mut out),
    }
}
