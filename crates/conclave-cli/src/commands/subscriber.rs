//! `conclave subscriber`: add, list and remove subscribers.

use std::io::Write;

use anyhow::{Context, Result};

use super::common::open;
use crate::cli::{Cli, SubscriberCmd};

/// Runs a `subscriber` subcommand.
pub fn dispatch(cli: &Cli, cmd: &SubscriberCmd, out: &mut impl Write) -> Result<()> {
    let mut list = open(cli)?;
    match cmd {
        SubscriberCmd::Add {
            address,
            key,
            replace,
        } => {
            let bytes = std::fs::read(key)
                .with_context(|| format!("cannot read the key file {}", key.display()))?;
            let current = list
                .subscribers()?
                .into_iter()
                .find(|s| s.address == address.trim().to_ascii_lowercase())
                .map(|s| s.fingerprint);
            match current {
                Some(old) if *replace => {
                    let (s, dropped) = list.replace_subscriber_key(address, &old, &bytes)?;
                    if s.fingerprint == old {
                        writeln!(out, "updated the key {} of {}", s.fingerprint, s.address)?;
                    } else {
                        writeln!(
                            out,
                            "replaced the key of {}: {old} -> {} ({dropped} copies queued for the old key dropped)",
                            s.address, s.fingerprint
                        )?;
                    }
                }
                _ => {
                    let s = list.add_subscriber(address, &bytes)?;
                    writeln!(out, "subscribed {} with key {}", s.address, s.fingerprint)?;
                }
            }
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
            let dropped = list.remove_subscriber(address)?;
            match dropped {
                0 => writeln!(out, "removed {address}")?,
                n => writeln!(
                    out,
                    "removed {address} ({n} copies still queued for them dropped)"
                )?,
            }
        }
    }
    Ok(())
}
