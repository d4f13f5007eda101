//! `conclave init`: create a list, its store and its key.

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use conclave_core::{KeySource, List, SystemClock};

use super::common::{home, passphrase, renewal_line};
use crate::cli::{Cli, InitArgs};

/// Creates the list in its home, with a new or an imported key.
pub fn dispatch(cli: &Cli, args: &InitArgs, out: &mut impl Write) -> Result<()> {
    let pw = passphrase(cli)?.context("init needs --passphrase-file F to protect the list key")?;
    let key = match (&args.import_key, args.generate_key) {
        (Some(f), false) => KeySource::Import(
            std::fs::read(f)
                .with_context(|| format!("cannot read the key file {}", f.display()))?,
        ),
        (None, true) => KeySource::Generate,
        _ => bail!("give exactly one of --generate-key and --import-key FILE"),
    };
    let home = home(cli)?;
    let list = List::init(
        &home,
        &args.address,
        &args.name,
        key,
        &pw,
        Arc::new(SystemClock),
    )?;
    writeln!(out, "created list {} in {}", list.address(), home.display())?;
    writeln!(out, "list key {}", list.cert().fingerprint())?;
    renewal_line(out, &list, &home)?;
    Ok(())
}
