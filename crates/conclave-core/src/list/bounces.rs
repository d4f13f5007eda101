//! Bounces: every outbox row goes out with a VERP envelope sender
//! (`LIST+bounces-ID-MAC@DOMAIN`, the MAC keyed with the list's own secret),
//! so a report sent back to it names the copy, and a forged one is known.
//! A report that reaches the list address itself (a provider rewrote the
//! envelope sender) counts only when its recipient and Message-ID name a
//! copy the list sent. A bounce is never opened, distributed or answered;
//! it is recorded sealed like every message, and filed in
//! `Conclave/Bounces`. Failures of copies, and refusals at submission, feed
//! one score per subscriber (Mailman's: hard 1, soft 0.5, one a day,
//! forgotten after `bounce_stale_days`); at `bounce_threshold` the owner is
//! alerted, and with `bounce_action disable` that subscriber's copies stop
//! until the owner enables them again.

use crate::error::{Error, Result};
use crate::events::{Event, Outcome};
use crate::mime::parse::Incoming;
use crate::store::{NewBounce, SentCopy, Store};

use super::dsn::{self, Failure, Severity};
use super::List;

/// What follows the list's local part in a bounce address.
pub const VERP_MARK: &str = "+bounces-";

/// Hex digits of the MAC in a tag (64 bits).
const MAC_LEN: usize = 16;

/// The MAC of outbox row `id` under `secret`, lowercase hex.
fn mac(secret: &[u8], id: i64) -> String {
    let full = crate::hex::hmac_sha256_hex(secret, format!("conclave-verp:{id}").as_bytes());
    full.chars()
        .take(MAC_LEN)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The tag of outbox row `id`: `ID-MAC`.
pub fn tag(secret: &[u8], id: i64) -> String {
    format!("{id}-{}", mac(secret, id))
}

/// The outbox row a tag names, when its MAC is right.
pub fn verify_tag(secret: &[u8], tag: &str) -> Option<i64> {
    let (id, given) = tag.split_once('-')?;
    let id: i64 = id.parse().ok()?;
    let want = mac(secret, id);
    let given = given.to_ascii_lowercase();
    // Compared in constant time: a forger learns nothing from the timing.
    let same = want.len() == given.len()
        && want
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then_some(id)
}

/// The envelope sender of outbox row `id` of the list at `list_address`.
pub fn verp_sender(list_address: &str, secret: &[u8], id: i64) -> String {
    match list_address.split_once('@') {
        Some((local, domain)) => format!("{local}{VERP_MARK}{}@{domain}", tag(secret, id)),
        None => list_address.to_owned(),
    }
}

/// A setting read straight from a store (the relay's own connection has no
/// list), or its default.
fn setting(store: &Store, key: &str) -> Result<String> {
    Ok(store
        .config_get(key)?
        .unwrap_or_else(|| super::settings::default_of(key).to_owned()))
}

/// How a failure was heard of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A report to a bounce address.
    Verp,
    /// A report to the list address, matched by recipient and Message-ID.
    Report,
    /// Refused at submission.
    Smtp,
}

impl How {
    fn as_str(self) -> &'static str {
        match self {
            How::Verp => "verp",
            How::Report => "report",
            How::Smtp => "smtp",
        }
    }
}

const DAY: i64 = 86_400;

/// Records a failure of `copy` and scores it against its recipient when it
/// is a copy of a post to a subscriber. Returns the alert for the owner
/// when the score reaches the threshold (also in the log).
pub fn count_failure(
    store: &Store,
    now: i64,
    copy: &SentCopy,
    how: How,
    failure: &Failure,
    post_id: Option<i64>,
) -> Result<Option<String>> {
    let mut entry = NewBounce {
        at: now,
        post_id,
        outbox_id: Some(copy.id),
        recipient: copy.recipient.clone(),
        how: how.as_str(),
        severity: failure.severity.as_str(),
        status: failure.status.clone(),
        detail: failure.text.clone(),
        verdict: "counted",
    };
    let health = store.delivery_health(&copy.recipient)?;
    let mut alert = None;
    let what = if failure.severity == Severity::None {
        entry.verdict = "no-failure";
        "a report without a failure".to_owned()
    } else if copy.kind != "copy" {
        // A reply or notice that bounced says nothing of the subscriber's
        // copies: logged, never scored.
        entry.verdict = "not-a-copy";
        "an automatic reply bounced; not counted".to_owned()
    } else if let Some(health) = health {
        store.note_delivery_failure(&copy.recipient, now, &failure.status, &failure.text)?;
        let stale: i64 = setting(store, "bounce_stale_days")?.parse().unwrap_or(7);
        let threshold: f64 = setting(store, "bounce_threshold")?.parse().unwrap_or(5.0);
        let mut score = health.score;
        if health.counted_at > 0 && now - health.counted_at > stale.saturating_mul(DAY) {
            score = 0.0;
        }
        if score > 0.0 && health.counted_at.div_euclid(DAY) == now.div_euclid(DAY) {
            entry.verdict = "same-day";
            "a bounce was counted today already".to_owned()
        } else {
            score += if failure.severity == Severity::Hard {
                1.0
            } else {
                0.5
            };
            store.set_bounce_score(&copy.recipient, score, now)?;
            if score >= threshold && !health.disabled {
                let disable = setting(store, "bounce_action")? == "disable";
                let line = if disable {
                    store.set_delivery_disabled(&copy.recipient, true)?;
                    format!(
                        "{}: copies bounced (score {score} of {threshold}); delivery to them is stopped until the owner enables it again (conclave subscriber enable {})",
                        copy.recipient, copy.recipient
                    )
                } else {
                    format!(
                        "{}: copies bounced (score {score} of {threshold}); nothing was changed (bounce_action is notify)",
                        copy.recipient
                    )
                };
                store.audit(now, post_id, "bounce-alert", &line)?;
                alert = Some(line);
            }
            format!("score {score}")
        }
    } else {
        entry.verdict = "not-subscribed";
        "not a subscriber (any more)".to_owned()
    };
    store.log_bounce(&entry)?;
    let status = if failure.status.is_empty() {
        String::new()
    } else {
        format!(" {}", failure.status)
    };
    store.audit(
        now,
        post_id,
        "bounce",
        &format!(
            "{} failure{status} for {} ({}, copy #{}): {what}",
            failure.severity.as_str(),
            copy.recipient,
            how.as_str(),
            copy.id
        ),
    )?;
    Ok(alert)
}

/// Records a refusal at submission (5xx at RCPT or DATA) of outbox row
/// `id`, with what the server said. Returns the alert for the owner, if any.
pub fn count_refusal(store: &Store, now: i64, id: i64, said: &str) -> Result<Option<String>> {
    let Some(copy) = store.outbox_row(id)? else {
        return Ok(None);
    };
    let (status, _) = dsn::status_in(&[said]);
    let failure = Failure {
        recipient: copy.recipient.clone(),
        status,
        severity: Severity::Hard,
        text: crate::text::clean(said).chars().take(200).collect(),
    };
    count_failure(store, now, &copy, How::Smtp, &failure, None)
}

impl List {
    /// A bounce: matched to the copy it reports (by its VERP tag, else by
    /// the report's recipient and Message-ID), scored, logged, never opened
    /// nor answered.
    pub(crate) fn process_bounce(
        &mut self,
        post_id: i64,
        raw: &[u8],
        incoming: &Incoming,
    ) -> Result<Outcome> {
        self.store.set_post_kind(post_id, "bounce")?;
        // Only a report is read for failures: an out-of-office reply to a
        // bounce address (it answers the envelope sender) is no failure.
        let is_report = dsn::looks_like_report(incoming);
        let report = if is_report {
            std::panic::catch_unwind(|| dsn::read(raw)).unwrap_or_default()
        } else {
            dsn::Report::default()
        };
        let addresses = self.addresses()?;
        let tag = incoming
            .delivered_to
            .iter()
            .chain(&incoming.to)
            .find_map(|a| addresses.bounce_tag(a));
        let now = self.unix();
        let mut alerts = Vec::new();
        let ignored = |how: How, recipient: &str, verdict: &'static str| NewBounce {
            at: now,
            post_id: Some(post_id),
            recipient: recipient.to_owned(),
            how: how.as_str(),
            severity: "none",
            verdict,
            ..NewBounce::default()
        };
        let reason = if let Some(tag) = tag {
            let secret = self.store.bounce_secret()?;
            let tagged = verify_tag(&secret, tag);
            let copy = match tagged {
                Some(id) => self.store.outbox_row(id)?,
                None => None,
            };
            match copy {
                // A genuine tag whose copy was pruned (sent longer ago
                // than store.sent_retention_days).
                None if tagged.is_some() => {
                    let named = report.failures.first().map(|f| f.recipient.as_str());
                    self.store.log_bounce(&ignored(
                        How::Verp,
                        named.unwrap_or_default(),
                        "unmatched",
                    ))?;
                    "a bounce about a copy the outbox no longer keeps (store.sent_retention_days); ignored"
                        .to_owned()
                }
                None => {
                    let named = report.failures.first().map(|f| f.recipient.as_str());
                    self.store.log_bounce(&ignored(
                        How::Verp,
                        named.unwrap_or_default(),
                        "forged",
                    ))?;
                    "a bounce to a bounce address the list never gave out (forged); ignored"
                        .to_owned()
                }
                Some(copy) => {
                    // The copy is known by its tag: the report says how it
                    // failed, whatever address it names (a forward, say).
                    // A report that names nobody is a soft failure; what is
                    // not a report at all (an auto-reply) is none.
                    let failure = report
                        .failures
                        .iter()
                        .find(|f| f.recipient == copy.recipient)
                        .or(report.failures.first())
                        .cloned()
                        .unwrap_or(Failure {
                            recipient: copy.recipient.clone(),
                            status: String::new(),
                            severity: if is_report {
                                Severity::Soft
                            } else {
                                Severity::None
                            },
                            text: if is_report {
                                "no failed recipient could be read".into()
                            } else {
                                "not a delivery report (an automatic reply?)".into()
                            },
                        });
                    alerts.extend(count_failure(
                        &self.store,
                        now,
                        &copy,
                        How::Verp,
                        &failure,
                        Some(post_id),
                    )?);
                    format!(
                        "a bounce of the copy to {} ({})",
                        copy.recipient,
                        failure.severity.as_str()
                    )
                }
            }
        } else {
            let mut matched = Vec::new();
            for failure in &report.failures {
                match self
                    .store
                    .sent_copy(&failure.recipient, &report.message_ids)?
                {
                    Some(copy) => {
                        alerts.extend(count_failure(
                            &self.store,
                            now,
                            &copy,
                            How::Report,
                            failure,
                            Some(post_id),
                        )?);
                        matched.push(copy.recipient);
                    }
                    None => self.store.log_bounce(&ignored(
                        How::Report,
                        &failure.recipient,
                        "unmatched",
                    ))?,
                }
            }
            if matched.is_empty() {
                "a delivery report that names no copy the list sent; ignored".to_owned()
            } else {
                format!("a delivery report for the copy to {}", matched.join(", "))
            }
        };
        for alert in alerts {
            self.emit(&Event::Notice { message: alert });
        }
        self.record_outcome(
            post_id,
            Outcome::Bounce {
                post: post_id,
                reason,
            },
            "",
        )
    }

    /// Lets copies go to a subscriber whose delivery the bounces stopped,
    /// and clears their score.
    pub fn enable_delivery(&mut self, address: &str) -> Result<()> {
        let address = address.trim().to_ascii_lowercase();
        if !self.store.set_delivery_disabled(&address, false)? {
            return Err(Error::NotFound(format!("{address} is not a subscriber")));
        }
        self.store.audit(
            self.unix(),
            None,
            "subscriber",
            &format!("{address}: delivery enabled by the owner; bounce score cleared"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_its_row_and_a_tampered_one_is_refused() {
        let secret = [7u8; 32];
        let t = tag(&secret, 42);
        assert_eq!(verify_tag(&secret, &t), Some(42));
        assert_eq!(verify_tag(&secret, &t.to_ascii_uppercase()), Some(42));
        // Another row under the same MAC, a changed MAC, another secret.
        let (_, m) = t.split_once('-').unwrap();
        assert_eq!(verify_tag(&secret, &format!("43-{m}")), None);
        let mut bad = t.clone().into_bytes();
        let last = bad.last_mut().unwrap();
        *last = if *last == b'0' { b'1' } else { b'0' };
        assert_eq!(verify_tag(&secret, &String::from_utf8(bad).unwrap()), None);
        assert_eq!(verify_tag(&[8u8; 32], &t), None);
        for junk in ["", "-", "x-y", "42", "42-", "-abc"] {
            assert_eq!(verify_tag(&secret, junk), None, "{junk:?}");
        }
        assert_eq!(
            verp_sender("list@example.test", &secret, 42),
            format!("list+bounces-{t}@example.test")
        );
    }

    fn store_with(address: &str) -> (Store, SentCopy) {
        let store = Store::open_in_memory().unwrap();
        store.put_subscriber(address, "F", b"c", 0).unwrap();
        let post = store
            .insert_sealed_post(b"x", 1, "d", "a@example.test", 1)
            .unwrap();
        let copy = crate::store::RecipientCopy {
            recipient: address.into(),
            pkesks: vec![1],
        };
        let body = store.insert_body_unlocked(post, b"body", "h", 1).unwrap();
        store
            .insert_copies_unlocked(post, body, "m@example.test", &[copy], 1)
            .unwrap();
        let row = store.queued_copies().unwrap()[0].id;
        let copy = store.outbox_row(row).unwrap().unwrap();
        (store, copy)
    }

    fn fail(severity: Severity) -> Failure {
        Failure {
            recipient: "x@example.org".into(),
            status: "5.1.1".into(),
            severity,
            text: "no such user".into(),
        }
    }

    #[test]
    fn the_score_counts_once_a_day_decays_and_alerts_at_the_threshold() {
        use crate::clock::{Clock, ManualClock};
        let (store, copy) = store_with("x@example.org");
        let clock = ManualClock::at_unix(1_700_000_000);
        let score = |s: &Store| s.delivery_health("x@example.org").unwrap().unwrap().score;
        let count = |sev| count_failure(&store, clock.unix(), &copy, How::Verp, &fail(sev), None);
        // Hard 1, soft 0.5, and one a day only.
        assert_eq!(count(Severity::Hard).unwrap(), None);
        assert_eq!(score(&store), 1.0);
        assert_eq!(count(Severity::Hard).unwrap(), None);
        assert_eq!(score(&store), 1.0, "a second bounce the same day");
        clock.advance(86_400);
        count(Severity::Soft).unwrap();
        assert_eq!(score(&store), 1.5);
        // Stale after 7 days: it starts again.
        clock.advance(8 * 86_400);
        count(Severity::Hard).unwrap();
        assert_eq!(score(&store), 1.0);
        // Up to the threshold: notify alerts, changes nothing.
        for _ in 0..3 {
            clock.advance(86_400);
            assert_eq!(count(Severity::Hard).unwrap(), None);
        }
        clock.advance(86_400);
        let alert = count(Severity::Hard).unwrap().expect("an alert at 5");
        assert!(alert.contains("nothing was changed"), "{alert}");
        assert!(store.delivery_disabled().unwrap().is_empty());
        // With disable, the next counted bounce stops delivery.
        store.config_set("bounce_action", "disable").unwrap();
        clock.advance(86_400);
        let alert = count(Severity::Hard).unwrap().expect("an alert");
        assert!(alert.contains("stopped"), "{alert}");
        assert_eq!(store.delivery_disabled().unwrap(), vec!["x@example.org"]);
        // Re-enabled: the score is cleared.
        store.set_delivery_disabled("x@example.org", false).unwrap();
        assert_eq!(score(&store), 0.0);
        // A report of success counts nothing.
        clock.advance(86_400);
        count(Severity::None).unwrap();
        assert_eq!(score(&store), 0.0);
    }
}
