//! The list's options: what happens to posts that are not encrypted, not
//! signed, not from a subscriber, or too large, and how copies are shaped.

use crate::error::{Error, Result};
use crate::store::Store;

/// What to do with a post that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Let it through (the rule is off).
    Distribute,
    /// Keep it for the owner to decide.
    Hold,
    /// Drop it on purpose; the ciphertext is kept and the reason logged.
    Discard,
    /// Refuse it; the ciphertext is kept and the reason logged.
    Reject,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "distribute" | "off" => Some(Action::Distribute),
            "hold" => Some(Action::Hold),
            "discard" => Some(Action::Discard),
            "reject" => Some(Action::Reject),
            _ => None,
        }
    }

    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Distribute => "distribute",
            Action::Hold => "hold",
            Action::Discard => "discard",
            Action::Reject => "reject",
        }
    }
}

/// How the author's signature reaches subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMode {
    /// Carry the author's signed original inside the list-signed copy.
    Carry,
    /// Replace it with a visible statement of who signed, as Schleuder does.
    Replace,
}

/// Every option, with its default and what it accepts.
pub const OPTIONS: &[(&str, &str, &str)] = &[
    ("list.name", "", "the list's display name"),
    ("list.address", "", "the list address (set by init)"),
    (
        "list.request_address",
        "",
        "where List-Help and List-Unsubscribe point (default: LOCAL+request@DOMAIN)",
    ),
    (
        "receive_encrypted_only",
        "reject",
        "action for posts that are not encrypted: distribute|hold|reject|discard",
    ),
    (
        "receive_signed_only",
        "hold",
        "action for posts not signed by their sender: distribute|hold|reject|discard",
    ),
    (
        "subscribers_only",
        "hold",
        "action for posts from non-subscribers: distribute|hold|reject|discard",
    ),
    (
        "max_message_size_kb",
        "10240",
        "the largest post accepted, in KiB, as it arrives",
    ),
    (
        "max_message_size_action",
        "reject",
        "action for larger posts: hold|reject|discard",
    ),
    (
        "signature_mode",
        "carry",
        "carry: the author's signed original travels inside; replace: a 'signed by' block instead",
    ),
    (
        "keep_message_id",
        "false",
        "true: copies keep the author's Message-ID inside the encryption",
    ),
    ("imap.host", "", "the IMAP server of the list mailbox"),
    ("imap.port", "993", "its port (993 for implicit TLS, 143 for STARTTLS)"),
    ("imap.security", "tls", "tls (implicit TLS) or starttls (mandatory STARTTLS)"),
    ("imap.username", "", "the login of the list mailbox"),
    ("imap.password_file", "", "a file (mode 0600) holding its password; empty: the OS keyring holds it"),
    ("smtp.host", "", "the SMTP submission server"),
    ("smtp.port", "465", "its port (465 for implicit TLS, 587 for STARTTLS)"),
    ("smtp.security", "tls", "tls (implicit TLS) or starttls (mandatory STARTTLS)"),
    ("smtp.username", "", "the login for submission"),
    ("smtp.password_file", "", "a file (mode 0600) holding its password; empty: the OS keyring holds it"),
    ("smtp.rate_per_minute", "0", "the most copies submitted per minute (0: no limit)"),
    ("smtp.connections", "4", "how many SMTP connections submit copies side by side (1 to 16; 1 when a rate is set)"),
    ("tls.ca_file", "", "an extra CA certificate file (PEM) to trust, besides the public roots and the system store"),
    ("net.timeout_seconds", "60", "how long one IMAP or SMTP operation may take before the server counts as silent and the relay tries again later"),
];

/// The options in force.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Action for posts that are not encrypted.
    pub encrypted_only: Action,
    /// Action for posts not signed by their sender.
    pub signed_only: Action,
    /// Action for posts from non-subscribers.
    pub subscribers_only: Action,
    /// The largest post accepted, in bytes.
    pub max_size: usize,
    /// Action for larger posts.
    pub max_size_action: Action,
    /// How the author's signature reaches subscribers.
    pub signature_mode: SignatureMode,
    /// Keep the author's Message-ID inside the encryption.
    pub keep_message_id: bool,
}

impl Policy {
    /// Reads the options from the store, with defaults for those unset.
    pub fn load(store: &Store) -> Result<Policy> {
        let get = |key: &str| -> Result<String> {
            let default = OPTIONS
                .iter()
                .find(|o| o.0 == key)
                .map(|o| o.1)
                .unwrap_or("");
            Ok(store.config_get(key)?.unwrap_or_else(|| default.to_owned()))
        };
        let action = |key: &str| -> Result<Action> {
            let v = get(key)?;
            Action::parse(&v)
                .ok_or_else(|| Error::InvalidInput(format!("{key} has a bad value: {v}")))
        };
        let kb: usize = get("max_message_size_kb")?
            .parse()
            .map_err(|_| Error::InvalidInput("max_message_size_kb is not a number".into()))?;
        Ok(Policy {
            encrypted_only: action("receive_encrypted_only")?,
            signed_only: action("receive_signed_only")?,
            subscribers_only: action("subscribers_only")?,
            max_size: kb.saturating_mul(1024),
            max_size_action: action("max_message_size_action")?,
            signature_mode: if get("signature_mode")? == "replace" {
                SignatureMode::Replace
            } else {
                SignatureMode::Carry
            },
            keep_message_id: get("keep_message_id")? == "true",
        })
    }

    /// The options as the owner's approval applies them: every option lets
    /// the post through and the size limit is lifted; the checks before the
    /// options still hold ([`super::judge`]).
    pub fn approved(&self) -> Policy {
        Policy {
            encrypted_only: Action::Distribute,
            signed_only: Action::Distribute,
            subscribers_only: Action::Distribute,
            max_size: usize::MAX,
            max_size_action: Action::Distribute,
            ..self.clone()
        }
    }

    /// The largest plaintext a post may decrypt to: generous for compressed
    /// text, bounded against compression bombs.
    pub fn plaintext_limit(&self) -> usize {
        self.max_size.saturating_mul(8).max(1 << 20)
    }
}

/// Checks a value before it is stored.
pub fn validate(key: &str, value: &str) -> Result<()> {
    if !OPTIONS.iter().any(|o| o.0 == key) {
        let known: Vec<&str> = OPTIONS.iter().map(|o| o.0).collect();
        return Err(Error::InvalidInput(format!(
            "unknown setting {key}; known settings: {}",
            known.join(", ")
        )));
    }
    let ok = match key {
        "receive_encrypted_only" | "receive_signed_only" | "subscribers_only" => {
            Action::parse(value).is_some()
        }
        "max_message_size_action" => {
            matches!(Action::parse(value), Some(a) if a != Action::Distribute)
        }
        "max_message_size_kb" => value.parse::<usize>().map(|n| n > 0).unwrap_or(false),
        "signature_mode" => value == "carry" || value == "replace",
        "keep_message_id" => value == "true" || value == "false",
        "list.address" => {
            return Err(Error::InvalidInput(
                "list.address is set by init and cannot change".into(),
            ))
        }
        "list.request_address" => value.contains('@') && !value.contains(char::is_whitespace),
        "smtp.rate_per_minute" => value.parse::<u32>().is_ok(),
        "smtp.connections" => value.parse::<u8>().is_ok_and(|n| (1..=16).contains(&n)),
        "imap.port" | "smtp.port" => value.parse::<u16>().map(|p| p > 0).unwrap_or(false),
        "imap.security" | "smtp.security" => value == "tls" || value == "starttls",
        "imap.host" | "smtp.host" => {
            !value.is_empty() && !value.contains(char::is_whitespace) && !value.contains('/')
        }
        "tls.ca_file" => !value.is_empty(),
        "net.timeout_seconds" => value.parse::<u16>().is_ok_and(|n| n > 0),
        // Empty: the password is in the OS keyring.
        "imap.password_file" | "smtp.password_file" => !value.chars().any(char::is_control),
        _ => !value.chars().any(char::is_control),
    };
    if ok {
        Ok(())
    } else {
        let help = OPTIONS
            .iter()
            .find(|o| o.0 == key)
            .map(|o| o.2)
            .unwrap_or("");
        Err(Error::InvalidInput(format!(
            "bad value for {key}: {value:?} ({help})"
        )))
    }
}
