//! `conclave log`: the tail of the audit log (what happened to each post,
//! never its content).

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
