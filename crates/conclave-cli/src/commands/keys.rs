//! `conclave keys`: the subscribers' keys refreshed from the web now.

use std::io::Write;
use std::sync::Mutex;

use anyhow::Result;

use super::common::open;
use crate::cli::{Cli, KeysCmd};

/// Runs a `keys` subcommand.
pub fn dispatch(cli: &Cli, cmd: &KeysCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        KeysCmd::Refresh { delay } => {
            let list = Mutex::new(open(cli)?);
            let report = conclave_core::relay::refresh_keys(&list, *delay, None, &|_| {})?;
            for line in report
                .updated
                .iter()
                .chain(&report.refused)
                .chain(&report.failed)
            {
                writeln!(out, "{line}")?;
            }
            writeln!(out, "{}", report.summary())?;
        }
    }
    Ok(())
}
