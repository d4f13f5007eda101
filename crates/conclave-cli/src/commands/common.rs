//! What the commands share: finding, opening and unlocking the list, reading
//! the passphrase and PIN files, and a few pieces of output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use conclave_core::crypto::card::{PinKind, PinRequest, PinSource};
use conclave_core::{List, Password, SystemClock};

use crate::cli::Cli;

/// The list's home directory: `--home`, or `$XDG_DATA_HOME/conclave`.
pub fn home(cli: &Cli) -> Result<PathBuf> {
    if let Some(h) = &cli.home {
        return Ok(h.clone());
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("cannot find a home for the list: give --home DIR")?;
    Ok(base.join("conclave"))
}

/// Reads a passphrase file, dropping one trailing line break. Like the PIN
/// and password files, it must be the user's own, of mode 0600 (checked on
/// the open file); the bytes read are wiped once the `Password` holds them.
fn read_passphrase(path: &Path) -> Result<Password> {
    let bytes = conclave_core::secrets::read_secret_file(path, "passphrase file")?;
    Ok(Password::from(&bytes[..]))
}

/// The passphrase from `--passphrase-file`, if one was given.
pub fn passphrase(cli: &Cli) -> Result<Option<Password>> {
    match &cli.passphrase_file {
        Some(p) => Ok(Some(read_passphrase(p)?)),
        None => Ok(None),
    }
}

/// Opens the list, its key still locked.
pub fn open(cli: &Cli) -> Result<List> {
    Ok(List::open(&home(cli)?, Arc::new(SystemClock))?)
}

/// Opens the list with its key usable: on its card (PINs from the PIN
/// files) or from the key file (the passphrase).
pub fn open_unlocked(cli: &Cli) -> Result<List> {
    let mut list = open(cli)?;
    conclave_core::events::timing("list opened");
    if !unlock(&mut list, cli)? {
        return Err(conclave_core::Error::PassphraseRequired.into());
    }
    Ok(list)
}

/// Makes the list key usable if the command line allows: on its card (PINs
/// from the PIN files), or from the key file with the passphrase. Returns
/// whether it is usable.
pub fn unlock(list: &mut List, cli: &Cli) -> Result<bool> {
    if list.card_ident()?.is_some() {
        list.unlock_card(pins(cli)?)?;
    } else if let Some(pw) = passphrase(cli)? {
        list.unlock(&pw)?;
        if let Some(line) = list.key_renewal() {
            eprintln!("conclave: {line}");
        }
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// Answers the card's PIN requests from `--pin-file` / `--admin-pin-file`
/// (or `CONCLAVE_PIN` / `CONCLAVE_ADMIN_PIN`). The files are read now, so a
/// file with a loose mode is refused at once.
pub fn pins(cli: &Cli) -> Result<PinSource> {
    let read = |env: &str, file: &Option<PathBuf>| -> Result<Option<Password>> {
        let path = file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_empty() && std::env::var(env).map(|v| v.is_empty()).unwrap_or(true) {
            return Ok(None);
        }
        let pin = conclave_core::secrets::read_password(env, &path)?;
        Ok(Some(Password::from(pin.expose())))
    };
    let user = read("CONCLAVE_PIN", &cli.pin_file)?;
    let admin = read("CONCLAVE_ADMIN_PIN", &cli.admin_pin_file)?;
    Ok(Arc::new(move |req: &PinRequest| match req.kind {
        PinKind::User => user.clone(),
        PinKind::Admin => admin.clone(),
    }))
}

/// When the list key had to be certified again (an old key with SHA-1
/// self-signatures), one line saying so, and the renewed public key in
/// `HOME/list-public-key.asc` for the subscribers.
pub fn renewal_line(out: &mut impl Write, list: &List, home: &Path) -> Result<()> {
    if let Some(line) = list.key_renewal() {
        let file = home.join("list-public-key.asc");
        std::fs::write(&file, list.export_public_key()?)
            .with_context(|| format!("cannot write {}", file.display()))?;
        writeln!(
            out,
            "{line}; renewed public key written to {}",
            file.display()
        )?;
    }
    Ok(())
}

/// A time stored as seconds since the epoch (before it counts as the epoch).
pub fn unix(secs: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}
