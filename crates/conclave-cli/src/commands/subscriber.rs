//! `conclave subscriber`: add, list and remove subscribers.

use std::io::Write;

use anyhow::{Context, Result};

use super::common::open;
use crate::cli::{Cli, SubscriberCmd};

/// Runs a `subscriber` subcommand.
pub fn dispatch(cli: &Cli, cmd: &SubscriberCmd, out: &mut impl Write) -> Result<()> {
    let mut list = open(cli)?;
    match cmd {
        SubscriberCmd::Add { address, key } => {
            let bytes = std::fs::read(key)
                .with_context(|| format!("cannot read the key file {}", key.display()))?;
            let s = list.add_subscriber(address, &bytes)?;
            writeln!(out, "subscribed {} with key {}", s.address, s.fingerprint)?;
        }
        SubscriberCmd::List => {
            for s in list.subscribers()? {
                match s.warning {
                    Some(w) => writeln!(out, "{} {} (warning: {w})", s.address, s.fingerprint)?,
                    None => writeln!(out, "{} {}", s.address, s.fingerprint)?,
                }
            }
        }
        SubscriberCmd::Remove { address } => {
            list.remove_subscriber(address)?;
            writeln!(out, "removed {address}")?;
        }
    }
    Ok(())
}
