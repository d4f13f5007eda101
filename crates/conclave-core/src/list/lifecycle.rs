//! Keys over time. A subscriber's key expires, is extended, is revoked;
//! the list keeps up without the owner:
//!
//! - **From mail:** a newer copy of a subscriber's own key (the same
//!   fingerprint) in a message from them, in its `Autocrypt:` header or
//!   attached inside the encryption, is merged in memory before their
//!   signature is checked (a key that expired and was extended verifies
//!   again), and stored once the message verified as theirs
//!   ([`crate::crypto::samekey`]). A revocation is stored even when the
//!   message no longer verifies: the key itself signed it, and it can only
//!   stop mail. Another key never replaces theirs here.
//! - **The daily key check:** a subscriber whose key expires within
//!   `key_warning_days` is told once per key and expiry date, encrypted to
//!   that key, how to extend it and send it.
//! - **"You missed a post":** a subscriber whose key cannot be used gets,
//!   instead of the post, a notice signed by the list (it cannot be
//!   encrypted to them), at most once a day, that says why and never what
//!   the post was.
//! - **The list key:** [`List::list_key_alarm`] says when it expires within
//!   [`LIST_KEY_ALARM_DAYS`].

use std::time::{Duration, SystemTime};

use sequoia_openpgp::types::RevocationStatus;
use sequoia_openpgp::Cert;

use crate::crypto::{certs, policy, samekey};
use crate::error::Result;
use crate::events::Event;
use crate::mime::parse::{self, Content, Incoming};

use super::open::Unsealed;
use super::reply::Reply;
use super::requests::{autocrypt_key, keys_in};
use super::{Candidates, List};

/// How many days ahead the list key's expiry raises the alarm.
pub const LIST_KEY_ALARM_DAYS: u64 = 30;

const DAY: u64 = 86_400;

/// A subscriber key that still serves but expires soon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringKey {
    /// The subscriber.
    pub address: String,
    /// Their key.
    pub fingerprint: String,
    /// When it stops serving (the primary key's or the last encryption
    /// subkey's expiry, whichever comes first).
    pub expires: SystemTime,
    /// Whether they were told about this expiry date.
    pub told: bool,
}

/// A subscriber who receives no posts: their key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReceiving {
    /// The subscriber.
    pub address: String,
    /// Their key.
    pub fingerprint: String,
    /// Why it cannot be used.
    pub why: String,
    /// Posts they missed since `since` (0: none yet).
    pub missed: i64,
    /// When they missed the first of those (Unix seconds).
    pub since: Option<i64>,
    /// When they were last told (Unix seconds).
    pub told_at: Option<i64>,
}

/// What one key check found and did.
#[derive(Debug, Clone, Default)]
pub struct KeyCheck {
    /// The keys that expire within `key_warning_days`.
    pub expiring: Vec<ExpiringKey>,
    /// The subscribers told this time.
    pub told: Vec<String>,
    /// The subscribers whose keys cannot be used.
    pub not_receiving: Vec<NotReceiving>,
    /// The list key's alarm, if it expires soon.
    pub list_key: Option<String>,
}

impl KeyCheck {
    /// One line for the owner per thing to know, for the log and the
    /// front ends.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(alarm) = &self.list_key {
            out.push(alarm.clone());
        }
        for k in &self.expiring {
            out.push(format!(
                "{}: key {} expires on {}{}",
                k.address,
                k.fingerprint,
                crate::clock::iso_date(k.expires),
                if k.told {
                    "; told how to extend it"
                } else {
                    ""
                }
            ));
        }
        for n in &self.not_receiving {
            out.push(format!(
                "{}: receives no posts: key {}: {}",
                n.address, n.fingerprint, n.why
            ));
        }
        out
    }
}

/// A same-fingerprint copy of the sender's key a message carried.
#[derive(Debug, Clone)]
pub(crate) struct OfferedCopy {
    pub(crate) cert: Cert,
    /// Where it was: "an Autocrypt header", "a key attached".
    pub(crate) source: &'static str,
}

/// When `cert` stops serving the list: the earliest of the primary key's
/// expiry and the latest expiry of its encryption subkeys alive at `now`.
/// None when it never expires or does not serve now.
pub fn usable_until(cert: &Cert, now: SystemTime) -> Option<SystemTime> {
    let vc = cert.with_policy(policy(), now).ok()?;
    vc.alive().ok()?;
    let primary = vc.primary_key().key_expiration_time();
    let mut subkeys = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .map(|ka| ka.key_expiration_time())
        .peekable();
    subkeys.peek()?;
    // None (never) beats any date.
    let subkey = subkeys.try_fold(SystemTime::UNIX_EPOCH, |latest, t| t.map(|t| latest.max(t)));
    match (primary, subkey) {
        (Some(p), Some(s)) => Some(p.min(s)),
        (p, s) => p.or(s),
    }
}

/// Whether `cert` is revoked at `now`.
fn revoked(cert: &Cert, now: SystemTime) -> bool {
    matches!(
        cert.revocation_status(policy(), now),
        RevocationStatus::Revoked(_)
    )
}

/// `key` merged with every same-fingerprint copy in `copies` that brings
/// something new; None when none does.
fn merged(key: &Cert, copies: &[OfferedCopy], now: SystemTime) -> Option<Cert> {
    let mut out: Option<Cert> = None;
    for c in copies {
        let base = out.as_ref().unwrap_or(key);
        if let Ok(Some(up)) = samekey::update(base, c.cert.clone(), now) {
            out = Some(up.cert);
        }
    }
    out
}

impl List {
    /// [`List::unseal`] for a message from `from`: newer copies of the key
    /// `from` is subscribed with, carried in the message's `Autocrypt:`
    /// header or attached inside it, are merged (in memory) into that key
    /// before the signatures are checked, so a key that expired and was
    /// extended verifies. Returns the message unsealed and those copies;
    /// nothing is stored.
    pub(crate) fn unseal_from(
        &mut self,
        raw: &[u8],
        incoming: &Incoming,
        candidates: &Candidates,
        limit: usize,
    ) -> Result<std::result::Result<(Unsealed, Vec<OfferedCopy>), String>> {
        let from = incoming.from.clone().unwrap_or_default();
        let now = self.now();
        let sender = self
            .store
            .subscriber(&from)?
            .and_then(|(_, cert)| certs::parse_public_cert(&cert).ok());
        let Some(sender) = sender else {
            return Ok(self
                .unseal(raw, incoming, candidates, limit)?
                .map(|u| (u, Vec::new())));
        };
        let replaced = |key: &Cert| Candidates {
            extra: candidates.extra.clone(),
            replace: Some(key.clone()),
        };
        let fpr = sender.fingerprint();
        let mut offered: Vec<OfferedCopy> = incoming
            .autocrypt
            .as_deref()
            .and_then(autocrypt_key)
            .filter(|c| c.fingerprint() == fpr)
            .map(|cert| OfferedCopy {
                cert,
                source: "an Autocrypt header",
            })
            .into_iter()
            .collect();
        let outer = merged(&sender, &offered, now);
        let first = match &outer {
            Some(key) => self.unseal(raw, incoming, &replaced(key), limit)?,
            None => self.unseal(raw, incoming, candidates, limit)?,
        };
        let unsealed = match first {
            Ok(u) => u,
            Err(why) => return Ok(Err(why)),
        };
        let inner: Vec<OfferedCopy> = attached_copies(&unsealed)
            .into_iter()
            .filter(|c| c.fingerprint() == fpr)
            .map(|cert| OfferedCopy {
                cert,
                source: "a key attached",
            })
            .collect();
        if inner.is_empty() {
            return Ok(Ok((unsealed, offered)));
        }
        offered.extend(inner);
        // A copy inside the encryption can only help the signature once
        // the message is open: it is opened again with it, when the
        // sender's key did not verify and the copy changes it.
        let verified = unsealed.sigs.iter().any(
            |s| matches!(s, crate::crypto::decrypt::SigStatus::Good { cert, .. } if *cert == fpr),
        );
        let base = outer.as_ref().unwrap_or(&sender);
        match merged(base, &offered, now) {
            Some(key) if !verified => {
                let again = self.unseal(raw, incoming, &replaced(&key), limit)?;
                Ok(again.map(|u| (u, offered)))
            }
            _ => Ok(Ok((unsealed, offered))),
        }
    }

    /// Stores the newer copies of `address`'s key that message `post_id`
    /// carried: when the message verified as theirs (`verified`), or, a
    /// revocation, in any case. Tells the owner what changed (the log and
    /// an [`Event::Notice`]); a copy the list cannot take is logged.
    pub(crate) fn take_offered_copies(
        &mut self,
        post_id: i64,
        address: &str,
        offered: &[OfferedCopy],
        verified: bool,
    ) -> Result<()> {
        let now = self.now();
        for copy in offered {
            let Some((_, stored)) = self.store.subscriber(address)? else {
                return Ok(());
            };
            let Ok(current) = certs::parse_public_cert(&stored) else {
                return Ok(());
            };
            let Ok(Some(up)) = samekey::update(&current, copy.cert.clone(), now) else {
                continue;
            };
            let revokes = revoked(&up.cert, now) && !revoked(&current, now);
            if !verified && !revokes {
                continue;
            }
            let source = format!("{} in message #{post_id}", copy.source);
            if let Some(changes) =
                self.update_subscriber_key(address, copy.cert.clone(), &source)?
            {
                self.emit(&Event::Notice {
                    message: format!(
                        "{address}: key {} updated from {source}: {}",
                        current.fingerprint().to_hex(),
                        changes.join("; ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// The subscribers whose keys serve now but stop within
    /// `key_warning_days` (none when it is 0), soonest first.
    pub fn expiring_keys(&self) -> Result<Vec<ExpiringKey>> {
        let days: u64 = self.config_value("key_warning_days")?.parse().unwrap_or(14);
        let now = self.now();
        let horizon = now + Duration::from_secs(days * DAY);
        let mut out = Vec::new();
        if days == 0 {
            return Ok(out);
        }
        // Only keys whose derived choice stops holding by the horizon can
        // expire by then; the others are not read.
        let horizon_unix = crate::clock::unix(horizon);
        for s in self.store.subscribers_changing_by(horizon_unix)? {
            let Ok(cert) = certs::parse_public_cert(&s.cert) else {
                continue;
            };
            if certs::encryption_keys(&cert, now).is_err() {
                continue;
            }
            if let Some(expires) = usable_until(&cert, now).filter(|t| *t <= horizon) {
                let told = self
                    .store
                    .expiry_notice_sent(&s.address, &crate::clock::iso_date(expires))?;
                out.push(ExpiringKey {
                    address: s.address,
                    fingerprint: s.fingerprint,
                    expires,
                    told,
                });
            }
        }
        out.sort_by_key(|k| k.expires);
        Ok(out)
    }

    /// The subscribers whose keys cannot be used now, why, and how many
    /// posts they missed.
    pub fn not_receiving(&self) -> Result<Vec<NotReceiving>> {
        let now = self.now();
        let missed = self.store.missed_posts()?;
        let mut out = Vec::new();
        for s in self
            .store
            .subscribers_changing_by(crate::clock::unix(now))?
        {
            let why = match certs::parse_public_cert(&s.cert) {
                Ok(cert) => match certs::encryption_keys(&cert, now) {
                    Ok(_) => continue,
                    Err(_) => certs::refusal(&cert, "", now),
                },
                Err(e) => e.to_string(),
            };
            let m = missed
                .iter()
                .find(|m| m.address == s.address && m.fingerprint == s.fingerprint);
            out.push(NotReceiving {
                address: s.address,
                fingerprint: s.fingerprint,
                why,
                missed: m.map(|m| m.missed).unwrap_or(0),
                since: m.map(|m| m.since),
                told_at: m.map(|m| m.sent_at),
            });
        }
        Ok(out)
    }

    /// The alarm about the list key, when it expires within
    /// [`LIST_KEY_ALARM_DAYS`] days or has expired.
    pub fn list_key_alarm(&self) -> Option<String> {
        let now = self.now();
        let fpr = self.cert.fingerprint().to_hex();
        let expires = match self.key_expiry() {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => return Some(format!("the list key {fpr} cannot be used: {e}")),
        };
        if expires <= now {
            return Some(format!(
                "the list key {fpr} expired on {}: subscribers' clients no longer accept the list's mail; extend it (`conclave key extend`) and send subscribers the extended key",
                crate::clock::iso_date(expires)
            ));
        }
        let left = expires.duration_since(now).unwrap_or_default().as_secs() / DAY;
        (left < LIST_KEY_ALARM_DAYS).then(|| {
            format!(
                "the list key {fpr} expires on {} (in {left} days): extend it before then (`conclave key extend`)",
                crate::clock::iso_date(expires)
            )
        })
    }

    /// Whether the key check is due: the last one was a day ago or more
    /// (or the clock went back past it).
    pub fn key_check_due(&self) -> Result<bool> {
        let now = self.unix();
        Ok(match self.store.last_key_check()? {
            Some(last) => now - last >= DAY as i64 || now < last,
            None => true,
        })
    }

    /// Whether the key check, run now, would sign a notice (someone must
    /// be told their key expires): a card's PIN is asked first then.
    pub fn key_check_signs(&self) -> Result<bool> {
        Ok(self.expiring_keys()?.iter().any(|k| !k.told))
    }

    /// The key check, if it is due ([`List::key_check_due`]; the relay
    /// runs it after each pass's intake). None when it was not due.
    pub fn check_keys_if_due(&mut self) -> Result<Option<KeyCheck>> {
        if !self.key_check_due()? {
            return Ok(None);
        }
        self.check_keys().map(Some)
    }

    /// The key check: every subscriber whose key expires within
    /// `key_warning_days` is told how to extend it, once per key and
    /// expiry date, encrypted to that key and signed by the list. Returns
    /// what it found; the log has one line for it.
    pub fn check_keys(&mut self) -> Result<KeyCheck> {
        let ts = self.unix();
        let mut check = KeyCheck {
            expiring: self.expiring_keys()?,
            not_receiving: self.not_receiving()?,
            list_key: self.list_key_alarm(),
            ..KeyCheck::default()
        };
        let mut row = None;
        for k in &check.expiring {
            if k.told {
                continue;
            }
            let Some((_, stored)) = self.store.subscriber(&k.address)? else {
                continue;
            };
            let cert = certs::parse_public_cert(&stored)?;
            let post_id = match row {
                Some(id) => id,
                None => {
                    let id = self.store.insert_notice_row("the list's key check", ts)?;
                    row = Some(id);
                    id
                }
            };
            let date = crate::clock::iso_date(k.expires);
            let reply = self.expiry_notice(&k.address, &k.fingerprint, &date)?;
            if self.reply(post_id, &reply, Some(&cert))? {
                self.store
                    .note_expiry_notice(&k.address, &k.fingerprint, &date, ts)?;
                check.told.push(k.address.clone());
            }
        }
        for k in &mut check.expiring {
            k.told = k.told || check.told.contains(&k.address);
        }
        self.store.note_key_check(ts)?;
        let detail = match check.lines() {
            lines if lines.is_empty() => "every key serves; none expires soon".to_string(),
            lines => lines.join("; "),
        };
        self.store.audit(ts, None, "key-check", &detail)?;
        Ok(check)
    }

    /// The notice to a subscriber whose key expires on `date`.
    fn expiry_notice(&self, address: &str, fpr: &str, date: &str) -> Result<Reply> {
        let name = self.name()?;
        let request = self.request_address()?;
        Ok(Reply {
            to: address.to_owned(),
            subject: format!("Your key for {name} expires on {date}"),
            text: format!(
                "Your OpenPGP key {fpr}, with which you receive {name} ({list}), expires on {date}. After that day the list cannot encrypt posts to it, and you would miss them.\r\n\r\n{how}",
                list = self.address,
                how = how_to_extend(fpr, &self.address, &request),
            ),
            list_key: false,
            in_reply_to: None,
        })
    }

    /// Tells `address`, whose key `cert` cannot be used (`why`), that they
    /// missed post `post_id`: signed by the list, not encrypted (it cannot
    /// be), at most once a day, never a word of the post. Counts the post
    /// for the owner either way.
    pub(crate) fn missed_post(
        &mut self,
        post_id: i64,
        address: &str,
        cert: &Cert,
        why: &str,
    ) -> Result<()> {
        let fpr = cert.fingerprint().to_hex();
        let tell = self.store.note_missed_post(address, &fpr, self.unix())?;
        if !tell || self.config_value("missed_post_notice")? == "off" {
            return Ok(());
        }
        let name = self.name()?;
        let request = self.request_address()?;
        let owner = self.owner_address()?;
        let reply = Reply {
            to: address.to_owned(),
            subject: format!("You missed a post on {name}"),
            text: format!(
                "You missed a post on {name} ({list}): your key {fpr} cannot be used: {why}. The list sends posts only encrypted, so this notice is signed by the list but not encrypted, and says nothing of the post. You are told at most once a day.\r\n\r\nTo receive posts again:\r\n\r\n{how}\r\nIf your key was revoked or you use a new key now, send `key change` with the new key attached to {request}, or ask the owner ({owner}) to replace your key.\r\n",
                list = self.address,
                how = how_to_extend(&fpr, &self.address, &request),
            ),
            list_key: false,
            in_reply_to: None,
        };
        self.reply(post_id, &reply, None)?;
        Ok(())
    }
}

/// How to extend a key and send it to the list, for notices.
fn how_to_extend(fpr: &str, list: &str, request: &str) -> String {
    format!(
        "If your key expired or expires soon, extend it:\r\n\
         - GnuPG:\r\n    gpg --quick-set-expire {fpr} 2y\r\n    gpg --quick-set-expire {fpr} 2y '*'\r\n\
         - Thunderbird: Account Settings > End-To-End Encryption > your key > Key Properties > Change Expiration Date.\r\n\
         Then send the list the extended key: write a post to {list} (Thunderbird and other Autocrypt clients send the key with every message), or send a signed, encrypted message with the key attached to {request}. The list takes a newer copy of the same key by itself.\r\n"
    )
}

/// The keys attached to a message as it opened (attachments, armored
/// blocks in its text).
fn attached_copies(unsealed: &Unsealed) -> Vec<Cert> {
    let mut out = Vec::new();
    match &unsealed.inside.content {
        Content::Mime { entity } | Content::MimeSigned { entity, .. } => {
            for bytes in parse::attached_keys(entity) {
                out.extend(keys_in(&bytes));
            }
        }
        Content::Text { text } => out.extend(keys_in(text)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sequoia_openpgp::cert::prelude::*;

    #[test]
    fn the_key_check_tells_once_runs_once_a_day_and_raises_the_list_key_alarm() {
        use crate::clock::{Clock, ManualClock};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        // The list key's signer checks its key at the real time.
        let t0 = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let clock = Arc::new(ManualClock::at_unix(t0));
        let mut list = List::init(
            &dir.path().join("list"),
            "list@example.org",
            "Test",
            super::super::KeySource::Generate,
            &sequoia_openpgp::crypto::Password::from("pw"),
            clock.clone() as Arc<dyn Clock>,
        )
        .unwrap();
        let now = clock.now();
        let (key, _) = CertBuilder::general_purpose(Some("a@example.org"))
            .set_creation_time(now - Duration::from_secs(60))
            .set_validity_period(Duration::from_secs(5 * DAY))
            .generate()
            .unwrap();
        list.add_subscriber("a@example.org", &certs::armored(&key).unwrap())
            .unwrap();
        let rows = |list: &List| {
            list.store()
                .outbox_counts()
                .unwrap()
                .iter()
                .map(|c| c.1)
                .sum::<i64>()
        };
        let check = list.check_keys_if_due().unwrap().unwrap();
        assert_eq!(check.told, vec!["a@example.org".to_string()]);
        assert_eq!(rows(&list), 1);
        // Not again the same day.
        assert!(list.check_keys_if_due().unwrap().is_none());
        // The next day the check runs, and tells nobody again.
        clock.advance(DAY);
        let check = list.check_keys_if_due().unwrap().unwrap();
        assert!(check.told.is_empty());
        assert!(check.expiring[0].told);
        assert_eq!(rows(&list), 1);
        // Expired: no longer expiring, but not receiving.
        clock.advance(5 * DAY);
        let check = list.check_keys().unwrap();
        assert!(check.expiring.is_empty());
        assert_eq!(check.not_receiving[0].address, "a@example.org");
        // The list key (three years) raises its alarm 30 days ahead.
        assert!(list.list_key_alarm().is_none());
        clock.advance(3 * 365 * DAY - 6 * DAY - 20 * DAY);
        let alarm = list.list_key_alarm().unwrap();
        assert!(
            alarm.contains("expires on") && alarm.contains("(in 19 days)"),
            "{alarm}"
        );
        clock.advance(30 * DAY);
        let alarm = list.list_key_alarm().unwrap();
        assert!(
            alarm.contains("cannot be used") || alarm.contains("expired"),
            "{alarm}"
        );
    }

    #[test]
    fn a_key_serves_until_its_first_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (cert, _) = CertBuilder::general_purpose(Some("a@example.org"))
            .set_creation_time(now - Duration::from_secs(60))
            .set_validity_period(Duration::from_secs(10 * DAY))
            .generate()
            .unwrap();
        let until = usable_until(&cert, now).unwrap();
        assert_eq!(
            until,
            now - Duration::from_secs(60) + Duration::from_secs(10 * DAY)
        );
        let (never, _) = CertBuilder::general_purpose(Some("b@example.org"))
            .set_creation_time(now - Duration::from_secs(60))
            .set_validity_period(None)
            .generate()
            .unwrap();
        assert_eq!(usable_until(&never, now), None);
        // Expired: it does not serve at all.
        assert_eq!(
            usable_until(&cert, now + Duration::from_secs(11 * DAY)),
            None
        );
    }
}
