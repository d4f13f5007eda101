//! The list answers mail. A message to the request address carries one
//! command ([`super::commands`]); this carries it out and answers:
//!
//! - `subscribe` (a key attached, inline or in an Autocrypt header): a
//!   single-use token goes out encrypted to that key; the reply that brings
//!   it back, signed by that key, proves the applicant holds it. Then, by
//!   `subscription_policy`, they are subscribed or wait for the owner.
//! - `key change` (the new key attached, signed by the old one): a token
//!   goes out encrypted to the new key; the reply that brings it back,
//!   signed by the old key, makes the change (`key_change_policy`).
//! - `unsubscribe`: signed, at once; unsigned (a client's List-Unsubscribe
//!   button), after a token sent encrypted to the subscriber's key.
//! - `help`, `key` (and the key address), `my key`, `key sign`.
//!
//! Commands other than `subscribe`, `help` and `key` must come encrypted to
//! the list key, signed by the subscriber's key, naming this list in the
//! signed data, recently signed, and not seen before. Mail that a machine
//! sent is never answered, and every address has a limit of replies per
//! hour. Messages for the owner are kept for the app, never distributed.

use std::time::Duration;

use sequoia_openpgp::{Cert, Packet};

use crate::crypto::certs;
use crate::crypto::decrypt::SigStatus;
use crate::error::{Error, Result};
use crate::events::Outcome;
use crate::mime::parse::{self, Content, Incoming, Payload};
use crate::store::{NewRequest, PostState, RequestKind, RequestState, StoredRequest};

use super::classify::{Addresses, Kind};
use super::commands::{self, Command};
use super::lifecycle::OfferedCopy;
use super::open::Unsealed;
use super::policy::Policy;
use super::reply::Reply;
use super::{subscriber_info, List, SubscriberInfo};

/// A request still open, as the owner sees it.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// Its id.
    pub id: i64,
    /// `subscribe`, `key change` or `unsubscribe`.
    pub kind: &'static str,
    /// Whose request it is.
    pub address: String,
    /// The key it is about (the new key, for a key change).
    pub key: SubscriberInfo,
    /// The key being replaced, for a key change.
    pub old_fingerprint: Option<String>,
    /// When it was asked (Unix seconds).
    pub asked_at: i64,
    /// When the key proof came, if it did.
    pub proof_at: Option<i64>,
    /// True when it waits for the owner; false while it waits for the proof.
    pub awaiting_owner: bool,
    /// When its token stops counting (Unix seconds).
    pub expires_at: i64,
}

/// A good signature on a request, by a key the list knows of.
#[derive(Debug, Clone)]
struct Signed {
    /// The key that made it.
    fingerprint: String,
    /// How old it is, in seconds.
    age: Option<u64>,
    /// What it signed, for the replay cache.
    digest: String,
    /// Whether the signed data names one of the list's addresses.
    bound: bool,
}

/// A request, opened.
#[derive(Debug)]
struct Asked {
    post_id: i64,
    from: String,
    command: Option<Command>,
    encrypted: bool,
    /// Every good signature, by a known key.
    signed: Vec<Signed>,
    /// Keys that came with it (attached, inline, Autocrypt), parsed.
    offered: Vec<Cert>,
    /// Its Message-ID, fit to answer.
    message_id: Option<String>,
}

impl Asked {
    /// The good signature by `fingerprint`, if any.
    fn signed_by(&self, fingerprint: &str) -> Option<&Signed> {
        self.signed.iter().find(|s| s.fingerprint == fingerprint)
    }
}

/// The words of a kind of request, as the owner reads them.
fn kind_words(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Subscribe => "subscribe",
        RequestKind::KeyChange => "key change",
        RequestKind::Unsubscribe => "unsubscribe",
    }
}

/// Why the list does not answer a message a machine sent, if it did.
fn machine_mail(incoming: &Incoming, addresses: &Addresses, list_id: &str) -> Option<String> {
    for (name, value) in &incoming.machine {
        let why = match name.as_str() {
            "auto-submitted" if value != "no" => format!("it is marked Auto-Submitted: {value}"),
            "precedence" if ["bulk", "list", "junk"].contains(&value.as_str()) => {
                format!("it is marked Precedence: {value}")
            }
            "list-id" if value.contains(list_id) => "it carries this list's List-Id".into(),
            "return-path" if value.trim_matches(['<', '>', ' ']).is_empty() => {
                "it has an empty Return-Path (a delivery report)".into()
            }
            _ => continue,
        };
        return Some(why);
    }
    let from = incoming.from.as_deref().unwrap_or_default();
    let local = from.split('@').next().unwrap_or_default();
    if from.is_empty() {
        return Some("it has no sender address".into());
    }
    if ["mailer-daemon", "postmaster"].contains(&local) {
        return Some(format!("it is from {local}"));
    }
    if addresses.is_ours(from) {
        return Some("it is from one of the list's own addresses".into());
    }
    None
}

/// A new token and its SHA-256.
fn new_token() -> (String, String) {
    let mut r = [0u8; 16];
    let _ = sequoia_openpgp::crypto::random(&mut r);
    let token = format!(
        "{}{}",
        commands::TOKEN_PREFIX,
        crate::hex::hex(&r).to_ascii_lowercase()
    );
    let digest = crate::hex::sha256_hex(token.as_bytes());
    (token, digest)
}

/// Every key in `bytes` (one armored block or several), parsed.
pub(super) fn keys_in(bytes: &[u8]) -> Vec<Cert> {
    use sequoia_openpgp::cert::CertParser;
    use sequoia_openpgp::parse::Parse;
    const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
    const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(BEGIN) {
        let tail = rest.get(start..).unwrap_or_default();
        let Some(end) = tail.find(END) else { break };
        let block = tail.get(..end + END.len()).unwrap_or_default();
        // Quoted blocks lose their quoting.
        let block: String = block
            .lines()
            .map(|l| l.trim_start_matches(['>', ' ']))
            .collect::<Vec<_>>()
            .join("\n");
        if let Ok(parser) = CertParser::from_bytes(block.as_bytes()) {
            out.extend(parser.flatten().take(4));
        }
        rest = tail.get(end + END.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        if let Ok(cert) = certs::parse_public_cert(bytes) {
            out.push(cert);
        }
    }
    out
}

/// The key in an `Autocrypt:` header value (`keydata=` base64).
pub(super) fn autocrypt_key(value: &str) -> Option<Cert> {
    use base64::Engine as _;
    let keydata = value
        .split(';')
        .map(str::trim)
        .find_map(|attr| attr.strip_prefix("keydata="))?;
    let clean: String = keydata.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .ok()?;
    certs::parse_public_cert(&bytes).ok()
}

impl List {
    /// Handles a message that is not a post: the owner's mail is kept for
    /// the app, requests are answered.
    pub(crate) fn not_a_post(
        &mut self,
        post_id: i64,
        raw: &[u8],
        incoming: Incoming,
        kind: Kind,
    ) -> Result<Outcome> {
        if kind == Kind::Bounce {
            return self.process_bounce(post_id, raw, &incoming);
        }
        if kind == Kind::Owner {
            self.store.set_post_kind(post_id, "owner")?;
            let reason = format!(
                "a message for the owner (to {}); it is never sent to subscribers",
                self.owner_address()?
            );
            return self.record_outcome(
                post_id,
                Outcome::Held {
                    post: post_id,
                    reason,
                },
                "",
            );
        }
        self.store.set_post_kind(post_id, "request")?;
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.answer(post_id, raw, incoming, kind)
        }))
        .unwrap_or_else(|panic| {
            Err(Error::InvalidInput(format!(
                "internal error while reading the request ({}); the message is kept",
                crate::crypto::decrypt::panic_text(&*panic)
            )))
        });
        let reason = match answered {
            Ok(reason) => reason,
            Err(e) if e.is_post_fault() => format!("not answered: {e}"),
            Err(e) => return Err(e),
        };
        self.record_outcome(
            post_id,
            Outcome::Answered {
                post: post_id,
                reason,
            },
            "",
        )
    }

    /// Opens a request and carries it out. Returns what was done, for the
    /// log.
    fn answer(
        &mut self,
        post_id: i64,
        raw: &[u8],
        incoming: Incoming,
        kind: Kind,
    ) -> Result<String> {
        let addresses = self.addresses()?;
        let (local, domain) = self.address.split_once('@').unwrap_or((&self.address, ""));
        let list_id = format!("<{local}.{domain}>");
        if let Some(why) = machine_mail(&incoming, &addresses, &list_id) {
            return Ok(format!("not answered: {why}"));
        }
        let asked = match self.open_request(post_id, raw, &incoming, &addresses)? {
            Ok(asked) => asked,
            Err(why) => return Ok(format!("not answered: {why}")),
        };
        self.take_senders_copies(&asked)?;
        let command = if kind == Kind::Key {
            Some(Command::ListKey)
        } else {
            asked.command.clone()
        };
        let Some(command) = command else {
            return Ok(format!(
                "from {}: no command found in the Subject or the first lines; not answered",
                asked.from
            ));
        };
        match command {
            Command::Help => self.send_help(&asked),
            Command::ListKey => self.send_list_key(&asked),
            Command::Subscribe => self.subscribe_request(&asked),
            Command::Unsubscribe => self.unsubscribe_request(&asked),
            Command::MyKey => self.my_key(&asked),
            Command::KeyChange => self.key_change_request(&asked),
            Command::KeySign => self.key_sign(&asked),
            Command::Confirm(token) => self.confirm(&asked, &token),
        }
    }

    /// Decrypts and verifies a request against the subscribers' keys and
    /// the keys of requests waiting for their proof. The inner `Err` says
    /// why it cannot be read.
    fn open_request(
        &mut self,
        post_id: i64,
        raw: &[u8],
        incoming: &Incoming,
        addresses: &Addresses,
    ) -> Result<std::result::Result<Asked, String>> {
        let from = incoming.from.clone().unwrap_or_default();
        let pending: Vec<Cert> = self
            .store
            .open_requests()?
            .into_iter()
            .filter(|r| r.address == from)
            .filter_map(|r| certs::parse_public_cert(&r.cert).ok())
            .collect();
        let known = super::Candidates {
            extra: pending,
            replace: None,
        };
        let policy = Policy::load(&self.store)?;
        let unsealed = match self.unseal_from(raw, incoming, &known, policy.plaintext_limit())? {
            Ok((u, _)) => u,
            Err(why) => return Ok(Err(format!("cannot read it: {why}"))),
        };
        let Unsealed {
            plaintext,
            sigs,
            inside,
            headers_signed,
            ..
        } = unsealed;
        let encrypted = !matches!(incoming.payload, Payload::Clear);
        let (text, entity): (String, Option<&[u8]>) = match &inside.content {
            Content::Text { text } => (String::from_utf8_lossy(text).into_owned(), None),
            Content::Mime { entity } | Content::MimeSigned { signed: entity, .. } => (
                parse::first_text(entity).unwrap_or_default(),
                Some(entity.as_slice()),
            ),
        };
        let subject = inside
            .protected
            .subject
            .clone()
            .filter(|s| s.trim() != "...")
            .or_else(|| incoming.subject.clone());
        let command = commands::parse(subject.as_deref(), &text);

        // The signed data names the list: in its protected To/Cc, or in
        // the signed text itself.
        let names_list = |addrs: &[String]| addrs.iter().any(|a| addresses.is_ours(a));
        let bound = (headers_signed && inside.protected.to.as_deref().is_some_and(names_list))
            || addresses_in(&text).iter().any(|a| addresses.is_ours(a));
        let now = self.now();
        let signed = sigs
            .iter()
            .filter_map(|s| match s {
                SigStatus::Good {
                    cert,
                    replay_digest,
                    created,
                } => Some(Signed {
                    fingerprint: cert.to_hex(),
                    age: created
                        .and_then(|c| now.duration_since(c).ok())
                        .map(|a| a.as_secs()),
                    digest: replay_digest.clone(),
                    bound,
                }),
                _ => None,
            })
            .collect();

        let mut offered = Vec::new();
        if let Some(entity) = entity {
            for bytes in parse::attached_keys(entity) {
                offered.extend(keys_in(&bytes));
            }
        }
        offered.extend(keys_in(text.as_bytes()));
        if let Some(cert) = incoming.autocrypt.as_deref().and_then(autocrypt_key) {
            offered.push(cert);
        }
        drop(plaintext);
        let message_id = inside
            .protected
            .message_id
            .clone()
            .or_else(|| incoming.message_id.clone())
            .and_then(|id| super::fanout::message_id_ok(&id));
        Ok(Ok(Asked {
            post_id,
            from,
            command,
            encrypted,
            signed,
            offered,
            message_id,
        }))
    }

    /// Takes the newer copies of a subscriber's own key a request carried
    /// (attached, or in its Autocrypt header), whatever it asks: when it
    /// is signed by that key, or, a revocation, in any case.
    fn take_senders_copies(&mut self, asked: &Asked) -> Result<()> {
        let Some((fpr, _)) = self.store.subscriber(&asked.from)? else {
            return Ok(());
        };
        let copies: Vec<OfferedCopy> = asked
            .offered
            .iter()
            .filter(|c| c.fingerprint().to_hex() == fpr)
            .map(|cert| OfferedCopy {
                cert: cert.clone(),
                source: "a key sent with a request",
            })
            .collect();
        if copies.is_empty() {
            return Ok(());
        }
        let verified = asked.signed_by(&fpr).is_some();
        self.take_offered_copies(asked.post_id, &asked.from, &copies, verified)
    }

    /// Checks a command that only a subscriber may give: encrypted, signed
    /// by their key, naming this list, recent, not seen before. Returns
    /// their key, or why the command is refused.
    fn subscriber_command(
        &mut self,
        asked: &Asked,
    ) -> Result<std::result::Result<(Cert, Signed), String>> {
        let Some((fpr, cert)) = self.store.subscriber(&asked.from)? else {
            return Ok(Err(format!("{} is not subscribed", asked.from)));
        };
        let cert = certs::parse_public_cert(&cert)?;
        if !asked.encrypted {
            return Ok(Err("it was not encrypted to the list key".into()));
        }
        let Some(signed) = asked.signed_by(&fpr).cloned() else {
            return Ok(Err(format!(
                "it was not signed by the key {} is subscribed with ({fpr})",
                asked.from
            )));
        };
        if !signed.bound {
            return Ok(Err(
                "the signed message does not name this list (its signed To: is another address); a command signed for another list does nothing here".into(),
            ));
        }
        if let Some(why) = self.too_old(&signed)? {
            return Ok(Err(why));
        }
        if let Some((first, _)) = self.store.replay_seen(&signed.digest)? {
            return Ok(Err(format!(
                "the same signed command came before (message #{first}); it is carried out once"
            )));
        }
        Ok(Ok((cert, signed)))
    }

    /// Why a signature is too old for a command, if it is.
    fn too_old(&self, signed: &Signed) -> Result<Option<String>> {
        let days: u64 = self
            .config_value("max_signature_age_days")?
            .parse()
            .unwrap_or(7);
        Ok(match signed.age {
            Some(age) if days > 0 && age > days * 86_400 => Some(format!(
                "it was signed {} days ago; commands are taken up to {days} days after they are signed",
                age / 86_400
            )),
            _ => None,
        })
    }

    /// Remembers a signed command, so that it is carried out once.
    fn remember(&mut self, asked: &Asked, signed: &Signed) -> Result<()> {
        self.store
            .replay_remember(&signed.digest, asked.post_id, self.unix())
    }

    /// Answers `asked` (the reply goes to its sender) with `subject` and
    /// `text`, encrypted to `cert` when given.
    fn answer_with(
        &mut self,
        asked: &Asked,
        subject: &str,
        text: String,
        list_key: bool,
        cert: Option<&Cert>,
    ) -> Result<bool> {
        let reply = Reply {
            to: asked.from.clone(),
            subject: subject.to_owned(),
            text,
            list_key,
            in_reply_to: asked.message_id.clone(),
        };
        self.reply(asked.post_id, &reply, cert)
    }

    /// The key the list has for the sender: theirs if subscribed, else a
    /// key they offered that speaks for their address.
    fn key_for_sender(&self, asked: &Asked) -> Result<Option<Cert>> {
        if let Some((_, cert)) = self.store.subscriber(&asked.from)? {
            return Ok(certs::parse_public_cert(&cert).ok());
        }
        Ok(asked
            .offered
            .iter()
            .find(|c| {
                self.usable_key(&asked.from, &certs::binary(c).unwrap_or_default())
                    .is_ok()
            })
            .cloned())
    }

    /// The first key the sender offered (other than `besides`) that can
    /// serve their address; else why the first one cannot (None: none came).
    fn offered_key(
        &self,
        asked: &Asked,
        besides: Option<&Cert>,
    ) -> Result<std::result::Result<Cert, Option<String>>> {
        let mut refusal = None;
        for cert in &asked.offered {
            if besides.is_some_and(|b| b.fingerprint() == cert.fingerprint()) {
                continue;
            }
            match self.usable_key(&asked.from, &certs::binary(cert)?) {
                Ok((_, c)) => return Ok(Ok(c)),
                Err(e) => refusal = refusal.or(Some(e.to_string())),
            }
        }
        Ok(Err(refusal))
    }

    /// Tells someone who has just left that they have, encrypted to the key
    /// they were subscribed with.
    fn farewell(&mut self, asked: &Asked, name: &str, cert: &Cert) -> Result<bool> {
        self.answer_with(
            asked,
            &format!("You have left {name}"),
            format!(
                "You have left {name}; no more posts will be sent to {}.\r\n",
                asked.from
            ),
            false,
            Some(cert),
        )
    }

    /// Refuses a command; the sender is told why only when they are a
    /// subscriber who signed it (nobody else gets automatic replies).
    fn refuse(&mut self, asked: &Asked, command: &str, why: &str) -> Result<String> {
        if let Some((fpr, cert)) = self.store.subscriber(&asked.from)? {
            if asked.signed_by(&fpr).is_some() {
                let cert = certs::parse_public_cert(&cert)?;
                let name = self.name()?;
                self.answer_with(
                    asked,
                    &format!("Your request to {name} was not carried out"),
                    format!(
                        "Your request \"{command}\" to {name} was not carried out: {why}.\r\n\r\n{}",
                        self.help_text()?
                    ),
                    false,
                    Some(&cert),
                )?;
            }
        }
        Ok(format!("{command} from {}: refused: {why}", asked.from))
    }

    // ----- the commands -----

    fn send_help(&mut self, asked: &Asked) -> Result<String> {
        let cert = self.key_for_sender(asked)?;
        let name = self.name()?;
        let text = self.help_text()?;
        self.answer_with(
            asked,
            &format!("How to use {name}"),
            text,
            true,
            cert.as_ref(),
        )?;
        Ok(format!("help from {}: answered", asked.from))
    }

    fn send_list_key(&mut self, asked: &Asked) -> Result<String> {
        let cert = self.key_for_sender(asked)?;
        let name = self.name()?;
        let fpr = self.cert.fingerprint().to_hex();
        let text = format!(
            "The key of {name} <{}> is attached.\r\n\r\nIts fingerprint is\r\n\r\n    {}\r\n\r\nCheck it against one you got another way (from the list owner, say) before you trust it.\r\n",
            self.address,
            crate::hex::grouped(&fpr)
        );
        self.answer_with(
            asked,
            &format!("The key of {name}"),
            text,
            true,
            cert.as_ref(),
        )?;
        Ok(format!("the list key asked by {}: sent", asked.from))
    }

    fn my_key(&mut self, asked: &Asked) -> Result<String> {
        let (cert, signed) = match self.subscriber_command(asked)? {
            Ok(c) => c,
            Err(why) => return self.refuse(asked, "my key", &why),
        };
        self.remember(asked, &signed)?;
        let name = self.name()?;
        let expiry = match super::lifecycle::usable_until(&cert, self.now()) {
            Some(t) => format!(
                "It serves the list until {}; extend it before then and send it to the list (a post does, or a message with the key attached to this address).\r\n",
                crate::clock::iso_date(t)
            ),
            None => String::new(),
        };
        let text = format!(
            "You are subscribed to {name} as {} with the key\r\n\r\n    {}\r\n\r\n{expiry}",
            asked.from,
            crate::hex::grouped(&cert.fingerprint().to_hex())
        );
        self.answer_with(
            asked,
            &format!("Your key on {name}"),
            text,
            false,
            Some(&cert),
        )?;
        Ok(format!("my key from {}: answered", asked.from))
    }

    fn subscribe_request(&mut self, asked: &Asked) -> Result<String> {
        let name = self.name()?;
        // The first offered key that can serve the sender's address.
        let cert = match self.offered_key(asked, None)? {
            Ok(cert) => cert,
            Err(refusal) => {
                let why = refusal.unwrap_or_else(|| "no public key came with it".into());
                self.answer_with(
                asked,
                &format!("Your subscription to {name}"),
                format!(
                    "Your request to join {name} could not be taken: {why}.\r\n\r\nSend \"subscribe\" to {} again with your public key attached (most mail programs can attach it for you), signed with that key.\r\n",
                    self.request_address()?
                ),
                false,
                None,
            )?;
                return Ok(format!(
                    "subscribe from {}: no usable key ({why})",
                    asked.from
                ));
            }
        };
        let fpr = cert.fingerprint().to_hex();
        if let Some((current, current_cert)) = self.store.subscriber(&asked.from)? {
            let current_cert = certs::parse_public_cert(&current_cert)?;
            let text = if current == fpr {
                format!(
                    "You are already subscribed to {name} with the key {}.\r\n",
                    crate::hex::grouped(&fpr)
                )
            } else {
                format!(
                    "You are subscribed to {name} with the key {}. To move to the key {}, send \"key change\" to {} with the new key attached, signed with your current key.\r\n",
                    crate::hex::grouped(&current),
                    crate::hex::grouped(&fpr),
                    self.request_address()?
                )
            };
            self.answer_with(
                asked,
                &format!("Your subscription to {name}"),
                text,
                false,
                Some(&current_cert),
            )?;
            return Ok(format!("subscribe from {}: already subscribed", asked.from));
        }
        let policy = self.config_value("subscription_policy")?;
        if policy == "open" {
            return self.subscribe_now(asked.post_id, &asked.from, &cert, "subscribe");
        }
        let state = if policy == "moderate" {
            RequestState::Owner
        } else {
            RequestState::Proof
        };
        let (token, digest) = new_token();
        let id = self.new_request(asked, RequestKind::Subscribe, &cert, "", &digest, state)?;
        let text = if state == RequestState::Owner {
            format!(
                "Your request to join {name} with the key {} reached the list. The owner decides; you will hear when they have.\r\n",
                crate::hex::grouped(&fpr)
            )
        } else {
            format!(
                "Someone, probably you, asked to join {name} <{}> as {} with the key\r\n\r\n    {}\r\n\r\nTo confirm that you hold this key, reply to this message, signed and encrypted (in most mail programs: Reply, and make sure the message will be signed and encrypted), keeping this line in your reply:\r\n\r\n{token}\r\n\r\nThis line is good for {} days and only once. If you did not ask, do nothing.{}\r\n",
                self.address,
                asked.from,
                crate::hex::grouped(&fpr),
                self.config_value("request_token_days")?,
                if policy == "confirm+moderate" {
                    " Once you have confirmed, the list owner decides."
                } else {
                    ""
                }
            )
        };
        self.answer_with(
            asked,
            &format!("Confirm your subscription to {name} ({token})"),
            text,
            true,
            Some(&cert),
        )?;
        Ok(format!(
            "subscribe from {} with key {fpr}: request #{id}, {}",
            asked.from,
            if state == RequestState::Owner {
                "waiting for the owner"
            } else {
                "a token was sent, encrypted to that key"
            }
        ))
    }

    /// Records a request. Returns its id.
    fn new_request(
        &mut self,
        asked: &Asked,
        kind: RequestKind,
        cert: &Cert,
        old_fingerprint: &str,
        token_sha256: &str,
        state: RequestState,
    ) -> Result<i64> {
        let days: i64 = self
            .config_value("request_token_days")?
            .parse()
            .unwrap_or(7);
        let now = self.unix();
        let id = self.store.insert_request(&NewRequest {
            kind,
            address: &asked.from,
            fingerprint: &cert.fingerprint().to_hex(),
            old_fingerprint,
            cert: &certs::binary(cert)?,
            token_sha256,
            state,
            post_id: asked.post_id,
            now,
            expires_at: now + days * 86_400,
        })?;
        self.store.audit(
            now,
            Some(asked.post_id),
            "request",
            &format!(
                "{} from {} (key {}): request #{id}",
                kind_words(kind),
                asked.from,
                cert.fingerprint()
            ),
        )?;
        if state == RequestState::Owner {
            self.emit(&crate::events::Event::Requests);
        }
        Ok(id)
    }

    /// Subscribes `address` with `cert` and sends the welcome.
    fn subscribe_now(
        &mut self,
        post_id: i64,
        address: &str,
        cert: &Cert,
        how: &str,
    ) -> Result<String> {
        self.add_subscriber(address, &certs::armored(cert)?)?;
        self.welcome(post_id, address, cert)?;
        Ok(format!(
            "{how} from {address}: subscribed with key {}",
            cert.fingerprint()
        ))
    }

    fn welcome(&mut self, post_id: i64, address: &str, cert: &Cert) -> Result<()> {
        let name = self.name()?;
        let text = format!(
            "Welcome to {name}. You are subscribed as {address} with the key\r\n\r\n    {}\r\n\r\nThe list's key is attached: import it, and check its fingerprint against the one the owner gave you.\r\n\r\n{}",
            crate::hex::grouped(&cert.fingerprint().to_hex()),
            self.help_text()?
        );
        let reply = Reply {
            to: address.to_owned(),
            subject: format!("Welcome to {name}"),
            text,
            list_key: true,
            in_reply_to: None,
        };
        self.reply(post_id, &reply, Some(cert))?;
        Ok(())
    }

    fn unsubscribe_request(&mut self, asked: &Asked) -> Result<String> {
        let Some((_, cert)) = self.store.subscriber(&asked.from)? else {
            return Ok(format!(
                "unsubscribe from {}: not subscribed; not answered",
                asked.from
            ));
        };
        let cert = certs::parse_public_cert(&cert)?;
        let name = self.name()?;
        match self.subscriber_command(asked)? {
            Ok((_, signed)) => {
                self.remember(asked, &signed)?;
                self.remove_subscriber(&asked.from)?;
                self.farewell(asked, &name, &cert)?;
                Ok(format!("unsubscribe from {}: signed, done", asked.from))
            }
            Err(why) => {
                let (token, digest) = new_token();
                let id = self.new_request(
                    asked,
                    RequestKind::Unsubscribe,
                    &cert,
                    "",
                    &digest,
                    RequestState::Proof,
                )?;
                self.answer_with(
                    asked,
                    &format!("Confirm that you leave {name} ({token})"),
                    format!(
                        "Someone, probably you, asked to take {} off {name}. To confirm, reply to this message keeping this line:\r\n\r\n{token}\r\n\r\nIf you did not ask, do nothing: you stay subscribed.\r\n",
                        asked.from
                    ),
                    false,
                    Some(&cert),
                )?;
                Ok(format!(
                    "unsubscribe from {} ({why}): request #{id}, a token was sent, encrypted to their key",
                    asked.from
                ))
            }
        }
    }

    fn key_change_request(&mut self, asked: &Asked) -> Result<String> {
        let (old, _) = match self.subscriber_command(asked)? {
            Ok(c) => c,
            Err(why) => return self.refuse(asked, "key change", &why),
        };
        let old_fpr = old.fingerprint().to_hex();
        let new = match self.offered_key(asked, Some(&old))? {
            Ok(new) => new,
            Err(refusal) => {
                let why = refusal.unwrap_or_else(|| "no new key came with it".into());
                return self.refuse(asked, "key change", &why);
            }
        };
        let name = self.name()?;
        let (token, digest) = new_token();
        let id = self.new_request(
            asked,
            RequestKind::KeyChange,
            &new,
            &old_fpr,
            &digest,
            RequestState::Proof,
        )?;
        let text = format!(
            "You asked {name} to change the key of {} from\r\n\r\n    {}\r\nto\r\n    {}\r\n\r\nThis message is encrypted to the new key. Reply to it signed with your OLD key and encrypted, keeping this line:\r\n\r\n{token}\r\n\r\nIt is good for {} days and only once.\r\n",
            asked.from,
            crate::hex::grouped(&old_fpr),
            crate::hex::grouped(&new.fingerprint().to_hex()),
            self.config_value("request_token_days")?
        );
        self.answer_with(
            asked,
            &format!("Confirm your new key for {name} ({token})"),
            text,
            false,
            Some(&new),
        )?;
        Ok(format!(
            "key change from {} to key {}: request #{id}, a token was sent, encrypted to the new key",
            asked.from,
            new.fingerprint()
        ))
    }

    fn key_sign(&mut self, asked: &Asked) -> Result<String> {
        let (signer, signed) = match self.subscriber_command(asked)? {
            Ok(c) => c,
            Err(why) => return self.refuse(asked, "key sign", &why),
        };
        if self.config_value("key_signing")? == "off" {
            return self.refuse(
                asked,
                "key sign",
                "this list does not take certifications of its key (key_signing is off)",
            );
        }
        let list_fpr = self.cert.fingerprint();
        let Some(offered) = asked.offered.iter().find(|c| c.fingerprint() == list_fpr) else {
            return self.refuse(
                asked,
                "key sign",
                "the list key, certified by your key, was not attached",
            );
        };
        // Only certifications by the sender's key, that verify, on the
        // list's own User IDs.
        let mut new = Vec::new();
        for ua in offered.userids() {
            if !self.cert.userids().any(|u| u.userid() == ua.userid()) {
                continue;
            }
            for sig in ua.certifications() {
                let by_signer = sig
                    .issuer_fingerprints()
                    .any(|f| *f == signer.fingerprint());
                if by_signer
                    && sig
                        .verify_userid_binding(
                            signer.primary_key().key(),
                            self.cert.primary_key().key(),
                            ua.userid(),
                        )
                        .is_ok()
                {
                    new.push((ua.userid().clone(), sig.clone()));
                }
            }
        }
        if new.is_empty() {
            return self.refuse(
                asked,
                "key sign",
                "the attached list key carries no certification by your key that verifies",
            );
        }
        let mut packets: Vec<Packet> = Vec::new();
        for (uid, sig) in new {
            packets.push(uid.into());
            packets.push(sig.into());
        }
        let (cert, _) = self
            .cert
            .clone()
            .insert_packets(packets)
            .map_err(|e| Error::crypto("add a certification to the list key", e))?;
        let (_, _, keystore) = self
            .store
            .list_key()?
            .ok_or_else(|| Error::NotInitialised(self.home.clone()))?;
        self.store.set_list_key(
            &cert.fingerprint().to_hex(),
            &certs::binary(&cert)?,
            &keystore,
        )?;
        self.cert = cert;
        self.remember(asked, &signed)?;
        self.store.audit(
            self.unix(),
            Some(asked.post_id),
            "key",
            &format!(
                "{} certified the list key with key {}; the certification is published with it",
                asked.from,
                signer.fingerprint()
            ),
        )?;
        let name = self.name()?;
        self.answer_with(
            asked,
            &format!("Your certification of {name}'s key"),
            "Your certification of the list key is now published with it.\r\n".to_string(),
            false,
            Some(&signer),
        )?;
        Ok(format!("key sign from {}: certification added", asked.from))
    }

    fn confirm(&mut self, asked: &Asked, token: &str) -> Result<String> {
        let digest = crate::hex::sha256_hex(token.as_bytes());
        let Some(request) = self.store.request_by_token(&digest)? else {
            return self.refuse(asked, "confirm", "no request has that token");
        };
        let what = kind_words(request.kind);
        if request.address != asked.from {
            return Ok(format!(
                "a token for {} came from {}: refused, not answered",
                request.address, asked.from
            ));
        }
        match request.state {
            RequestState::Proof => {}
            RequestState::Owner => {
                return Ok(format!(
                    "{what} from {}: already confirmed, waiting for the owner",
                    asked.from
                ))
            }
            RequestState::Done => return self.refuse(asked, what, "that token was used already"),
            RequestState::Refused | RequestState::Superseded => {
                return self.refuse(asked, what, "that request was replaced or refused")
            }
        }
        let cert = certs::parse_public_cert(&request.cert)?;
        if self.unix() > request.expires_at {
            let name = self.name()?;
            self.answer_with(
                asked,
                &format!("Your request to {name} expired"),
                format!(
                    "The line you sent back was good until {}; send your request ({what}) again.\r\n",
                    crate::clock::rfc5322(std::time::UNIX_EPOCH + Duration::from_secs(request.expires_at.max(0) as u64))
                ),
                false,
                Some(&cert),
            )?;
            return Ok(format!("{what} from {}: the token had expired", asked.from));
        }
        match request.kind {
            RequestKind::Subscribe => self.confirm_subscribe(asked, &request, &cert),
            RequestKind::KeyChange => self.confirm_key_change(asked, &request, &cert),
            RequestKind::Unsubscribe => {
                self.store.set_request_state(
                    request.id,
                    RequestState::Done,
                    "",
                    Some(self.unix()),
                    self.unix(),
                )?;
                if self.store.subscriber(&asked.from)?.is_some() {
                    self.remove_subscriber(&asked.from)?;
                }
                let name = self.name()?;
                self.farewell(asked, &name, &cert)?;
                Ok(format!("unsubscribe from {}: confirmed, done", asked.from))
            }
        }
    }

    /// The signature a confirmation needs: by `fingerprint`, on a message
    /// encrypted to the list, naming the list, recent. Else why not.
    fn proof(
        &self,
        asked: &Asked,
        fingerprint: &str,
        whose: &str,
    ) -> Result<std::result::Result<Signed, String>> {
        if !asked.encrypted {
            return Ok(Err("the reply was not encrypted to the list key".into()));
        }
        let Some(signed) = asked.signed_by(fingerprint) else {
            return Ok(Err(format!(
                "the reply was not signed by {whose} ({fingerprint})"
            )));
        };
        if !signed.bound {
            return Ok(Err("the signed reply does not name this list".into()));
        }
        if let Some(why) = self.too_old(signed)? {
            return Ok(Err(why));
        }
        Ok(Ok(signed.clone()))
    }

    fn confirm_subscribe(
        &mut self,
        asked: &Asked,
        request: &StoredRequest,
        cert: &Cert,
    ) -> Result<String> {
        let name = self.name()?;
        let signed = match self.proof(asked, &request.fingerprint, "the key that asked to join")? {
            Ok(s) => s,
            Err(why) => {
                self.answer_with(
                    asked,
                    &format!("Your subscription to {name}"),
                    format!("Your confirmation was not taken: {why}. Reply to the message with the line again, signed with your key and encrypted.\r\n"),
                    false,
                    Some(cert),
                )?;
                return Ok(format!(
                    "confirmation of subscribe from {}: refused: {why}",
                    asked.from
                ));
            }
        };
        self.remember(asked, &signed)?;
        let now = self.unix();
        if self
            .config_value("subscription_policy")?
            .contains("moderate")
        {
            self.store
                .set_request_state(request.id, RequestState::Owner, "", Some(now), now)?;
            self.emit(&crate::events::Event::Requests);
            self.answer_with(
                asked,
                &format!("Your subscription to {name}"),
                "Thank you: your key is confirmed. The list owner decides; you will hear when they have.\r\n".into(),
                false,
                Some(cert),
            )?;
            return Ok(format!(
                "subscribe from {}: key proven, waiting for the owner (request #{})",
                asked.from, request.id
            ));
        }
        self.store
            .set_request_state(request.id, RequestState::Done, "", Some(now), now)?;
        self.subscribe_now(asked.post_id, &asked.from, cert, "subscribe")
    }

    fn confirm_key_change(
        &mut self,
        asked: &Asked,
        request: &StoredRequest,
        new: &Cert,
    ) -> Result<String> {
        let current = self.store.subscriber(&asked.from)?.map(|s| s.0);
        if current.as_deref() != Some(request.old_fingerprint.as_str()) {
            return self.refuse(
                asked,
                "key change",
                "the key it changes is no longer the one subscribed",
            );
        }
        let signed = match self.proof(asked, &request.old_fingerprint, "the old key")? {
            Ok(s) => s,
            Err(why) => return self.refuse(asked, "key change", &why),
        };
        self.remember(asked, &signed)?;
        let now = self.unix();
        if self.config_value("key_change_policy")? == "confirm+moderate" {
            self.store
                .set_request_state(request.id, RequestState::Owner, "", Some(now), now)?;
            self.emit(&crate::events::Event::Requests);
            let name = self.name()?;
            self.answer_with(
                asked,
                &format!("Your new key for {name}"),
                "Thank you: both keys are confirmed. The list owner decides; you will hear when they have.\r\n".into(),
                false,
                Some(new),
            )?;
            return Ok(format!(
                "key change from {}: proven by both keys, waiting for the owner (request #{})",
                asked.from, request.id
            ));
        }
        self.store
            .set_request_state(request.id, RequestState::Done, "", Some(now), now)?;
        self.change_key(
            asked.post_id,
            request,
            new,
            "the subscriber (signed by the old key; the token came back from the new key's holder)",
        )
    }

    /// Replaces a subscriber's key as a request asked, and tells them.
    fn change_key(
        &mut self,
        post_id: i64,
        request: &StoredRequest,
        new: &Cert,
        by: &str,
    ) -> Result<String> {
        let address = &request.address;
        let dropped = self.store.drop_queued_for(address)?;
        self.store_key(
            address,
            new,
            &format!(
                "{address}: key {} replaced with {} by {by}; {dropped} copies queued for the old key dropped",
                request.old_fingerprint,
                new.fingerprint().to_hex()
            ),
        )?;
        let name = self.name()?;
        let reply = Reply {
            to: address.clone(),
            subject: format!("Your new key for {name}"),
            text: format!(
                "Posts from {name} now go to {address} encrypted to the key\r\n\r\n    {}\r\n",
                crate::hex::grouped(&new.fingerprint().to_hex())
            ),
            list_key: false,
            in_reply_to: None,
        };
        self.reply(post_id, &reply, Some(new))?;
        Ok(format!(
            "key change from {address}: key {} replaced with {}",
            request.old_fingerprint,
            new.fingerprint()
        ))
    }

    /// How to use the list, for `help` and the welcome.
    pub fn help_text(&self) -> Result<String> {
        let name = self.name()?;
        let request = self.request_address()?;
        Ok(format!(
            "{name} is an encrypted mailing list. Write to {list}, encrypted to the list key and signed with your own key; every subscriber gets your post encrypted to their key.\r\n\r\nCommands go to {request}, in the Subject or on the first line:\r\n\r\n  subscribe     join: attach your public key; you are sent a line to send back, signed\r\n  unsubscribe   leave\r\n  help          this text\r\n  key           the list's public key (or write anything to {key})\r\n  my key        the fingerprint you are subscribed with\r\n  key change    move to a new key: attach it, sign with your old key\r\n  key sign      publish your certification of the list key: attach it, certified\r\n\r\nCommands other than subscribe, help and key must be signed with your key and encrypted to the list key.\r\n\r\nThe list key: {fpr}\r\nThe owner: {owner}\r\n",
            list = self.address,
            key = self.key_address()?,
            fpr = crate::hex::grouped(&self.cert.fingerprint().to_hex()),
            owner = self.owner_address()?,
        ))
    }

    // ----- for the owner -----

    /// The requests still open: waiting for their proof or for the owner.
    pub fn requests(&self) -> Result<Vec<PendingRequest>> {
        let now = self.clock.now();
        let unix = self.unix();
        Ok(self
            .store
            .open_requests()?
            .into_iter()
            .filter(|r| r.state == RequestState::Owner || r.expires_at >= unix)
            .map(|r| PendingRequest {
                id: r.id,
                kind: kind_words(r.kind),
                key: subscriber_info(
                    r.address.clone(),
                    r.fingerprint.clone(),
                    certs::parse_public_cert(&r.cert),
                    now,
                ),
                address: r.address,
                old_fingerprint: (!r.old_fingerprint.is_empty()).then_some(r.old_fingerprint),
                asked_at: r.created_at,
                proof_at: r.proof_at,
                awaiting_owner: r.state == RequestState::Owner,
                expires_at: r.expires_at,
            })
            .collect())
    }

    fn open_request_by_id(&self, id: i64) -> Result<StoredRequest> {
        match self.store.request(id)? {
            Some(r) if r.state == RequestState::Owner => Ok(r),
            Some(r) if r.state == RequestState::Proof => Err(Error::InvalidInput(format!(
                "request #{id} waits for its key proof: {} has not sent the token back yet",
                r.address
            ))),
            Some(r) => Err(Error::NotFound(format!(
                "request #{id} is not open (it is {})",
                r.state.as_str()
            ))),
            None => Err(Error::NotFound(format!("no request #{id}"))),
        }
    }

    /// Approves a request waiting for the owner. Returns what was done.
    pub fn approve_request(&mut self, id: i64) -> Result<String> {
        let request = self.open_request_by_id(id)?;
        let cert = certs::parse_public_cert(&request.cert)?;
        let post_id = request.post_id.unwrap_or(0);
        let now = self.unix();
        let done = match request.kind {
            RequestKind::Subscribe => {
                let done = self.subscribe_now(post_id, &request.address, &cert, "subscribe")?;
                self.store
                    .set_request_state(id, RequestState::Done, "", None, now)?;
                done
            }
            RequestKind::KeyChange => {
                let current = self.store.subscriber(&request.address)?.map(|s| s.0);
                if current.as_deref() != Some(request.old_fingerprint.as_str()) {
                    return Err(Error::InvalidInput(format!(
                        "{} is no longer subscribed with key {}; nothing was changed",
                        request.address, request.old_fingerprint
                    )));
                }
                let done = self.change_key(post_id, &request, &cert, "the owner's approval")?;
                self.store
                    .set_request_state(id, RequestState::Done, "", None, now)?;
                done
            }
            RequestKind::Unsubscribe => {
                self.remove_subscriber(&request.address)?;
                self.store
                    .set_request_state(id, RequestState::Done, "", None, now)?;
                format!("unsubscribe of {}: done", request.address)
            }
        };
        self.store.audit(
            now,
            request.post_id,
            "approved",
            &format!("request #{id} approved by the owner: {done}"),
        )?;
        self.emit(&crate::events::Event::Requests);
        Ok(done)
    }

    /// Refuses a request waiting for the owner; the requester is told,
    /// encrypted to the key they asked with.
    pub fn refuse_request(&mut self, id: i64, reason: &str) -> Result<()> {
        let request = self.open_request_by_id(id)?;
        let reason = crate::mime::build::clean(reason);
        let now = self.unix();
        self.store
            .set_request_state(id, RequestState::Refused, &reason, None, now)?;
        self.store.audit(
            now,
            request.post_id,
            "refused",
            &format!(
                "request #{id} ({} from {}) refused by the owner{}",
                kind_words(request.kind),
                request.address,
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
        )?;
        let cert = certs::parse_public_cert(&request.cert)?;
        let name = self.name()?;
        let reply = Reply {
            to: request.address.clone(),
            subject: format!("Your request to {name}"),
            text: format!(
                "The owner of {name} declined your request ({}){}.\r\n",
                kind_words(request.kind),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
            list_key: false,
            in_reply_to: None,
        };
        self.reply(request.post_id.unwrap_or(0), &reply, Some(&cert))?;
        self.emit(&crate::events::Event::Requests);
        Ok(())
    }

    /// Tells a subscriber why their post was held or rejected, encrypted
    /// to their key (`notify_senders`). Nobody else is told: a forged
    /// sender must not turn the list against a stranger.
    pub(crate) fn notify_sender(&mut self, post_id: i64, outcome: &Outcome) -> Result<()> {
        let (what, reason) = match outcome {
            Outcome::Held { reason, .. } => ("held for the owner", reason),
            Outcome::Rejected { reason, .. } => ("rejected", reason),
            _ => return Ok(()),
        };
        if self.config_value("notify_senders")? == "off" || self.store.post_kind(post_id)? != "post"
        {
            return Ok(());
        }
        let Some(post) = self.store.post(post_id)? else {
            return Ok(());
        };
        if post.state != PostState::Held && post.state != PostState::Rejected {
            return Ok(());
        }
        let Some((_, cert)) = self.store.subscriber(&post.sender)? else {
            return Ok(());
        };
        let cert = certs::parse_public_cert(&cert)?;
        let name = self.name()?;
        let reply = Reply {
            to: post.sender.clone(),
            subject: format!("Your post to {name} was {what}"),
            text: format!(
                "A post to {name} from {} (received {}) was {what}: {reason}.\r\n\r\n{}",
                post.sender,
                crate::clock::rfc5322(
                    std::time::UNIX_EPOCH + Duration::from_secs(post.received_at.max(0) as u64)
                ),
                if what.starts_with("held") {
                    "The owner decides whether it goes out; you need do nothing."
                } else {
                    "It was not sent to the list."
                }
            ),
            list_key: false,
            in_reply_to: None,
        };
        self.reply(post_id, &reply, Some(&cert))?;
        Ok(())
    }
}

/// The e-mail addresses written in `text`, lowercased.
fn addresses_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c))
        .filter(|w| w.contains('@') && w.len() <= 254)
        .map(|w| w.trim_matches('.').to_ascii_lowercase())
        .collect()
}
