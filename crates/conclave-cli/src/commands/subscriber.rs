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
                let health = health(&s.delivery);
                match s.warning {
                    Some(w) => writeln!(
                        out,
                        "{} {} (warning: {w}) delivery: {health}",
                        s.address, s.fingerprint
                    )?,
                    None => writeln!(out, "{} {} delivery: {health}", s.address, s.fingerprint)?,
                }
            }
        }
        SubscriberCmd::Enable { address } => {
            list.enable_delivery(address)?;
            writeln!(
                out,
                "copies go to {} again; bounce score cleared",
                address.trim().to_ascii_lowercase()
            )?;
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

/// How a subscriber's copies fare, in a few words: `ok`, `score 1.5` or
/// `stopped (score 5)`, and the last failure.
fn health(h: &conclave_core::store::DeliveryHealth) -> String {
    let mut out = if h.disabled {
        format!("stopped after bounces (score {})", h.score)
    } else if h.score > 0.0 {
        format!("bounce score {}", h.score)
    } else {
        "ok".to_string()
    };
    if h.last_failure_at > 0 {
        out.push_str(&format!(
            "; last failure {} {} {}",
            conclave_core::clock::rfc5322(super::common::unix(h.last_failure_at)),
            crate::inert::one_line(&h.last_failure_status),
            crate::inert::one_line(&h.last_failure_text)
        ));
    }
    out.trim_end().to_string()
}
