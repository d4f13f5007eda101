//! Every option of a list, in one table: its key, default, what it means,
//! which group it belongs to and what values it takes. The table drives
//! validation (`config set`), the defaults (`config show`, [`super::Policy`]),
//! the settings the app shows (by group), and the option table of the
//! README (`markdown_table`, checked by a test). A new option is one row.

use crate::error::{Error, Result};

/// Where an option belongs, for the people who change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Who the list is (set by the wizard or `init`).
    List,
    /// What happens to posts that break a rule.
    Posts,
    /// How copies look.
    Copies,
    /// How the list answers mail: joining, leaving, changing keys.
    Requests,
    /// How copies go out.
    Delivery,
    /// The list mailbox (set by the wizard).
    Imap,
    /// The submission server (set by the wizard).
    Smtp,
    /// Trust and timeouts for both servers.
    Network,
    /// Subscriber keys refreshed from the web (WKD, a keyserver).
    Keys,
}

impl Group {
    /// Whether the app's Settings screen shows this group's options (the
    /// wizard and the server screens set the others).
    pub fn in_settings_screen(self) -> bool {
        matches!(
            self,
            Group::Posts | Group::Copies | Group::Requests | Group::Delivery | Group::Keys
        )
    }
}

/// What values an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `distribute`, `hold`, `reject` or `discard` (`off` for distribute).
    Action,
    /// `hold`, `reject` or `discard`.
    StopAction,
    /// A whole number from `min` to `max`.
    Number {
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// An e-mail address.
    Address,
    /// A host name or address.
    Host,
    /// A path to a file.
    File,
    /// A file, or empty for none.
    OptionalFile,
    /// An `https://` URL, or empty for none.
    OptionalHttpsUrl,
    /// Any text on one line.
    Text,
    /// Set once, by `init`.
    Fixed,
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Its key (`receive_signed_only`, `smtp.port`…).
    pub key: &'static str,
    /// Its default, as stored.
    pub default: &'static str,
    /// The default as the README shows it, when it differs (a computed one).
    pub default_shown: Option<&'static str>,
    /// What it means, in one line.
    pub help: &'static str,
    /// Where it belongs.
    pub group: Group,
    /// What values it takes.
    pub kind: Kind,
}

const ACTIONS: &str = "distribute|hold|reject|discard";

const fn s(
    key: &'static str,
    default: &'static str,
    help: &'static str,
    group: Group,
    kind: Kind,
) -> Setting {
    Setting {
        key,
        default,
        default_shown: None,
        help,
        group,
        kind,
    }
}

/// Every option, in the order the README and `config show` list them.
pub const SETTINGS: &[Setting] = &[
    s("receive_encrypted_only", "reject", "action for posts that are not encrypted: distribute|hold|reject|discard", Group::Posts, Kind::Action),
    s("receive_signed_only", "hold", "action for posts not signed by their sender: distribute|hold|reject|discard", Group::Posts, Kind::Action),
    s("subscribers_only", "hold", "action for posts from non-subscribers: distribute|hold|reject|discard", Group::Posts, Kind::Action),
    s("max_message_size_kb", "10240", "the largest post accepted, in KiB, as it arrives", Group::Posts, Kind::Number { min: 1, max: 4_194_304 }),
    s("max_message_size_action", "reject", "action for larger posts: hold|reject|discard", Group::Posts, Kind::StopAction),
    s("max_signature_age_days", "7", "a signed post whose signature is older than this many days is held (0: any age)", Group::Posts, Kind::Number { min: 0, max: 36_500 }),
    s("store.sent_retention_days", "30", "days the outbox keeps a copy after the server accepted it, to match bounces to it (0: forever)", Group::Posts, Kind::Number { min: 0, max: 36_500 }),
    s("store.retention_days", "0", "days the store keeps the sealed bytes of rejected and discarded posts (0: forever; held posts are always kept)", Group::Posts, Kind::Number { min: 0, max: 36_500 }),
    s("signature_mode", "carry", "carry: the author's signed original travels inside; replace: a 'signed by' block instead", Group::Copies, Kind::OneOf(&["carry", "replace"])),
    s("keep_message_id", "true", "true: copies keep the author's Message-ID inside the encryption (unless another post had it), so the author's client knows its own post; false: one of the list's", Group::Copies, Kind::OneOf(&["true", "false"])),
    s("deliver_selfsent", "true", "false: the author of a post gets no copy of it", Group::Copies, Kind::OneOf(&["true", "false"])),
    s("outer_from_author", "false", "true: the outer From: names the author ('Alice via List'), for clients that show only outer headers; the mail host then reads who wrote each post", Group::Copies, Kind::OneOf(&["true", "false"])),
    s("outer_references", "false", "true: copies carry In-Reply-To/References outside the encryption too, for clients that thread by outer headers only (Mutt); the mail host then learns which post answers which", Group::Copies, Kind::OneOf(&["true", "false"])),
    s("subscription_policy", "confirm+moderate", "who may join by mail: open (at once), confirm (after proving they hold their key), moderate (the owner approves), confirm+moderate (both)", Group::Requests, Kind::OneOf(&["open", "confirm", "moderate", "confirm+moderate"])),
    s("key_change_policy", "confirm", "a subscriber's key change signed by their old key: confirm (takes effect once the new key's holder answers) or confirm+moderate (then the owner approves)", Group::Requests, Kind::OneOf(&["confirm", "confirm+moderate"])),
    s("key_signing", "subscribers", "subscribers: a subscriber's certification of the list key (key sign) is added to the key the list publishes; off: never", Group::Requests, Kind::OneOf(&["subscribers", "off"])),
    s("notify_senders", "subscribers", "subscribers: a subscriber whose post is held or rejected is told why, encrypted to their key; off: nobody is", Group::Requests, Kind::OneOf(&["subscribers", "off"])),
    s("key_warning_days", "14", "days before a subscriber's key expires that they are told, once per key and date, encrypted to that key, how to extend it (0: never)", Group::Requests, Kind::Number { min: 0, max: 365 }),
    s("missed_post_notice", "on", "on: a subscriber whose key cannot be used (expired, revoked, no encryption subkey) gets, instead of a post, a notice signed by the list saying why, at most once a day; off: they are not told", Group::Requests, Kind::OneOf(&["on", "off"])),
    s("request_token_days", "7", "days a confirmation token sent by the list stays valid", Group::Requests, Kind::Number { min: 1, max: 365 }),
    s("request_reply_limit", "20", "the most automatic replies the list sends one address in an hour", Group::Requests, Kind::Number { min: 1, max: 10_000 }),
    s("smtp.rate_per_minute", "0", "the most copies submitted per minute (0: no limit)", Group::Delivery, Kind::Number { min: 0, max: u32::MAX as u64 }),
    s("smtp.connections", "4", "how many SMTP connections submit copies side by side (1 to 16; 1 when a rate is set)", Group::Delivery, Kind::Number { min: 1, max: 16 }),
    s("bounce_action", "notify", "what happens when a subscriber's copies bounce up to bounce_threshold: notify (the owner is alerted, nothing changes) or disable (their copies stop until the owner enables them again)", Group::Delivery, Kind::OneOf(&["notify", "disable"])),
    s("bounce_threshold", "5", "the bounce score that alerts the owner (a hard bounce counts 1, a soft one 0.5, at most one a day)", Group::Delivery, Kind::Number { min: 1, max: 1000 }),
    s("bounce_stale_days", "7", "a bounce score starts again from zero when the last counted bounce is older than this many days", Group::Delivery, Kind::Number { min: 1, max: 365 }),
    s("keys.refresh", "on", "on: every subscriber's key is asked of WKD and the keyserver every keys.refresh_days days, in random order, and only a newer copy of the same key is taken (third-party certifications stripped); off: never", Group::Keys, Kind::OneOf(&["on", "off"])),
    s("keys.refresh_days", "7", "days between two refreshes of the subscribers' keys", Group::Keys, Kind::Number { min: 1, max: 365 }),
    s("keys.refresh_delay_seconds", "300", "the longest random pause between two key lookups of a refresh, so the lookups do not show as one burst (0: none)", Group::Keys, Kind::Number { min: 0, max: 86_400 }),
    s("keys.wkd", "on", "on: a refresh asks the Web Key Directory of each subscriber's domain; off: it does not", Group::Keys, Kind::OneOf(&["on", "off"])),
    s("keys.keyserver", "https://keys.openpgp.org", "the VKS keyserver a refresh asks by fingerprint and `key publish` uploads the list key to (https only; empty: none)", Group::Keys, Kind::OptionalHttpsUrl),
    s("list.name", "", "the list's display name", Group::List, Kind::Text),
    s("list.address", "", "the list address (set by init)", Group::List, Kind::Fixed),
    Setting {
        default_shown: Some("LOCAL+request@DOMAIN"),
        ..s("list.request_address", "", "where commands go, and List-Help, List-Subscribe and List-Unsubscribe point (default: LOCAL+request@DOMAIN)", Group::List, Kind::Address)
    },
    Setting {
        default_shown: Some("LOCAL+owner@DOMAIN"),
        ..s("list.owner_address", "", "mail for the owner, kept for the app and never distributed; List-Owner points here (default: LOCAL+owner@DOMAIN)", Group::List, Kind::Address)
    },
    Setting {
        default_shown: Some("LOCAL+key@DOMAIN"),
        ..s("list.key_address", "", "anyone who writes here gets the list key, signed (default: LOCAL+key@DOMAIN)", Group::List, Kind::Address)
    },
    s("imap.host", "", "the IMAP server of the list mailbox", Group::Imap, Kind::Host),
    s("imap.port", "993", "its port (993 for implicit TLS, 143 for STARTTLS)", Group::Imap, Kind::Number { min: 1, max: 65535 }),
    s("imap.security", "tls", "tls (implicit TLS) or starttls (mandatory STARTTLS)", Group::Imap, Kind::OneOf(&["tls", "starttls"])),
    s("imap.username", "", "the login of the list mailbox", Group::Imap, Kind::Text),
    s("imap.password_file", "", "a file (mode 0600) holding its password; empty: the OS keyring holds it", Group::Imap, Kind::OptionalFile),
    s("smtp.host", "", "the SMTP submission server", Group::Smtp, Kind::Host),
    s("smtp.port", "465", "its port (465 for implicit TLS, 587 for STARTTLS)", Group::Smtp, Kind::Number { min: 1, max: 65535 }),
    s("smtp.security", "tls", "tls (implicit TLS) or starttls (mandatory STARTTLS)", Group::Smtp, Kind::OneOf(&["tls", "starttls"])),
    s("smtp.username", "", "the login for submission", Group::Smtp, Kind::Text),
    s("smtp.password_file", "", "a file (mode 0600) holding its password; empty: the OS keyring holds it", Group::Smtp, Kind::OptionalFile),
    s("tls.ca_file", "", "an extra CA certificate file (PEM) to trust, besides the public roots and the system store", Group::Network, Kind::File),
    s("net.timeout_seconds", "60", "how long one IMAP or SMTP operation, or one key lookup over HTTPS, may take before the server counts as silent and the relay tries again later", Group::Network, Kind::Number { min: 1, max: 3600 }),
    s("net.resolve", "", "for tests: HOST=ADDR:PORT entries, comma-separated; key lookups for HOST connect to ADDR:PORT instead (the certificate is still checked for HOST)", Group::Network, Kind::Text),
];

/// The option `key`, if there is one.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The default of `key` (empty for an unknown key).
pub fn default_of(key: &str) -> &'static str {
    find(key).map(|s| s.default).unwrap_or("")
}

/// Checks a value before it is stored.
pub fn validate(key: &str, value: &str) -> Result<()> {
    let Some(setting) = find(key) else {
        let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        return Err(Error::InvalidInput(format!(
            "unknown setting {key}; known settings: {}",
            known.join(", ")
        )));
    };
    if setting.kind == Kind::Fixed {
        return Err(Error::InvalidInput(format!(
            "{key} is set by init and cannot change"
        )));
    }
    if setting.kind.accepts(value) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "bad value for {key}: {value:?} ({})",
            setting.help
        )))
    }
}

impl Kind {
    /// Whether `value` is one this kind takes.
    pub fn accepts(self, value: &str) -> bool {
        let one_line = !value.chars().any(char::is_control);
        match self {
            Kind::Action => ACTIONS.split('|').chain(["off"]).any(|a| a == value),
            Kind::StopAction => ["hold", "reject", "discard"].contains(&value),
            Kind::Number { min, max } => {
                value.parse::<u64>().is_ok_and(|n| (min..=max).contains(&n))
            }
            Kind::OneOf(words) => words.contains(&value),
            Kind::Address => {
                value.contains('@') && !value.contains(char::is_whitespace) && one_line
            }
            Kind::Host => {
                !value.is_empty()
                    && !value.contains(char::is_whitespace)
                    && !value.contains('/')
                    && one_line
            }
            Kind::File => !value.is_empty() && one_line,
            Kind::OptionalFile | Kind::Text => one_line,
            Kind::OptionalHttpsUrl => {
                value.is_empty()
                    || (value.starts_with("https://")
                        && value.len() > "https://".len()
                        && !value.contains(char::is_whitespace)
                        && one_line)
            }
            Kind::Fixed => false,
        }
    }
}

/// The README's option table, as Markdown: one row an option.
pub fn markdown_table() -> String {
    let mut out = String::from("| option | default | meaning |\n|---|---|---|\n");
    for s in SETTINGS {
        let default = s.default_shown.unwrap_or(s.default);
        let default = if default.is_empty() {
            String::new()
        } else {
            format!("`{default}`")
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            s.key,
            s.help.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_a_value_its_kind_takes() {
        for s in SETTINGS {
            if s.default.is_empty() || s.kind == Kind::Fixed {
                continue;
            }
            assert!(s.kind.accepts(s.default), "{}: {:?}", s.key, s.default);
        }
    }

    #[test]
    fn values_are_checked_by_kind() {
        assert!(validate("receive_signed_only", "reject").is_ok());
        assert!(validate("receive_signed_only", "maybe").is_err());
        assert!(validate("max_message_size_action", "distribute").is_err());
        assert!(validate("smtp.connections", "17").is_err());
        assert!(validate("smtp.connections", "16").is_ok());
        assert!(validate("net.timeout_seconds", "0").is_err());
        assert!(validate("imap.host", "a b").is_err());
        assert!(validate("keys.keyserver", "").is_ok());
        assert!(validate("keys.keyserver", "https://keys.example.org").is_ok());
        assert!(validate("keys.keyserver", "http://keys.example.org").is_err());
        assert!(validate("keys.refresh_delay_seconds", "0").is_ok());
        assert!(validate("list.address", "x@example.test").is_err());
        assert!(validate("list.name", "A\nB").is_err());
        let e = validate("nope", "1").unwrap_err().to_string();
        assert!(e.contains("unknown setting nope"), "{e}");
    }
}
