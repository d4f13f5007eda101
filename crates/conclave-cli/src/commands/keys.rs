//! `conclave keys`: the subscribers' keys refreshed from the web now.

use std::io::Write;
use std::sync::Mutex;

use anyhow::Result;

use super::common::open;
use crate::cli::{Cli, KeysCmd};
use crate::inert::one_line;

/// Runs a `keys` subcommand.
pub fn dispatch(cli: &Cli, cmd: &KeysCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        KeysCmd::Refresh { delay } => {
            let list = Mutex::new(open(cli)?);
            // What changed is printed as it happens (a refresh with pauses
            // takes a while), made one line of plain text: it carries what
            // a key from the web says.
            let tell = |line: &str| {
                let mut stdout = std::io::stdout();
                let _ = writeln!(stdout, "{}", one_line(line));
                let _ = stdout.flush();
            };
            let report = conclave_core::relay::refresh_keys(&list, *delay, None, &tell)?;
            for line in &report.failed {
                writeln!(out, "{}", one_line(line))?;
            }
            writeln!(out, "{}", report.summary())?;
        }
    }
    Ok(())
}
