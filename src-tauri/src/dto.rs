//! What crosses between the Rust side and the UI. The TypeScript twins in
//! `ui/src/bindings/` are generated from these (`cargo test -p conclave-app`
//! writes them; CI fails when the committed ones differ).

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use zeroize::Zeroize;

use conclave_core::net::tls::{CertInfo, TlsError};
use conclave_core::Event;
use conclave_core::{Error, Outcome};

/// Where the app stands.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Status {
    /// A list exists in the app's folder.
    pub initialised: bool,
    /// Its key is usable (passphrase given, or card bound).
    pub unlocked: bool,
    /// The relay is running.
    pub running: bool,
    /// The list address ("" before setup).
    pub address: String,
    /// The list's name.
    pub name: String,
    /// The folder that holds the list.
    pub home: String,
    /// The latest word from the relay: its last pass or error, if any yet
    /// (events sent before the page listened are not lost on it).
    pub last: Option<UiEvent>,
}

/// A mail server as the wizard asks for it. Its password is wiped when it
/// is dropped and never shown by `Debug`.
#[derive(Clone, Deserialize, TS)]
#[ts(export)]
pub struct Server {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `tls` (implicit TLS) or `starttls`.
    pub security: String,
    /// Login.
    pub username: String,
    /// Password (stored by the app, never shown again).
    pub password: String,
}

/// The list key the wizard makes or takes (`Debug` never shows a key).
#[derive(Clone, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum KeyChoice {
    /// A new Ed25519 + Cv25519 key.
    Generate,
    /// An armored secret key the owner has.
    Import {
        /// The armored key.
        armored: String,
    },
    /// A new key, moved at once onto the OpenPGP card with this ident (its
    /// admin PIN is asked for in the PIN dialog); no key file remains.
    Card {
        /// The card's ident (`MMMM:SSSSSSSS`).
        ident: String,
    },
}

/// Everything the first-run wizard gathers. The passphrase is wiped when it
/// is dropped and never shown by `Debug`.
#[derive(Clone, Deserialize, TS)]
#[ts(export)]
pub struct Setup {
    /// The list address.
    pub address: String,
    /// Its display name.
    pub name: String,
    /// The passphrase that protects the list key on disk.
    pub passphrase: String,
    /// The list key.
    pub key: KeyChoice,
    /// Where the list mailbox is.
    pub imap: Server,
    /// Where copies are submitted.
    pub smtp: Server,
    /// An extra CA certificate file to trust ("" for none).
    pub ca_file: String,
    /// Keep the server passwords in 0600 files in the list's folder rather
    /// than in the OS keyring.
    pub passwords_in_files: bool,
}

const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &format_args!("{REDACTED}"))
            .finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl std::fmt::Debug for KeyChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyChoice::Generate => f.write_str("Generate"),
            KeyChoice::Import { .. } => f
                .debug_struct("Import")
                .field("armored", &format_args!("{REDACTED}"))
                .finish(),
            KeyChoice::Card { ident } => f.debug_struct("Card").field("ident", ident).finish(),
        }
    }
}

impl Drop for KeyChoice {
    fn drop(&mut self) {
        if let KeyChoice::Import { armored } = self {
            armored.zeroize();
        }
    }
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("address", &self.address)
            .field("name", &self.name)
            .field("passphrase", &format_args!("{REDACTED}"))
            .field("key", &self.key)
            .field("imap", &self.imap)
            .field("smtp", &self.smtp)
            .field("ca_file", &self.ca_file)
            .field("passwords_in_files", &self.passwords_in_files)
            .finish()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.passphrase.zeroize();
    }
}

/// The dashboard's figures.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Dashboard {
    /// Subscribers.
    pub subscribers: u32,
    /// Posts waiting for the owner.
    pub held: u32,
    /// Subscriptions and key changes waiting for the owner.
    pub requests: u32,
    /// Copies waiting to go out.
    pub queued: u32,
    /// Copies sent.
    pub sent: u32,
    /// The latest log lines, newest first.
    pub recent: Vec<LogLine>,
    /// The list key's alarm, when it expires within 30 days.
    pub list_key_alarm: Option<String>,
    /// Subscriber keys that expire within `key_warning_days`.
    pub expiring: Vec<KeyNote>,
    /// Subscribers whose keys cannot be used: they receive no posts.
    pub not_receiving: Vec<KeyNote>,
}

/// A subscriber's key, as the dashboard names it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct KeyNote {
    /// The subscriber.
    pub address: String,
    /// Their key's fingerprint.
    pub fingerprint: String,
    /// When it expires and whether they were told; or why it cannot be
    /// used and how many posts they missed.
    pub detail: String,
}

/// One line of the activity log (never any content).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct LogLine {
    /// When (RFC 5322).
    pub at: String,
    /// The post it concerns.
    #[ts(type = "number | null")]
    pub post: Option<i64>,
    /// What happened.
    pub event: String,
    /// Details.
    pub detail: String,
}

/// A held post in the moderation list.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct HeldItem {
    /// Its number.
    #[ts(type = "number")]
    pub id: i64,
    /// Who sent it.
    pub sender: String,
    /// Why it is held.
    pub reason: String,
    /// When it arrived (RFC 5322).
    pub received: String,
    /// Written to the owner address: read and discarded, never approved.
    pub for_owner: bool,
}

/// A held post opened in memory for the owner.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct HeldDetail {
    /// Its number.
    #[ts(type = "number")]
    pub id: i64,
    /// Who sent it.
    pub sender: String,
    /// Why it is held.
    pub reason: String,
    /// Its subject.
    pub subject: String,
    /// Whether and by whom it is signed.
    pub signature: String,
    /// Its text.
    pub text: String,
    /// Public keys attached to it.
    pub keys: Vec<HeldKey>,
    /// Written to the owner address: read and discarded, never approved.
    pub for_owner: bool,
}

/// A public key attached to a held post.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct HeldKey {
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its valid addresses.
    pub addresses: Vec<String>,
    /// The key, armored.
    pub armored: String,
}

/// Where a server password is kept.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PasswordInfo {
    /// `imap` or `smtp`.
    pub server: String,
    /// Where its password comes from, in words.
    pub source: String,
    /// `keyring`, `file` or `environment`.
    pub kind: String,
}

/// An OpenPGP card the readers see.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Card {
    /// `MMMM:SSSSSSSS`.
    pub ident: String,
    /// The manufacturer.
    pub manufacturer: String,
    /// The serial number, in hex.
    pub serial: String,
    /// Fingerprints in the signature, decryption and authentication slots.
    pub slots: Vec<Option<String>>,
    /// Tries left for the user PIN.
    pub user_pin_tries: u8,
    /// Tries left for the reset code.
    pub reset_code_tries: u8,
    /// Tries left for the admin PIN.
    pub admin_pin_tries: u8,
    /// Signatures made.
    pub signature_count: u32,
    /// Whether this card holds the list key.
    pub holds_list_key: bool,
}

/// A subscriber.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Subscriber {
    /// Address.
    pub address: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Expiring, expired or revoked.
    pub warning: Option<String>,
    /// The primary key's algorithm.
    pub algorithm: String,
    /// When the key expires (RFC 5322), if it does.
    pub expires: Option<String>,
    /// The addresses of its valid User IDs.
    pub addresses: Vec<String>,
    /// How their copies fare: `ok`, `bounce score 1.5`, or `stopped after
    /// bounces (score 5)`.
    pub delivery: String,
    /// Their copies are stopped (bounce_action disable); Re-enable lets
    /// them go again.
    pub delivery_stopped: bool,
    /// The last failure of a copy to them: when (RFC 5322), the status
    /// code and what the server said.
    pub last_failure: Option<String>,
}

impl From<conclave_core::list::SubscriberInfo> for Subscriber {
    fn from(s: conclave_core::list::SubscriberInfo) -> Subscriber {
        let d = &s.delivery;
        let delivery = if d.disabled && d.score == 0.0 {
            "stopped".to_string()
        } else if d.disabled {
            format!("stopped after bounces (score {})", d.score)
        } else if d.score > 0.0 {
            format!("bounce score {}", d.score)
        } else {
            "ok".to_string()
        };
        let last_failure = (d.last_failure_at > 0).then(|| {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(d.last_failure_at).unwrap_or(0));
            format!(
                "{} {} {}",
                conclave_core::clock::rfc5322(at),
                d.last_failure_status,
                d.last_failure_text
            )
            .trim_end()
            .to_string()
        });
        Subscriber {
            delivery_stopped: d.disabled,
            delivery,
            last_failure,
            address: s.address,
            fingerprint: s.fingerprint,
            warning: s.warning,
            algorithm: s.algorithm,
            expires: s.expires.map(conclave_core::clock::rfc5322),
            addresses: s.addresses,
        }
    }
}

/// One page of the subscribers, sorted by address.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SubscriberPage {
    /// How many subscribers match the search (all of them without one).
    pub total: u32,
    /// This page's number, from 1.
    pub page: u32,
    /// How many subscribers a page holds.
    pub per_page: u32,
    /// The page.
    pub subscribers: Vec<Subscriber>,
}

/// What became of one key and address in an import.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImportedLine {
    /// `added`, `updated`, `unchanged`, `refused` or `skipped`.
    pub outcome: String,
    /// The address (empty when the key carries none).
    pub address: String,
    /// The key's fingerprint (empty when none was read or found).
    pub fingerprint: String,
    /// Why it was refused or skipped.
    pub reason: Option<String>,
    /// What else the owner should know (a Schleuder admin, delivery
    /// stopped there).
    pub notes: Vec<String>,
}

impl From<&conclave_core::list::import::ImportLine> for ImportedLine {
    fn from(l: &conclave_core::list::import::ImportLine) -> ImportedLine {
        ImportedLine {
            outcome: l.outcome.word().to_string(),
            address: l.address.clone(),
            fingerprint: l.fingerprint.clone(),
            reason: l.outcome.reason().map(str::to_string),
            notes: l.notes.clone(),
        }
    }
}

/// What an import did: a line per key and address, and the summary.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImportResult {
    /// `imported: 998 added, 1 updated, 1 refused (1000 keys read)`.
    pub summary: String,
    /// One line per key and address, in the order of the keys.
    pub lines: Vec<ImportedLine>,
}

/// A subscription, key change or unsubscription asked by mail and not yet
/// decided.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PendingRequest {
    /// Its number.
    #[ts(type = "number")]
    pub id: i64,
    /// `subscribe`, `key change` or `unsubscribe`.
    pub kind: String,
    /// Whose request it is.
    pub address: String,
    /// The key it is about (the new key, for a key change).
    pub key: Subscriber,
    /// The key being replaced, for a key change.
    pub old_fingerprint: Option<String>,
    /// When it was asked (RFC 5322).
    pub asked: String,
    /// When the requester proved they hold the key (RFC 5322), if they did.
    pub proven: Option<String>,
    /// It waits for the owner; otherwise it still waits for the key proof.
    pub awaiting_owner: bool,
    /// Until when the requester can still prove the key (RFC 5322).
    pub proof_until: String,
}

/// A certificate as the accept-or-refuse dialog shows it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Certificate {
    /// `host:port`.
    pub endpoint: String,
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Valid from.
    pub not_before: String,
    /// Valid until.
    pub not_after: String,
    /// Names it is valid for.
    pub names: Vec<String>,
    /// SHA-256 of the certificate (what accepting pins).
    pub sha256: String,
    /// Why nothing trusts it, or that it changed.
    pub reason: String,
    /// A pinned certificate was replaced by this one, or a server a
    /// certificate authority vouched for shows one none vouches for: the
    /// alarm, with no Accept.
    pub changed: bool,
    /// The fingerprint that was pinned, when it changed.
    pub pinned: Option<String>,
}

impl Certificate {
    /// The dialog's data for a certificate error, if it is one.
    pub fn from_tls(t: &TlsError) -> Option<Certificate> {
        let (endpoint, chain, reason, pinned, changed) = match t {
            TlsError::Untrusted {
                endpoint,
                reason,
                chain,
            } => (endpoint, chain, reason.clone(), None, false),
            TlsError::NoLongerVouched {
                endpoint,
                shows,
                chain,
            } => (
                endpoint,
                chain,
                format!(
                    "this server was vouched for by a certificate authority and now shows {shows}"
                ),
                None,
                true,
            ),
            TlsError::Changed {
                endpoint,
                pinned,
                chain,
            } => (
                endpoint,
                chain,
                "the certificate differs from the one you accepted".to_string(),
                Some(pinned.clone()),
                true,
            ),
            _ => return None,
        };
        let first: CertInfo = chain.first()?.clone();
        Some(Certificate {
            endpoint: endpoint.clone(),
            subject: first.subject,
            issuer: first.issuer,
            not_before: first.not_before,
            not_after: first.not_after,
            names: first.names,
            sha256: first.sha256,
            reason,
            changed,
            pinned,
        })
    }
}

/// A pinned certificate.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Pin {
    /// `host:port`.
    pub endpoint: String,
    /// SHA-256.
    pub sha256: String,
    /// Subject.
    pub subject: String,
    /// When the owner accepted it.
    pub accepted: String,
}

/// An error for the UI: a kind it can act on and one line for the owner.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Failure {
    /// The kind (`UntrustedCertificate`, `CertificateChanged`, `Pin`, …).
    pub kind: String,
    /// One line for the owner.
    pub message: String,
    /// For certificate errors, what the dialog shows.
    pub certificate: Option<Box<Certificate>>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let certificate = match &e {
            Error::Tls(t) => Certificate::from_tls(t).map(Box::new),
            _ => None,
        };
        Failure {
            kind: format!("{:?}", e.kind()),
            message: e.to_string(),
            certificate,
        }
    }
}

/// What the engine tells the UI, as the `conclave-event` event.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum UiEvent {
    /// The relay started.
    Started,
    /// The relay stopped.
    Stopped,
    /// A post was handled.
    Post {
        /// Its number.
        #[ts(type = "number")]
        post: i64,
        /// `distributed to 3`, `held: …`, …
        outcome: String,
        /// It waits for the owner.
        held: bool,
        /// It was a request (to join, leave, change keys…), answered:
        /// the pending requests may have changed.
        request: bool,
    },
    /// A request was decided: the pending requests changed.
    Requests,
    /// Something the owner should know that needs no answer (a
    /// subscriber's copies bounced up to the threshold, a subscriber's key
    /// updated from mail or the web, the key check, the keyserver's check
    /// of the list key done…); it is in the log too.
    Notice {
        /// One line for the owner.
        message: String,
    },
    /// Copies going out.
    Progress {
        /// Answered so far.
        done: u32,
        /// Due in this pass.
        total: u32,
    },
    /// A pass over the mailbox and the outbox: both servers answered.
    Pass {
        /// Copies sent.
        sent: u32,
        /// Copies refused for good.
        failed: u32,
        /// Copies to retry.
        deferred: u32,
    },
    /// Something went wrong.
    Error {
        /// What went wrong, for the UI.
        failure: Failure,
        /// The relay stopped until the owner acts.
        fatal: bool,
    },
    /// The OpenPGP card needs a PIN: answer with `pin_answer`.
    PinNeeded {
        /// The card, `MMMM:SSSSSSSS`.
        ident: String,
        /// `user` or `admin`.
        kind: String,
        /// Tries the card still allows.
        tries_left: u8,
    },
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl UiEvent {
    /// The UI's view of an engine event.
    pub fn from_event(e: &Event) -> Option<UiEvent> {
        Some(match e {
            Event::Started => UiEvent::Started,
            Event::Stopped => UiEvent::Stopped,
            Event::Post(o) => UiEvent::Post {
                post: o.post(),
                outcome: o.to_string(),
                held: matches!(o, Outcome::Held { .. }),
                request: matches!(o, Outcome::Answered { .. }),
            },
            Event::Requests => UiEvent::Requests,
            Event::Notice { message } => UiEvent::Notice {
                message: message.clone(),
            },
            Event::Progress { done, total } => UiEvent::Progress {
                done: count(*done),
                total: count(*total),
            },
            Event::Pass { delivery, .. } => UiEvent::Pass {
                sent: count(delivery.sent),
                failed: count(delivery.failed),
                deferred: count(delivery.deferred),
            },
            Event::Error {
                kind,
                message,
                tls,
                fatal,
            } => UiEvent::Error {
                failure: Failure {
                    kind: format!("{kind:?}"),
                    message: message.clone(),
                    certificate: tls.as_ref().and_then(Certificate::from_tls).map(Box::new),
                },
                fatal: *fatal,
            },
            _ => return None,
        })
    }
}

/// One of the list's options, for the Settings screen.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Setting {
    /// The option's name (`receive_signed_only`, …).
    pub key: String,
    /// Its value in force.
    pub value: String,
    /// Its default.
    pub default: String,
    /// What it means.
    pub help: String,
}

/// The list key, for the List key screen.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ListKey {
    /// Its fingerprint.
    pub fingerprint: String,
    /// When it expires (RFC 5322), if it does.
    pub expires: Option<String>,
    /// Where the secret lives: `file` or the card's ident.
    pub holder: String,
    /// The armored public key, for subscribers.
    pub armored: String,
}

/// The invitation for a newcomer, for the Invite dialog.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Invitation {
    /// The list's name.
    pub name: String,
    /// The list address.
    pub address: String,
    /// Where list commands go.
    pub request_address: String,
    /// Where a person reaches the owner.
    pub owner_address: String,
    /// The list key's fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The invitation as plain text.
    pub text: String,
    /// What the QR code says (`OPENPGP4FPR:…`).
    pub qr_content: String,
    /// The QR code as an SVG image.
    pub qr_svg: String,
    /// The vCard 4.0 with the list key.
    pub vcard: String,
}

impl From<conclave_core::list::invite::Invitation> for Invitation {
    fn from(i: conclave_core::list::invite::Invitation) -> Self {
        Invitation {
            name: i.name,
            address: i.address,
            request_address: i.request_address,
            owner_address: i.owner_address,
            fingerprint: i.fingerprint,
            text: i.text,
            qr_content: i.qr_content,
            qr_svg: i.qr_svg,
            vcard: i.vcard,
        }
    }
}

#[cfg(test)]
mod redaction {
    use super::*;

    #[test]
    fn no_secret_of_the_wizard_is_in_debug_output() {
        let server = || Server {
            host: "mail.example.org".into(),
            port: 993,
            security: "tls".into(),
            username: "list".into(),
            password: "server-password-1".into(),
        };
        let setup = Setup {
            address: "list@example.org".into(),
            name: "List".into(),
            passphrase: "key-passphrase-2".into(),
            key: KeyChoice::Import {
                armored: "-----BEGIN PGP PRIVATE KEY BLOCK-----".into(),
            },
            imap: server(),
            smtp: server(),
            ca_file: String::new(),
            passwords_in_files: false,
        };
        let shown = format!("{setup:?} {:#?}", setup);
        for secret in ["server-password-1", "key-passphrase-2", "PRIVATE KEY"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("<redacted>") && shown.contains("mail.example.org"));
    }
}
