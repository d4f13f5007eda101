//! The list key's address check at a keyserver, as far as the list goes:
//! `key publish` (in the relay) uploads the key and asks the server to mail
//! a verification link to the list address, remembering that it waits
//! (store, migration 0012). When a message from that server's domain with a
//! link `KEYSERVER/verify/…` arrives while a publish waits, the list notes
//! the link for the relay to open and keeps the message out of the list:
//! never distributed, recorded sealed and filed as discarded. The list
//! itself opens no link (it does no network I/O), and no link from any
//! other mail is ever noted.

use crate::error::Result;
use crate::events::Outcome;
use crate::mime::parse::Incoming;

use super::classify::keyserver_link;

/// The most verification links kept for one publish.
const MAX_LINKS: usize = 4;
/// How long a publish waits for its verification mail: a week.
const PUBLISH_WAITS: i64 = 7 * 86_400;
use super::List;

impl List {
    /// When `incoming` is the verification mail of a waiting publish, notes
    /// its link for the relay and files the message; `None` otherwise.
    pub(crate) fn keyserver_mail(
        &mut self,
        post_id: i64,
        raw: &[u8],
        incoming: &Incoming,
    ) -> Result<Option<Outcome>> {
        let mut waiting = self.store.key_publishes("waiting")?;
        waiting.extend(self.store.key_publishes("fetch")?);
        let now = self.clock.unix();
        for publish in waiting {
            // A publish left waiting for over a week is over: its link
            // would have expired, and the list stops looking.
            if now - publish.started_at > PUBLISH_WAITS {
                continue;
            }
            let Some(link) = keyserver_link(incoming, raw, &publish.keyserver) else {
                continue;
            };
            // A mail that only claims to come from the keyserver cannot
            // crowd out the real one: a few links are kept side by side,
            // and one the server refuses puts the publish back to waiting.
            let mut links: Vec<&str> = publish
                .verify_url
                .lines()
                .filter(|l| !l.is_empty())
                .collect();
            if !links.contains(&link.as_str()) && links.len() < MAX_LINKS {
                links.push(&link);
            }
            self.store.set_key_publish(
                publish.id,
                "fetch",
                &links.join("\n"),
                "the verification mail arrived",
                now,
            )?;
            self.store.audit(
                now,
                Some(post_id),
                "key",
                &format!(
                    "the verification mail of {} for {} arrived; the relay opens its link",
                    publish.keyserver, publish.address
                ),
            )?;
            let outcome = Outcome::Discarded {
                post: post_id,
                reason: format!(
                    "the address check of {} for the list key (never distributed; the relay completes it)",
                    publish.keyserver
                ),
            };
            return self.record_outcome(post_id, outcome, "").map(Some);
        }
        Ok(None)
    }
}
