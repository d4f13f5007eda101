//! Delivery: submitting the outbox over SMTP. A copy is marked sent only once
//! the server accepted it; a temporary refusal (4xx) is retried later with
//! backoff; a permanent one (5xx) fails that copy and tells the owner. The
//! list signature is made at fan-out time, so copies go out promptly.

use std::time::Duration;

use crate::crypto::keystore::write_private;
use crate::error::{Error, Result};
use crate::net::smtp::{SendError, SmtpSession, SmtpSettings};
use crate::net::tls::{self, Protocol, Security};
use crate::secrets::{account, keyring_get, keyring_set, read_password};
use crate::store::CopyRef;

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

/// The first retry waits this long; each further one twice as long, up to an hour.
const FIRST_RETRY: i64 = 60;

/// A copy whose list signature is older than this, in seconds, when it is
/// about to go out is signed again first: clients such as Thunderbird flag a
/// signature made long before the message's `Date:`, and the copy's `Date:`
/// is the time of signing.
pub const RESIGN_AFTER: i64 = 3600;

impl List {
    /// Signs again the posts whose due copies were signed more than
    /// [`RESIGN_AFTER`] seconds ago (delivery was deferred, or the list was
    /// not running), and replaces those copies with fresh ones: a new
    /// signature and `Date:`, the same Message-ID. Copies already sent are
    /// left alone. A post that cannot be signed again (the key is locked,
    /// say) keeps its copies as they are, and the log says why. Returns how
    /// many copies were replaced.
    pub fn refresh_stale_copies(&mut self) -> Result<usize> {
        let now = self.clock.unix();
        let mut replaced = 0;
        for (post_id, copies) in self.store.stale_copies(now, now - RESIGN_AFTER)? {
            match self.resign(post_id, &copies) {
                Ok(n) => {
                    replaced += n;
                    self.store.audit(
                        now,
                        Some(post_id),
                        "re-signed",
                        &format!(
                            "{n} queued copies signed again: their signature was over an hour old"
                        ),
                    )?;
                }
                Err(e @ (Error::Store { .. } | Error::Io { .. })) => return Err(e),
                Err(e) => self.store.audit(
                    now,
                    Some(post_id),
                    "not-re-signed",
                    &format!(
                        "{} queued copies go out with their old signature: {e}",
                        copies.len()
                    ),
                )?,
            }
        }
        Ok(replaced)
    }

    fn resign(&mut self, post_id: i64, copies: &[CopyRef]) -> Result<usize> {
        let post = self
            .store
            .post(post_id)?
            .ok_or_else(|| Error::NotFound(format!("no post #{post_id}")))?;
        let raw = self.original(&post)?;
        let incoming = crate::mime::parse::incoming(&raw);
        match self.decide(post_id, &raw, incoming, true)? {
            super::Decision::Distribute { post: opened, .. } => {
                self.distribute_to(post_id, &opened, Some(copies))
            }
            super::Decision::Stop { reason, .. } => Err(Error::InvalidInput(format!(
                "the post no longer opens: {reason}"
            ))),
        }
    }

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
    ) -> Result<(tls::Endpoint, tls::TrustSettings, String, String)> {
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
            let path = self.home.join(format!("{prefix}-password"));
            write_private(&path, format!("{password}\n").as_bytes())?;
            self.config_set(&key, &path.display().to_string())?;
        } else {
            self.config_set(&key, "")?;
            // Stored even when the environment overrides it for now.
            keyring_set(&self.keyring_account(prefix)?, password)?;
        }
        self.store.audit(
            self.clock.unix(),
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

    /// Submits every copy that is due, over `smtp.connections` connections
    /// side by side, after signing stale ones again
    /// ([`List::refresh_stale_copies`]) (one when `smtp.rate_per_minute` is set). Fails before
    /// sending anything when the server cannot be trusted or the login is
    /// refused. A connection that breaks and cannot be reopened leaves its
    /// remaining copies queued for the next pass, and the error is returned
    /// once the other connections have finished.
    pub fn send_outbox(&mut self) -> Result<DeliveryReport> {
        let settings = self.smtp_settings()?;
        self.refresh_stale_copies()?;
        let rate: u32 = self
            .config_value("smtp.rate_per_minute")?
            .parse()
            .unwrap_or(0);
        let (pause, connections) = if rate == 0 {
            let n: usize = self.config_value("smtp.connections")?.parse().unwrap_or(4);
            (Duration::ZERO, n.clamp(1, 16))
        } else {
            (Duration::from_millis(60_000 / u64::from(rate)), 1)
        };
        let store = &self.store;
        let clock = &self.clock;
        let from = self.address.as_str();
        let events = &self.events;
        tls::block_on(async {
            let due = store.due_copies(clock.unix())?;
            let mut report = DeliveryReport::default();
            if due.is_empty() {
                return Ok(report);
            }
            // The first connection proves the server and the login; the
            // others are a bonus (a server may cap connections per client).
            let wanted = connections.min(due.len());
            let mut sessions = vec![SmtpSession::open(&settings).await.map_err(send_error)?];
            let more =
                futures::future::join_all((1..wanted).map(|_| SmtpSession::open(&settings))).await;
            sessions.extend(more.into_iter().flatten());
            let n = sessions.len();
            let total = due.len();
            let done = std::cell::Cell::new(0usize);
            let tick = || {
                done.set(done.get() + 1);
                if let Some(sink) = events {
                    sink(&crate::engine::Event::Progress {
                        done: done.get(),
                        total,
                    });
                }
            };
            let workers = sessions.into_iter().enumerate().map(|(k, session)| {
                let copies = due.iter().skip(k).step_by(n);
                let job = Job {
                    store,
                    clock: clock.as_ref(),
                    settings: &settings,
                    from,
                    pause,
                    tick: &tick,
                };
                submit(job, session, copies)
            });
            let mut first_error = None;
            for (part, error) in futures::future::join_all(workers).await {
                report.sent += part.sent;
                report.failed += part.failed;
                report.deferred += part.deferred;
                if first_error.is_none() {
                    first_error = error;
                }
            }
            store.audit(
                clock.unix(),
                None,
                "delivery",
                &format!(
                    "{} sent, {} failed, {} deferred",
                    report.sent, report.failed, report.deferred
                ),
            )?;
            match first_error {
                Some(e) => Err(e),
                None => Ok(report),
            }
        })
        .map_err(|e| Error::io("start", "the network runtime", e))?
    }
}

/// What every connection of a delivery pass shares.
struct Job<'a> {
    store: &'a crate::store::Store,
    clock: &'a dyn crate::clock::Clock,
    settings: &'a SmtpSettings,
    from: &'a str,
    pause: Duration,
    /// Called once a copy has its answer.
    tick: &'a dyn Fn(),
}

/// One connection's share of a delivery pass: submits `copies` in turn and
/// records each answer. Returns what it did and the error that stopped it
/// early, if one did.
async fn submit<'a>(
    job: Job<'_>,
    mut session: SmtpSession,
    copies: impl Iterator<Item = &'a crate::store::OutboxCopy>,
) -> (DeliveryReport, Option<Error>) {
    let Job {
        store,
        clock,
        settings,
        from,
        pause,
        tick,
    } = job;
    let mut report = DeliveryReport::default();
    let mut assembler = Assembler::new(store);
    let mut step = async |copy: &crate::store::OutboxCopy, session: &mut SmtpSession| {
        if session.is_broken() {
            *session = SmtpSession::open(settings).await.map_err(send_error)?;
        }
        let message = assembler.assemble(copy)?;
        let result = session.send(from, &copy.recipient, &message).await;
        let now = clock.unix();
        match result {
            Ok(()) => {
                store.mark_sent(copy.id, now)?;
                report.sent += 1;
            }
            Err(SendError::Permanent(e)) => {
                store.mark_failed(copy.id, &e)?;
                store.audit(
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
                store.mark_retry(copy.id, &e.to_string(), now + wait)?;
                report.deferred += 1;
            }
        }
        tick();
        Ok::<(), Error>(())
    };
    let mut error = None;
    for (i, copy) in copies.enumerate() {
        if i > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if let Err(e) = step(copy, &mut session).await {
            error = Some(e);
            break;
        }
    }
    session.close().await;
    (report, error)
}

fn send_error(e: SendError) -> Error {
    match e {
        SendError::Tls(t) => Error::Tls(t),
        other => Error::Network(other.to_string()),
    }
}
