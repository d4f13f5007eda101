//! `conclave subscriber`: add, list and remove subscribers.

use std::io::Write;

use anyhow::{Context, Result};

use super::common::{open, open_unlocked};
use crate::cli::{Cli, SubscriberCmd};

/// Runs a `subscriber` subcommand.
pub fn dispatch(cli: &Cli, cmd: &SubscriberCmd, out: &mut impl Write) -> Result<()> {
    let mut list = match cmd {
        SubscriberCmd::CheckKeys => return check_keys(cli, out),
        _ => open(cli)?,
    };
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
            let expiring = list.expiring_keys()?;
            let not_receiving = list.not_receiving()?;
            for s in list.subscribers()? {
                let mut line = format!("{} {}", s.address, s.fingerprint);
                if let Some(w) = &s.warning {
                    line.push_str(&format!(" (warning: {w})"));
                }
                line.push_str(&format!(" delivery: {}", health(&s.delivery)));
                if let Some(n) = not_receiving.iter().find(|n| n.address == s.address) {
                    line.push_str(" [not receiving");
                    if let Some(since) = n.since {
                        line.push_str(&format!(
                            ": missed {} posts since {}",
                            n.missed,
                            conclave_core::clock::iso_date(super::common::unix(since))
                        ));
                    }
                    line.push(']');
                } else if let Some(k) = expiring.iter().find(|k| k.address == s.address) {
                    line.push_str(&format!(
                        " [expires soon: {}{}]",
                        conclave_core::clock::iso_date(k.expires),
                        if k.told {
                            "; told how to extend it"
                        } else {
                            ""
                        }
                    ));
                }
                writeln!(out, "{line}")?;
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
        SubscriberCmd::CheckKeys => {}
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

/// `subscriber check-keys`: the key check, now.
fn check_keys(cli: &Cli, out: &mut impl Write) -> Result<()> {
    // The notices are signed with the list key.
    let mut list = open_unlocked(cli)?;
    let check = list.check_keys()?;
    let lines = check.lines();
    if lines.is_empty() {
        writeln!(out, "every key serves; none expires soon")?;
    }
    for l in lines {
        writeln!(out, "{l}")?;
    }
    if !check.told.is_empty() {
        writeln!(
            out,
            "{} notices queued; `conclave run --once` sends them",
            check.told.len()
        )?;
    }
    Ok(())
}
