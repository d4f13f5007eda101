//! `conclave outbox`: send the queued copies over SMTP, or export them as files.

use std::io::Write;

use anyhow::Result;

use super::common::{open, unlock};
use crate::cli::{Cli, OutboxCmd};

/// Runs an `outbox` subcommand.
pub fn dispatch(cli: &Cli, cmd: &OutboxCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        OutboxCmd::Send { now } => {
            // With the key usable, copies gone stale are signed again first.
            let mut list = open(cli)?;
            unlock(&mut list, cli)?;
            if *now {
                list.store().retry_now()?;
            }
            let list = std::sync::Mutex::new(list);
            let r = conclave_core::relay::delivery::send_outbox(&list)?;
            let left: i64 = conclave_core::relay::lock(&list)
                .store()
                .outbox_counts()?
                .iter()
                .filter(|(s, _)| s == "queued")
                .map(|(_, n)| n)
                .sum();
            writeln!(
                out,
                "sent {}, failed {}, deferred {}, still queued {left}",
                r.sent, r.failed, r.deferred
            )?;
        }
        OutboxCmd::Export { outdir } => {
            let list = open(cli)?;
            let written = list.export_outbox(outdir)?;
            writeln!(
                out,
                "wrote {} copies to {}",
                written.len(),
                outdir.display()
            )?;
        }
    }
    Ok(())
}
