//! What stays the owner's: secrets in memory (a [`Secret`] is wiped when
//! dropped and never shown by `Debug`), and secret files: written new with
//! `O_EXCL`, `O_NOFOLLOW` and mode 0600 whatever is at the path already,
//! read only when their owner and mode (checked on the open descriptor) say
//! no one else can read them.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A password or passphrase in memory: wiped when dropped, and never shown
/// by `Debug` (which prints `<redacted>`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// The secret itself, for the one place that must hand it on.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(Zeroizing::new(s))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(Zeroizing::new(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The largest secret file read: a password, passphrase or PIN is a line.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a file that holds a secret (a password, passphrase or PIN), which
/// must be a regular file of its owner's only (no access for group or
/// others) and belong to the user running Conclave; both are checked on the
/// open descriptor, so the file checked is the file read. One trailing line
/// break is dropped. `what` names the file in errors ("password file").
pub fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let refuse =
        |why: String| Error::InvalidInput(format!("refusing the {what} {}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(refuse(format!(
                "its mode is {mode:04o}; make it 0600 (chmod 600 {})",
                path.display()
            )));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(refuse(format!(
                "it belongs to user {}, not to the user running Conclave ({me})",
                meta.uid()
            )));
        }
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(refuse("it is too large for a secret".into()));
    }
    // Room for all of it at once, so no copy is left behind by a regrowth.
    let room = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(room));
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(refuse("it is too large for a secret".into()));
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the {what} {} is empty",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Writes a secret file readable by its owner only, replacing whatever is at
/// `path` (a file of another mode, a symbolic link: the link is replaced,
/// never followed). The bytes go to a new file made with `O_EXCL` and
/// `O_NOFOLLOW` and mode 0600 beside it, which is then renamed over `path`.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{} is not a file name", path.display())))?
        .to_string_lossy()
        .into_owned();
    let mut tries = 0;
    let (tmp, mut file) = loop {
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| Error::io("write", path, std::io::Error::other(e.to_string())))?;
        let tmp = dir.join(format!(".{name}.{}.tmp", crate::hex::hex(&nonce)));
        match create_private(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(Error::io("write", path, e)),
        }
    };
    let written = (|| {
        use std::io::Write;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", path, e));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes a new secret file, mode 0600, failing if anything is at `path`
/// already (a symbolic link too, dangling or not).
pub fn write_private_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = create_private(path).map_err(|e| Error::io("create", path, e))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

/// Creates a new file of mode 0600: `O_CREAT | O_EXCL | O_NOFOLLOW`, and the
/// mode set again on the descriptor so that no umask widens or narrows it.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
        opts.custom_flags(nofollow());
    }
    let file = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// `O_NOFOLLOW`, for `OpenOptionsExt::custom_flags`.
#[cfg(unix)]
pub(crate) fn nofollow() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
}

/// Makes `path`, if it exists and is not a symbolic link, readable and
/// writable by its owner only (0600; 0700 for a directory).
pub(crate) fn make_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("inspect", path, e)),
        };
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
        if meta.permissions().mode() & 0o7777 != wanted {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))
                .map_err(|e| Error::io("make private", path, e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_in_debug_output() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
