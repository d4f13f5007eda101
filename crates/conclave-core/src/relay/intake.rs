//! Intake from the list mailbox over IMAP: ask each post's size, fetch it
//! (only its header when it is over the size limit), record it (sealed)
//! before anything else, claim it, move it to `Conclave/Processed`, have the
//! list process it, and file it by outcome. The list is locked for
//! each step that touches it, never across a network round trip, so the
//! owner's commands go through while the mailbox answers.

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::events::{timing, IntakeReport, Outcome};
use crate::list::List;
use crate::mime::parse;
use crate::net::imap::{self, ImapError};
use crate::net::tls;

use super::{ask_pin_ahead, with};
use crate::list::replay::KEY_SUBJECT;

/// One pass over the list mailbox. Every message in INBOX is a post no
/// instance has claimed yet (claimed ones are moved out), so a change of
/// UIDVALIDITY loses nothing; it is logged, and a post this instance claimed
/// under the old UIDVALIDITY is found again by its content, never by its
/// stale UID. The retention option is applied first.
pub fn poll_mailbox(list: &Mutex<List>) -> Result<IntakeReport> {
    poll_mailbox_with(list, &|| {})
}

/// [`poll_mailbox`], calling `mail_ahead` as soon as the pass knows it has
/// mail to process (a post claimed before a crash, or a message in INBOX),
/// before it fetches it: a delivery pass can then open its connections
/// beside the intake ([`super::delivery::send_outbox_ahead`]).
pub fn poll_mailbox_with(list: &Mutex<List>, mail_ahead: &dyn Fn()) -> Result<IntakeReport> {
    let settings = with(list, |l| {
        l.key_on_its_way()?;
        l.store().drop_unclaimed_posts()?;
        l.apply_retention()?;
        l.imap_settings()
    })?;
    let key = settings.endpoint.key();
    let deadline = settings.deadline;
    // Every exchange with the server has a deadline: a server that goes
    // silent ends the pass with an error, to be tried again with backoff.
    macro_rules! within {
        ($op:expr) => {
            tls::within(deadline, imap::silent(&key), $op)
        };
    }
    // The card's PIN, if the list key is on a card, is asked once per pass
    // and before the list is locked: a PIN dialog never holds the list.
    let pin_asked = std::cell::Cell::new(false);
    let pin_ahead = || {
        if !pin_asked.replace(true) {
            ask_pin_ahead(list);
        }
    };
    let process = |post_id: i64, body: Body<'_>| -> Result<Outcome> {
        match body {
            // Judged by its size alone: nothing to decrypt.
            Body::Header => with(list, |l| l.process_oversized(post_id)),
            Body::Whole(raw, parsed) => {
                pin_ahead();
                with(list, |l| match parsed {
                    Some(parsed) => l.process_parsed(post_id, raw, *parsed),
                    None => l.process_post(post_id, raw),
                })
            }
        }
    };
    tls::block_on(async {
        let mut session = imap::login(&settings).await.map_err(imap_error)?;
        timing("imap logged in");
        with(list, |l| {
            l.note_vouched(&settings.endpoint, &settings.trust)
        })?;
        let folders = within!(imap::ensure_folders(&mut session, &key))
            .await
            .map_err(imap_error)?;
        // The replay marks the list's other instances left, before any post
        // of this pass is judged (the key they are made with is read when
        // the first post needs it: a card's PIN is not asked for nothing).
        let replay = folders.replay.as_str();
        let (validity, after) = with(list, |l| l.replay_position())?;
        let (validity, last, bodies) = within!(imap::read_after(
            &mut session,
            &key,
            replay,
            validity,
            after
        ))
        .await
        .map_err(imap_error)?;
        timing("imap folders and replay marks read");
        with(list, |l| l.take_replay_marks(validity, last, &bodies))?;
        // A claimed post: moved to Processed (unless it is there already),
        // processed, and filed by its outcome.
        let settle = async |session: &mut imap::Session,
                            id: i64,
                            mut uid: u32,
                            moved: bool,
                            body: Body<'_>|
               -> Result<Outcome> {
            if !moved {
                uid = within!(imap::move_claimed(session, &key, uid, &folders.processed))
                    .await
                    .map_err(imap_error)?
                    .unwrap_or(0);
                with(list, |l| {
                    l.store().set_post_imap(id, "moved", i64::from(uid))
                })?;
            }
            if !with(list, |l| Ok(l.has_replay_key()))? {
                // The oldest key the list signed is the list's; the first
                // instance to find none leaves one.
                pin_ahead();
                for first in [true, false] {
                    let bodies = within!(imap::with_subject(
                        session,
                        &key,
                        &folders.replay,
                        KEY_SUBJECT
                    ))
                    .await
                    .map_err(imap_error)?;
                    if take_replay_key(list, &bodies, !first)? || !first {
                        break;
                    }
                    let message = with(list, |l| l.new_replay_key_message())?;
                    within!(imap::append(session, &key, &folders.replay, &message))
                        .await
                        .map_err(imap_error)?;
                }
                within!(imap::select_inbox(session, &key))
                    .await
                    .map_err(imap_error)?;
            }
            timing("imap post moved");
            let outcome = process(id, body)?;
            timing("post processed");
            if uid > 0 {
                within!(file(session, &key, &folders, uid, &outcome))
                    .await
                    .map_err(imap_error)?;
            }
            // What this post added to the replay cache, for the others.
            if let Some((message, digests)) = with(list, |l| l.replay_marks_to_share())? {
                within!(imap::append(session, &key, &folders.replay, &message))
                    .await
                    .map_err(imap_error)?;
                with(list, |l| l.replay_marks_shared(&digests))?;
            }
            Ok(outcome)
        };
        // Posts claimed before a crash: finish them now.
        let mut report = IntakeReport::default();
        let current = within!(async {
            session
                .select("INBOX")
                .await
                .map(|mb| mb.uid_validity.unwrap_or(0))
                .map_err(|e| ImapError::Protocol {
                    endpoint: key.clone(),
                    detail: e.to_string(),
                })
        })
        .await
        .map_err(imap_error)?;
        let known = with(list, |l| l.known_uidvalidity())?;
        let unfinished = with(list, |l| l.store().claimed_unprocessed())?;
        if !unfinished.is_empty() {
            mail_ahead();
        }
        for (id, state, uid, validity) in unfinished {
            let Some(post) = with(list, |l| l.store().post(id))? else {
                continue;
            };
            if post.sealed {
                pin_ahead();
            }
            let raw = with(list, |l| l.original(&post))?;
            let mut uid = u32::try_from(uid).unwrap_or(0);
            let mut moved = state != "claimed";
            // Posts claimed before the store kept their UIDVALIDITY were
            // claimed under the one it last saw.
            let validity = u32::try_from(validity)
                .ok()
                .filter(|v| *v != 0)
                .or(known)
                .unwrap_or(current);
            if !moved && validity != current {
                // Its UID belongs to another UIDVALIDITY and may now name
                // another message: find the post again by its content.
                let size = u64::try_from(post.size).unwrap_or(0);
                let found = within!(imap::find_by_content(
                    &mut session,
                    &key,
                    size,
                    &raw,
                    post.partial
                ))
                .await
                .map_err(imap_error)?;
                uid = found.unwrap_or(0);
                with(list, |l| l.relocated(id, found, validity, current))?;
            }
            if !moved && uid == 0 {
                // No longer in INBOX: processed without filing.
                moved = true;
            }
            let body = if post.partial {
                Body::Header
            } else {
                Body::Whole(&raw, None)
            };
            let outcome = settle(&mut session, id, uid, moved, body).await?;
            report.outcomes.push(outcome);
        }
        let (inbox, uids) = within!(imap::inbox(&mut session, &key))
            .await
            .map_err(imap_error)?;
        report.inbox = Some(inbox);
        timing("imap inbox selected and searched");
        if !uids.is_empty() {
            mail_ahead();
        }
        let validity = inbox.uid_validity;
        with(list, |l| l.note_uidvalidity(validity))?;
        // Every size first: a post over the limit is never downloaded whole.
        let sizes: std::collections::BTreeMap<u32, u64> =
            within!(imap::sizes(&mut session, &key, &uids))
                .await
                .map_err(imap_error)?
                .into_iter()
                .collect();
        for uid in uids {
            let oversized = match sizes.get(&uid) {
                Some(size) => with(list, |l| l.too_large_to_fetch(*size))?.then_some(*size),
                None => None,
            };
            let (post_id, raw, parsed) = if let Some(size) = oversized {
                let Some(header) = within!(imap::fetch_header(&mut session, &key, uid))
                    .await
                    .map_err(imap_error)?
                else {
                    continue;
                };
                let post_id = with(list, |l| {
                    // Nothing is claimed before the key is known to open.
                    l.keystore_ready()?;
                    let post_id = l.record_partial(&header, size)?;
                    l.store()
                        .set_post_imap(post_id, "recorded", i64::from(uid))?;
                    l.store().set_post_validity(post_id, validity)?;
                    Ok(post_id)
                })?;
                (post_id, header, None)
            } else {
                let Some(raw) = within!(imap::fetch(&mut session, &key, uid))
                    .await
                    .map_err(imap_error)?
                else {
                    continue;
                };
                timing("imap post fetched");
                // Parsed once: for the sender recorded now, and for processing.
                let parsed = parse::incoming(&raw);
                let sender = crate::list::sender_of(&parsed);
                let post_id = with(list, |l| {
                    // Nothing is claimed before the key is known to open
                    // (it unlocks while the pass logs in).
                    l.keystore_ready()?;
                    let (post_id, _) = l.record_post(&raw, &sender)?;
                    l.store()
                        .set_post_imap(post_id, "recorded", i64::from(uid))?;
                    l.store().set_post_validity(post_id, validity)?;
                    Ok(post_id)
                })?;
                (post_id, raw, Some(parsed))
            };
            if !within!(imap::try_claim(&mut session, &key, uid))
                .await
                .map_err(imap_error)?
            {
                with(list, |l| l.store().delete_post(post_id))?;
                report.taken_elsewhere += 1;
                continue;
            }
            with(list, |l| {
                l.store().set_post_imap(post_id, "claimed", i64::from(uid))
            })?;
            timing("imap post recorded and claimed");
            let body = match parsed {
                Some(parsed) => Body::Whole(&raw, Some(Box::new(parsed))),
                None => Body::Header,
            };
            let outcome = settle(&mut session, post_id, uid, false, body).await?;
            report.outcomes.push(outcome);
        }
        let _ = tokio::time::timeout(deadline, session.logout()).await;
        timing("imap logged out");
        Ok(report)
    })
    .map_err(|e| Error::io("start", "the network runtime", e))?
}

/// Takes the first key in the replay folder that the list key sealed and
/// signed, and says whether there was one. Anything else there (the mail
/// host may leave what it likes) is passed over. With `last`, finding none
/// leaves the replay cache to this instance alone, and says so; a card or
/// PIN failure stops the pass like any other.
fn take_replay_key(list: &Mutex<List>, bodies: &[Vec<u8>], last: bool) -> Result<bool> {
    let mut refused = None;
    for body in bodies {
        match with(list, |l| l.take_replay_key(body)) {
            Ok(()) => return Ok(true),
            Err(e) if matches!(e, Error::Card(..) | Error::Pin(_)) => return Err(e),
            Err(e) => refused = Some(e),
        }
    }
    if last {
        let why = refused.map_or_else(|| "there is none".to_string(), |e| e.to_string());
        with(list, |l| l.replay_key_refused(&why))?;
    }
    Ok(false)
}

/// What intake has of a post: the whole message (parsed already, or not),
/// or its header alone (a post too large to download).
enum Body<'a> {
    Whole(&'a [u8], Option<Box<crate::list::Parsed>>),
    Header,
}

/// Files a processed post: distributed posts stay in Processed.
async fn file(
    session: &mut imap::Session,
    key: &str,
    folders: &imap::Folders,
    uid: u32,
    outcome: &Outcome,
) -> std::result::Result<(), ImapError> {
    let to = match outcome {
        Outcome::Distributed { .. } | Outcome::Answered { .. } => return Ok(()),
        Outcome::Held { .. } => &folders.held,
        Outcome::Rejected { .. } | Outcome::Discarded { .. } => &folders.rejected,
        Outcome::Bounce { .. } => &folders.bounces,
    };
    imap::refile(session, key, &folders.processed, uid, to).await
}

/// An IMAP failure as the engine's error: TLS failures keep their kind (the
/// owner may have a certificate to judge).
pub(crate) fn imap_error(e: ImapError) -> Error {
    match e {
        ImapError::Tls(t) => Error::Tls(t),
        other => Error::network(other),
    }
}
