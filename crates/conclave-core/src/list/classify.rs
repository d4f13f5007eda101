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
}
