//! Reading posts: where the ciphertext is, who says they sent it, and, once
//! decrypted, what the author signed and which headers they protected.

use mail_parser::{ContentType, Message, MessageParser, MimeHeaders, PartType};

use super::{split_head, split_multipart, to_crlf};

/// The parts of an incoming message the list needs before decrypting.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// The `From:` address, lowercased.
    pub from: Option<String>,
    /// The display name in `From:`.
    pub from_name: Option<String>,
    /// The outer `Subject:` (often `...` when the client protects headers).
    pub subject: Option<String>,
    /// The outer `Message-ID:`, without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To:` and `References:`, raw.
    pub in_reply_to: Option<String>,
    /// See `in_reply_to`.
    pub references: Option<String>,
    /// Where the message was delivered: the addresses in `Delivered-To:`
    /// and `X-Original-To:` (added by the receiving server), lowercased.
    pub delivered_to: Vec<String>,
    /// The addresses in `To:` and `Cc:`, lowercased.
    pub to: Vec<String>,
    /// Where the ciphertext is.
    pub payload: Payload,
    /// Headers that say a message came from a machine, lowercased:
    /// `Auto-Submitted:`, `Precedence:`, `List-Id:`, and a `Return-Path:`
    /// of `<>` as `return-path: <>`; the list never answers such mail.
    pub machine: Vec<(String, String)>,
    /// The `Autocrypt:` header's value, raw (a key offered in the clear).
    pub autocrypt: Option<String>,
    /// The top-level `Content-Type:` value, raw and lowercased (a delivery
    /// report is `multipart/report; report-type=delivery-status`).
    pub content_type: Option<String>,
}

/// Where a message carries its ciphertext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Payload {
    /// PGP/MIME (RFC 3156), possibly rearranged by a provider: decrypts to a MIME entity.
    PgpMime(Vec<u8>),
    /// Inline PGP in a text part: decrypts to text.
    Inline(Vec<u8>),
    /// No encryption at all.
    #[default]
    Clear,
}

const ARMOR_BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const ARMOR_END: &[u8] = b"-----END PGP MESSAGE-----";

/// Parses a message as it arrived. Fails only when it is not a message at all.
pub fn incoming(raw: &[u8]) -> Result<Incoming, String> {
    let msg = parse(raw)?;
    let (from, from_name) = first_address(&msg);
    // A bare armored message, with no mail headers around it.
    let bare = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| raw.get(i..))
        .is_some_and(|r| r.starts_with(ARMOR_BEGIN));
    let payload = match armor_block(raw) {
        Some(block) if bare => Payload::Inline(block.to_vec()),
        _ => find_payload(&msg),
    };
    Ok(Incoming {
        from,
        from_name,
        subject: msg.subject().map(str::to_owned),
        message_id: msg.message_id().map(str::to_owned),
        in_reply_to: msg.header_raw("In-Reply-To").map(|s| s.trim().to_owned()),
        references: msg.header_raw("References").map(|s| s.trim().to_owned()),
        delivered_to: delivered_to(&msg),
        to: recipients(&msg),
        payload,
        machine: machine_headers(&msg),
        autocrypt: msg.header_raw("Autocrypt").map(|s| s.trim().to_owned()),
        content_type: msg
            .header_raw("Content-Type")
            .map(|s| s.trim().to_ascii_lowercase()),
    })
}

/// The addresses of every `Delivered-To:` and `X-Original-To:` header.
fn delivered_to(msg: &Message<'_>) -> Vec<String> {
    msg.headers()
        .iter()
        .filter(|h| {
            let name = h.name.as_str();
            name.eq_ignore_ascii_case("Delivered-To") || name.eq_ignore_ascii_case("X-Original-To")
        })
        .filter_map(|h| {
            msg.raw_message()
                .get(h.offset_start as usize..h.offset_end as usize)
        })
        .map(|v| {
            String::from_utf8_lossy(v)
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_ascii_lowercase()
        })
        .filter(|a| a.contains('@'))
        .collect()
}

/// The headers that mark mail sent by a machine, names and values
/// lowercased and trimmed.
fn machine_headers(msg: &Message<'_>) -> Vec<(String, String)> {
    msg.headers()
        .iter()
        .filter(|h| {
            ["auto-submitted", "precedence", "list-id", "return-path"]
                .iter()
                .any(|n| h.name.as_str().eq_ignore_ascii_case(n))
        })
        .filter_map(|h| {
            let value = msg
                .raw_message()
                .get(h.offset_start as usize..h.offset_end as usize)?;
            Some((
                h.name.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(value).trim().to_ascii_lowercase(),
            ))
        })
        .collect()
}

/// Parses bytes with mail-parser, never letting a parser panic escape.
fn parse(raw: &[u8]) -> Result<Message<'_>, String> {
    if raw.is_empty() {
        return Err("the message is empty".into());
    }
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw));
    match parsed {
        Ok(Some(m)) if !m.headers().is_empty() => Ok(m),
        Ok(_) => Err("not an e-mail message: no headers found".into()),
        Err(_) => Err("the MIME structure could not be parsed".into()),
    }
}

fn first_address(msg: &Message<'_>) -> (Option<String>, Option<String>) {
    match msg.from().and_then(|a| a.first()) {
        Some(addr) => (
            addr.address
                .as_ref()
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| a.contains('@')),
            addr.name
                .as_ref()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
        ),
        None => (None, None),
    }
}

fn find_payload(msg: &Message<'_>) -> Payload {
    let parts = &msg.parts;
    // PGP/MIME: the `application/pgp-encrypted` control part is followed by
    // the part that holds the OpenPGP message, whatever a provider did to the
    // surrounding structure.
    for (i, part) in parts.iter().enumerate() {
        let is_control = is_type(part.content_type(), "application", "pgp-encrypted");
        if !is_control || find(part.contents(), ARMOR_BEGIN).is_some() {
            continue;
        }
        for next in parts.iter().skip(i + 1) {
            if matches!(next.body, PartType::Multipart(_)) {
                continue;
            }
            // The first leaf after the control part holds the OpenPGP
            // message; if it holds something else, decryption says so.
            let data = next.contents();
            return Payload::PgpMime(armor_block(data).unwrap_or(data).to_vec());
        }
    }
    // Inline PGP: an armored message in a text part.
    for part in parts {
        if let PartType::Text(text) = &part.body {
            if let Some(block) = armor_block(text.as_bytes()) {
                return Payload::Inline(block.to_vec());
            }
        }
    }
    Payload::Clear
}

/// The first armored OpenPGP message in `data`, from its BEGIN line to the
/// end of its END line (or to the end of the data if it is cut short).
fn armor_block(data: &[u8]) -> Option<&[u8]> {
    let start = find(data, ARMOR_BEGIN)?;
    let rest = data.get(start..)?;
    let end = match find(rest, ARMOR_END) {
        Some(e) => start + e + ARMOR_END.len(),
        None => data.len(),
    };
    data.get(start..end)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Headers the author put inside the encryption (RFC 9788, or the older
/// `protected-headers="v1"` convention). For a `multipart/signed` entity
/// they come from the signed part alone: the root's headers are covered by
/// no signature.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// The protected `From:` address, lowercased.
    pub from: Option<String>,
    /// The protected display name.
    pub from_name: Option<String>,
    /// The real subject.
    pub subject: Option<String>,
    /// `In-Reply-To:`, raw.
    pub in_reply_to: Option<String>,
    /// `References:`, raw.
    pub references: Option<String>,
    /// `Message-ID:`, without angle brackets.
    pub message_id: Option<String>,
    /// The addresses of the protected `To:` and `Cc:`, lowercased; `None`
    /// when the entity has neither header.
    pub to: Option<Vec<String>>,
}

/// What the author's decrypted content is.
#[derive(Debug, Clone)]
pub enum Content {
    /// A PGP/MIME `multipart/signed` entity: `entity` is the whole thing,
    /// `signed` the exact bytes covered by `signature`.
    MimeSigned {
        /// The whole entity, CRLF.
        entity: Vec<u8>,
        /// The signed first part, CRLF, exactly as RFC 3156 defines it.
        signed: Vec<u8>,
        /// The detached signature (armored).
        signature: Vec<u8>,
    },
    /// Any other MIME entity.
    Mime {
        /// The entity, CRLF.
        entity: Vec<u8>,
    },
    /// Inline PGP: plain text (possibly a cleartext-signed text).
    Text {
        /// The text.
        text: Vec<u8>,
    },
}

/// Decrypted content picked apart.
#[derive(Debug, Clone)]
pub struct Inside {
    /// What it is.
    pub content: Content,
    /// The headers it carries.
    pub protected: Protected,
    /// Whether the text is one cleartext-signed block and nothing else.
    pub clearsigned: bool,
    /// Why a signature it seems to carry does not count: a
    /// `multipart/signed` of other than two parts, or text around a
    /// cleartext-signed block. The content is then read as unsigned.
    pub unsigned_because: Option<String>,
}

/// Picks apart decrypted content. `pgp_mime` says whether it is a MIME entity.
pub fn content(plaintext: &[u8], pgp_mime: bool) -> Inside {
    let text = |protected: Protected| -> Inside {
        let (text, clearsigned, unsigned_because) = match clearsigned(plaintext) {
            Clearsigned::No => (plaintext.to_vec(), false, None),
            Clearsigned::Alone(block) => (block.to_vec(), true, None),
            Clearsigned::Surrounded => (
                plaintext.to_vec(),
                false,
                Some("there is text outside its cleartext-signed block, which the signature does not cover".to_string()),
            ),
        };
        Inside {
            content: Content::Text { text },
            protected,
            clearsigned,
            unsigned_because,
        }
    };
    if !pgp_mime {
        return text(Protected::default());
    }
    let entity = to_crlf(plaintext);
    let Ok(msg) = parse(&entity) else {
        // A body with no headers at all: treat it as text.
        return text(Protected::default());
    };
    let root = protected_headers(&msg);
    let root_ct = msg.root_part().content_type();
    let is_signed = is_type(root_ct, "multipart", "signed");
    let boundary = root_ct
        .and_then(|ct| ct.attribute("boundary"))
        .map(str::to_owned);
    drop(msg);
    let mut unsigned_because = None;
    if let (true, Some(boundary)) = (is_signed, boundary) {
        let (_, body) = split_head(&entity);
        match split_multipart(body, &boundary) {
            Some(parts) if parts.len() == 2 => {
                if let (Some(signed), Some(sig_part)) = (parts.first(), parts.get(1)) {
                    let (_, sig_body) = split_head(sig_part);
                    // Only the signed part's own headers count.
                    let protected = parse(signed)
                        .map(|inner| protected_headers(&inner))
                        .unwrap_or_default();
                    let signed = signed.to_vec();
                    let signature = sig_body.to_vec();
                    return Inside {
                        content: Content::MimeSigned {
                            entity,
                            signed,
                            signature,
                        },
                        protected,
                        clearsigned: false,
                        unsigned_because: None,
                    };
                }
            }
            Some(parts) => {
                unsigned_because = Some(format!(
                    "its multipart/signed has {} parts instead of two (the signed part and the signature), so not all of it is signed",
                    parts.len()
                ))
            }
            None => {
                unsigned_because =
                    Some("its multipart/signed has no closing boundary".to_string())
            }
        }
    }
    Inside {
        content: Content::Mime { entity },
        protected: root,
        clearsigned: false,
        unsigned_because,
    }
}

/// Where a cleartext-signed block sits in a text.
#[derive(Debug, PartialEq, Eq)]
pub enum Clearsigned<'a> {
    /// There is none.
    No,
    /// The text is the block, give or take whitespace around it.
    Alone(&'a [u8]),
    /// There is other text before or after it.
    Surrounded,
}

/// Finds a cleartext-signed block (`-----BEGIN PGP SIGNED MESSAGE-----` at
/// the start of a line, to the end of its `-----END PGP SIGNATURE-----`
/// line) and says whether anything but whitespace surrounds it.
pub fn clearsigned(text: &[u8]) -> Clearsigned<'_> {
    const BEGIN: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
    const END: &[u8] = b"-----END PGP SIGNATURE-----";
    let Some(start) = line_starting(text, BEGIN, 0) else {
        return Clearsigned::No;
    };
    let end = match line_starting(text, END, start) {
        Some(e) => e + END.len(),
        // Cut short: the whole rest is the block, and verifying it says so.
        None => text.len(),
    };
    let blank = |b: &[u8]| b.iter().all(u8::is_ascii_whitespace);
    match (text.get(..start), text.get(start..end), text.get(end..)) {
        (Some(before), Some(block), Some(after)) if blank(before) && blank(after) => {
            Clearsigned::Alone(block)
        }
        _ => Clearsigned::Surrounded,
    }
}

/// The offset of the first line at or after `from` that starts with `marker`.
fn line_starting(text: &[u8], marker: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let found = at + find(text.get(at..)?, marker)?;
        if found == 0 || text.get(found - 1) == Some(&b'\n') {
            return Some(found);
        }
        at = found + 1;
    }
}

fn protected_headers(msg: &Message<'_>) -> Protected {
    let (from, from_name) = first_address(msg);
    let has_to = msg.header("To").is_some() || msg.header("Cc").is_some();
    Protected {
        from,
        from_name,
        subject: msg.subject().map(str::to_owned),
        in_reply_to: msg.header_raw("In-Reply-To").map(|s| s.trim().to_owned()),
        references: msg.header_raw("References").map(|s| s.trim().to_owned()),
        message_id: msg.message_id().map(str::to_owned),
        to: has_to.then(|| recipients(msg)),
    }
}

/// The addresses in `To:` and `Cc:`, lowercased.
fn recipients(msg: &Message<'_>) -> Vec<String> {
    msg.to()
        .into_iter()
        .chain(msg.cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address.as_ref())
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// The decoded text of the first text/plain part of an entity, for showing
/// a held post to the owner.
pub fn first_text(entity: &[u8]) -> Option<String> {
    let msg = parse(entity).ok()?;
    msg.body_text(0).map(|t| t.into_owned())
}

/// Whether a part's `Content-Type` is `kind/sub` (case-insensitively).
fn is_type(ct: Option<&ContentType<'_>>, kind: &str, sub: &str) -> bool {
    ct.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(kind)
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case(sub))
    })
}

/// The OpenPGP keys attached to a decrypted entity: `application/pgp-keys`
/// parts (Thunderbird's "Attach my public key"), and any attachment whose
/// body is an armored public key. At most 8, each at most 1 MiB.
pub fn attached_keys(entity: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
    let Ok(msg) = parse(entity) else {
        return Vec::new();
    };
    msg.parts
        .iter()
        .filter(|part| !matches!(part.body, PartType::Multipart(_)))
        .filter_map(|part| {
            let is_keys = is_type(part.content_type(), "application", "pgp-keys");
            let body = part.contents();
            let armored = find(body, BEGIN).is_some();
            ((is_keys || armored) && body.len() <= 1 << 20).then(|| body.to_vec())
        })
        .take(8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_attached_keys() {
        let entity = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/pgp-keys; name=\"OpenPGP_0x1.asc\"\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\nS0VZ\r\n--b--\r\n";
        assert_eq!(attached_keys(entity), vec![b"KEY".to_vec()]);
        assert!(attached_keys(b"Content-Type: text/plain\r\n\r\nno keys\r\n").is_empty());
    }

    #[test]
    fn finds_inline_armor_even_when_cut_short() {
        let raw = b"From: a@example.test\r\nSubject: x\r\n\r\nhi\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEM\r\n";
        let inc = incoming(raw).unwrap();
        assert!(matches!(inc.payload, Payload::Inline(ref b) if b.starts_with(ARMOR_BEGIN)));
        assert_eq!(inc.from.as_deref(), Some("a@example.test"));
    }

    #[test]
    fn refuses_garbage() {
        assert!(incoming(b"").is_err());
    }

    #[test]
    fn reads_multipart_signed() {
        let entity = b"Content-Type: multipart/signed; boundary=\"xx\"; protocol=\"application/pgp-signature\"\r\nSubject: unsigned root\r\nTo: elsewhere@example.test\r\n\r\n--xx\r\nContent-Type: text/plain\r\nSubject: real\r\nTo: list@example.test\r\n\r\nbody\r\n--xx\r\nContent-Type: application/pgp-signature\r\n\r\nSIG\r\n--xx--\r\n";
        let inside = content(entity, true);
        match inside.content {
            Content::MimeSigned {
                signed, signature, ..
            } => {
                assert_eq!(
                    signed,
                    b"Content-Type: text/plain\r\nSubject: real\r\nTo: list@example.test\r\n\r\nbody"
                );
                assert_eq!(signature, b"SIG");
            }
            other => panic!("{other:?}"),
        }
        // The root's headers are covered by no signature: only the signed part's count.
        assert_eq!(inside.protected.subject.as_deref(), Some("real"));
        assert_eq!(
            inside.protected.to,
            Some(vec!["list@example.test".to_string()])
        );
        assert!(inside.unsigned_because.is_none());
    }

    #[test]
    fn a_multipart_signed_of_three_parts_is_unsigned() {
        let entity = b"Content-Type: multipart/signed; boundary=\"xx\"; protocol=\"application/pgp-signature\"\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nbody\r\n--xx\r\nContent-Type: application/pgp-signature\r\n\r\nSIG\r\n--xx\r\nContent-Type: text/plain\r\n\r\nadded\r\n--xx--\r\n";
        let inside = content(entity, true);
        assert!(matches!(inside.content, Content::Mime { .. }));
        assert!(inside
            .unsigned_because
            .is_some_and(|r| r.contains("3 parts instead of two")));
    }

    #[test]
    fn finds_a_clearsigned_block_and_what_surrounds_it() {
        let block = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhi\n-----BEGIN PGP SIGNATURE-----\n\nx\n-----END PGP SIGNATURE-----";
        assert_eq!(clearsigned(b"plain text"), Clearsigned::No);
        assert_eq!(
            clearsigned(format!("\r\n\r\n{block}\r\n \r\n").as_bytes()),
            Clearsigned::Alone(block.as_bytes())
        );
        assert_eq!(
            clearsigned(format!("{block}\nP.S. send money").as_bytes()),
            Clearsigned::Surrounded
        );
        assert_eq!(
            clearsigned(format!("Note:\n{block}").as_bytes()),
            Clearsigned::Surrounded
        );
        // A quoted block is not a block.
        assert_eq!(
            clearsigned(format!("> {block}").as_bytes()),
            Clearsigned::No
        );
        let inside = content(format!("{block}\nadded").as_bytes(), false);
        assert!(!inside.clearsigned);
        assert!(inside.unsigned_because.is_some());
    }
}
