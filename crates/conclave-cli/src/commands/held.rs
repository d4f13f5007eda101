//! `conclave held`: list, show, approve, reject and discard posts held for
//! moderation.

use std::io::Write;

use anyhow::Result;

use super::common::{open, open_unlocked, unix};
use crate::cli::{Cli, HeldCmd};
use crate::inert::one_line;

/// Runs a `held` subcommand; showing and approving need the list key.
pub fn dispatch(cli: &Cli, cmd: &HeldCmd, out: &mut impl Write) -> Result<()> {
    let needs_key = !matches!(
        cmd,
        HeldCmd::List | HeldCmd::Reject { .. } | HeldCmd::Discard { .. }
    );
    let mut list = if needs_key {
        open_unlocked(cli)?
    } else {
        open(cli)?
    };
    match cmd {
        HeldCmd::List => {
            for p in list.held()? {
                let from = if p.sender.is_empty() {
                    "(unknown sender)"
                } else {
                    &p.sender
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    p.id,
                    conclave_core::clock::rfc5322(unix(p.received_at)),
                    one_line(from),
                    one_line(&p.reason)
                )?;
            }
        }
        HeldCmd::Show { id } => {
            let v = list.held_show(*id)?;
            writeln!(
                out,
                "Post: #{}\nFrom: {}\nSubject: {}\nSignature: {}\nHeld because: {}\n\n{}",
                v.id,
                one_line(&v.sender),
                one_line(&v.subject),
                one_line(&v.signature),
                one_line(&v.reason),
                v.text
            )?;
            for k in &v.keys {
                writeln!(
                    out,
                    "\nAttached key that signed this post: {} (for {})",
                    k.fingerprint,
                    one_line(&k.addresses.join(", "))
                )?;
            }
        }
        HeldCmd::Approve { id } => {
            writeln!(out, "{}", one_line(&list.held_approve(*id)?.to_string()))?
        }
        HeldCmd::Reject { id, reason } => writeln!(out, "{}", list.held_reject(*id, reason)?)?,
        HeldCmd::Discard { id } => writeln!(out, "{}", list.held_discard(*id)?)?,
    }
    Ok(())
}
