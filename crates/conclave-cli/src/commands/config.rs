//! `conclave config`: show and set the list's options, keep server passwords.

use std::io::Write;

use anyhow::Result;

use super::common::open;
use crate::cli::{Cli, ConfigCmd};

/// Runs a `config` subcommand.
pub fn dispatch(cli: &Cli, cmd: &ConfigCmd, out: &mut impl Write) -> Result<()> {
    let mut list = open(cli)?;
    match cmd {
        ConfigCmd::Set { key, value } => {
            list.config_set(key, value)?;
            writeln!(out, "{key} = {value}")?;
        }
        ConfigCmd::Show => {
            for (k, v) in list.config_show()? {
                writeln!(out, "{k} = {v}")?;
            }
        }
        ConfigCmd::Password { server, file, show } => {
            if !*show {
                // Room enough that the line is not moved while it is read;
                // the Secret wipes it when dropped.
                let mut read = String::with_capacity(1024);
                let got = std::io::stdin().read_line(&mut read);
                let line = conclave_core::secrets::Secret::from(read);
                got?;
                let password = line.expose().trim_end_matches(['\n', '\r']);
                list.set_server_password(server, password, *file)?;
            }
            writeln!(
                out,
                "the {server} password {} {}",
                if *show { "comes from" } else { "is kept in" },
                list.password_source(server)?
            )?;
        }
    }
    Ok(())
}
