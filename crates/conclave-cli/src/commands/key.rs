//! `conclave key`: export, extend and back up the list key.

use std::io::Write;

use anyhow::Result;

use super::common::{open, open_unlocked};
use crate::cli::{Cli, KeyCmd};

/// Runs a `key` subcommand.
pub fn dispatch(cli: &Cli, cmd: &KeyCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        KeyCmd::Export => {
            let list = open(cli)?;
            out.write_all(&list.export_public_key()?)?;
        }
        KeyCmd::Extend { years } => {
            let mut list = open_unlocked(cli)?;
            list.extend_key_by_years(*years)?;
            let when = list
                .key_expiry()?
                .map(conclave_core::clock::rfc5322)
                .unwrap_or_else(|| "never".into());
            writeln!(
                out,
                "list key {} now expires {when}",
                list.cert().fingerprint()
            )?;
            writeln!(
                out,
                "send subscribers the public key again: conclave key export"
            )?;
        }
        KeyCmd::Wkd { dir } => {
            let list = open(cli)?;
            for f in list.write_wkd(dir)? {
                writeln!(out, "{}  ->  serve at {}", f.path.display(), f.url)?;
            }
            writeln!(
                out,
                "serve {} as the document root of the list's domain, or {} as that of openpgpkey.DOMAIN (the advanced method, tried first); both over https",
                dir.display(),
                dir.join("openpgpkey/DOMAIN").display()
            )?;
        }
        KeyCmd::Publish => {
            let list = std::sync::Mutex::new(open(cli)?);
            let published = conclave_core::relay::keys::publish_key(&list)?;
            writeln!(out, "{published}")?;
        }
        KeyCmd::Backup { file } => {
            let list = open(cli)?;
            list.backup_key(file)?;
            writeln!(
                out,
                "encrypted backup written to {} (it opens with the list passphrase)",
                file.display()
            )?;
        }
    }
    Ok(())
}
