//! The list's servers: where they are (host, port, security), how the relay
//! logs in (login and password, from the environment, a 0600 file or the OS
//! keyring), and the owner's decisions about their certificates (show what a
//! server presents, pin exactly the certificate the owner accepted, forget a
//! pin).

use crate::error::{Error, Result};
use crate::list::List;
use crate::net::imap::ImapSettings;
use crate::net::smtp::SmtpSettings;
use crate::net::tls::{self, CertInfo, Endpoint, Protocol, Security, TrustSettings};
use crate::private::{write_private, Secret};
use crate::secrets::{account, keyring_get, keyring_set, read_password};

/// What `certs show` found.
#[derive(Debug, Clone)]
pub struct CertReport {
    /// `host:port`.
    pub endpoint: String,
    /// The chain presented, end entity first.
    pub chain: Vec<CertInfo>,
    /// What trusts it, or the error that says why nothing does.
    pub verdict: std::result::Result<&'static str, tls::TlsError>,
    /// The pinned fingerprint, if any.
    pub pin: Option<String>,
}

/// Where a server password comes from; see [`List::password_source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// This environment variable.
    Environment(String),
    /// This file, of mode 0600.
    File(String),
    /// The OS keyring, under this account (`imap://USER@HOST:PORT`).
    Keyring(String),
}

impl std::fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::Environment(v) => write!(f, "the environment variable {v}"),
            PasswordSource::File(p) => write!(f, "the file {p}"),
            PasswordSource::Keyring(a) => {
                write!(f, "the OS keyring ({}/{a})", crate::secrets::SERVICE)
            }
        }
    }
}

impl List {
    /// The endpoint for `host:port`: the configured IMAP or SMTP server if it
    /// is one of them, else guessed from the port (993, 143, 465, 587, 25),
    /// unless `security` and `protocol` are given.
    pub fn endpoint_for(
        &self,
        host: &str,
        port: u16,
        force: Option<(Security, Protocol)>,
    ) -> Result<Endpoint> {
        let host = host.to_ascii_lowercase();
        if let Some((security, protocol)) = force {
            return Ok(Endpoint {
                host,
                port,
                security,
                protocol,
            });
        }
        for (prefix, protocol) in [("imap", Protocol::Imap), ("smtp", Protocol::Smtp)] {
            let h = self
                .store()
                .config_get(&format!("{prefix}.host"))?
                .unwrap_or_default()
                .to_ascii_lowercase();
            let p = self
                .config_value(&format!("{prefix}.port"))?
                .parse::<u16>()
                .unwrap_or(0);
            if h == host && p == port {
                let security = Security::parse(&self.config_value(&format!("{prefix}.security"))?)
                    .unwrap_or(Security::Tls);
                return Ok(Endpoint {
                    host,
                    port,
                    security,
                    protocol,
                });
            }
        }
        let (security, protocol) = match port {
            143 => (Security::StartTls, Protocol::Imap),
            465 => (Security::Tls, Protocol::Smtp),
            587 | 25 => (Security::StartTls, Protocol::Smtp),
            _ => (Security::Tls, Protocol::Imap),
        };
        Ok(Endpoint {
            host,
            port,
            security,
            protocol,
        })
    }

    /// What the owner trusts for `endpoint`: the extra CA file and the pin,
    /// and whether a certificate authority vouched for it before.
    pub fn trust_for(&self, endpoint: &Endpoint) -> Result<TrustSettings> {
        let ca = self.config_value("tls.ca_file")?;
        Ok(TrustSettings {
            ca_file: if ca.is_empty() { None } else { Some(ca.into()) },
            pin: self.store().tls_pin(&endpoint.key())?,
            vouched: self.store().tls_vouched(&endpoint.key())?,
        })
    }

    /// Remembers that a certificate authority vouched for `endpoint`, after
    /// a handshake with `trust` succeeded: without a pin, only an authority
    /// (the public roots, the system's store, the CA file) lets one succeed.
    /// From then on a certificate no authority vouches for is the alarm.
    pub(crate) fn note_vouched(&self, endpoint: &Endpoint, trust: &TrustSettings) -> Result<()> {
        note_vouched(self.store(), endpoint, trust, self.unix())
    }

    /// Connects to `endpoint` and reports the certificate it presents and
    /// whether it is trusted. Sends no credential.
    pub fn certs_show(&self, endpoint: &Endpoint) -> Result<CertReport> {
        let trust = self.trust_for(endpoint)?;
        let pin = trust.pin.clone();
        let result = tls::block_on(async {
            tls::connect(endpoint, &trust)
                .await
                .map(|(_stream, chain, by)| (chain, by))
        })
        .map_err(|e| Error::io("start", "the network runtime", e))?;
        match result {
            Ok((chain, by)) => {
                self.note_vouched(endpoint, &trust)?;
                Ok(CertReport {
                    endpoint: endpoint.key(),
                    chain,
                    verdict: Ok(by),
                    pin,
                })
            }
            Err(
                e @ (tls::TlsError::Untrusted { .. }
                | tls::TlsError::Changed { .. }
                | tls::TlsError::NoLongerVouched { .. }),
            ) => {
                let chain = match &e {
                    tls::TlsError::Untrusted { chain, .. }
                    | tls::TlsError::Changed { chain, .. }
                    | tls::TlsError::NoLongerVouched { chain, .. } => chain.clone(),
                    _ => Vec::new(),
                };
                Ok(CertReport {
                    endpoint: endpoint.key(),
                    chain,
                    verdict: Err(e),
                    pin,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Pins the certificate `endpoint` presents, but only if its SHA-256 is
    /// `sha256`: the owner accepts exactly the certificate they checked.
    pub fn certs_accept(&mut self, endpoint: &Endpoint, sha256: &str) -> Result<CertInfo> {
        let wanted = tls::normalise_fingerprint(sha256);
        if wanted.len() != 64 {
            return Err(Error::InvalidInput(format!(
                "{sha256:?} is not a SHA-256 fingerprint (64 hex digits)"
            )));
        }
        let report = self.certs_show(endpoint)?;
        let presented = report.chain.first().cloned().ok_or_else(|| {
            Error::InvalidInput(format!("{} presented no certificate", endpoint.key()))
        })?;
        if presented.sha256 != wanted {
            return Err(Error::InvalidInput(format!(
                "{} presents a certificate with SHA-256 {}, not {wanted}; nothing was pinned",
                endpoint.key(),
                presented.sha256
            )));
        }
        // A pin is never replaced in one step: a changed certificate is the
        // alarm, and the owner forgets the old pin on purpose first.
        if let Some(pinned) = self.store().tls_pin(&endpoint.key())? {
            if pinned != presented.sha256 {
                return Err(Error::InvalidInput(format!(
                    "{} has another certificate pinned (SHA-256 {pinned}); nothing was pinned: find out why it changed, then run `conclave certs forget {}` before accepting the new one",
                    endpoint.key(),
                    endpoint.key()
                )));
            }
        }
        // Nor does trust step down in one step: a server a certificate
        // authority vouched for that shows a certificate none vouches for
        // is the alarm, and the owner forgets on purpose first.
        if let Err(tls::TlsError::NoLongerVouched { shows, .. }) = &report.verdict {
            return Err(Error::InvalidInput(format!(
                "{} was vouched for by a certificate authority and now shows {shows}; nothing was pinned: find out why it changed, then run `conclave certs forget {}` before accepting it",
                endpoint.key(),
                endpoint.key()
            )));
        }
        self.store().set_tls_pin(
            &endpoint.key(),
            &presented.sha256,
            &presented.subject,
            self.unix(),
        )?;
        self.store().audit(
            self.unix(),
            None,
            "certificate",
            &format!(
                "accepted the certificate of {} (SHA-256 {})",
                endpoint.key(),
                presented.sha256
            ),
        )?;
        Ok(presented)
    }

    /// Accepts the certificate that the list's IMAP or SMTP server at
    /// `endpoint` (`host:port`) presents, if its SHA-256 is `sha256`: what
    /// the app's dialog does when the owner clicks Accept.
    pub fn accept_certificate(&mut self, endpoint: &str, sha256: &str) -> Result<CertInfo> {
        for (prefix, protocol) in [("imap", Protocol::Imap), ("smtp", Protocol::Smtp)] {
            let Ok(ep) = self.configured_endpoint(prefix, protocol) else {
                continue;
            };
            if ep.key() == endpoint {
                return self.certs_accept(&ep, sha256);
            }
        }
        Err(Error::InvalidInput(format!(
            "{endpoint} is neither the list's IMAP nor its SMTP server"
        )))
    }

    /// Forgets the pin of `host:port`, and that a certificate authority
    /// vouched for it: the owner's deliberate step before accepting another
    /// certificate.
    pub fn certs_forget(&mut self, host: &str, port: u16) -> Result<()> {
        let key = tls::endpoint_key(host, port);
        let pinned = self.store().remove_tls_pin(&key)?;
        let vouched = self.store().remove_tls_vouched(&key)?;
        if !pinned && !vouched {
            return Err(Error::NotFound(format!(
                "no certificate is pinned for {key}, and no certificate authority vouched for it"
            )));
        }
        let what = match (pinned, vouched) {
            (true, true) => format!(
                "forgot the pinned certificate of {key}, and that a certificate authority vouched for it"
            ),
            (true, false) => format!("forgot the pinned certificate of {key}"),
            _ => format!("forgot that a certificate authority vouched for {key}"),
        };
        self.store().audit(self.unix(), None, "certificate", &what)
    }

    /// How long one IMAP or SMTP operation may take (`net.timeout_seconds`).
    pub fn network_deadline(&self) -> Result<std::time::Duration> {
        let secs: u64 = self
            .config_value("net.timeout_seconds")?
            .parse()
            .unwrap_or(tls::DEFAULT_DEADLINE.as_secs());
        Ok(std::time::Duration::from_secs(secs.max(1)))
    }

    /// The SMTP settings from the configuration.
    pub fn smtp_settings(&self) -> Result<SmtpSettings> {
        let (endpoint, trust, username, password) = self.server_login("smtp", Protocol::Smtp)?;
        Ok(SmtpSettings {
            endpoint,
            trust,
            username,
            password,
            deadline: self.network_deadline()?,
        })
    }

    /// The endpoint of the server `PREFIX.host`, `.port`, `.security`.
    pub(crate) fn configured_endpoint(
        &self,
        prefix: &str,
        protocol: Protocol,
    ) -> Result<tls::Endpoint> {
        let upper = prefix.to_ascii_uppercase();
        let host = self.config_value(&format!("{prefix}.host"))?;
        if host.is_empty() {
            return Err(Error::InvalidInput(format!(
                "no {upper} server: set {prefix}.host (and {prefix}.port, {prefix}.security)"
            )));
        }
        let port: u16 = self
            .config_value(&format!("{prefix}.port"))?
            .parse()
            .map_err(|_| Error::InvalidInput(format!("{prefix}.port is not a port")))?;
        let security = Security::parse(&self.config_value(&format!("{prefix}.security"))?)
            .unwrap_or(Security::Tls);
        self.endpoint_for(&host, port, Some((security, protocol)))
    }

    /// A server's endpoint, trust, login and password from the settings
    /// `PREFIX.host`, `.port`, `.security`, `.username`, and the password
    /// from [`List::password_source`].
    pub(crate) fn server_login(
        &self,
        prefix: &str,
        protocol: Protocol,
    ) -> Result<(tls::Endpoint, tls::TrustSettings, String, Secret)> {
        let endpoint = self.configured_endpoint(prefix, protocol)?;
        let trust = self.trust_for(&endpoint)?;
        let username = self.config_value(&format!("{prefix}.username"))?;
        let password = match self.password_source(prefix)? {
            PasswordSource::Environment(var) => read_password(&var, "")?,
            PasswordSource::File(file) => read_password("", &file)?,
            PasswordSource::Keyring(account) => keyring_get(&account)?.ok_or_else(|| {
                Error::Keyring(format!(
                    "the OS keyring holds no password for {account}: enter it in the app's Settings, or run `conclave config password {prefix}`"
                ))
            })?,
        };
        Ok((endpoint, trust, username, password))
    }

    /// Where the password of server `prefix` (`imap` or `smtp`) comes from:
    /// the variable `CONCLAVE_PREFIX_PASSWORD` if set, else the file
    /// `PREFIX.password_file` if set, else the OS keyring.
    pub fn password_source(&self, prefix: &str) -> Result<PasswordSource> {
        let var = format!("CONCLAVE_{}_PASSWORD", prefix.to_ascii_uppercase());
        if std::env::var(&var).is_ok_and(|v| !v.is_empty()) {
            return Ok(PasswordSource::Environment(var));
        }
        let file = self.config_value(&format!("{prefix}.password_file"))?;
        if !file.is_empty() {
            return Ok(PasswordSource::File(file));
        }
        Ok(PasswordSource::Keyring(self.keyring_account(prefix)?))
    }

    /// The keyring account of server `prefix`, named after its login, host
    /// and port ([`account`]).
    fn keyring_account(&self, prefix: &str) -> Result<String> {
        let port = self
            .config_value(&format!("{prefix}.port"))?
            .parse()
            .unwrap_or(0);
        Ok(account(
            prefix,
            &self.config_value(&format!("{prefix}.username"))?,
            &self.config_value(&format!("{prefix}.host"))?,
            port,
        ))
    }

    /// Keeps the password of server `prefix` in the OS keyring (the
    /// default), or, if the owner chooses `in_file`, in `PREFIX-password`
    /// (mode 0600) in the list's folder; the setting `PREFIX.password_file`
    /// follows. The server's host, port and login must be set first: the
    /// keyring entry is named after them.
    pub fn set_server_password(
        &mut self,
        prefix: &str,
        password: &str,
        in_file: bool,
    ) -> Result<PasswordSource> {
        if !matches!(prefix, "imap" | "smtp") {
            return Err(Error::InvalidInput(format!(
                "no server {prefix:?}: imap or smtp"
            )));
        }
        if password.is_empty() || password.contains(['\n', '\r']) {
            return Err(Error::InvalidInput(
                "the password is empty or has a line break".into(),
            ));
        }
        let key = format!("{prefix}.password_file");
        if in_file {
            let path = self.home().join(format!("{prefix}-password"));
            let line = zeroize::Zeroizing::new(format!("{password}\n"));
            write_private(&path, line.as_bytes())?;
            self.config_set(&key, &path.display().to_string())?;
        } else {
            self.config_set(&key, "")?;
            // Stored even when the environment overrides it for now.
            keyring_set(&self.keyring_account(prefix)?, password)?;
        }
        self.store().audit(
            self.unix(),
            None,
            "config",
            &format!(
                "{prefix} password kept {}",
                if in_file {
                    "in a file"
                } else {
                    "in the OS keyring"
                }
            ),
        )?;
        self.password_source(prefix)
    }

    /// The IMAP settings from the configuration.
    pub fn imap_settings(&self) -> Result<ImapSettings> {
        let (endpoint, trust, username, password) = self.server_login("imap", Protocol::Imap)?;
        Ok(ImapSettings {
            endpoint,
            trust,
            username,
            password,
            deadline: self.network_deadline()?,
        })
    }
}

/// Remembers in `store` that a certificate authority vouched for `endpoint`,
/// after a handshake with `trust` succeeded (see [`List::note_vouched`]).
pub(crate) fn note_vouched(
    store: &crate::store::Store,
    endpoint: &Endpoint,
    trust: &TrustSettings,
    now: i64,
) -> Result<()> {
    if trust.pin.is_none() {
        store.note_tls_vouched(&endpoint.key(), now)?;
    }
    Ok(())
}
