//! `conclave requests`: the subscriptions and key changes asked by mail,
//! listed, approved or refused by the owner.

use std::io::Write;

use anyhow::Result;

use super::common::{open, open_unlocked, unix};
use crate::cli::{Cli, RequestsCmd};
use crate::inert::one_line;

/// Runs a `requests` subcommand; deciding one sends a reply, signed with
/// the list key.
pub fn dispatch(cli: &Cli, cmd: &RequestsCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        RequestsCmd::List => {
            let list = open(cli)?;
            for r in list.requests()? {
                let waits = if r.awaiting_owner {
                    match r.proof_at {
                        Some(at) => format!(
                            "waiting for the owner (key proven {})",
                            conclave_core::clock::rfc5322(unix(at))
                        ),
                        None => "waiting for the owner".to_string(),
                    }
                } else {
                    format!(
                        "waiting for the key proof until {}",
                        conclave_core::clock::rfc5322(unix(r.expires_at))
                    )
                };
                let old = r
                    .old_fingerprint
                    .as_deref()
                    .map(|o| format!(" (replacing {o})"))
                    .unwrap_or_default();
                let warning = r
                    .key
                    .warning
                    .as_deref()
                    .map(|w| format!(" [{w}]"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}\t{}\t{}\t{} {}{old}{warning}\t{}\t{waits}",
                    r.id,
                    r.kind,
                    one_line(&r.address),
                    r.key.fingerprint,
                    one_line(&r.key.algorithm),
                    conclave_core::clock::rfc5322(unix(r.asked_at)),
                )?;
            }
        }
        RequestsCmd::Approve { id } => {
            let mut list = open_unlocked(cli)?;
            writeln!(out, "{}", one_line(&list.approve_request(*id)?))?;
        }
        RequestsCmd::Refuse { id, reason } => {
            let mut list = open_unlocked(cli)?;
            list.refuse_request(*id, reason)?;
            writeln!(out, "request #{id} refused")?;
        }
    }
    Ok(())
}
