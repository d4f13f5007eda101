//! The store's part of a long subscriber list: one page of it (sorted by
//! address, optionally searched) with a count of the whole, and the
//! address-to-fingerprint map an import checks against. Nothing here reads
//! more rows than the page it returns.

use std::collections::HashMap;

use rusqlite::params;

use super::bounces::{health_from_row, HEALTH};
use super::{DeliveryHealth, Store, StoredSubscriber};
use crate::error::{Result, StoreContext};

/// One subscriber of a page, with how their copies fare.
#[derive(Debug, Clone)]
pub struct SubscriberRow {
    /// The subscriber as stored.
    pub subscriber: StoredSubscriber,
    /// Their delivery health.
    pub delivery: DeliveryHealth,
}

/// The `LIKE` pattern for a search, `%` and `_` taken literally.
fn like_pattern(search: &str) -> String {
    let mut p = String::with_capacity(search.len() + 2);
    p.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The fingerprint form of a search: spaces dropped when what is left is hex
/// (fingerprints are stored without spaces), else the search as given.
fn fingerprint_search(search: &str) -> String {
    let compact: String = search.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.is_empty() && compact.chars().all(|c| c.is_ascii_hexdigit()) {
        compact
    } else {
        search.to_string()
    }
}

impl Store {
    /// How many subscribers match `search` (a substring of the address or
    /// the fingerprint, ASCII case ignored; empty: all of them).
    pub fn count_subscribers(&self, search: &str) -> Result<i64> {
        let search = search.trim();
        if search.is_empty() {
            return self
                .conn
                .query_row("SELECT COUNT(*) FROM subscribers", [], |r| r.get(0))
                .store("count subscribers");
        }
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM subscribers
                 WHERE address LIKE ?1 ESCAPE '\\' OR fingerprint LIKE ?2 ESCAPE '\\'",
                params![
                    like_pattern(search),
                    like_pattern(&fingerprint_search(search))
                ],
                |r| r.get(0),
            )
            .store("count subscribers")
    }

    /// At most `limit` subscribers matching `search`, sorted by address,
    /// after skipping `offset` of them.
    pub fn subscriber_page(
        &self,
        search: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<SubscriberRow>> {
        let search = search.trim();
        let sql = format!(
            "SELECT {HEALTH}, fingerprint, cert, added_at FROM subscribers
             WHERE ?1 = '' OR address LIKE ?2 ESCAPE '\\' OR fingerprint LIKE ?3 ESCAPE '\\'
             ORDER BY address LIMIT ?4 OFFSET ?5"
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .store("read a page of subscribers")?;
        let rows = stmt
            .query_map(
                params![
                    search,
                    like_pattern(search),
                    like_pattern(&fingerprint_search(search)),
                    limit.max(0),
                    offset.max(0)
                ],
                |r| {
                    let delivery = health_from_row(r)?;
                    Ok(SubscriberRow {
                        subscriber: StoredSubscriber {
                            address: delivery.address.clone(),
                            fingerprint: r.get(7)?,
                            cert: r.get(8)?,
                            added_at: r.get(9)?,
                        },
                        delivery,
                    })
                },
            )
            .store("read a page of subscribers")?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .store("read a page of subscribers")
    }

    /// Every subscriber's address with their key's fingerprint (no
    /// certificates read).
    pub fn subscriber_fingerprints(&self) -> Result<HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT address, fingerprint FROM subscribers")
            .store("read subscribers' fingerprints")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .store("read subscribers' fingerprints")?;
        rows.collect::<std::result::Result<HashMap<_, _>, _>>()
            .store("read subscribers' fingerprints")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(addresses: &[(&str, &str)]) -> Store {
        let s = Store::open_in_memory().unwrap();
        for (a, f) in addresses {
            s.put_subscriber(a, f, b"cert", 1).unwrap();
        }
        s
    }

    #[test]
    fn pages_are_sorted_and_counted() {
        let s = store_with(&[
            ("c@example.org", "CC"),
            ("a@example.org", "AA"),
            ("b@example.org", "BB"),
        ]);
        assert_eq!(s.count_subscribers("").unwrap(), 3);
        let page: Vec<_> = s
            .subscriber_page("", 1, 2)
            .unwrap()
            .into_iter()
            .map(|r| r.subscriber.address)
            .collect();
        assert_eq!(page, ["b@example.org", "c@example.org"]);
        assert!(s.subscriber_page("", 3, 2).unwrap().is_empty());
    }

    #[test]
    fn search_ignores_case_and_takes_wildcards_literally() {
        let s = store_with(&[
            ("alice@example.org", "0123ABCD"),
            ("bob_x@example.org", "FFFF0000"),
            ("bobyx@example.org", "EEEE1111"),
        ]);
        assert_eq!(s.count_subscribers("ALICE").unwrap(), 1);
        assert_eq!(s.count_subscribers("23ab").unwrap(), 1);
        assert_eq!(s.count_subscribers("ff ff").unwrap(), 1);
        // `_` is a character here, not "any one".
        assert_eq!(s.count_subscribers("bob_").unwrap(), 1);
        assert_eq!(s.count_subscribers("%").unwrap(), 0);
        let found = s.subscriber_page("bob", 0, 10).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].subscriber.fingerprint, "FFFF0000");
    }
}
