//! Delivery: submitting the outbox over SMTP. A copy is marked sent only once
//! the server accepted it; a temporary refusal (4xx) is retried later with
//! backoff; a permanent one (5xx) fails that copy and tells the owner. The
//! list signature is made at fan-out time, so copies go out promptly.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::net::smtp::{SendError, SmtpSession, SmtpSettings};
use crate::net::tls::{self, Protocol, Security};

use super::fanout::Assembler;
use super::List;

/// What one pass over the outbox did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Copies the server accepted.
    pub sent: usize,
    /// Copies refused for good (5xx).
    pub failed: usize,
    /// Copies to try again later (4xx, broken connection).
    pub deferred: usize,
}

/// The first retry waits this long; each further one twice as long, up to an hour.
const FIRST_RETRY: i64 = 60;

/// Reads a password: from the environment variable `env` if set, else from
/// `file`, which must be readable by its owner only.
pub fn read_password(env: &str, file: &str) -> Result<String> {
    if let Ok(p) = std::env::var(env) {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    if file.is_empty() {
        return Err(Error::InvalidInput(format!(
            "no password: set {env} or the password_file setting"
        )));
    }
    let path = Path::new(file);
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InvalidInput(format!(
                "refusing the password file {}: its mode is {mode:04o}; make it 0600 (chmod 600 {})",
                path.display(),
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_owned();
    if password.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the password file {} is empty",
            path.display()
        )));
    }
    Ok(password)
}

impl List {
    /// The SMTP settings from the configuration.
    pub fn smtp_settings(&self) -> Result<SmtpSettings> {
        let (endpoint, trust, username, password) = self.server_login("smtp", Protocol::Smtp)?;
        Ok(SmtpSettings {
            endpoint,
            trust,
            username,
            password,
        })
    }

    /// A server's endpoint, trust, login and password from the settings
    /// `PREFIX.host`, `.port`, `.security`, `.username`, `.password_file`
    /// (or the variable `CONCLAVE_PREFIX_PASSWORD`).
    pub(crate) fn server_login(
        &self,
        prefix: &str,
        protocol: Protocol,
    ) -> Result<(tls::Endpoint, tls::TrustSettings, String, String)> {
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
        let endpoint = self.endpoint_for(&host, port, Some((security, protocol)))?;
        let trust = self.trust_for(&endpoint)?;
        let username = self.config_value(&format!("{prefix}.username"))?;
        let password = read_password(
            &format!("CONCLAVE_{upper}_PASSWORD"),
            &self.config_value(&format!("{prefix}.password_file"))?,
        )?;
        Ok((endpoint, trust, username, password))
    }

    /// Submits every copy that is due. Fails before sending anything when
    /// the server cannot be trusted or the login is refused.
    pub fn send_outbox(&mut self) -> Result<DeliveryReport> {
        let settings = self.smtp_settings()?;
        let rate: u32 = self
            .config_value("smtp.rate_per_minute")?
            .parse()
            .unwrap_or(0);
        let pause = if rate == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(60_000 / u64::from(rate))
        };
        let from = self.address.clone();
        tls::block_on(async {
            let due = self.store.due_copies(self.clock.unix())?;
            let mut report = DeliveryReport::default();
            if due.is_empty() {
                return Ok(report);
            }
            let mut session = SmtpSession::open(&settings).await.map_err(send_error)?;
            let mut assembler = Assembler::new(&self.store);
            for (i, copy) in due.iter().enumerate() {
                if i > 0 && !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                if session.is_broken() {
                    session = SmtpSession::open(&settings).await.map_err(send_error)?;
                }
                let message = assembler.assemble(copy)?;
                let now = self.clock.unix();
                match session.send(&from, &copy.recipient, &message).await {
                    Ok(()) => {
                        self.store.mark_sent(copy.id, now)?;
                        report.sent += 1;
                    }
                    Err(SendError::Permanent(e)) => {
                        self.store.mark_failed(copy.id, &e)?;
                        self.store.audit(
                            now,
                            Some(copy.post_id),
                            "not-delivered",
                            &format!("{} refused for good: {e}", copy.recipient),
                        )?;
                        report.failed += 1;
                    }
                    Err(e) => {
                        let wait = FIRST_RETRY
                            .saturating_mul(1 << copy.attempts.clamp(0, 6))
                            .min(3600);
                        self.store.mark_retry(copy.id, &e.to_string(), now + wait)?;
                        report.deferred += 1;
                    }
                }
            }
            session.close().await;
            self.store.audit(
                self.clock.unix(),
                None,
                "delivery",
                &format!(
                    "{} sent, {} failed, {} deferred",
                    report.sent, report.failed, report.deferred
                ),
            )?;
            Ok(report)
        })
        .map_err(|e| Error::io("start", "the network runtime", e))?
    }
}

fn send_error(e: SendError) -> Error {
    match e {
        SendError::Tls(t) => Error::Tls(t),
        other => Error::Network(other.to_string()),
    }
}
