//! The subscriber list a page at a time: a list of 100,000 stays quick to
//! show and to search because only the page's rows are read from the store
//! and only the page's certificates are parsed ([`List::subscriber_page`]).

use std::time::Duration;

use crate::crypto::certs;
use crate::error::Result;

use super::{subscriber_info, usable_until, ExpiringKey, List, NotReceiving, SubscriberInfo};

const DAY: u64 = 24 * 3600;

/// One page of the subscribers, sorted by address.
#[derive(Debug, Clone)]
pub struct SubscriberPage {
    /// How many subscribers match the search (all of them without one).
    pub total: usize,
    /// How many matching subscribers come before this page.
    pub offset: usize,
    /// The page.
    pub entries: Vec<RosterEntry>,
}

/// One subscriber of a page, with what the key check would say of them.
#[derive(Debug, Clone)]
pub struct RosterEntry {
    /// The subscriber and their key.
    pub info: SubscriberInfo,
    /// Set when their key cannot be used: why, and the posts they missed.
    pub not_receiving: Option<NotReceiving>,
    /// Set when their key stops serving within `key_warning_days`.
    pub expiring: Option<ExpiringKey>,
}

impl List {
    /// The fingerprint of a subscriber's key, if `address` is subscribed.
    pub fn subscriber_fingerprint(&self, address: &str) -> Result<Option<String>> {
        self.subscriber_key(&address.trim().to_ascii_lowercase())
    }

    /// At most `limit` subscribers whose address or fingerprint contains
    /// `search` (ASCII case ignored; empty: every subscriber), sorted by
    /// address, after the first `offset`; with the number that match.
    pub fn subscriber_page(
        &self,
        search: &str,
        offset: usize,
        limit: usize,
    ) -> Result<SubscriberPage> {
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let total = self.store.count_subscribers(search)?;
        let rows = self
            .store
            .subscriber_page(search, to_i64(offset), to_i64(limit))?;
        let now = self.now();
        let days: u64 = self.config_value("key_warning_days")?.parse().unwrap_or(14);
        let horizon = now + Duration::from_secs(days.saturating_mul(DAY));
        let missed = if rows.is_empty() {
            Vec::new()
        } else {
            self.store.missed_posts()?
        };
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let s = row.subscriber;
            let cert = certs::parse_public_cert(&s.cert);
            let mut not_receiving = None;
            let mut expiring = None;
            match &cert {
                Ok(cert) if certs::encryption_keys(cert, now).is_ok() => {
                    if days > 0 {
                        if let Some(expires) = usable_until(cert, now).filter(|t| *t <= horizon) {
                            let told = self
                                .store
                                .expiry_notice_sent(&s.address, &crate::clock::iso_date(expires))?;
                            expiring = Some(ExpiringKey {
                                address: s.address.clone(),
                                fingerprint: s.fingerprint.clone(),
                                expires,
                                told,
                            });
                        }
                    }
                }
                _ => {
                    let why = match &cert {
                        Ok(cert) => certs::refusal(cert, "", now),
                        Err(e) => e.to_string(),
                    };
                    let m = missed
                        .iter()
                        .find(|m| m.address == s.address && m.fingerprint == s.fingerprint);
                    not_receiving = Some(NotReceiving {
                        address: s.address.clone(),
                        fingerprint: s.fingerprint.clone(),
                        why,
                        missed: m.map(|m| m.missed).unwrap_or(0),
                        since: m.map(|m| m.since),
                        told_at: m.map(|m| m.sent_at),
                    });
                }
            }
            let mut info = subscriber_info(s.address, s.fingerprint, cert, now);
            info.delivery = row.delivery;
            entries.push(RosterEntry {
                info,
                not_receiving,
                expiring,
            });
        }
        Ok(SubscriberPage {
            total: usize::try_from(total).unwrap_or(0),
            offset,
            entries,
        })
    }
}
