//! What a message is, before anything is opened: a post to the list, or a
//! message to the list's request address (`LIST+request@`, where every
//! copy's List-Help and List-Unsubscribe point). The room where list
//! commands and bounces will be told apart from posts; the address comes
//! from `Delivered-To:` / `X-Original-To:` (what the receiving server saw),
//! else from `To:` / `Cc:`.

use crate::mime::parse::Incoming;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A post to the list.
    Post,
    /// A message to the list's request address.
    Request,
}

/// Classifies a parsed message for the list at `list` whose request address
/// is `request` (both lowercased).
pub fn classify(incoming: &Incoming, list: &str, request: &str) -> Kind {
    let to_request = |addrs: &[String]| addrs.iter().any(|a| a == request);
    if !incoming.delivered_to.is_empty() {
        return if to_request(&incoming.delivered_to) {
            Kind::Request
        } else {
            Kind::Post
        };
    }
    if to_request(&incoming.to) && !incoming.to.iter().any(|a| a == list) {
        Kind::Request
    } else {
        Kind::Post
    }
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
        let (l, r) = ("l@example.test", "l+request@example.test");
        assert_eq!(classify(&message(&[r], &[l]), l, r), Kind::Request);
        assert_eq!(classify(&message(&[l], &[r]), l, r), Kind::Post);
        assert_eq!(classify(&message(&[], &[r]), l, r), Kind::Request);
        assert_eq!(classify(&message(&[], &[r, l]), l, r), Kind::Post);
        assert_eq!(classify(&message(&[], &[l]), l, r), Kind::Post);
        assert_eq!(classify(&message(&[], &[]), l, r), Kind::Post);
    }
}
