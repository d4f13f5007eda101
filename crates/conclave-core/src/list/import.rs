//! Many subscribers at once: a keyring (armored, several armored blocks one
//! after another, or binary) whose keys subscribe the addresses of their
//! User IDs; or a selection of addresses (a CSV file, a Schleuder list's
//! subscriptions) each subscribed with the key from the keyring that speaks
//! for it. Every key and address gets its own outcome; one unreadable or
//! unusable key never stops the rest. The whole import is one store
//! transaction and one audit line.
//!
//! Schleuder's formats, as `schleuder-cli` writes them:
//! - `schleuder-cli subscriptions list LIST` prints one line per
//!   subscription, its fields separated by tabs: the address, the key's
//!   fingerprint (or `N/A`), `admin` or nothing, and `Delivery disabled!`
//!   or nothing;
//! - the Schleuder API (`GET /subscriptions.json?list_id=LIST`, which that
//!   command reads) returns a JSON array of objects with `email`,
//!   `fingerprint`, `admin` and `delivery_enabled`;
//! - `schleuder-cli keys export LIST FINGERPRINT` prints one armored key;
//!   the exports of every key, one after another, are the keyring.

use std::collections::{HashMap, HashSet};
use std::fmt;

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::Cert;
use sequoia_openpgp as openpgp;

use crate::crypto::certs;
use crate::error::{Error, Result};

use super::{valid_address, List};

/// What became of one key or address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Subscribed, new.
    Added,
    /// Already subscribed with this key; the copy brought something new
    /// (an extended expiry, a new subkey, a revocation).
    Updated,
    /// Already subscribed with exactly this key.
    Unchanged,
    /// The key cannot be used for the address: why.
    Refused(String),
    /// Not imported, for a reason that is not the key's fault: why.
    Skipped(String),
}

impl ImportOutcome {
    /// The outcome in one word.
    pub fn word(&self) -> &'static str {
        match self {
            ImportOutcome::Added => "added",
            ImportOutcome::Updated => "updated",
            ImportOutcome::Unchanged => "unchanged",
            ImportOutcome::Refused(_) => "refused",
            ImportOutcome::Skipped(_) => "skipped",
        }
    }

    /// Why it was refused or skipped.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ImportOutcome::Refused(r) | ImportOutcome::Skipped(r) => Some(r),
            _ => None,
        }
    }
}

/// The outcome for one key and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    /// The address (empty when the key carries none).
    pub address: String,
    /// The key's fingerprint (empty when no key could be read or found).
    pub fingerprint: String,
    /// What became of it.
    pub outcome: ImportOutcome,
    /// What else the owner should know (a Schleuder admin, delivery
    /// disabled there).
    pub notes: Vec<String>,
}

impl fmt::Display for ImportLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{} {} {}",
            self.outcome.word(),
            dash(&crate::text::clean(&self.address)),
            dash(&self.fingerprint)
        )?;
        if let Some(r) = self.outcome.reason() {
            write!(f, ": {r}")?;
        }
        for n in &self.notes {
            write!(f, "; {n}")?;
        }
        Ok(())
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// One line per key and address, in the order of the keys (a part of
    /// the keyring that cannot be read is named when it is met).
    pub lines: Vec<ImportLine>,
    /// How many keys were read from the keyring.
    pub keys_read: usize,
}

impl ImportReport {
    /// How many lines have the outcome called `word` ([`ImportOutcome::word`]).
    pub fn count(&self, word: &str) -> usize {
        self.lines
            .iter()
            .filter(|l| l.outcome.word() == word)
            .count()
    }

    /// One line: `imported: 998 added, 1 updated, 1 refused (1000 keys read)`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = ["added", "updated", "unchanged", "refused", "skipped"]
            .iter()
            .map(|w| (w, self.count(w)))
            .filter(|(_, n)| *n > 0)
            .map(|(w, n)| format!("{n} {w}"))
            .collect();
        format!(
            "imported: {} ({} keys read)",
            if parts.is_empty() {
                "nothing".to_string()
            } else {
                parts.join(", ")
            },
            self.keys_read
        )
    }
}

/// One address the owner wants subscribed, from a CSV file or a Schleuder
/// list's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The address, as given.
    pub address: String,
    /// The fingerprint of the key to use, if one was named.
    pub fingerprint: Option<String>,
    /// Copies should not go to them yet (Schleuder: delivery disabled).
    pub delivery_disabled: bool,
    /// An admin of the Schleuder list.
    pub admin: bool,
}

/// Which addresses an import subscribes.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every address of every key's valid User IDs.
    UserIds,
    /// These addresses only, each with the key that speaks for it (or the
    /// one named by fingerprint).
    Listed(Vec<Wanted>),
}

/// A fingerprint as written by people and programs (spaces, `0x`, lower
/// case) in the form the store keeps; None when it is not one.
fn normal_fingerprint(s: &str) -> Option<String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(&s);
    (matches!(s.len(), 40 | 64) && s.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| s.to_ascii_uppercase())
}

/// Reads a CSV selection: one address per line, or `address,fingerprint`
/// (`;` or a tab may separate them too, fields may be quoted); blank lines
/// and lines starting with `#` are ignored, and so is a first line that
/// names the columns.
pub fn read_csv(text: &str) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    let mut first = true;
    for line in text.lines() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split([',', ';', '\t'])
            .map(|f| f.trim().trim_matches('"').trim())
            .collect();
        let address = fields.first().copied().unwrap_or_default();
        if first {
            first = false;
            if !address.contains('@') {
                // A header line: `address,fingerprint`, `email`, …
                continue;
            }
        }
        let fingerprint = fields.get(1).copied().filter(|f| !f.is_empty());
        out.push(Wanted {
            address: address.to_string(),
            fingerprint: fingerprint
                .map(|f| normal_fingerprint(f).unwrap_or_else(|| f.to_string())),
            delivery_disabled: false,
            admin: false,
        });
    }
    if out.is_empty() {
        return Err(Error::InvalidInput(
            "the CSV file names no address (one address per line, or address,fingerprint)".into(),
        ));
    }
    Ok(out)
}

/// Reads a Schleuder list's subscriptions: the output of `schleuder-cli
/// subscriptions list LIST`, or the JSON array the Schleuder API returns
/// for them (see the module's documentation).
pub fn read_schleuder(text: &str) -> Result<Vec<Wanted>> {
    let text = text.trim_start_matches('\u{feff}').trim();
    let out = if text.starts_with('[') || text.starts_with('{') {
        read_schleuder_json(text)?
    } else {
        read_schleuder_listing(text)
    };
    if !out.iter().any(|w| w.address.contains('@')) {
        return Err(Error::InvalidInput(
            "no subscriptions found: give the output of `schleuder-cli subscriptions list LIST`, or the JSON of the Schleuder API's /subscriptions.json"
                .into(),
        ));
    }
    Ok(out)
}

fn read_schleuder_json(text: &str) -> Result<Vec<Wanted>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::InvalidInput(format!(
            "cannot read the Schleuder subscriptions as JSON: {e}"
        ))
    })?;
    let Some(items) = value.as_array() else {
        return Err(Error::InvalidInput(
            "the Schleuder subscriptions are not a JSON array".into(),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(email) = item.get("email").and_then(|v| v.as_str()) else {
            return Err(Error::InvalidInput(format!(
                "Schleuder subscription {} has no \"email\"",
                i + 1
            )));
        };
        let fingerprint = item
            .get("fingerprint")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|f| !f.is_empty());
        out.push(Wanted {
            address: email.to_string(),
            fingerprint: fingerprint
                .map(|f| normal_fingerprint(f).unwrap_or_else(|| f.to_string())),
            delivery_disabled: item.get("delivery_enabled").and_then(|v| v.as_bool())
                == Some(false),
            admin: item.get("admin").and_then(|v| v.as_bool()) == Some(true),
        });
    }
    Ok(out)
}

fn read_schleuder_listing(text: &str) -> Vec<Wanted> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Tabs separate the fields; a copy from a terminal may have turned
        // them into spaces, so the fields are told apart by their look.
        let mut tokens = line.split_whitespace();
        let address = tokens.next().unwrap_or_default().to_string();
        let mut wanted = Wanted {
            address,
            fingerprint: None,
            delivery_disabled: false,
            admin: false,
        };
        let rest: Vec<&str> = tokens.collect();
        for t in &rest {
            if let Some(f) = normal_fingerprint(t) {
                wanted.fingerprint = Some(f);
            } else if t.eq_ignore_ascii_case("admin") {
                wanted.admin = true;
            } else if t.to_ascii_lowercase().starts_with("disabled") {
                wanted.delivery_disabled = true;
            }
        }
        out.push(wanted);
    }
    out
}

/// A key read from the keyring, with the addresses of its valid User IDs.
struct Read {
    cert: Cert,
    fingerprint: String,
    addresses: Vec<String>,
}

/// Reads every certificate of a keyring: armored blocks (one or many, with
/// anything between them) or binary. A block that cannot be read is
/// reported and the rest read; secret parts are dropped.
pub fn read_keyring(bytes: &[u8]) -> (Vec<Cert>, Vec<String>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    each_cert(bytes, |c| {
        match c {
            Ok(c) => certs.push(c),
            Err(p) => problems.push(p),
        }
        true
    });
    (certs, problems)
}

/// Hands every certificate of a keyring to `each` as it is read (or why
/// one cannot be read), in order, until `each` returns false: a keyring of
/// 100,000 keys need not be held parsed all at once.
fn each_cert(bytes: &[u8], mut each: impl FnMut(std::result::Result<Cert, String>) -> bool) {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let marker = b"-----BEGIN PGP";
    let rest = bytes.get(start..).unwrap_or_default();
    if rest.starts_with(marker)
        || (std::str::from_utf8(bytes).is_ok() && find(bytes, marker, 0).is_some())
    {
        let mut starts = Vec::new();
        let mut at = 0;
        while let Some(i) = find(bytes, marker, at) {
            starts.push(i);
            at = i + marker.len();
        }
        for (n, s) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
            let Some(block) = bytes.get(*s..end) else {
                continue;
            };
            if !parse_each(block, &format!("armored block {}", n + 1), &mut each) {
                return;
            }
        }
    } else {
        parse_each(bytes, "the keyring", &mut each);
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// [`each_cert`] for one block; false when `each` asked to stop.
fn parse_each(
    bytes: &[u8],
    what: &str,
    each: &mut impl FnMut(std::result::Result<Cert, String>) -> bool,
) -> bool {
    let parser = match CertParser::from_bytes(bytes) {
        Ok(p) => p,
        Err(e) => return each(Err(format!("{what} cannot be read: {e}"))),
    };
    for cert in parser {
        let go_on = match cert {
            Ok(c) => each(Ok(c.strip_secret_key_material())),
            Err(e) => each(Err(format!("a key in {what} cannot be read: {e}"))),
        };
        if !go_on {
            return false;
        }
    }
    true
}

/// How many keys an import without a selection reads, checks and stores at
/// a time.
const BATCH: usize = 2000;

fn skipped(fingerprint: String, why: &str) -> ImportLine {
    ImportLine {
        address: String::new(),
        fingerprint,
        outcome: ImportOutcome::Skipped(why.to_string()),
        notes: Vec::new(),
    }
}

const AGAIN: &str = "the same key appears again in the keyring; its copies were merged";

impl List {
    /// Subscribes many at once from `keyring` (armored, several armored
    /// blocks, or binary): every address of every key's valid User IDs, or
    /// only the addresses `selection` lists. Each key must be usable and
    /// speak for the address, as for [`List::add_subscriber`]; a key
    /// already subscribed for the address is refreshed; a different key
    /// for a subscribed address is skipped, never replaces theirs.
    /// `source` names the input in the audit line. Fails only when not one
    /// key could be read, or the store fails (nothing is then changed).
    pub fn import_subscribers(
        &mut self,
        keyring: &[u8],
        selection: &Selection,
        source: &str,
    ) -> Result<ImportReport> {
        let now = self.clock.now();
        let store = &self.store;
        let this = &*self;
        let report = store.transaction(|_| {
            let mut subscribed = store.subscriber_fingerprints()?;
            let mut report = ImportReport::default();
            match selection {
                Selection::UserIds => {
                    this.import_user_ids(keyring, now, &mut subscribed, &mut report)?
                }
                Selection::Listed(wanted) => {
                    this.import_listed(keyring, wanted, now, &mut subscribed, &mut report)?
                }
            }
            if report.keys_read == 0 {
                // Nothing was written; the transaction is dropped.
                return Err(Error::BadKey(
                    match report.lines.iter().find_map(|l| l.outcome.reason()) {
                        Some(p) => format!("no key could be read from {source}: {p}"),
                        None => format!("{source} holds no key"),
                    },
                ));
            }
            store.audit(
                this.clock.unix(),
                None,
                "subscriber",
                &format!(
                    "import from {}: {}",
                    crate::text::clean(source),
                    report.summary()
                ),
            )?;
            Ok(report)
        })?;
        Ok(report)
    }

    /// An import of every address of every key, [`BATCH`] keys at a time:
    /// while one part's signatures are checked (on every core), the next
    /// part is read and the one before is stored.
    fn import_user_ids(
        &self,
        keyring: &[u8],
        now: std::time::SystemTime,
        subscribed: &mut HashMap<String, String>,
        report: &mut ImportReport,
    ) -> Result<()> {
        type Checked = (Vec<Cert>, Vec<Vec<String>>);
        let mut seen = HashSet::new();
        let mut failed = None;
        let lines = &mut report.lines;
        let keys_read = &mut report.keys_read;
        std::thread::scope(|scope| -> Result<()> {
            let check = |batch: Vec<Cert>| {
                scope.spawn(move || -> Checked {
                    let addresses = addresses_of_all(&batch, now);
                    (batch, addresses)
                })
            };
            let stopped = || Error::BadKey("cannot check the keys: a check stopped".into());
            let mut pending: Option<std::thread::ScopedJoinHandle<'_, Checked>> = None;
            let mut batch = Vec::with_capacity(BATCH);
            each_cert(keyring, |c| {
                match c {
                    Ok(c) => {
                        *keys_read += 1;
                        batch.push(c);
                    }
                    Err(p) => lines.push(skipped(String::new(), &p)),
                }
                if batch.len() >= BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if let Some(done) = pending.replace(check(full)) {
                        let stored = match done.join() {
                            Ok((b, a)) => {
                                self.import_batch(b, a, now, &mut seen, subscribed, lines)
                            }
                            Err(_) => Err(stopped()),
                        };
                        if let Err(e) = stored {
                            failed = Some(e);
                            return false;
                        }
                    }
                }
                true
            });
            if let Some(e) = failed.take() {
                return Err(e);
            }
            if let Some(done) = pending.take() {
                let (b, a) = done.join().map_err(|_| stopped())?;
                self.import_batch(b, a, now, &mut seen, subscribed, lines)?;
            }
            let addresses = addresses_of_all(&batch, now);
            self.import_batch(batch, addresses, now, &mut seen, subscribed, lines)
        })
    }

    /// Subscribes every address of every key of `batch`. A key seen before
    /// (`seen`, by fingerprint) is merged into what was stored of it.
    /// `addresses` holds, for each key, the addresses of its valid User IDs.
    fn import_batch(
        &self,
        batch: Vec<Cert>,
        addresses: Vec<Vec<String>>,
        now: std::time::SystemTime,
        seen: &mut HashSet<String>,
        subscribed: &mut HashMap<String, String>,
        lines: &mut Vec<ImportLine>,
    ) -> Result<()> {
        for (cert, addresses) in batch.into_iter().zip(addresses) {
            let fingerprint = cert.fingerprint().to_hex();
            if !seen.insert(fingerprint.clone()) {
                for address in &addresses {
                    if subscribed.get(address) == Some(&fingerprint) {
                        self.import_one(address, &cert, subscribed)?;
                    }
                }
                lines.push(skipped(fingerprint, AGAIN));
                continue;
            }
            if addresses.is_empty() {
                let outcome = if cert.with_policy(crate::crypto::policy(), now).is_ok() {
                    ImportOutcome::Skipped("no User ID of the key carries an e-mail address".into())
                } else {
                    ImportOutcome::Refused(certs::refusal(&cert, "", now))
                };
                lines.push(ImportLine {
                    address: String::new(),
                    fingerprint,
                    outcome,
                    notes: Vec::new(),
                });
                continue;
            }
            for address in addresses {
                let outcome = self.import_one(&address, &cert, subscribed)?;
                lines.push(ImportLine {
                    address,
                    fingerprint: fingerprint.clone(),
                    outcome,
                    notes: Vec::new(),
                });
            }
        }
        Ok(())
    }

    /// An import of the addresses `wanted` names, each with the key of the
    /// keyring that speaks for it or the one named by fingerprint: the
    /// keyring is read whole first.
    fn import_listed(
        &self,
        keyring: &[u8],
        wanted: &[Wanted],
        now: std::time::SystemTime,
        subscribed: &mut HashMap<String, String>,
        report: &mut ImportReport,
    ) -> Result<()> {
        let (parsed, problems) = read_keyring(keyring);
        report.keys_read = parsed.len();
        for p in problems {
            report.lines.push(skipped(String::new(), &p));
        }
        let mut addresses = addresses_of_all(&parsed, now).into_iter();
        // The same key twice: one key, the copies merged.
        let mut keys: Vec<Read> = Vec::with_capacity(parsed.len());
        let mut by_fpr: HashMap<String, usize> = HashMap::with_capacity(parsed.len());
        for cert in parsed {
            let found = addresses.next().unwrap_or_default();
            let fingerprint = cert.fingerprint().to_hex();
            if let Some(&i) = by_fpr.get(&fingerprint) {
                if let Some(k) = keys.get_mut(i) {
                    if let Ok(merged) = k.cert.clone().merge_public(cert) {
                        k.cert = merged;
                        k.addresses = certs::addresses(&k.cert, now);
                    }
                }
                report.lines.push(skipped(fingerprint, AGAIN));
                continue;
            }
            by_fpr.insert(fingerprint.clone(), keys.len());
            keys.push(Read {
                cert,
                fingerprint,
                addresses: found,
            });
        }
        let mut by_address: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            for a in &k.addresses {
                by_address.entry(a.as_str()).or_default().push(i);
            }
        }
        let mut seen = HashSet::new();
        for w in wanted {
            let address = w.address.trim().to_ascii_lowercase();
            let mut notes = Vec::new();
            if w.admin {
                notes.push(
                    "an admin of the Schleuder list; here the list has one owner, you".to_string(),
                );
            }
            let key = match &w.fingerprint {
                Some(f) => match by_fpr.get(f).and_then(|&i| keys.get(i)) {
                    Some(k) => Ok(k),
                    None if normal_fingerprint(f).is_none() => {
                        Err(format!("{f:?} is not a fingerprint"))
                    }
                    None => Err(format!("the keyring has no key {f}")),
                },
                None => choose(&keys, by_address.get(address.as_str()), now).ok_or_else(|| {
                    "no key in the keyring has a User ID for this address".to_string()
                }),
            };
            let (fingerprint, outcome) = if !valid_address(&address) {
                (
                    String::new(),
                    ImportOutcome::Skipped("not an e-mail address".into()),
                )
            } else if !seen.insert(address.clone()) {
                (
                    String::new(),
                    ImportOutcome::Skipped("named again; done once".into()),
                )
            } else {
                match key {
                    Err(why) => (String::new(), ImportOutcome::Skipped(why)),
                    Ok(k) => {
                        let outcome = self.import_one(&address, &k.cert, subscribed)?;
                        if w.delivery_disabled
                            && matches!(
                                outcome,
                                ImportOutcome::Added
                                    | ImportOutcome::Updated
                                    | ImportOutcome::Unchanged
                            )
                        {
                            self.store.set_delivery_disabled(&address, true)?;
                            notes.push(format!(
                                "delivery was disabled in Schleuder, so copies stay stopped; `conclave subscriber enable {address}` starts them"
                            ));
                        }
                        (k.fingerprint.clone(), outcome)
                    }
                }
            };
            report.lines.push(ImportLine {
                address,
                fingerprint,
                outcome,
                notes,
            });
        }
        Ok(())
    }

    /// Subscribes `address` with `cert`, inside the import's transaction.
    /// `subscribed` maps every subscribed address to its key's fingerprint
    /// and is kept up to date.
    fn import_one(
        &self,
        address: &str,
        cert: &Cert,
        subscribed: &mut HashMap<String, String>,
    ) -> Result<ImportOutcome> {
        let now = self.clock.now();
        if !certs::speaks_for(cert, address, now) {
            return Ok(ImportOutcome::Refused(certs::refusal(cert, address, now)));
        }
        let fpr = cert.fingerprint().to_hex();
        match subscribed.get(address) {
            Some(old) if *old != fpr => Ok(ImportOutcome::Skipped(format!(
                "subscribed with another key, {old}, which stays; a different key replaces it only on purpose (`conclave subscriber add {address} --key FILE --replace`)"
            ))),
            Some(_) => {
                let stored = self.store.subscriber(address)?.map(|(_, c)| c);
                // The very copy they have: nothing to read again.
                if stored.as_deref() == Some(certs::binary(cert)?.as_slice())
                    && certs::encryption_keys(cert, now).is_ok()
                {
                    return Ok(ImportOutcome::Unchanged);
                }
                let merged = match stored.as_deref().map(certs::parse_public_cert) {
                    Some(Ok(old)) => old
                        .merge_public(cert.clone())
                        .map_err(|e| Error::crypto("merge two copies of a key", e))?,
                    _ => cert.clone(),
                };
                if certs::encryption_keys(&merged, now).is_err() {
                    return Ok(ImportOutcome::Refused(certs::refusal(&merged, address, now)));
                }
                if stored.as_deref() == Some(certs::binary(&merged)?.as_slice()) {
                    return Ok(ImportOutcome::Unchanged);
                }
                self.store_key_quiet(address, &merged)?;
                Ok(ImportOutcome::Updated)
            }
            None => {
                if certs::encryption_keys(cert, now).is_err() {
                    return Ok(ImportOutcome::Refused(certs::refusal(cert, address, now)));
                }
                self.store_key_quiet(address, cert)?;
                subscribed.insert(address.to_string(), fpr);
                Ok(ImportOutcome::Added)
            }
        }
    }
}

/// The addresses of each key's valid User IDs, in order, worked out on
/// every core: checking the keys' self-signatures (which Sequoia does on
/// first use, and remembers) is most of an import's work. Whether each key
/// can be encrypted to is asked here too, so that it is remembered.
fn addresses_of_all(all: &[Cert], now: std::time::SystemTime) -> Vec<Vec<String>> {
    let work = |c: &[Cert]| -> Vec<Vec<String>> {
        c.iter()
            .map(|cert| {
                let _ = certs::encryption_keys(cert, now);
                certs::addresses(cert, now)
            })
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    if threads == 1 || all.len() < 64 {
        return work(all);
    }
    let chunk = all.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = all
            .chunks(chunk)
            .map(|c| (c, s.spawn(move || work(c))))
            .collect();
        handles
            .into_iter()
            .flat_map(|(c, h)| h.join().unwrap_or_else(|_| vec![Vec::new(); c.len()]))
            .collect()
    })
}

/// Of the keys that carry an address, the one to subscribe it with: a
/// usable one before an unusable one, then the newest.
fn choose<'a>(
    keys: &'a [Read],
    which: Option<&Vec<usize>>,
    now: std::time::SystemTime,
) -> Option<&'a Read> {
    which?.iter().filter_map(|&i| keys.get(i)).max_by_key(|k| {
        (
            certs::encryption_keys(&k.cert, now).is_ok(),
            k.cert.primary_key().key().creation_time(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_comments_and_fingerprints() {
        let w = read_csv(
            "# moved from the old list\naddress,fingerprint\nAlice@Example.org\n\"bob@example.org\" ; 0x0123 4567 89AB CDEF 0123 4567 89ab cdef 0123 4567\ncarol@example.org,nonsense\n",
        )
        .unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].address, "Alice@Example.org");
        assert_eq!(w[0].fingerprint, None);
        assert_eq!(
            w[1].fingerprint.as_deref(),
            Some("0123456789ABCDEF0123456789ABCDEF01234567")
        );
        assert_eq!(w[2].fingerprint.as_deref(), Some("nonsense"));
        assert!(read_csv("# nothing\n\naddress\n").is_err());
    }

    #[test]
    fn schleuder_listing_and_json() {
        let fpr = "0123456789ABCDEF0123456789ABCDEF01234567";
        let listing = format!(
            "alice@example.org\t{fpr}\tadmin\t\nbob@example.org\tN/A\t\tDelivery disabled!\n\n"
        );
        let w = read_schleuder(&listing).unwrap();
        assert_eq!(w.len(), 2);
        assert!(w[0].admin && !w[0].delivery_disabled);
        assert_eq!(w[0].fingerprint.as_deref(), Some(fpr));
        assert!(!w[1].admin && w[1].delivery_disabled);
        assert_eq!(w[1].fingerprint, None);

        let json = format!(
            r#"[{{"id":1,"list_id":1,"email":"alice@example.org","fingerprint":"{fpr}","admin":true,"delivery_enabled":true}},
               {{"id":2,"list_id":1,"email":"bob@example.org","fingerprint":"","admin":false,"delivery_enabled":false}}]"#
        );
        assert_eq!(read_schleuder(&json).unwrap(), w);
        assert!(read_schleuder("[{\"fingerprint\":\"x\"}]").is_err());
        assert!(read_schleuder("{").is_err());
        assert!(read_schleuder("\n\n").is_err());
    }

    #[test]
    fn hostile_keyrings_are_reported_not_fatal() {
        let (certs, problems) = read_keyring(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64 at all\n-----END PGP PUBLIC KEY BLOCK-----\n");
        assert!(certs.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        let (certs, problems) = read_keyring(&[0xff, 0x00, 0x13, 0x37]);
        assert!(certs.is_empty());
        assert!(!problems.is_empty());
        let (certs, problems) = read_keyring(b"");
        assert!(certs.is_empty() && problems.len() <= 1);
    }
}
