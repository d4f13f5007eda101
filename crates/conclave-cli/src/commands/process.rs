//! `conclave process`: run messages from files or standard input through
//! the list, one outcome line each.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::common::open_unlocked;
use crate::cli::Cli;
use crate::inert::one_line;

/// Processes each message in turn, printing its outcome as soon as it is known.
pub fn dispatch(cli: &Cli, files: &[PathBuf], out: &mut impl Write) -> Result<()> {
    let mut list = open_unlocked(cli)?;
    for f in files {
        let bytes = if f.as_os_str() == "-" {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("cannot read standard input")?;
            b
        } else {
            std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?
        };
        let outcome = list
            .receive(&bytes)
            .with_context(|| format!("cannot process {}", f.display()))?;
        writeln!(out, "{}", one_line(&outcome.to_string()))?;
        out.flush()?;
    }
    Ok(())
}
