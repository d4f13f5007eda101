//! The replay cache, shared by every instance of a list (co-owners each run
//! one) through the list mailbox, which is the state they share. No network
//! here: the relay carries the messages this builds and reads.
//!
//! - **The key.** Marks are digests keyed with a secret of the list, so the
//!   mail host learns nothing from them (a plain digest of an unsigned post
//!   would let it confirm a guess of the text). The first instance makes 32
//!   random bytes, seals them to the list key and leaves them in the
//!   mailbox's replay folder; every instance reads the oldest such message
//!   and keeps the key in memory only.
//! - **The marks.** Each entry of this instance's replay cache is shared once,
//!   as a line `HMAC(key, digest)` in a small message in the replay folder;
//!   the marks of the other instances are read at the start of each pass,
//!   and a post whose digest matches one is a replay.

use crate::crypto::{decrypt, seal};
use crate::error::{Error, Result};

use super::List;

/// The first line of a message holding the shared key.
pub const KEY_TAG: &str = "conclave-replay-key v1";
/// The first line of a message holding marks.
pub const MARKS_TAG: &str = "conclave-replay-marks v1";
/// The subject of each.
pub const KEY_SUBJECT: &str = "Conclave replay key";
/// See [`KEY_SUBJECT`].
pub const MARKS_SUBJECT: &str = "Conclave replay marks";

/// How many marks one message carries at most.
const MARKS_PER_MESSAGE: i64 = 500;

impl List {
    /// Whether the shared key has been read, or found wanting.
    pub(crate) fn has_replay_key(&self) -> bool {
        self.replay_key.is_some() || self.replay_refused
    }

    /// The replay folder holds no key the list signed: said once, in the
    /// log and to the front end, and not asked again while the list is open.
    pub(crate) fn replay_key_refused(&mut self, why: &str) -> Result<()> {
        self.replay_refused = true;
        let message = format!(
            "the replay folder holds no key signed by the list key ({why}); this instance checks replays on its own"
        );
        self.store.audit(self.unix(), None, "replay", &message)?;
        self.emit(&crate::events::Event::Notice { message });
        Ok(())
    }

    /// A message holding a new shared key, signed by the list key and
    /// sealed to it, for the relay to leave in the replay folder.
    pub(crate) fn new_replay_key_message(&mut self) -> Result<Vec<u8>> {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::getrandom(&mut key[..]).map_err(|e| Error::crypto("make the replay key", e))?;
        let hex = zeroize::Zeroizing::new(crate::hex::hex(&key[..]));
        let now = self.now();
        let signer = self.keystore()?.signer()?;
        let signature = match seal::sign_detached(signer, hex.as_bytes(), now) {
            Ok(s) => s,
            Err(e) => return Err(self.keystore()?.take_failure().unwrap_or(e)),
        };
        let mut inner = zeroize::Zeroizing::new(format!("{}\n", hex.as_str()).into_bytes());
        inner.extend_from_slice(&signature);
        let sealed = seal::encrypt_to(&self.cert, &inner, now)?;
        let armored = seal::armor_message(&[&sealed]);
        let mut body = format!("{KEY_TAG}\r\n").into_bytes();
        body.extend_from_slice(&armored);
        Ok(self.folder_message(KEY_SUBJECT, &body))
    }

    /// Takes the shared key from the body of the message that holds it: it
    /// must be sealed to the list key and signed by it (the mail host could
    /// leave a key of its own choosing otherwise).
    pub(crate) fn take_replay_key(&mut self, body: &[u8]) -> Result<()> {
        let refused = |why: &str| Error::crypto("read the replay key", why.to_string());
        let armored = body
            .strip_prefix(KEY_TAG.as_bytes())
            .ok_or_else(|| refused("not a replay key message"))?;
        let decryptors = self.keystore()?.decryptors()?;
        let opened = match decrypt::open(armored, decryptors, &[], self.now(), 64 * 1024) {
            Ok(o) => o,
            Err(e) => {
                return Err(self
                    .keystore()?
                    .take_failure()
                    .unwrap_or_else(|| Error::crypto("read the replay key", e)))
            }
        };
        let inner = zeroize::Zeroizing::new(opened.plaintext);
        let (key, signature) = match inner.iter().position(|b| *b == b'\n') {
            Some(i) => (
                inner.get(..i).unwrap_or_default(),
                inner.get(i + 1..).unwrap_or_default(),
            ),
            None => return Err(refused("it carries no signature")),
        };
        let well_formed = key.len() == 64 && key.iter().all(u8::is_ascii_hexdigit);
        let (sigs, _) =
            decrypt::verify_detached(key, signature, std::slice::from_ref(&self.cert), self.now());
        let signed = sigs
            .iter()
            .any(|s| matches!(s, decrypt::SigStatus::Good { .. }));
        if !well_formed || !signed {
            return Err(refused(
                "the message in the replay folder is not a key signed by the list key",
            ));
        }
        self.replay_key = Some(zeroize::Zeroizing::new(key.to_vec()));
        Ok(())
    }

    /// The mark of a replay-cache digest, once the shared key is known.
    pub(crate) fn replay_mark(&self, digest: &str) -> Option<String> {
        self.replay_key
            .as_ref()
            .map(|k| crate::hex::hmac_sha256_hex(k, digest.as_bytes()))
    }

    /// Where reading the replay folder stopped: (UIDVALIDITY, last UID).
    pub(crate) fn replay_position(&self) -> Result<(u32, u32)> {
        let get = |k: &str| -> Result<u32> {
            Ok(self
                .store
                .config_get(k)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0))
        };
        Ok((get("replay.validity")?, get("replay.uid")?))
    }

    /// Takes the marks in messages read from the replay folder (their
    /// bodies), and where reading stopped. Returns how many marks were new.
    pub(crate) fn take_replay_marks(
        &mut self,
        validity: u32,
        last_uid: u32,
        bodies: &[Vec<u8>],
    ) -> Result<usize> {
        let marks: Vec<String> = bodies
            .iter()
            .filter_map(|b| b.strip_prefix(MARKS_TAG.as_bytes()))
            .flat_map(|b| b.split(|c| *c == b'\n'))
            .map(|l| String::from_utf8_lossy(l).trim().to_ascii_uppercase())
            .filter(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        let n = self.store.replay_marks_add(&marks, self.unix())?;
        self.store
            .config_set("replay.validity", &validity.to_string())?;
        self.store.config_set("replay.uid", &last_uid.to_string())?;
        Ok(n)
    }

    /// A message of the marks this instance has not shared yet, and their
    /// digests (to note as shared once the message is in the mailbox); None
    /// when there is nothing to share or no key yet.
    pub(crate) fn replay_marks_to_share(&self) -> Result<Option<(Vec<u8>, Vec<String>)>> {
        if self.replay_key.is_none() {
            return Ok(None);
        }
        let digests = self.store.replay_unshared(MARKS_PER_MESSAGE)?;
        if digests.is_empty() {
            return Ok(None);
        }
        let mut body = format!("{MARKS_TAG}\r\n");
        for d in &digests {
            if let Some(m) = self.replay_mark(d) {
                body.push_str(&m);
                body.push_str("\r\n");
            }
        }
        Ok(Some((
            self.folder_message(MARKS_SUBJECT, body.as_bytes()),
            digests,
        )))
    }

    /// Notes digests as shared.
    pub(crate) fn replay_marks_shared(&self, digests: &[String]) -> Result<()> {
        self.store.replay_shared(digests)
    }

    /// A small message for the replay folder, from and to the list.
    fn folder_message(&self, subject: &str, body: &[u8]) -> Vec<u8> {
        let mut id = [0u8; 16];
        let _ = getrandom::getrandom(&mut id);
        let domain = self
            .address
            .split_once('@')
            .map(|d| d.1)
            .unwrap_or("localhost");
        let mut out = format!(
            "From: <{a}>\r\nTo: <{a}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
            a = self.address,
            date = crate::clock::rfc5322(self.now()),
            id = crate::hex::hex(&id).to_ascii_lowercase(),
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }
}
