//! MIME helpers: building PGP/MIME posts (RFC 3156) and picking apart the
//! copies Conclave sends out.
//!
//! Everything here works on raw bytes; line endings are CRLF on output, and
//! the parsers accept CRLF or bare LF.

use base64::Engine as _;
use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::pgp::{find, random_hex};

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

/// Splits an entity into (header block, body).  The header block excludes
/// the empty separator line; the body starts right after it.  If there is
/// no empty line, everything is headers and the body is empty.
pub fn split_header_body(entity: &[u8]) -> (&[u8], &[u8]) {
    // An entity whose very first line is empty has no headers.
    if entity.starts_with(b"\r\n") {
        return (&entity[..0], &entity[2..]);
    }
    if entity.starts_with(b"\n") {
        return (&entity[..0], &entity[1..]);
    }
    let mut i = 0;
    while i < entity.len() {
        let Some(nl) = entity[i..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let next = i + nl + 1;
        // Is the line starting at `next` empty?
        if entity[next..].starts_with(b"\r\n") {
            return (&entity[..next], &entity[next + 2..]);
        }
        if entity[next..].starts_with(b"\n") {
            return (&entity[..next], &entity[next + 1..]);
        }
        i = next;
    }
    (entity, &entity[entity.len()..])
}

/// All header fields of the top-level header block, unfolded, as
/// (name, value) with the value trimmed.  Values are *not* RFC 2047
/// decoded.
pub fn headers(entity: &[u8]) -> Vec<(String, String)> {
    let (head, _) = split_header_body(entity);
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// The (unfolded, trimmed, not RFC 2047-decoded) value of the first header
/// field called `name` (case-insensitive) in the top-level header block of
/// `eml`.
pub fn header(eml: &[u8], name: &str) -> Option<String> {
    headers(eml)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Values of all header fields called `name` (case-insensitive).
pub fn header_all(eml: &[u8], name: &str) -> Vec<String> {
    headers(eml)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// The value of a header field decoded by mail-parser (RFC 2047 encoded
/// words decoded), e.g. for a non-ASCII `Subject`.  Only for unstructured
/// text headers.
pub fn header_decoded(eml: &[u8], name: &str) -> Option<String> {
    let msg = MessageParser::default().parse(eml)?;
    let v = msg.header(name)?;
    v.as_text().map(str::to_string)
}

/// Parsed `Content-Type`: lower-cased `type/subtype` and parameters (names
/// lower-cased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub mime_type: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// Value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `Content-Type` header value.
pub fn parse_content_type(value: &str) -> ContentType {
    let mut parts = split_params(value).into_iter();
    let mime_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            let v = v.trim();
            let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                v[1..v.len() - 1]
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\")
            } else {
                v.to_string()
            };
            Some((n.trim().to_ascii_lowercase(), v))
        })
        .collect();
    ContentType { mime_type, params }
}

/// Splits on `;` outside double quotes.
fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The parsed top-level `Content-Type` of an entity (RFC 2045 default
/// `text/plain` if absent).
pub fn content_type(entity: &[u8]) -> ContentType {
    match header(entity, "Content-Type") {
        Some(v) => parse_content_type(&v),
        None => ContentType {
            mime_type: "text/plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
        },
    }
}

// ---------------------------------------------------------------------------
// Multipart splitting
// ---------------------------------------------------------------------------

/// One body part of a multipart entity, as exact byte ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPart {
    /// The exact bytes of the part: from the first byte after the boundary
    /// line's line break up to, but excluding, the line break preceding the
    /// next boundary line (RFC 2046 §5.1.1; RFC 3156 §5 signed data).
    pub raw: Vec<u8>,
}

impl RawPart {
    /// The part's header block.
    pub fn headers(&self) -> &[u8] {
        split_header_body(&self.raw).0
    }
    /// The part's body (after the empty line), still transfer-encoded.
    pub fn body(&self) -> &[u8] {
        split_header_body(&self.raw).1
    }
    /// The part's body with `Content-Transfer-Encoding` base64 or
    /// quoted-printable undone.
    pub fn decoded_body(&self) -> Vec<u8> {
        let cte = header(&self.raw, "Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        decode_transfer(self.body(), &cte)
    }
    /// The part's parsed `Content-Type`.
    pub fn content_type(&self) -> ContentType {
        content_type(&self.raw)
    }
}

/// Undoes a Content-Transfer-Encoding (`base64`, `quoted-printable`;
/// anything else is returned unchanged).
pub fn decode_transfer(body: &[u8], cte: &str) -> Vec<u8> {
    match cte.trim().to_ascii_lowercase().as_str() {
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .unwrap_or_else(|_| body.to_vec())
        }
        "quoted-printable" => qp_decode(body),
        _ => body.to_vec(),
    }
}

/// Is `line` (without its line break) the delimiter `--boundary` or the
/// close delimiter `--boundary--`, allowing trailing whitespace?
fn boundary_kind(line: &[u8], boundary: &[u8]) -> Option<bool /* is_close */> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.iter().all(|&b| b == b' ' || b == b'\t') {
        Some(close)
    } else {
        None
    }
}

/// Splits the body of a multipart entity into its parts, exactly.  Returns
/// `None` if `entity` is not `multipart/*` with a boundary, or if no close
/// delimiter is found.
pub fn split_multipart(entity: &[u8]) -> Option<Vec<RawPart>> {
    let ct = content_type(entity);
    if !ct.mime_type.starts_with("multipart/") {
        return None;
    }
    let boundary = ct.param("boundary")?.as_bytes().to_vec();
    let (_, body) = split_header_body(entity);

    // Walk the body line by line, remembering where each line starts and
    // where its content ends (before CR LF / LF).
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut i = 0;
    // The line break preceding the current line: (start_of_break).
    let mut prev_break_start: Option<usize> = None;
    while i <= body.len() {
        let nl = body[i..].iter().position(|&b| b == b'\n');
        let (line_end, next) = match nl {
            Some(n) => {
                let lf = i + n;
                let content_end = if lf > i && body[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                (content_end, lf + 1)
            }
            None => (body.len(), body.len() + 1),
        };
        let line = &body[i..line_end];
        if let Some(close) = boundary_kind(line, &boundary) {
            if let Some(ps) = part_start {
                // The part ends before the line break that precedes this
                // delimiter line.
                let end = prev_break_start.unwrap_or(i).max(ps);
                parts.push(RawPart {
                    raw: body[ps..end].to_vec(),
                });
            }
            if close {
                return Some(parts);
            }
            part_start = Some(next.min(body.len()));
        }
        prev_break_start = Some(line_end);
        i = next;
    }
    None
}

/// For a `multipart/signed` entity (RFC 3156 §5), returns the exact signed
/// bytes of the first body part (from the first byte after the first
/// boundary line's CRLF up to but excluding the CRLF before the next
/// boundary line) and the body of the second part, i.e. the armored
/// signature (transfer encoding undone if the part declares one).
///
/// Returns `None` if `entity` is not `multipart/signed` or does not have
/// at least two parts.
pub fn split_multipart_signed(entity: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if content_type(entity).mime_type != "multipart/signed" {
        return None;
    }
    let parts = split_multipart(entity)?;
    if parts.len() < 2 {
        return None;
    }
    Some((parts[0].raw.clone(), parts[1].decoded_body()))
}

/// For a `multipart/encrypted` PGP/MIME entity (RFC 3156 §4), returns the
/// body of the `application/octet-stream` part (the armored message).
pub fn split_multipart_encrypted(entity: &[u8]) -> Option<Vec<u8>> {
    if content_type(entity).mime_type != "multipart/encrypted" {
        return None;
    }
    let parts = split_multipart(entity)?;
    parts
        .iter()
        .find(|p| p.content_type().mime_type == "application/octet-stream")
        .map(|p| p.decoded_body())
}

// ---------------------------------------------------------------------------
// Text extraction (mail-parser)
// ---------------------------------------------------------------------------

/// The decoded text of the first `text/plain` part found anywhere inside
/// `entity`, depth-first: through nested multiparts (including
/// `multipart/signed` and `multipart/mixed` with protected headers) and
/// nested `message/rfc822` parts.  Quoted-printable and base64 are decoded
/// and the charset converted to UTF-8 by mail-parser.  Line endings are
/// returned as they are in the part (normally CRLF).
pub fn first_text_plain(entity: &[u8]) -> Option<String> {
    let msg = MessageParser::default().parse(entity)?;
    text_in_message(&msg, 0)
}

fn text_in_message(msg: &mail_parser::Message<'_>, id: usize) -> Option<String> {
    let part = msg.parts.get(id)?;
    match &part.body {
        PartType::Multipart(children) => children
            .iter()
            .find_map(|&c| text_in_message(msg, c as usize)),
        PartType::Message(inner) => text_in_message(inner, 0),
        PartType::Text(text) => {
            let is_plain = match part.content_type() {
                None => true,
                Some(ct) => {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct
                            .subtype()
                            .map(|s| s.eq_ignore_ascii_case("plain"))
                            .unwrap_or(true)
                }
            };
            is_plain.then(|| text.to_string())
        }
        _ => None,
    }
}

/// All `text/plain` parts found inside `entity`, in depth-first order.
pub fn all_text_plain(entity: &[u8]) -> Vec<String> {
    let Some(msg) = MessageParser::default().parse(entity) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_texts(&msg, 0, &mut out);
    out
}

fn collect_texts(msg: &mail_parser::Message<'_>, id: usize, out: &mut Vec<String>) {
    let Some(part) = msg.parts.get(id) else {
        return;
    };
    match &part.body {
        PartType::Multipart(children) => {
            for &c in children {
                collect_texts(msg, c as usize, out);
            }
        }
        PartType::Message(inner) => collect_texts(inner, 0, out),
        PartType::Text(text) => {
            let plain = part
                .content_type()
                .map(|ct| {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct
                            .subtype()
                            .map(|s| s.eq_ignore_ascii_case("plain"))
                            .unwrap_or(true)
                })
                .unwrap_or(true);
            if plain {
                out.push(text.to_string());
            }
        }
        _ => {}
    }
}

/// Normalizes line endings to `\n` and trims trailing whitespace of the
/// whole text, for comparing bodies.
pub fn normalize_text(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_string()
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/// Converts any mix of LF / CRLF / CR line endings to CRLF.
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 20);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A fresh MIME boundary.
pub fn new_boundary() -> String {
    format!("=_ctk_{}", random_hex(12))
}

/// A fresh Message-ID (with angle brackets) in the domain of `address`.
pub fn new_message_id(address: &str) -> String {
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("testkit.invalid");
    format!("<{}@{}>", random_hex(16), domain.trim_end_matches('>'))
}

/// The current time as an RFC 5322 date (UTC), e.g.
/// `Tue, 24 Nov 2026 02:34:13 +0000`.
pub fn rfc2822_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc2822_date(secs)
}

/// Formats Unix time `secs` as an RFC 5322 date in UTC.
pub fn rfc2822_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WD[days.rem_euclid(7) as usize],
        d,
        MON[(m - 1) as usize],
        y,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 2047-encodes a header value if it is not plain ASCII.
pub fn encode_header_value(value: &str) -> String {
    if value.is_ascii() && !value.contains("=?") {
        value.to_string()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    }
}

/// True if `body` (already CRLF) needs quoted-printable to be sent as
/// 7bit-safe, signature-stable content: non-ASCII, control characters, long
/// lines, trailing whitespace or a line starting with `From `.
fn needs_qp(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.len() > 76
            || line.ends_with(b" ")
            || line.ends_with(b"\t")
            || line.starts_with(b"From ")
            || line
                .iter()
                .any(|&b| b >= 0x80 || b == b'\r' || (b < 0x20 && b != b'\t') || b == 0x7f)
    })
}

/// Quoted-printable encoding (RFC 2045 §6.7) of CRLF text: hard line breaks
/// stay CRLF, soft breaks keep lines ≤ 76 characters.
pub fn qp_encode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let text = to_crlf(body);
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // `split` yields a trailing empty piece when text ends with a newline.
    let ends_nl = text.ends_with(b"\n");
    if ends_nl {
        lines.pop();
    }
    for (idx, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut cur = 0usize; // length of current output line
        for (j, &b) in line.iter().enumerate() {
            let last = j + 1 == line.len();
            let inner_space = (b == b' ' || b == b'\t') && !last;
            let safe = (33..=126).contains(&b)
                && b != b'='
                && !(j == 0 && b == b'F' && line.starts_with(b"From "))
                && !(j == 0 && b == b'-');
            let enc: Vec<u8> = if inner_space || safe {
                vec![b]
            } else {
                format!("={b:02X}").into_bytes()
            };
            if cur + enc.len() > 75 {
                out.extend_from_slice(b"=\r\n");
                cur = 0;
            }
            out.extend_from_slice(&enc);
            cur += enc.len();
        }
        if idx + 1 < lines.len() || ends_nl {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Quoted-printable decoding.
pub fn qp_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    while i < body.len() {
        let b = body[i];
        if b == b'=' {
            // Soft line break?
            if body[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if body[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if i + 2 < body.len() {
                if let (Some(h), Some(l)) = (hex(body[i + 1]), hex(body[i + 2])) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// Builds the innermost `text/plain; charset=utf-8` entity for `body`
/// (CRLF line endings, ending in CRLF; quoted-printable if the text is not
/// 7bit-safe, so that signatures survive transport).
pub fn text_plain_entity(body: &str) -> Vec<u8> {
    let mut crlf = to_crlf(body.as_bytes());
    if !crlf.ends_with(b"\r\n") {
        crlf.extend_from_slice(b"\r\n");
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    if needs_qp(&crlf) {
        out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        out.extend_from_slice(&qp_encode(&crlf));
    } else {
        out.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
        out.extend_from_slice(&crlf);
    }
    out
}

/// A `multipart/mixed` entity of `first` and the armored public key
/// `key`, attached as Thunderbird's "Attach my public key" does
/// (`application/pgp-keys`, `OpenPGP_0xKEYID.asc`).
pub fn with_key_attached(first: &[u8], key: &[u8], keyid: &str) -> Vec<u8> {
    let b = new_boundary();
    let mut out = format!(
        "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n\
         This is a multi-part message in MIME format.\r\n--{b}\r\n"
    )
    .into_bytes();
    out.extend_from_slice(first);
    out.extend_from_slice(
        format!(
            "\r\n--{b}\r\n\
             Content-Type: application/pgp-keys; name=\"OpenPGP_0x{keyid}.asc\"\r\n\
             Content-Disposition: attachment; filename=\"OpenPGP_0x{keyid}.asc\"\r\n\
             Content-Description: OpenPGP public key\r\n\
             Content-Transfer-Encoding: 7bit\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut k = to_crlf(key);
    if !k.ends_with(b"\r\n") {
        k.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&k);
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    out
}

/// Builds an RFC 3156 §5 `multipart/signed` entity from the exact bytes of
/// the signed part (`signed_part`, which must not end in the CRLF that
/// belongs to the boundary; a trailing CRLF *inside* the part is kept) and
/// an armored detached signature.
pub fn multipart_signed_entity(
    signed_part: &[u8],
    signature_armored: &[u8],
    micalg: &str,
) -> Vec<u8> {
    let b = new_boundary();
    let mut out = Vec::new();
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; micalg={micalg};\r\n \
             protocol=\"application/pgp-signature\";\r\n boundary=\"{b}\"\r\n\r\n\
             This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n\
             --{b}\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(signed_part);
    out.extend_from_slice(
        format!(
            "\r\n--{b}\r\n\
             Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n\
             Content-Description: OpenPGP digital signature\r\n\
             Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut sig = to_crlf(signature_armored);
    if !sig.ends_with(b"\r\n") {
        sig.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&sig);
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    out
}

/// Builds a complete RFC 5322 + RFC 3156 §4 `multipart/encrypted` message
/// around an armored OpenPGP message.  `headers` are emitted first, in
/// order (values are RFC 2047-encoded if needed); `MIME-Version` and
/// `Content-Type` are added.
pub fn multipart_encrypted_message(headers: &[(String, String)], armored: &[u8]) -> Vec<u8> {
    let b = new_boundary();
    let mut out = Vec::new();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {}\r\n", encode_header_value(v)).as_bytes());
    }
    out.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\n\
             Content-Type: multipart/encrypted;\r\n \
             protocol=\"application/pgp-encrypted\";\r\n boundary=\"{b}\"\r\n\r\n\
             This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n\
             --{b}\r\n\
             Content-Type: application/pgp-encrypted\r\n\
             Content-Description: PGP/MIME version identification\r\n\r\n\
             Version: 1\r\n\r\n\
             --{b}\r\n\
             Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
             Content-Description: OpenPGP encrypted message\r\n\
             Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut arm = to_crlf(armored);
    if !arm.ends_with(b"\r\n") {
        arm.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&arm);
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    out
}

/// True if `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_formatting() {
        assert_eq!(rfc2822_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc2822_date(1_795_487_655),
            "Tue, 24 Nov 2026 02:34:15 +0000"
        );
    }

    #[test]
    fn qp_roundtrip() {
        let s = "Grüße aus Köln \r\nFrom here\r\n-dash\r\n".repeat(3) + &"x".repeat(200) + "\r\n";
        let enc = qp_encode(s.as_bytes());
        assert!(enc.split(|&b| b == b'\n').all(|l| l.len() <= 77));
        assert_eq!(qp_decode(&enc), s.as_bytes());
    }

    #[test]
    fn split_signed_exact() {
        let first = b"Content-Type: text/plain\r\n\r\nhello\r\n";
        let e = multipart_signed_entity(
            first,
            b"-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n",
            "pgp-sha256",
        );
        let (signed, sig) = split_multipart_signed(&e).unwrap();
        assert_eq!(signed, first);
        assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
        assert_eq!(first_text_plain(&e).unwrap(), "hello\r\n");
    }

    #[test]
    fn nested_copy_shape() {
        // What a Conclave copy decrypts to: the list's multipart/signed whose
        // first part carries protected headers and the author's own
        // multipart/signed.
        let author = multipart_signed_entity(
            &text_plain_entity("Grüße from the author\n"),
            b"-----BEGIN PGP SIGNATURE-----\nAAAA\n-----END PGP SIGNATURE-----\n",
            "pgp-sha512",
        );
        let mut first =
            b"Content-Type: multipart/mixed; boundary=\"inner\"; protected-headers=\"v1\"\r\n\
From: a@example.test\r\nSubject: Hi\r\n\r\n--inner\r\n"
                .to_vec();
        first.extend_from_slice(&author);
        first.extend_from_slice(b"\r\n--inner--\r\n");
        let copy = multipart_signed_entity(
            &first,
            b"-----BEGIN PGP SIGNATURE-----\nBBBB\n-----END PGP SIGNATURE-----\n",
            "pgp-sha256",
        );
        let (signed, sig) = split_multipart_signed(&copy).unwrap();
        assert_eq!(signed, first);
        assert!(contains(&sig, b"BBBB"));
        assert_eq!(header(&signed, "Subject").as_deref(), Some("Hi"));
        assert_eq!(
            normalize_text(&first_text_plain(&copy).unwrap()),
            "Grüße from the author"
        );
        // The author's own signed part, nested.
        let inner_parts = split_multipart(&signed).unwrap();
        assert_eq!(inner_parts.len(), 1);
        let (a_signed, a_sig) = split_multipart_signed(&inner_parts[0].raw).unwrap();
        assert!(a_signed.starts_with(b"Content-Type: text/plain"));
        assert!(contains(&a_sig, b"AAAA"));
        assert_eq!(split_multipart_signed(&a_signed), None);
    }

    #[test]
    fn split_signed_lf_only() {
        let e = b"Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=b1\n\n--b1\nContent-Type: text/plain\n\nhi\n\n--b1\nContent-Type: application/pgp-signature\n\nSIG\n--b1--\n";
        let (signed, sig) = split_multipart_signed(e).unwrap();
        assert_eq!(signed, b"Content-Type: text/plain\n\nhi\n");
        assert_eq!(sig, b"SIG");
    }

    #[test]
    fn headers_unfold() {
        let e = b"Subject: a\r\n b\r\nX-Y: z\r\n\r\nbody";
        assert_eq!(header(e, "subject").as_deref(), Some("a b"));
        assert_eq!(header(e, "x-y").as_deref(), Some("z"));
        assert_eq!(header(e, "body"), None);
    }
}
