//! The list's automatic replies (confirmations, welcomes, help, the list
//! key, notices to senders): one message to one person, signed by the list
//! key and encrypted to their key when the list has it, queued in the
//! outbox beside the copies. Every reply counts against the sender's limit
//! per hour (`request_reply_limit`) and says in its headers that a machine
//! sent it, so other machines do not answer.

use sequoia_openpgp::Cert;

use crate::crypto::certs;
use crate::crypto::seal::{self, SealedBody};
use crate::error::Result;
use crate::mime::build::{self, ProtectedHeaders};
use crate::store::NewCopy;

use super::fanout::{boundary, short_hash};
use super::List;

/// One automatic reply.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// Who gets it.
    pub(crate) to: String,
    /// Its subject.
    pub(crate) subject: String,
    /// Its text.
    pub(crate) text: String,
    /// Whether the list's public key goes with it.
    pub(crate) list_key: bool,
    /// The Message-ID of the message it answers, if it had a usable one.
    pub(crate) in_reply_to: Option<String>,
}

impl List {
    /// Queues `reply` as an answer to message `post_id`: encrypted to
    /// `cert` when there is one, signed only otherwise. Returns false, and
    /// logs why, when the address has had its replies for this hour.
    pub(crate) fn reply(
        &mut self,
        post_id: i64,
        reply: &Reply,
        cert: Option<&Cert>,
    ) -> Result<bool> {
        let ts = self.unix();
        let limit: i64 = self
            .config_value("request_reply_limit")?
            .parse()
            .unwrap_or(20);
        let sent = self.store.replies_since(&reply.to, ts - 3600)?;
        if sent >= limit {
            self.store.audit(
                ts,
                Some(post_id),
                "not-answered",
                &format!(
                    "no reply to {}: {sent} replies went to that address in the last hour (request_reply_limit {limit})",
                    reply.to
                ),
            )?;
            return Ok(false);
        }
        let now = self.now();
        let name = self.name()?;
        let from = self.request_address()?;
        let domain = self
            .address
            .split_once('@')
            .map(|d| d.1)
            .unwrap_or("localhost")
            .to_owned();
        let mut nonce = [0u8; 16];
        let _ = sequoia_openpgp::crypto::random(&mut nonce);
        let seed = crate::hex::hex(&nonce);
        let message_id = format!("{}@{domain}", short_hash(&seed, &reply.to));

        let mut parts = vec![build::text_part(reply.text.as_bytes())];
        if reply.list_key {
            let file = format!("{}.asc", self.address.replace('@', "_"));
            parts.push(build::key_part(&self.export_public_key()?, &file));
        }
        let subject = build::clean(&reply.subject);
        // The log names the reply, never a token it carries: a token is a
        // key to the request until it is used.
        let logged = match super::commands::find_token(&subject) {
            Some(token) => subject.replace(&token, "confirm-…"),
            None => subject.clone(),
        };
        let headers = ProtectedHeaders {
            from: build::mailbox(Some(&name), &from),
            sender: build::mailbox(Some(&name), &from),
            to: build::mailbox(None, &reply.to),
            reply_to: build::mailbox(None, &from),
            subject: subject.clone(),
            date: crate::clock::rfc5322(now),
            message_id: message_id.clone(),
            in_reply_to: reply.in_reply_to.clone().map(|id| format!("<{id}>")),
            references: reply.in_reply_to.clone().map(|id| format!("<{id}>")),
            outer: vec![("Subject".into(), "...".into())],
        };
        let entity = build::protected_entity(&headers, &parts, &boundary("reply", &seed));
        let signer = self.keystore()?.signer()?;
        let signature = match seal::sign_detached(signer, &entity, now) {
            Ok(s) => s,
            Err(e) => return Err(self.keystore()?.take_failure().unwrap_or(e)),
        };
        let payload = build::signed_entity(
            &entity,
            &signature,
            "pgp-sha256",
            &boundary("signed", &seed),
        );

        let outer_subject = if cert.is_some() {
            "...".to_owned()
        } else {
            build::encode_text(&subject)
        };
        let mut outer = format!(
            "From: {}\r\nTo: <{}>\r\nSubject: {outer_subject}\r\nDate: {}\r\nMessage-ID: <{message_id}>\r\nAuto-Submitted: auto-replied\r\n",
            build::mailbox(Some(&name), &from),
            reply.to,
            crate::clock::rfc5322(now),
        );
        if let Some(id) = &reply.in_reply_to {
            outer.push_str(&format!("In-Reply-To: <{id}>\r\n"));
        }
        let (body, pkesks) = match cert {
            Some(cert) => {
                let sealed = SealedBody::new(&payload, certs::wants_seipd_v2(cert, now))?;
                let keys = certs::encryption_keys(cert, now)?;
                let pkesks = sealed.pkesks_for(&keys)?;
                (sealed.seipd, pkesks)
            }
            None => (payload, Vec::new()),
        };
        let plain = cert.is_none();
        self.store.queue_reply(
            post_id,
            &body,
            &NewCopy {
                recipient: reply.to.clone(),
                message_id,
                headers: outer,
                pkesks,
            },
            plain,
            ts,
        )?;
        self.store.audit(
            ts,
            Some(post_id),
            "reply",
            &format!(
                "answered {} ({}): {logged}",
                reply.to,
                if plain {
                    "signed, not encrypted: the list has no key it can encrypt to for that address"
                } else {
                    "encrypted to their key"
                }
            ),
        )?;
        Ok(true)
    }
}
