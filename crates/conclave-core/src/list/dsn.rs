//! Reading delivery reports: RFC 3464 reports (`multipart/report;
//! report-type=delivery-status`, one block of fields per recipient) and the
//! failure notices common providers write in prose instead (Yahoo's
//! "Failure Notice", GMX's and Exim's "Mail delivery failed", qmail's
//! "<address>:" lines). Pure: bytes in, what failed for whom out. Nothing
//! here is trusted: a report only counts once it is matched to a copy the
//! list really sent ([`super::bounces`]).

use crate::mime::parse::Incoming;

/// How bad a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Permanent (5.x.x, `Action: failed`, "permanent error").
    Hard,
    /// Temporary (4.x.x, `Action: delayed`), or a failure that does not say.
    Soft,
    /// Not a failure (delivered, relayed, expanded).
    None,
}

impl Severity {
    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Hard => "hard",
            Severity::Soft => "soft",
            Severity::None => "none",
        }
    }
}

/// What a report says of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The recipient (`Final-Recipient`, else `Original-Recipient`, or the
    /// address a notice names), lowercased.
    pub recipient: String,
    /// The status code given (`5.1.1`, or an SMTP reply code), if any.
    pub status: String,
    /// How bad.
    pub severity: Severity,
    /// One line of what the server said (at most 200 characters).
    pub text: String,
}

/// What a report says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per recipient named.
    pub failures: Vec<Failure>,
    /// The Message-IDs (without brackets) the report names for the message
    /// that failed: those of the returned headers, and its own
    /// `In-Reply-To`/`References`.
    pub message_ids: Vec<String>,
}

/// Senders that write delivery reports.
const DAEMONS: &[&str] = &[
    "mailer-daemon",
    "mail-daemon",
    "mailer_daemon",
    "postmaster",
];

/// Subjects of failure notices (lowercase).
const SUBJECTS: &[&str] = &[
    "undeliver",
    "delivery status notification",
    "failure notice",
    "delivery failure",
    "mail delivery failed",
    "delivery has failed",
    "returned mail",
    "returned to sender",
    "non-delivery",
    "could not be delivered",
    "delivery problem",
    "delivery delayed",
];

/// Whether a message looks like a delivery report: an RFC 3464 report, or
/// a mailer daemon's notice with a failure's subject. Read receipts and TLS
/// reports are other kinds of report.
pub fn looks_like_report(incoming: &Incoming) -> bool {
    let ct = incoming.content_type.as_deref().unwrap_or_default();
    let from = incoming.from.as_deref().unwrap_or_default();
    let local = from.split('@').next().unwrap_or_default();
    let daemon = DAEMONS.contains(&local);
    if ct.starts_with("multipart/report") {
        if ct.contains("delivery-status") {
            return true;
        }
        // A report that does not name its type (Tiscali's) counts when a
        // daemon sent it.
        if !ct.contains("report-type") && daemon {
            return true;
        }
    }
    let subject = incoming
        .subject
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    daemon && SUBJECTS.iter().any(|s| subject.contains(s))
}

/// Reads what a report says. Never fails: what cannot be read is left out.
pub fn read(raw: &[u8]) -> Report {
    let text = String::from_utf8_lossy(raw);
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let head = unfold(head);
    let mut report = Report::default();
    for (name, value) in &head {
        if name == "in-reply-to" || name == "references" {
            report.message_ids.extend(ids_in(value));
        }
    }
    let lines = unfold(body);
    for (name, value) in &lines {
        if name == "message-id" {
            report.message_ids.extend(ids_in(value));
        }
    }
    report.message_ids.dedup();
    report.failures = dsn_blocks(&lines);
    if report.failures.is_empty() {
        report.failures = notice(&head, body);
    }
    report
}

/// Header-like lines, unfolded: (lowercase name, value). Lines that are
/// not fields come as ("", line).
fn unfold(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((name, value)) = out.last_mut() {
                if !name.is_empty() {
                    value.push(' ');
                    value.push_str(line.trim());
                    continue;
                }
            }
        }
        match line.split_once(':') {
            Some((name, value))
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                out.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
            _ => out.push((String::new(), line.to_owned())),
        }
    }
    out
}

/// The `<id>`s in a header value, without brackets.
fn ids_in(value: &str) -> Vec<String> {
    value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>').map(|(id, _)| id.trim().to_owned()))
        .filter(|id| id.contains('@') && !id.contains(char::is_whitespace))
        .collect()
}

/// The address in a DSN recipient field (`rfc822; a@b`), lowercased.
fn dsn_address(value: &str) -> String {
    let addr = value.split_once(';').map_or(value, |(_, a)| a);
    clean_address(addr)
}

fn clean_address(a: &str) -> String {
    a.trim()
        .trim_start_matches('<')
        .trim_end_matches(['>', ':', ',', '.'])
        .trim_start_matches('<')
        .to_ascii_lowercase()
}

/// The per-recipient blocks of an RFC 3464 report.
fn dsn_blocks(lines: &[(String, String)]) -> Vec<Failure> {
    #[derive(Default)]
    struct Block {
        original: String,
        final_: String,
        action: String,
        status: String,
        diagnostic: String,
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut current: Option<Block> = None;
    for (name, value) in lines {
        match name.as_str() {
            "original-recipient" | "final-recipient" => {
                // A block holds one of each, in either order; a field seen
                // again, or one after the block's Action or Status, starts
                // the next recipient's.
                let starts_new = match &current {
                    None => true,
                    Some(b) => {
                        let seen = if name == "final-recipient" {
                            &b.final_
                        } else {
                            &b.original
                        };
                        !seen.is_empty() || !b.action.is_empty() || !b.status.is_empty()
                    }
                };
                if starts_new {
                    blocks.extend(current.take());
                    current = Some(Block::default());
                }
                if let Some(b) = current.as_mut() {
                    if name == "final-recipient" {
                        b.final_ = dsn_address(value);
                    } else {
                        b.original = dsn_address(value);
                    }
                }
            }
            "action" => {
                if let Some(b) = current.as_mut() {
                    b.action = value.to_ascii_lowercase();
                }
            }
            "status" => {
                if let Some(b) = current.as_mut() {
                    b.status = value.split_whitespace().next().unwrap_or_default().into();
                }
            }
            "diagnostic-code" => {
                if let Some(b) = current.as_mut() {
                    b.diagnostic = value.split_once(';').map_or(value.as_str(), |d| d.1).into();
                }
            }
            _ => {}
        }
    }
    blocks.extend(current);
    blocks
        .into_iter()
        .filter_map(|b| {
            let recipient = if b.final_.contains('@') {
                b.final_
            } else {
                b.original
            };
            if !recipient.contains('@') {
                return None;
            }
            let severity = if b.action.starts_with("delayed") {
                Severity::Soft
            } else if ["delivered", "relayed", "expanded"]
                .iter()
                .any(|a| b.action.starts_with(a))
                || b.status.starts_with('2')
            {
                Severity::None
            } else if b.status.starts_with('4') {
                Severity::Soft
            } else if b.status.starts_with('5') || b.action.starts_with("failed") {
                Severity::Hard
            } else {
                Severity::Soft
            };
            Some(Failure {
                recipient,
                status: b.status,
                severity,
                text: one_line(&b.diagnostic),
            })
        })
        .collect()
}

/// A notice in prose: the failed addresses are `X-Failed-Recipients:`, and
/// the `<address>:` / `address:` lines before the returned message; the
/// status is the first reply code or enhanced code in the text, and whether
/// it is permanent is read from it.
fn notice(head: &[(String, String)], body: &str) -> Vec<Failure> {
    // The notice itself ends where the returned message begins.
    let notice: Vec<&str> = body
        .lines()
        .take_while(|l| !l.trim_start().starts_with("---"))
        .collect();
    let mut recipients: Vec<String> = head
        .iter()
        .filter(|(n, _)| n == "x-failed-recipients")
        .flat_map(|(_, v)| v.split(',').map(clean_address).collect::<Vec<_>>())
        .filter(|a| a.contains('@'))
        .collect();
    for line in &notice {
        let t = line.trim();
        if t.ends_with(':') && !t.contains(char::is_whitespace) && t.contains('@') {
            let a = clean_address(t);
            if !recipients.contains(&a) {
                recipients.push(a);
            }
        }
    }
    let text = notice.join("\n");
    let lower = text.to_ascii_lowercase();
    let (status, line) = status_in(&notice);
    let severity = if lower.contains("permanent") || status.starts_with('5') {
        Severity::Hard
    } else {
        Severity::Soft
    };
    recipients
        .into_iter()
        .map(|recipient| Failure {
            recipient,
            status: status.clone(),
            severity,
            text: one_line(&line),
        })
        .collect()
}

/// The first status in the text: an enhanced code (`5.1.1`), else an SMTP
/// reply code (`550`, `554:`); with the line it is on.
pub(crate) fn status_in(lines: &[&str]) -> (String, String) {
    for line in lines {
        for word in line.split(|c: char| c.is_whitespace() || c == '-') {
            let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.');
            let parts: Vec<&str> = w.split('.').collect();
            if parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
                && ["2", "4", "5"].contains(parts.first().unwrap_or(&""))
            {
                return (w.to_owned(), line.trim().to_owned());
            }
        }
    }
    for line in lines {
        for word in line.split(|c: char| c.is_whitespace() || c == ':' || c == '-') {
            if word.len() == 3
                && word.chars().all(|c| c.is_ascii_digit())
                && (word.starts_with('4') || word.starts_with('5'))
            {
                return (word.to_owned(), line.trim().to_owned());
            }
        }
    }
    (String::new(), String::new())
}

/// Text made one short line.
fn one_line(s: &str) -> String {
    let line: String = crate::text::clean(s);
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/eml")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn is_report(name: &str) -> bool {
        let raw = fixture(name);
        looks_like_report(&crate::mime::parse::incoming(&raw).unwrap())
    }

    /// Every real report in the fixtures: who failed, how, and that it is
    /// known for a report at all.
    #[test]
    fn real_reports_name_the_recipient_and_the_severity() {
        for (file, recipient, status, severity) in [
            (
                "deltachat/gmail_ndn.eml",
                "assidhfaaspocwaeofi@gmail.com",
                "5.1.1",
                Severity::Hard,
            ),
            (
                "bounces/yahoo_ndn.eml",
                "haeclirth.sinoenrat@yahoo.com",
                "554",
                Severity::Hard,
            ),
            (
                "bounces/gmx_ndn.eml",
                "snaerituhaeirns@gmail.com",
                "5.1.1",
                Severity::Hard,
            ),
            (
                "bounces/posteo_ndn.eml",
                "hanerthaertidiuea@gmx.de",
                "5.0.0",
                Severity::Hard,
            ),
            (
                "bounces/tiscali_ndn.eml",
                "shenauithz@testrun.org",
                "5.1.1",
                Severity::Hard,
            ),
            (
                "bounces/testrun_ndn.eml",
                "hcksocnsofoejx@five.chat",
                "5.1.1",
                Severity::Hard,
            ),
            (
                "bounces/ndn_with_attachment.eml",
                "bob@example.org",
                "5.2.2",
                Severity::Hard,
            ),
            (
                "bounces/dsn_relayed.eml",
                "anon_2@gmx.at",
                "2.0.0",
                Severity::None,
            ),
        ] {
            assert!(is_report(file), "{file} is a report");
            let r = read(&fixture(file));
            let f = r
                .failures
                .first()
                .unwrap_or_else(|| panic!("{file}: no recipient found"));
            assert_eq!(f.recipient, recipient, "{file}");
            assert_eq!(f.status, status, "{file}");
            assert_eq!(f.severity, severity, "{file}");
        }
        let two = read(&fixture("bounces/ndn_with_attachment.eml"));
        assert_eq!(two.failures.len(), 2);
        assert_eq!(two.failures[1].recipient, "bob2@example.net");
    }

    #[test]
    fn reports_name_the_original_message() {
        let r = read(&fixture("bounces/posteo_ndn.eml"));
        assert!(r
            .message_ids
            .contains(&"04422840-f884-3e37-5778-8192fe22d8e1@posteo.de".to_string()));
        let r = read(&fixture("deltachat/gmail_ndn.eml"));
        assert!(r
            .message_ids
            .iter()
            .any(|id| id.ends_with("@mail.gmail.com")));
    }

    #[test]
    fn read_receipts_and_tls_reports_are_not_bounces() {
        assert!(!is_report(
            "bounces/ms_exchange_report_disposition_notification.eml"
        ));
        assert!(!is_report("bounces/tlsrpt.eml"));
        assert!(!is_report("deltachat/thunderbird_encrypted_signed.eml"));
    }

    #[test]
    fn delays_are_soft_and_prose_says_how_bad() {
        let delayed = b"From: MAILER-DAEMON@example.net\r\nSubject: Delayed Mail (still being retried)\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; a@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n--b--\r\n";
        let r = read(delayed);
        assert_eq!(r.failures[0].severity, Severity::Soft);
        let unclear = b"From: postmaster@example.net\r\nSubject: Undeliverable: hello\r\n\r\nYour message could not be delivered to:\r\n\r\nx@example.org:\r\nmailbox over quota, try again later\r\n";
        let r = read(unclear);
        assert_eq!(r.failures[0].recipient, "x@example.org");
        assert_eq!(r.failures[0].severity, Severity::Soft);
    }

    #[test]
    fn garbage_reads_as_nothing() {
        for raw in [
            &b""[..],
            b"\xff\xfe",
            b"Final-Recipient: rfc822;\n\nStatus: 5",
            b":\n:",
        ] {
            let r = read(raw);
            assert!(r.failures.iter().all(|f| f.recipient.contains('@')));
        }
    }
}
