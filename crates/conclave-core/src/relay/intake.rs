//! Intake from the list mailbox over IMAP, and `run --once`: fetch each post,
//! record it (sealed) before anything else, claim it with `UID MOVE`, process
//! it, file it by outcome, then send the outbox.

use crate::error::{Error, Result};
use crate::mime::parse;
use crate::net::imap::{self, ImapError, ImapSettings};
use crate::net::tls::{self, Protocol};

use super::delivery::DeliveryReport;
use super::{List, Outcome};

/// What one pass over the mailbox did.
#[derive(Debug, Clone, Default)]
pub struct IntakeReport {
    /// The outcome of each post this instance claimed.
    pub outcomes: Vec<Outcome>,
    /// Posts another instance claimed first.
    pub taken_elsewhere: usize,
}

impl List {
    /// The IMAP settings from the configuration.
    pub fn imap_settings(&self) -> Result<ImapSettings> {
        let (endpoint, trust, username, password) = self.server_login("imap", Protocol::Imap)?;
        Ok(ImapSettings {
            endpoint,
            trust,
            username,
            password,
        })
    }

    /// One pass over the list mailbox. Every message in INBOX is a post no
    /// instance has claimed yet (claimed ones are moved out), so a change of
    /// UIDVALIDITY loses nothing; it is logged.
    pub fn poll_mailbox(&mut self) -> Result<IntakeReport> {
        self.keystore()?;
        let settings = self.imap_settings()?;
        let key = settings.endpoint.key();
        self.store.drop_unclaimed_posts()?;
        tls::block_on(async {
            let mut session = imap::login(&settings).await.map_err(imap_error)?;
            let folders = imap::ensure_folders(&mut session, &key)
                .await
                .map_err(imap_error)?;
            // Posts claimed before a crash: finish them now.
            let mut report = IntakeReport::default();
            session.select("INBOX").await.map_err(|e| {
                imap_error(ImapError::Protocol {
                    endpoint: key.clone(),
                    detail: e.to_string(),
                })
            })?;
            for (id, state, uid) in self.store.claimed_unprocessed()? {
                let Some(post) = self.store.post(id)? else {
                    continue;
                };
                let raw = self.original(&post)?;
                let mut uid = u32::try_from(uid).unwrap_or(0);
                if state == "claimed" {
                    uid = imap::move_claimed(&mut session, &key, uid, &folders.processed)
                        .await
                        .map_err(imap_error)?
                        .unwrap_or(0);
                    self.store.set_post_imap(id, "moved", i64::from(uid))?;
                }
                let outcome = self.process_post(id, &raw)?;
                if uid > 0 {
                    file(&mut session, &key, &folders, uid, &outcome)
                        .await
                        .map_err(imap_error)?;
                }
                report.outcomes.push(outcome);
            }
            let (validity, uids) = imap::inbox(&mut session, &key).await.map_err(imap_error)?;
            let known = self.store.config_get("state.imap_uidvalidity")?;
            if known.as_deref() != Some(validity.to_string().as_str()) {
                if known.is_some() {
                    self.store.audit(
                        self.clock.unix(),
                        None,
                        "imap",
                        &format!("UIDVALIDITY of INBOX changed to {validity}"),
                    )?;
                }
                self.store
                    .config_set("state.imap_uidvalidity", &validity.to_string())?;
            }
            for uid in uids {
                let Some(raw) = imap::fetch(&mut session, &key, uid)
                    .await
                    .map_err(imap_error)?
                else {
                    continue;
                };
                let sender = parse::incoming(&raw)
                    .ok()
                    .and_then(|i| i.from)
                    .unwrap_or_default();
                let (post_id, _) = self.record_post(&raw, &sender)?;
                self.store
                    .set_post_imap(post_id, "recorded", i64::from(uid))?;
                if !imap::try_claim(&mut session, &key, uid)
                    .await
                    .map_err(imap_error)?
                {
                    self.store.delete_post(post_id)?;
                    report.taken_elsewhere += 1;
                    continue;
                }
                self.store
                    .set_post_imap(post_id, "claimed", i64::from(uid))?;
                let dest = imap::move_claimed(&mut session, &key, uid, &folders.processed)
                    .await
                    .map_err(imap_error)?
                    .unwrap_or(0);
                self.store
                    .set_post_imap(post_id, "moved", i64::from(dest))?;
                let outcome = self.process_post(post_id, &raw)?;
                if dest > 0 {
                    file(&mut session, &key, &folders, dest, &outcome)
                        .await
                        .map_err(imap_error)?;
                }
                report.outcomes.push(outcome);
            }
            let _ = session.logout().await;
            Ok(report)
        })
        .map_err(|e| Error::io("start", "the network runtime", e))?
    }

    /// `run --once`: one pass over the mailbox, then the outbox.
    pub fn run_once(&mut self) -> Result<(IntakeReport, DeliveryReport)> {
        let intake = self.poll_mailbox()?;
        let delivery = self.send_outbox()?;
        Ok((intake, delivery))
    }
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
        Outcome::Distributed { .. } => return Ok(()),
        Outcome::Held { .. } => &folders.held,
        Outcome::Rejected { .. } | Outcome::Discarded { .. } => &folders.rejected,
    };
    imap::refile(session, key, &folders.processed, uid, to).await
}

pub(crate) fn imap_error(e: ImapError) -> Error {
    match e {
        ImapError::Tls(t) => Error::Tls(t),
        other => Error::Network(other.to_string()),
    }
}
