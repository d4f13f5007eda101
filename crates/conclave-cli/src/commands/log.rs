//! `conclave log`: the tail of the audit log (what happened to each post,
//! never its content); `conclave bounces`: the tail of the bounce log.

use std::io::Write;

use anyhow::Result;

use super::common::{open, unix};
use crate::cli::Cli;
use crate::inert::one_line;

/// Prints the last `limit` entries of the audit log.
pub fn dispatch(cli: &Cli, limit: i64, out: &mut impl Write) -> Result<()> {
    let list = open(cli)?;
    for e in list.store().audit_tail(limit)? {
        let post = e.post_id.map(|p| format!(" #{p}")).unwrap_or_default();
        writeln!(
            out,
            "{} {}{post}: {}",
            conclave_core::clock::rfc5322(unix(e.at)),
            e.event,
            one_line(&e.detail)
        )?;
    }
    Ok(())
}

/// Prints the last `limit` bounces: when, whose copy, how bad, how the list
/// heard of it, what was done, and what the server said.
pub fn bounces(cli: &Cli, limit: i64, out: &mut impl Write) -> Result<()> {
    let list = open(cli)?;
    for b in list.store().bounce_log(limit)? {
        let recipient = if b.recipient.is_empty() {
            "(nobody named)".to_string()
        } else {
            one_line(&b.recipient)
        };
        let status = if b.status.is_empty() {
            String::new()
        } else {
            format!(" {}", one_line(&b.status))
        };
        let detail = if b.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", one_line(&b.detail))
        };
        writeln!(
            out,
            "{} {recipient} {}{status} ({}) {}{detail}",
            conclave_core::clock::rfc5322(unix(b.at)),
            b.severity,
            b.how,
            b.verdict
        )?;
    }
    Ok(())
}
