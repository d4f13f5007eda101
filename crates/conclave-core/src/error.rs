//! The engine's error type: one enum whose `kind()` the front ends can act on.

use std::path::PathBuf;

/// What went wrong, in the terms a front end can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The list home does not exist or holds no list yet.
    NotInitialised,
    /// The list home already holds a list.
    AlreadyInitialised,
    /// The list's secret key is needed and no passphrase was given.
    PassphraseRequired,
    /// The passphrase does not unlock the list key.
    BadPassphrase,
    /// A key or certificate could not be used.
    BadKey,
    /// No subscriber, held post or configuration key by that name.
    NotFound,
    /// The caller's input is not acceptable (a bad value, a bad address).
    InvalidInput,
    /// The local store failed.
    Store,
    /// A file could not be read or written.
    Io,
    /// An OpenPGP operation failed.
    Crypto,
    /// A server presented a certificate that nothing trusts: ask the owner.
    UntrustedCertificate,
    /// A pinned certificate changed, or a server a certificate authority
    /// vouched for shows one none vouches for: alarm the owner.
    CertificateChanged,
    /// STARTTLS is configured and the server does not offer it.
    NoStartTls,
    /// A connection failed.
    Network,
    /// The OpenPGP card cannot be reached (pulled out, pcscd stopped) or
    /// refused an operation: what was underway stays queued.
    Card,
    /// The card needs a PIN, or refused the one given (it says how many
    /// tries are left), or its PIN is blocked: ask the owner.
    Pin,
    /// The OS keyring (Secret Service) cannot be reached, is locked, or
    /// holds no password for a server: the owner has to act.
    Keyring,
}

/// The engine's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorKind::NotInitialised`].
    #[error("no list in {0}: run `conclave init` first")]
    NotInitialised(PathBuf),
    /// See [`ErrorKind::AlreadyInitialised`].
    #[error("{0} already holds a list")]
    AlreadyInitialised(PathBuf),
    /// See [`ErrorKind::PassphraseRequired`].
    #[error("the list key is locked: give --passphrase-file or set CONCLAVE_PASSPHRASE_FILE")]
    PassphraseRequired,
    /// See [`ErrorKind::BadPassphrase`].
    #[error("cannot unlock the list key: wrong passphrase")]
    BadPassphrase,
    /// See [`ErrorKind::BadKey`].
    #[error("cannot use the key: {0}")]
    BadKey(String),
    /// See [`ErrorKind::NotFound`].
    #[error("{0}")]
    NotFound(String),
    /// See [`ErrorKind::InvalidInput`].
    #[error("{0}")]
    InvalidInput(String),
    /// See [`ErrorKind::Store`].
    #[error("cannot {what}")]
    Store {
        /// What the store was asked to do.
        what: String,
        /// Why it failed.
        #[source]
        source: rusqlite::Error,
    },
    /// See [`ErrorKind::Io`].
    #[error("cannot {what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A server refused us or the connection broke (not a TLS matter); the
    /// protocol's own error is the source.
    #[error("{0}")]
    Network(String, #[source] Option<BoxError>),
    /// A TLS connection did not happen; see [`TlsError`].
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// See [`ErrorKind::Card`]; the card library's error is the source.
    #[error("{0}")]
    Card(String, #[source] Option<BoxError>),
    /// See [`ErrorKind::Pin`].
    #[error("{0}")]
    Pin(String),
    /// See [`ErrorKind::Keyring`].
    #[error("{0}")]
    Keyring(String),
    /// See [`ErrorKind::Crypto`].
    #[error("cannot {what}: {detail}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The underlying error, flattened to one line.
        detail: String,
        /// The underlying error itself.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// The kind of this error, for front ends that act on it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotInitialised(_) => ErrorKind::NotInitialised,
            Error::AlreadyInitialised(_) => ErrorKind::AlreadyInitialised,
            Error::PassphraseRequired => ErrorKind::PassphraseRequired,
            Error::BadPassphrase => ErrorKind::BadPassphrase,
            Error::BadKey(_) => ErrorKind::BadKey,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Store { .. } => ErrorKind::Store,
            Error::Io { .. } => ErrorKind::Io,
            Error::Crypto { .. } => ErrorKind::Crypto,
            Error::Network(..) => ErrorKind::Network,
            Error::Card(..) => ErrorKind::Card,
            Error::Pin(_) => ErrorKind::Pin,
            Error::Keyring(_) => ErrorKind::Keyring,
            Error::Tls(t) => match t {
                TlsError::Untrusted { .. } => ErrorKind::UntrustedCertificate,
                TlsError::Changed { .. } | TlsError::NoLongerVouched { .. } => {
                    ErrorKind::CertificateChanged
                }
                TlsError::NoStartTls { .. } => ErrorKind::NoStartTls,
                _ => ErrorKind::Network,
            },
        }
    }

    /// Whether this error, met while a post is handled, is the post's own
    /// fault, so the post is refused with it as the reason. A locked key, a
    /// card that went away, a PIN, the store or the disk are not: the post
    /// stays to be handled again.
    pub fn is_post_fault(&self) -> bool {
        !matches!(
            self,
            Error::PassphraseRequired
                | Error::BadPassphrase
                | Error::Store { .. }
                | Error::Io { .. }
                | Error::Card(..)
                | Error::Pin(_)
                | Error::Keyring(_)
        )
    }

    /// Wraps an OpenPGP error with what was being done.
    pub(crate) fn crypto(what: &'static str, err: impl Into<BoxError>) -> Self {
        let source = err.into();
        Error::Crypto {
            what,
            detail: flatten(&source.to_string()),
            source,
        }
    }

    /// A network failure, keeping the protocol's error as the source.
    pub(crate) fn network(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Network(err.to_string(), Some(Box::new(err)))
    }

    /// Wraps an I/O error with the file it concerns.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Keeps an error on one line.
fn flatten(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An underlying error of any kind, kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to store errors.
pub(crate) trait StoreContext<T> {
    /// Names what the store was asked to do.
    fn store(self, what: &str) -> Result<T>;
}

impl<T> StoreContext<T> for std::result::Result<T, rusqlite::Error> {
    fn store(self, what: &str) -> Result<T> {
        self.map_err(|source| Error::Store {
            what: what.to_owned(),
            source,
        })
    }
}

// ---------------------------------------------------------------------------
// TLS: why a connection did not happen, with the certificate the owner must
// judge. Defined here, with the other errors, so that every layer can carry
// it; `net::tls` makes and verifies the connections.

/// A certificate, described for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's distinguished name.
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Valid from (RFC 2822 style, UTC).
    pub not_before: String,
    /// Valid until.
    pub not_after: String,
    /// The DNS names and addresses it is valid for.
    pub names: Vec<String>,
    /// SHA-256 of the whole certificate, lowercase hex: what pins hold.
    pub sha256: String,
    /// SHA-256 of its public key (SubjectPublicKeyInfo), lowercase hex.
    pub spki_sha256: String,
}

/// Why a TLS connection did not happen.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Nothing trusts the certificate.
    #[error("cannot trust the certificate of {endpoint}: {reason} (SHA-256 {})", sha(.chain))]
    Untrusted {
        /// `host:port`.
        endpoint: String,
        /// Why (unknown issuer, expired, wrong host…).
        reason: String,
        /// The chain the server presented, end entity first.
        chain: Vec<CertInfo>,
    },
    /// The certificate differs from the one the owner pinned.
    #[error("the certificate of {endpoint} changed: pinned SHA-256 {pinned}, presented {}", sha(.chain))]
    Changed {
        /// `host:port`.
        endpoint: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The chain the server presented now.
        chain: Vec<CertInfo>,
    },
    /// A certificate authority vouched for this server before, and nothing
    /// vouches for the certificate it shows now: the same alarm as a
    /// changed pin.
    #[error("the certificate of {endpoint} changed: this server was vouched for by a certificate authority and now shows {shows} (SHA-256 {}); someone may be intercepting the connection, and nothing was sent", sha(.chain))]
    NoLongerVouched {
        /// `host:port`.
        endpoint: String,
        /// What it shows now ("a self-signed certificate", …).
        shows: String,
        /// The chain presented, end entity first.
        chain: Vec<CertInfo>,
    },
    /// STARTTLS is configured and the server does not offer it.
    #[error("{endpoint} does not offer STARTTLS; refusing to continue without TLS")]
    NoStartTls {
        /// `host:port`.
        endpoint: String,
    },
    /// The connection or handshake failed for another reason.
    #[error("cannot connect to {endpoint}: {detail}")]
    Connect {
        /// `host:port`.
        endpoint: String,
        /// What happened.
        detail: String,
    },
}

fn sha(chain: &[CertInfo]) -> String {
    chain
        .first()
        .map(|c| c.sha256.clone())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn errors_keep_their_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer");
        let e = Error::network(io);
        assert_eq!(e.kind(), ErrorKind::Network);
        let cause = e.source().expect("the network error is kept");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::TimedOut)
        );
        let e = Error::crypto("read a key", std::io::Error::other("bad\n  packet"));
        assert_eq!(e.to_string(), "cannot read a key: bad packet");
        assert!(e.source().is_some_and(|s| s.is::<std::io::Error>()));
    }

    #[test]
    fn only_the_post_is_blamed_for_its_own_faults() {
        assert!(Error::BadKey("x".into()).is_post_fault());
        assert!(Error::InvalidInput("x".into()).is_post_fault());
        assert!(!Error::PassphraseRequired.is_post_fault());
        assert!(!Error::Card("pulled".into(), None).is_post_fault());
        assert!(!Error::Pin("wrong".into()).is_post_fault());
    }
}
