//! What a message is, before anything is opened: a bounce (to a bounce
//! address `LIST+bounces-TAG@`, or a delivery report wherever it is sent;
//! checked first, so no policy ever sees one), a post to the list, a
//! message to the request address (`LIST+request@`: commands), to the key
//! address (`LIST+key@`: anyone may ask for the list key) or to the owner
//! (`LIST+owner@`: never distributed). The address comes from
//! `Delivered-To:` / `X-Original-To:` (what the receiving server saw), else
//! from `To:` / `Cc:`.

use crate::mime::parse::Incoming;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A post to the list.
    Post,
    /// A message to the list's request address.
    Request,
    /// A message to the list's key address.
    Key,
    /// A message for the owner.
    Owner,
    /// A delivery report, or anything sent to a bounce address.
    Bounce,
}

/// The list's addresses, lowercased.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// Where posts go.
    pub list: String,
    /// Where commands go.
    pub request: String,
    /// Where anyone asks for the list key.
    pub key: String,
    /// Where the owner is written to.
    pub owner: String,
}

impl Addresses {
    /// The kind of message sent to `address`, if it is one of the list's
    /// own addresses other than the list's.
    fn kind_of(&self, address: &str) -> Option<Kind> {
        if address == self.request {
            Some(Kind::Request)
        } else if address == self.key {
            Some(Kind::Key)
        } else if address == self.owner {
            Some(Kind::Owner)
        } else {
            None
        }
    }

    /// Whether `address` is one of the list's.
    pub fn is_ours(&self, address: &str) -> bool {
        address == self.list
            || self.kind_of(address).is_some()
            || self.bounce_tag(address).is_some()
    }

    /// The tag of a bounce address of the list (`LIST+bounces-TAG@DOMAIN`),
    /// whether or not its MAC is right.
    pub fn bounce_tag<'a>(&self, address: &'a str) -> Option<&'a str> {
        let (local, domain) = self.list.split_once('@')?;
        let (a_local, a_domain) = address.rsplit_once('@')?;
        if !a_domain.eq_ignore_ascii_case(domain) {
            return None;
        }
        a_local
            .strip_prefix(local)?
            .strip_prefix(super::bounces::VERP_MARK)
    }
}

/// Classifies a parsed message for a list with these addresses.
pub fn classify(incoming: &Incoming, addresses: &Addresses) -> Kind {
    let to_bounce_address = incoming
        .delivered_to
        .iter()
        .chain(&incoming.to)
        .any(|a| addresses.bounce_tag(a).is_some());
    if to_bounce_address || super::dsn::looks_like_report(incoming) {
        return Kind::Bounce;
    }
    if !incoming.delivered_to.is_empty() {
        return incoming
            .delivered_to
            .iter()
            .find_map(|a| addresses.kind_of(a))
            .unwrap_or(Kind::Post);
    }
    if incoming.to.contains(&addresses.list) {
        return Kind::Post;
    }
    incoming
        .to
        .iter()
        .find_map(|a| addresses.kind_of(a))
        .unwrap_or(Kind::Post)
}

/// The verification link in a keyserver's mail: `incoming` must come from
/// the keyserver's host (or a domain above it: `keys.openpgp.org` may write
/// from `openpgp.org`) and carry, in a text or HTML body, a link that starts
/// with `keyserver/verify/` (`keyserver` is the base URL, `https://HOST`).
/// Nothing else is ever taken for one.
pub fn keyserver_link(incoming: &Incoming, raw: &[u8], keyserver: &str) -> Option<String> {
    let host = keyserver
        .strip_prefix("https://")?
        .split(['/', ':'])
        .next()?
        .to_ascii_lowercase();
    let from = incoming.from.as_deref()?;
    let (_, domain) = from.rsplit_once('@')?;
    if !domain.contains('.') || !(host == domain || host.ends_with(&format!(".{domain}"))) {
        return None;
    }
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let prefix = format!("{}/verify/", keyserver.trim_end_matches('/'));
    let bodies = (0..4)
        .filter_map(|i| message.body_text(i))
        .chain((0..4).filter_map(|i| message.body_html(i)));
    for body in bodies {
        if let Some(at) = body.find(&prefix) {
            let link: String = body
                .get(at..)?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-._~/%?=&+:".contains(*c))
                .collect();
            let token = link.get(prefix.len()..).unwrap_or("");
            if !token.is_empty() && link.len() <= 2048 {
                return Some(link);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(delivered: &[&str], to: &[&str]) -> Incoming {
        Incoming {
            delivered_to: delivered.iter().map(|s| s.to_string()).collect(),
            to: to.iter().map(|s| s.to_string()).collect(),
            ..Incoming::default()
        }
    }

    #[test]
    fn the_delivery_address_decides_then_the_recipients() {
        let a = Addresses {
            list: "l@example.test".into(),
            request: "l+request@example.test".into(),
            key: "l+key@example.test".into(),
            owner: "l+owner@example.test".into(),
        };
        let (l, r, k, o) = (&*a.list, &*a.request, &*a.key, &*a.owner);
        assert_eq!(classify(&message(&[r], &[l]), &a), Kind::Request);
        assert_eq!(classify(&message(&[l], &[r]), &a), Kind::Post);
        assert_eq!(classify(&message(&[k], &[]), &a), Kind::Key);
        assert_eq!(classify(&message(&[o], &[l]), &a), Kind::Owner);
        assert_eq!(classify(&message(&[], &[r]), &a), Kind::Request);
        assert_eq!(classify(&message(&[], &[o]), &a), Kind::Owner);
        assert_eq!(classify(&message(&[], &[r, l]), &a), Kind::Post);
        assert_eq!(classify(&message(&[], &[l]), &a), Kind::Post);
        assert_eq!(classify(&message(&[], &[]), &a), Kind::Post);
        // A bounce address wins over everything, tag right or not.
        let b = "l+bounces-1-00@example.test";
        assert_eq!(classify(&message(&[b], &[l]), &a), Kind::Bounce);
        assert_eq!(classify(&message(&[], &[b]), &a), Kind::Bounce);
        assert_eq!(a.bounce_tag(b), Some("1-00"));
        assert_eq!(a.bounce_tag("l+bounces-1-00@other.test"), None);
        assert_eq!(a.bounce_tag("m+bounces-1-00@example.test"), None);
        // A report to the list or the request address is a bounce too.
        let report = Incoming {
            from: Some("mailer-daemon@mx.example.net".into()),
            content_type: Some("multipart/report; report-type=delivery-status; boundary=x".into()),
            ..message(&[r], &[r])
        };
        assert_eq!(classify(&report, &a), Kind::Bounce);
        let prose = Incoming {
            from: Some("postmaster@mx.example.net".into()),
            subject: Some("Undelivered Mail Returned to Sender".into()),
            ..message(&[l], &[l])
        };
        assert_eq!(classify(&prose, &a), Kind::Bounce);
        let chat = Incoming {
            from: Some("postmaster@mx.example.net".into()),
            subject: Some("Hello".into()),
            ..message(&[l], &[l])
        };
        assert_eq!(classify(&chat, &a), Kind::Post);
    }

    #[test]
    fn a_keyserver_link_is_taken_only_from_the_keyserver() {
        let ks = "https://keys.example.test";
        let mail = |from: &str, body: &str| {
            let raw = format!(
                "From: <{from}>\r\nTo: l@example.test\r\nSubject: v\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
            );
            let incoming = Incoming {
                from: Some(from.to_string()),
                ..Incoming::default()
            };
            keyserver_link(&incoming, raw.as_bytes(), ks)
        };
        let link = "https://keys.example.test/verify/abc-DEF_123";
        assert_eq!(
            mail("keyserver@keys.example.test", &format!("click {link} now")).as_deref(),
            Some(link)
        );
        // A domain above the keyserver's host writes for it.
        assert!(mail("noreply@example.test", link).is_some());
        // Anyone else, another server's link, or no token: nothing.
        assert!(mail("x@example.org", link).is_none());
        assert!(mail("x@test", link).is_none());
        assert!(mail("x@evilkeys.example.test.org", link).is_none());
        assert!(mail(
            "keyserver@keys.example.test",
            "https://other.test/verify/abc"
        )
        .is_none());
        assert!(mail(
            "keyserver@keys.example.test",
            "https://keys.example.test/verify/ x"
        )
        .is_none());
        assert!(mail(
            "keyserver@keys.example.test",
            "https://keys.example.test/upload/abc"
        )
        .is_none());
    }
}
