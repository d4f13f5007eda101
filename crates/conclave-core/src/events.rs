//! What the engine reports to its front ends: the outcome of each post, the
//! progress and result of each relay pass, notices and errors. A leaf: it
//! names only the error types, so every layer can report through it.

use std::sync::Arc;

use crate::error::{ErrorKind, TlsError};

/// What became of one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Copies were queued for every subscriber.
    Distributed {
        /// The post's id.
        post: i64,
        /// How many copies were queued.
        copies: usize,
    },
    /// Waiting for the owner.
    Held {
        /// The post's id.
        post: i64,
        /// Why.
        reason: String,
    },
    /// Refused.
    Rejected {
        /// The post's id.
        post: i64,
        /// Why.
        reason: String,
    },
    /// Dropped on purpose.
    Discarded {
        /// The post's id.
        post: i64,
        /// Why.
        reason: String,
    },
    /// A message to the request or key address, carried out (or not) and
    /// answered (or not); never distributed.
    Answered {
        /// The message's id.
        post: i64,
        /// What was done.
        reason: String,
    },
    /// A delivery report (a bounce): never opened nor distributed; matched
    /// to the copy it reports, or ignored.
    Bounce {
        /// The message's id.
        post: i64,
        /// What it reported and what was done.
        reason: String,
    },
}

impl Outcome {
    /// The post's id.
    pub fn post(&self) -> i64 {
        match self {
            Outcome::Distributed { post, .. }
            | Outcome::Held { post, .. }
            | Outcome::Rejected { post, .. }
            | Outcome::Discarded { post, .. }
            | Outcome::Answered { post, .. }
            | Outcome::Bounce { post, .. } => *post,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Distributed { copies, .. } => write!(f, "distributed to {copies}"),
            Outcome::Held { reason, .. } => write!(f, "held: {reason}"),
            Outcome::Rejected { reason, .. } => write!(f, "rejected: {reason}"),
            Outcome::Discarded { reason, .. } => write!(f, "discarded: {reason}"),
            Outcome::Answered { reason, .. } => write!(f, "request: {reason}"),
            Outcome::Bounce { reason, .. } => write!(f, "bounce: {reason}"),
        }
    }
}

/// What one pass over the mailbox did.
#[derive(Debug, Clone, Default)]
pub struct IntakeReport {
    /// The outcome of each post this instance claimed.
    pub outcomes: Vec<Outcome>,
    /// Posts another instance claimed first.
    pub taken_elsewhere: usize,
    /// INBOX as this pass last listed it: (UIDVALIDITY, UIDNEXT). A wait
    /// for new mail that finds INBOX past this point has mail to read
    /// already (it came while the pass ran).
    pub inbox: Option<InboxState>,
}

/// INBOX as one SELECT saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxState {
    /// INBOX's UIDVALIDITY (0 when the server does not say).
    pub uid_validity: u32,
    /// The UID the next message will get (0 when the server does not say).
    pub uid_next: u32,
}

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

/// What the engine tells its front end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The relay started.
    Started,
    /// The relay stopped: asked to, or because of `Error`.
    Stopped,
    /// A post was handled: distributed, held, rejected or discarded.
    Post(Outcome),
    /// A subscription or key change now waits for the owner, or was
    /// decided.
    Requests,
    /// Copies being submitted: `done` of `total` in this pass.
    Progress {
        /// Copies answered so far.
        done: usize,
        /// Copies due in this pass.
        total: usize,
    },
    /// A pass over the mailbox and the outbox finished: both servers answered.
    Pass {
        /// What the mailbox gave.
        intake: IntakeReport,
        /// What the outbox did.
        delivery: DeliveryReport,
    },
    /// Something the owner should know that needs no answer (the list key
    /// was certified again, say); it is in the log too.
    Notice {
        /// One line for the owner.
        message: String,
    },
    /// Something went wrong. `fatal` means the relay stopped until the owner
    /// acts (accept a certificate, give a PIN…); otherwise it retries.
    Error {
        /// What kind, for the front end to act on.
        kind: ErrorKind,
        /// One line for the owner.
        message: String,
        /// For certificate errors: the certificate and why, for the dialog.
        tls: Option<TlsError>,
        /// Whether the relay stopped.
        fatal: bool,
    },
}

/// Receives events. Called on the engine's threads: keep it short.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// With `CONCLAVE_TIMINGS=1` in the environment, writes one line to stderr,
/// `conclave-timing MICROS STAGE`, where MICROS is the wall clock in
/// microseconds since the Unix epoch: the delivery benchmark reads these to
/// say where a pass spends its time. Otherwise does nothing.
pub fn timing(stage: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ON.get_or_init(|| std::env::var("CONCLAVE_TIMINGS").is_ok_and(|v| v == "1")) {
        return;
    }
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    eprintln!("conclave-timing {micros} {stage}");
}
