//! Server passwords and other small secrets: from the environment, from a
//! file only its owner can read (mode 0600), or from the OS keyring (the
//! Secret Service on Linux: GNOME Keyring, KeePassXC, KWallet).
//!
//! The keyring is the default. A file is there for the owner who chooses it,
//! and for headless machines with no keyring. Nothing here is ever written
//! to the list's store or log.

use std::path::Path;

use zeroize::Zeroize;

use crate::error::{Error, Result};
pub use crate::private::{read_secret_file, Secret};

/// The service name under which Conclave's passwords sit in the keyring.
pub const SERVICE: &str = "Conclave";

/// The keyring account of a server login: `imap://USER@HOST:PORT`. It names
/// the server and the login, so a list that moves to another server does not
/// send the old password to it.
pub fn account(protocol: &str, username: &str, host: &str, port: u16) -> String {
    format!("{protocol}://{username}@{host}:{port}")
}

fn entry(account: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, account).map_err(|e| keyring_error(account, &e))
}

fn keyring_error(account: &str, e: &keyring::Error) -> Error {
    let why = match e {
        keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_) => format!(
            "the OS keyring cannot be reached ({e}); is a Secret Service (GNOME Keyring, KeePassXC) running and unlocked? Otherwise keep the password in a file of mode 0600 (the password_file setting)"
        ),
        other => other.to_string(),
    };
    Error::Keyring(format!("keyring entry {SERVICE}/{account}: {why}"))
}

/// The password the keyring holds for `account`, if any.
pub fn keyring_get(account: &str) -> Result<Option<Secret>> {
    match entry(account)?.get_password() {
        Ok(p) => Ok(Some(Secret::from(p))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(keyring_error(account, &e)),
    }
}

/// Stores `password` for `account` in the keyring, replacing any earlier one.
pub fn keyring_set(account: &str, password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::InvalidInput("the password is empty".into()));
    }
    entry(account)?
        .set_password(password)
        .map_err(|e| keyring_error(account, &e))
}

/// Reads a password: from the environment variable `env` if set, else from
/// `file`, which must be readable by its owner only and be theirs
/// ([`read_secret_file`]).
pub fn read_password(env: &str, file: &str) -> Result<Secret> {
    if !env.is_empty() {
        if let Ok(p) = std::env::var(env) {
            if !p.is_empty() {
                return Ok(Secret::from(p));
            }
        }
    }
    if file.is_empty() {
        return Err(Error::InvalidInput(if env.is_empty() {
            "no password file given".to_string()
        } else {
            format!("no password: set {env} or give a file")
        }));
    }
    let path = Path::new(file);
    let mut bytes = read_secret_file(path, "password file")?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Secret::from(text)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(Error::InvalidInput(format!(
                "the password file {} is not UTF-8 text",
                path.display()
            )))
        }
    }
}
