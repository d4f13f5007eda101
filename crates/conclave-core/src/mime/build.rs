//! Building copies: the entity the list signs (with the real headers inside,
//! RFC 9788), the `multipart/signed` around it, and the `multipart/encrypted`
//! message each subscriber receives.

use base64::Engine as _;

use super::split_head;

/// The headers that travel inside the encryption, on the entity the list signs.
#[derive(Debug, Clone)]
pub struct ProtectedHeaders {
    /// `From:`, ready to write (display name and the list address).
    pub from: String,
    /// `Sender:`, ready to write: the list, so a client that shows the
    /// author from `From:` still files every post under the list.
    pub sender: String,
    /// `To:`, ready to write.
    pub to: String,
    /// `Reply-To:`, ready to write.
    pub reply_to: String,
    /// The real subject, unencoded.
    pub subject: String,
    /// `Date:`.
    pub date: String,
    /// `Message-ID:`, without angle brackets.
    pub message_id: String,
    /// `In-Reply-To:`, raw, if any.
    pub in_reply_to: Option<String>,
    /// `References:`, raw, if any.
    pub references: Option<String>,
    /// The outer headers that differ, to record as `HP-Outer:`.
    pub outer: Vec<(String, String)>,
}

/// Builds the entity the list signs: a `multipart/mixed` carrying the
/// protected headers, holding `parts` (complete MIME entities, CRLF).
pub fn protected_entity(h: &ProtectedHeaders, parts: &[Vec<u8>], boundary: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum::<usize>() + 1024);
    header(
        &mut out,
        "Content-Type",
        &format!(
            "multipart/mixed; boundary=\"{boundary}\"; protected-headers=\"v1\"; hp=\"cipher\""
        ),
    );
    header(&mut out, "From", &h.from);
    header(&mut out, "Sender", &h.sender);
    header(&mut out, "To", &h.to);
    header(&mut out, "Reply-To", &h.reply_to);
    header(&mut out, "Subject", &encode_text(&h.subject));
    header(&mut out, "Date", &h.date);
    header(
        &mut out,
        "Message-ID",
        &format!("<{}>", clean(&h.message_id)),
    );
    if let Some(v) = &h.in_reply_to {
        header(&mut out, "In-Reply-To", &clean(v));
    }
    if let Some(v) = &h.references {
        header(&mut out, "References", &clean(v));
    }
    for (name, value) in &h.outer {
        header(&mut out, "HP-Outer", &format!("{name}: {}", clean(value)));
    }
    out.extend_from_slice(b"\r\n");
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(p);
        if !p.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// Wraps `signed` and its detached signature in `multipart/signed` (RFC 3156).
pub fn signed_entity(signed: &[u8], signature: &[u8], micalg: &str, boundary: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(signed.len() + signature.len() + 512);
    header(
        &mut out,
        "Content-Type",
        &format!("multipart/signed; micalg={micalg}; protocol=\"application/pgp-signature\"; boundary=\"{boundary}\""),
    );
    out.extend_from_slice(b"\r\nThis is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(signed);
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    header(
        &mut out,
        "Content-Type",
        "application/pgp-signature; name=\"signature.asc\"",
    );
    header(&mut out, "Content-Description", "OpenPGP digital signature");
    header(
        &mut out,
        "Content-Disposition",
        "attachment; filename=\"signature.asc\"",
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&super::to_crlf(signature));
    if !signature.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// The boundary of a copy's `multipart/encrypted`, derived from its Message-ID.
pub fn encrypted_boundary(message_id: &str) -> String {
    let tag: String = message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect();
    format!("conclave-enc-{tag}")
}

/// Assembles a whole copy: the outer headers, then `multipart/encrypted`
/// holding the armored OpenPGP message.
pub fn encrypted_message(outer_headers: &str, message_id: &str, armored: &[u8]) -> Vec<u8> {
    let boundary = encrypted_boundary(message_id);
    let mut out = Vec::with_capacity(outer_headers.len() + armored.len() + 768);
    out.extend_from_slice(outer_headers.as_bytes());
    header(&mut out, "MIME-Version", "1.0");
    header(
        &mut out,
        "Content-Type",
        &format!(
            "multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"{boundary}\""
        ),
    );
    out.extend_from_slice(b"\r\nThis is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    header(&mut out, "Content-Type", "application/pgp-encrypted");
    header(
        &mut out,
        "Content-Description",
        "PGP/MIME version identification",
    );
    out.extend_from_slice(b"\r\nVersion: 1\r\n\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    header(
        &mut out,
        "Content-Type",
        "application/octet-stream; name=\"encrypted.asc\"",
    );
    header(&mut out, "Content-Description", "OpenPGP encrypted message");
    header(
        &mut out,
        "Content-Disposition",
        "inline; filename=\"encrypted.asc\"",
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(armored);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Assembles a message signed but not encrypted: the outer headers, then
/// the whole signed entity (which starts with its own `Content-Type:`).
pub fn signed_message(outer_headers: &str, entity: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(outer_headers.len() + entity.len() + 32);
    out.extend_from_slice(outer_headers.as_bytes());
    header(&mut out, "MIME-Version", "1.0");
    out.extend_from_slice(entity);
    out
}

/// An `application/pgp-keys` attachment named `filename`.
pub fn key_part(armored: &[u8], filename: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(armored.len() + 256);
    header(
        &mut out,
        "Content-Type",
        &format!("application/pgp-keys; name=\"{filename}\""),
    );
    header(&mut out, "Content-Description", "OpenPGP public key");
    header(
        &mut out,
        "Content-Disposition",
        &format!("attachment; filename=\"{filename}\""),
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&super::to_crlf(armored));
    out
}

/// Keeps only the `Content-*` headers of an entity, so the author's other
/// headers do not travel twice.
pub fn content_only(entity: &[u8]) -> Vec<u8> {
    let (head, body) = split_head(entity);
    let mut out = Vec::with_capacity(entity.len());
    let mut keep = false;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            keep = line.len() > 8
                && line
                    .get(..8)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"content-"));
        }
        if keep {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    if out.is_empty() {
        out.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A `text/plain` entity holding `text` (base64 when it is not plain ASCII).
pub fn text_part(text: &[u8]) -> Vec<u8> {
    let ascii = text
        .iter()
        .all(|&b| b == b'\r' || b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b));
    let short_lines = text.split(|&b| b == b'\n').all(|l| l.len() < 990);
    let mut out = Vec::with_capacity(text.len() * 4 / 3 + 256);
    if ascii && short_lines {
        header(&mut out, "Content-Type", "text/plain; charset=us-ascii");
        header(&mut out, "Content-Transfer-Encoding", "7bit");
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&super::to_crlf(text));
    } else {
        header(&mut out, "Content-Type", "text/plain; charset=utf-8");
        header(&mut out, "Content-Transfer-Encoding", "base64");
        out.extend_from_slice(b"\r\n");
        base64_lines(&mut out, text);
    }
    out
}

/// An attachment holding the author's signed OpenPGP message (armored),
/// which `gpg --verify` or a client's "verify" checks as it is.
pub fn signed_message_part(armored: &[u8]) -> Vec<u8> {
    attachment(
        "application/octet-stream",
        "signed-by-author.asc",
        "The author's signed OpenPGP message, as they signed it (gpg --verify checks it)",
        armored,
    )
}

/// An `application/pgp-signature` attachment.
pub fn signature_part(armored: &[u8]) -> Vec<u8> {
    attachment(
        "application/pgp-signature",
        "signature.asc",
        "The author's OpenPGP signature over the text",
        armored,
    )
}

/// An attachment of armored OpenPGP data, named `name`.
fn attachment(content_type: &str, name: &str, description: &str, armored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(armored.len() + 256);
    header(
        &mut out,
        "Content-Type",
        &format!("{content_type}; name=\"{name}\""),
    );
    header(&mut out, "Content-Description", description);
    header(
        &mut out,
        "Content-Disposition",
        &format!("attachment; filename=\"{name}\""),
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&super::to_crlf(armored));
    out
}

fn base64_lines(out: &mut Vec<u8>, data: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    for line in b64.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends one header line to `out`, like [`header`].
pub fn header_to(out: &mut String, name: &str, value: &str) {
    let mut line = Vec::new();
    header(&mut line, name, value);
    out.push_str(&String::from_utf8_lossy(&line));
}

/// Writes one header line, folding long values at spaces.
pub fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    let mut line_len = name.len() + 2;
    let mut first = true;
    for word in value.split(' ') {
        if !first {
            if line_len + 1 + word.len() > 76 {
                out.extend_from_slice(b"\r\n ");
                line_len = 1;
            } else {
                out.push(b' ');
                line_len += 1;
            }
        }
        out.extend_from_slice(word.as_bytes());
        line_len += word.len();
        first = false;
    }
    out.extend_from_slice(b"\r\n");
}

pub use crate::text::clean;

/// Encodes unstructured header text (RFC 2047) when it is not plain ASCII.
pub fn encode_text(value: &str) -> String {
    let value = clean(value);
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return value;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A mailbox for a header: `"Name" <addr>` (the name encoded if needed).
pub fn mailbox(name: Option<&str>, address: &str) -> String {
    match name.map(clean).filter(|n| !n.is_empty()) {
        Some(n) if n.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
            format!(
                "\"{}\" <{}>",
                n.replace('\\', "\\\\").replace('"', "\\\""),
                clean(address)
            )
        }
        Some(n) => format!("{} <{}>", encode_text(&n), clean(address)),
        None => format!("<{}>", clean(address)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_cannot_inject() {
        assert_eq!(
            clean("hi\r\nBcc: evil@example.test"),
            "hi Bcc: evil@example.test"
        );
        let mut out = Vec::new();
        header(&mut out, "Subject", &encode_text("a\r\nX-Evil: 1"));
        assert_eq!(out, b"Subject: a X-Evil: 1\r\n");
    }

    #[test]
    fn encodes_non_ascii() {
        assert_eq!(encode_text("Grüße"), "=?utf-8?B?R3LDvMOfZQ==?=");
        assert_eq!(
            mailbox(Some("Ann \"A\""), "a@example.test"),
            "\"Ann \\\"A\\\"\" <a@example.test>"
        );
    }

    #[test]
    fn keeps_only_content_headers() {
        let e = b"Content-Type: text/plain;\r\n charset=utf-8\r\nSubject: secret\r\nContent-Transfer-Encoding: 8bit\r\n\r\nbody";
        assert_eq!(
            content_only(e),
            b"Content-Type: text/plain;\r\n charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nbody".to_vec()
        );
    }
}
