//! The options in force, read for a post: what happens to posts that are
//! not encrypted, not signed, not from a subscriber, or too large, and how
//! copies are shaped. Every option is described in [`super::settings`].

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
    /// Send the author a copy of their own post.
    pub deliver_selfsent: bool,
    /// Name the author in the outer `From:`.
    pub outer_from_author: bool,
    /// Put the threading headers outside the encryption too.
    pub outer_references: bool,
    /// The list address, which a signed post's own `To:`/`Cc:` must name.
    pub list_address: String,
    /// Action for a signed post signed for someone else, or too long ago.
    pub retargeted: Action,
    /// The oldest signature taken, in days (0: any age).
    pub max_signature_age_days: u64,
}

impl Policy {
    /// Reads the options from the store, with defaults for those unset.
    pub fn load(store: &Store) -> Result<Policy> {
        let get = |key: &str| -> Result<String> {
            Ok(store
                .config_get(key)?
                .unwrap_or_else(|| super::settings::default_of(key).to_owned()))
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
            deliver_selfsent: get("deliver_selfsent")? == "true",
            outer_from_author: get("outer_from_author")? == "true",
            outer_references: get("outer_references")? == "true",
            list_address: get("list.address")?.to_ascii_lowercase(),
            retargeted: Action::Hold,
            max_signature_age_days: get("max_signature_age_days")?.parse().map_err(|_| {
                Error::InvalidInput("max_signature_age_days is not a number".into())
            })?,
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
            retargeted: Action::Distribute,
            ..self.clone()
        }
    }

    /// The largest plaintext a post may decrypt to: generous for compressed
    /// text, bounded against compression bombs.
    pub fn plaintext_limit(&self) -> usize {
        self.max_size.saturating_mul(8).max(1 << 20)
    }
}
