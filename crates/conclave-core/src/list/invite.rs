//! The invitation the owner sends or shows a newcomer: the list address,
//! the request address, the owner's address and the list key's
//! fingerprint, as text a person can follow; a QR code of the fingerprint
//! and address (`OPENPGP4FPR:`, as OpenKeychain and Delta Chat read it), so
//! the key can be checked out of band; and a vCard 4.0 carrying the list's
//! public key, which Delta Chat imports as a contact to write to.
//!
//! Nothing here needs the list key unlocked: it is all public.

use std::fmt::Write as _;

use base64::Engine as _;
use qrcode::{Color, EcLevel, QrCode};

use super::List;
use crate::crypto::certs;
use crate::error::{Error, Result};

/// Modules of light margin around the QR code (the standard asks for 4).
const QUIET_ZONE: usize = 4;

/// The longest line of a vCard, in octets, before it is folded (RFC 6350 §3.2).
const VCARD_LINE: usize = 75;

/// Everything a newcomer needs to join the list, in each of its forms.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// The list's display name.
    pub name: String,
    /// The list address: where posts go.
    pub address: String,
    /// Where list commands go (`subscribe`, `unsubscribe`, `help`).
    pub request_address: String,
    /// Where a person reaches the owner.
    pub owner_address: String,
    /// The list key's fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The same, in groups of four, to read aloud.
    pub fingerprint_grouped: String,
    /// The invitation as plain text a newcomer can follow.
    pub text: String,
    /// What the QR code says: `OPENPGP4FPR:FINGERPRINT#a=ADDRESS&n=NAME`.
    pub qr_content: String,
    /// The QR code as an SVG image.
    pub qr_svg: String,
    /// The QR code for a terminal: Unicode half blocks, two rows a line,
    /// drawn for light text on a dark background.
    pub qr_terminal: String,
    /// A vCard 4.0 with the list's name, address and public key.
    pub vcard: String,
}

impl List {
    /// The invitation to this list.
    pub fn invitation(&self) -> Result<Invitation> {
        let name = self.name()?;
        let address = self.address.clone();
        let request_address = self.request_address()?;
        let owner_address = self.owner_address()?;
        let public = self.cert.clone().strip_secret_key_material();
        let fingerprint = public.fingerprint().to_hex();
        let fingerprint_grouped = crate::hex::grouped(&fingerprint);
        let qr_content = qr_content(&fingerprint, &address, &name);
        let code = QrCode::with_error_correction_level(qr_content.as_bytes(), EcLevel::M)
            .map_err(|e| Error::InvalidInput(format!("cannot draw the QR code: {e}")))?;
        let key = certs::binary(&public)?;
        let rev = vcard_timestamp(self.clock.unix());
        Ok(Invitation {
            text: text(
                &name,
                &address,
                &request_address,
                &owner_address,
                &fingerprint_grouped,
            ),
            qr_svg: svg(&code),
            qr_terminal: terminal(&code),
            vcard: vcard(&name, &address, &request_address, &key, &rev),
            name,
            address,
            request_address,
            owner_address,
            fingerprint,
            fingerprint_grouped,
            qr_content,
        })
    }
}

/// The plain-text invitation.
fn text(name: &str, address: &str, request: &str, owner: &str, fingerprint: &str) -> String {
    format!(
        "You are invited to the mailing list {name} <{address}>.\n\
         \n\
         The list is end-to-end encrypted with OpenPGP: every post to it is\n\
         encrypted to the list key and signed with your own key, and every\n\
         copy you get is encrypted to your key and signed by the list key.\n\
         \n\
         The list key\n\
         \x20 address:     {address}\n\
         \x20 fingerprint: {fingerprint}\n\
         \n\
         Check the fingerprint before you trust the key: compare it with the\n\
         one the owner gives you in person or on the phone, or scan the QR\n\
         code of this invitation with OpenKeychain or Delta Chat. Do not\n\
         trust a fingerprint that reached you only by e-mail.\n\
         \n\
         To join\n\
         1. Import the list key into your mail program (the vCard of this\n\
         \x20  invitation carries it) and check its fingerprint as above.\n\
         2. Send a message with the subject \"subscribe\" to\n\
         \x20  {request}\n\
         \x20  signed with your key, with your public key attached.\n\
         3. You will get a confirmation. Answer it signed and encrypted to\n\
         \x20  the list key.\n\
         4. Once you are subscribed, write to the list at {address},\n\
         \x20  encrypted to the list key and signed with your key.\n\
         \n\
         Questions go to the owner of the list: {owner}\n"
    )
}

/// The QR code's content: a fingerprint URI with the list address and name
/// (Delta Chat's `OPENPGP4FPR:` form, without its Secure-Join tokens).
fn qr_content(fingerprint: &str, address: &str, name: &str) -> String {
    format!(
        "OPENPGP4FPR:{fingerprint}#a={}&n={}",
        percent_encode(address),
        percent_encode(name)
    )
}

/// Percent-encodes all but the URI's unreserved characters and `@`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Whether the module at (`x`, `y`) is dark; the quiet zone is light.
fn dark(code: &QrCode, colors: &[Color], x: isize, y: isize) -> bool {
    let w = code.width() as isize;
    if x < 0 || y < 0 || x >= w || y >= w {
        return false;
    }
    colors.get((y * w + x) as usize) == Some(&Color::Dark)
}

/// The QR code as an SVG: one path of unit squares, dark on white, with
/// its quiet zone, scaled by whoever shows it.
fn svg(code: &QrCode) -> String {
    let colors = code.to_colors();
    let w = code.width();
    let size = w + 2 * QUIET_ZONE;
    let mut path = String::new();
    for y in 0..w {
        for x in 0..w {
            if dark(code, &colors, x as isize, y as isize) {
                let _ = write!(path, "M{} {}h1v1h-1z", x + QUIET_ZONE, y + QUIET_ZONE);
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>\n"
    )
}

/// The QR code in half blocks, two module rows a line. A terminal draws
/// characters in its (usually light) text colour on its (usually dark)
/// background, so light modules, the quiet zone included, are the blocks
/// and dark ones are left blank.
fn terminal(code: &QrCode) -> String {
    let colors = code.to_colors();
    let q = QUIET_ZONE as isize;
    let w = code.width() as isize;
    let mut out = String::new();
    let mut y = -q;
    while y < w + q {
        for x in -q..w + q {
            let top = !dark(code, &colors, x, y);
            let bottom = y + 1 < w + q && !dark(code, &colors, x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}

/// A time as a vCard `REV` timestamp (UTC, `YYYYMMDDTHHMMSSZ`).
fn vcard_timestamp(unix: i64) -> String {
    let unix = u64::try_from(unix).unwrap_or(0);
    let secs = unix % 86_400;
    let (year, month, day) = crate::clock::civil_from_days(unix / 86_400);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Escapes a vCard text value (RFC 6350 §3.4).
fn vcard_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded at 75 octets (never inside a character) with
/// CRLF and a space, and ended with CRLF.
fn vcard_line(out: &mut String, line: &str) {
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > VCARD_LINE {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// The vCard 4.0: the list as a contact whose `KEY` is its public key (a
/// `data:` URI of the binary certificate, which Delta Chat imports).
fn vcard(name: &str, address: &str, request: &str, key: &[u8], rev: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    let mut out = String::new();
    for line in [
        "BEGIN:VCARD".to_owned(),
        "VERSION:4.0".to_owned(),
        format!("FN:{}", vcard_text(name)),
        format!("EMAIL:{address}"),
        format!("KEY:data:application/pgp-keys;base64,{key}"),
        format!(
            "NOTE:{}",
            vcard_text(&format!(
                "An end-to-end encrypted mailing list. To join, send \"subscribe\" to {request}."
            ))
        ),
        format!("REV:{rev}"),
        "END:VCARD".to_owned(),
    ] {
        vcard_line(&mut out, &line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_content_is_a_fingerprint_uri_with_the_address_and_name() {
        assert_eq!(
            qr_content("ABCD", "list+x@example.org", "Garden Club & co"),
            "OPENPGP4FPR:ABCD#a=list%2Bx@example.org&n=Garden%20Club%20%26%20co"
        );
    }

    #[test]
    fn vcard_lines_fold_at_75_octets_and_never_split_a_character() {
        let mut out = String::new();
        let line = format!("FN:{}", "é".repeat(60));
        vcard_line(&mut out, &line);
        for l in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{l:?}");
        }
        assert_eq!(out.replace("\r\n ", ""), format!("{line}\r\n"));
    }

    #[test]
    fn vcard_text_is_escaped() {
        assert_eq!(vcard_text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }

    #[test]
    fn rev_timestamps_are_utc() {
        assert_eq!(vcard_timestamp(0), "19700101T000000Z");
        assert_eq!(vcard_timestamp(951_782_400), "20000229T000000Z");
        assert_eq!(vcard_timestamp(1_767_225_599), "20251231T235959Z");
    }

    #[test]
    fn the_terminal_code_has_two_module_rows_a_line() {
        let code = QrCode::with_error_correction_level(b"x", EcLevel::M).unwrap();
        let t = terminal(&code);
        let side = code.width() + 2 * QUIET_ZONE;
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == side));
        // The quiet zone's first rows are light: full blocks.
        assert!(lines[0].chars().all(|c| c == '█'));
    }
}
