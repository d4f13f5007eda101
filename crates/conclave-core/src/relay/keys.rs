//! Keys on the web, from the relay (the list does no network I/O).
//!
//! **Refresh:** every subscriber's key is asked of WKD (their domain's Web
//! Key Directory) and of the VKS keyserver (`keys.keyserver`, by
//! fingerprint), one subscriber after another in random order with a random
//! pause between them (`keys.refresh_delay_seconds`), so the lookups do not
//! show as one burst tied to the list. The list is locked only to read the
//! subscribers and to store an update, never across a lookup. Only a newer
//! copy of the same key is taken, with every third-party certification
//! stripped ([`List::update_subscriber_key`]); a different key offered for
//! the address is named in the audit log and not taken.
//!
//! **Publish:** the list key is uploaded to the keyserver and its address
//! check asked for; the server mails a link to the list address, the list
//! recognises that mail ([`List::note_publish_verification`]) and the relay
//! opens the link ([`open_verification_links`]).

use std::sync::Mutex;
use std::time::Duration;

use sequoia_openpgp::cert::{Cert, CertParser};
use sequoia_openpgp::parse::Parse;

use crate::error::{Error, Result};
use crate::list::List;
use crate::net::http::{self, HttpSettings};
use crate::net::{tls, wkd};

use super::{with, StopSignal};

impl List {
    /// The settings for key lookups over HTTPS: the configured CA file,
    /// `net.timeout_seconds`, `net.resolve` and the system's proxy.
    pub fn http_settings(&self) -> Result<HttpSettings> {
        let ca = self.config_value("tls.ca_file")?;
        Ok(HttpSettings::new(
            (!ca.is_empty()).then(|| ca.into()),
            self.network_deadline()?,
            &self.config_value("net.resolve")?,
        ))
    }

    /// Whether a scheduled refresh of the subscribers' keys is due: once
    /// `keys.refresh_days` have passed since the last one. The first time it
    /// is asked, the count starts (the keys were just added; a list's first
    /// run asks the web for nothing).
    pub fn key_refresh_due(&self) -> Result<bool> {
        if self.config_value("keys.refresh")? != "on" {
            return Ok(false);
        }
        let days: i64 = self.config_value("keys.refresh_days")?.parse().unwrap_or(7);
        match self.store().key_refresh_last()? {
            None => {
                self.store().set_key_refresh_last(self.unix())?;
                Ok(false)
            }
            Some(last) => Ok(self.unix() - last >= days.saturating_mul(86_400)),
        }
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Default)]
pub struct RefreshReport {
    /// How many subscribers were asked for.
    pub asked: usize,
    /// What changed, one line per subscriber key updated.
    pub updated: Vec<String>,
    /// Different keys offered for an address, not taken.
    pub refused: Vec<String>,
    /// Lookups that failed.
    pub failed: Vec<String>,
}

impl RefreshReport {
    /// One line for the owner.
    pub fn summary(&self) -> String {
        format!(
            "key refresh: {} subscriber key(s) asked for, {} updated, {} other key(s) not taken, {} lookup(s) failed",
            self.asked,
            self.updated.len(),
            self.refused.len(),
            self.failed.len()
        )
    }
}

/// Asks the web for every subscriber's key and takes same-key updates.
/// `delay` overrides `keys.refresh_delay_seconds`; `tell` hears each line
/// the owner should see as it happens; `stop` ends it between lookups.
pub fn refresh_keys(
    list: &Mutex<List>,
    delay: Option<u64>,
    stop: Option<&StopSignal>,
    tell: &dyn Fn(&str),
) -> Result<RefreshReport> {
    let (mut subscribers, settings, use_wkd, keyserver, max_delay) = with(list, |l| {
        l.store().set_key_refresh_last(l.unix())?;
        let mut subs: Vec<(String, String)> =
            l.store().subscriber_fingerprints()?.into_iter().collect();
        subs.sort();
        let max_delay = match delay {
            Some(d) => d,
            None => l
                .config_value("keys.refresh_delay_seconds")?
                .parse()
                .unwrap_or(300),
        };
        Ok((
            subs,
            l.http_settings()?,
            l.config_value("keys.wkd")? == "on",
            wkd::keyserver_base(&l.config_value("keys.keyserver")?),
            max_delay,
        ))
    })?;
    shuffle(&mut subscribers);
    let keyserver_name = keyserver
        .as_deref()
        .and_then(wkd::keyserver_host)
        .unwrap_or_default();
    let mut report = RefreshReport::default();
    for (i, (address, fpr)) in subscribers.iter().enumerate() {
        if stop.is_some_and(StopSignal::is_stopped) {
            break;
        }
        if i > 0 && max_delay > 0 {
            // In steps of a second, watching for stop (the relay's own wait
            // listens to the stop signal's notification; this does not take
            // it from it).
            let until =
                std::time::Instant::now() + Duration::from_secs(random_below(max_delay + 1));
            while std::time::Instant::now() < until {
                if stop.is_some_and(StopSignal::is_stopped) {
                    break;
                }
                let left = until.saturating_duration_since(std::time::Instant::now());
                std::thread::sleep(left.min(Duration::from_secs(1)));
            }
            if stop.is_some_and(StopSignal::is_stopped) {
                break;
            }
        }
        report.asked += 1;
        let mut offers: Vec<(Cert, String)> = Vec::new();
        if use_wkd {
            match lookup(|| wkd::lookup(&settings, address)) {
                Ok(Some(found)) => {
                    for cert in parse_certs(&found.bytes) {
                        offers.push((cert, "WKD".into()));
                    }
                }
                Ok(None) => {}
                Err(e) => report.failed.push(format!("{address}: WKD: {e}")),
            }
        }
        if let Some(base) = &keyserver {
            match lookup(|| wkd::vks_by_fingerprint(&settings, base, fpr)) {
                Ok(Some(found)) => {
                    for cert in parse_certs(&found.bytes) {
                        offers.push((cert, keyserver_name.clone()));
                    }
                }
                Ok(None) => {}
                Err(e) => report
                    .failed
                    .push(format!("{address}: {keyserver_name}: {e}")),
            }
        }
        for (cert, source) in offers {
            let offered = cert.fingerprint().to_hex();
            if !offered.eq_ignore_ascii_case(fpr) {
                let line = format!(
                    "{source} offers another key for {address}: {offered}, not the subscriber's {fpr}; not taken"
                );
                with(list, |l| {
                    l.store().audit(l.unix(), None, "subscriber", &line)
                })?;
                tell(&line);
                report.refused.push(line);
                continue;
            }
            let outcome = with(list, |l| l.update_subscriber_key(address, cert, &source));
            match outcome {
                Ok(Some(changes)) => {
                    let line = format!(
                        "{address}: key {fpr} updated from {source}: {}",
                        changes.join("; ")
                    );
                    tell(&line);
                    report.updated.push(line);
                }
                Ok(None) => {}
                // Gone, or their key changed meanwhile: nothing to update.
                Err(Error::NotFound(_) | Error::BadKey(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    for line in &report.failed {
        with(list, |l| {
            l.store().audit(
                l.unix(),
                None,
                "subscriber",
                &format!("key refresh: {line}"),
            )
        })?;
    }
    let summary = report.summary();
    with(list, |l| {
        l.store().audit(l.unix(), None, "subscriber", &summary)
    })?;
    Ok(report)
}

/// Runs one lookup on a private runtime.
fn lookup<T, F>(f: impl FnOnce() -> F) -> std::result::Result<T, String>
where
    F: std::future::Future<Output = std::result::Result<T, http::HttpError>>,
{
    match tls::block_on(f()) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("cannot start the network runtime: {e}")),
    }
}

/// Every readable certificate in `bytes` (WKD may serve several), without
/// secret parts; what cannot be read is skipped.
fn parse_certs(bytes: &[u8]) -> Vec<Cert> {
    match CertParser::from_bytes(bytes) {
        Ok(p) => p
            .filter_map(|c| c.ok())
            .map(|c| c.strip_secret_key_material())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A uniformly drawn number below `n` (n > 0).
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % n.max(1)
}

/// Fisher–Yates with the system's randomness.
fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = random_below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// `key publish`: uploads the list key to the keyserver (`keys.keyserver`)
/// and asks it to check the list address. The publish is remembered before
/// the check is asked, so the server's mail is recognised whenever it
/// arrives; the relay then opens its link ([`open_verification_links`]).
/// Returns what the owner should read.
pub fn publish_key(list: &Mutex<List>) -> Result<String> {
    let (base, armored, address, fpr, settings) = with(list, |l| {
        let base = wkd::keyserver_base(&l.config_value("keys.keyserver")?).ok_or_else(|| {
            Error::InvalidInput("no keyserver: set keys.keyserver (https://…) first".into())
        })?;
        http::Url::parse(&base).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let armored = String::from_utf8_lossy(&l.export_public_key()?).into_owned();
        Ok((
            base,
            armored,
            l.address().to_string(),
            l.cert().fingerprint().to_hex(),
            l.http_settings()?,
        ))
    })?;
    let uploaded = tls::block_on(wkd::vks_upload(&settings, &base, &armored))
        .map_err(|e| Error::io("start", "the network runtime", e))?
        .map_err(Error::network)?;
    if !uploaded.key_fpr.is_empty() && !uploaded.key_fpr.eq_ignore_ascii_case(&fpr) {
        return Err(Error::Network(
            format!(
                "{base} read the upload as the key {}, not the list key {fpr}",
                uploaded.key_fpr
            ),
            None,
        ));
    }
    let id = with(list, |l| {
        let id = l.store().add_key_publish(&base, &address, &fpr, l.unix())?;
        l.store().audit(
            l.unix(),
            None,
            "key",
            &format!("the list key {fpr} was uploaded to {base}; its check of {address} is asked"),
        )?;
        Ok(id)
    })?;
    let asked = tls::block_on(wkd::vks_request_verify(
        &settings,
        &base,
        &uploaded.token,
        std::slice::from_ref(&address),
    ))
    .map_err(|e| Error::io("start", "the network runtime", e))?;
    if let Err(e) = asked {
        let detail = format!("cannot ask {base} to check {address}: {e}");
        with(list, |l| {
            l.store()
                .set_key_publish(id, "failed", "", &detail, l.unix())?;
            l.store().audit(l.unix(), None, "key", &detail)
        })?;
        return Err(Error::network(e));
    }
    Ok(format!(
        "the list key {fpr} is uploaded to {base}; it mails a verification link to {address}, which the relay (conclave run, or the app) opens by itself when the mail arrives"
    ))
}

/// Opens the verification links the list noted for waiting publishes
/// (without holding the list while it does), and says what came of it.
/// A link that fails for the network stays to be tried on the next pass;
/// one the server refuses is given up.
pub fn open_verification_links(list: &Mutex<List>, tell: &dyn Fn(&str)) -> Result<()> {
    let (pending, settings) = with(list, |l| {
        Ok((l.store().key_publishes("fetch")?, l.http_settings()?))
    })?;
    for p in pending {
        let prefix = format!("{}/verify/", p.keyserver);
        let mut outcome: Option<(&str, String)> = None;
        let mut retry = Vec::new();
        for link in p.verify_url.lines() {
            // Only a link on the keyserver the publish went to is opened.
            if link.strip_prefix(&prefix).is_none_or(str::is_empty) {
                continue;
            }
            match lookup(|| http::get(&settings, link)) {
                Ok(r) if r.ok() => {
                    outcome = Some((
                        "done",
                        format!(
                            "{} confirmed the list address {}: the list key is published",
                            p.keyserver, p.address
                        ),
                    ));
                    break;
                }
                Ok(r) => {
                    let detail = format!(
                        "{} refused a verification link (status {}); still waiting for its mail",
                        p.keyserver, r.status
                    );
                    with(list, |l| l.store().audit(l.unix(), None, "key", &detail))?;
                    tell(&detail);
                }
                Err(e) => {
                    let detail =
                        format!("cannot open the verification link of {}: {e}", p.keyserver);
                    with(list, |l| l.store().audit(l.unix(), None, "key", &detail))?;
                    tell(&detail);
                    retry.push(link.to_string());
                }
            }
        }
        let (state, urls, detail) = match outcome {
            Some((state, detail)) => (state, String::new(), detail),
            None if !retry.is_empty() => ("fetch", retry.join("\n"), p.detail.clone()),
            None => (
                "waiting",
                String::new(),
                "waiting for the verification mail".into(),
            ),
        };
        with(list, |l| {
            l.store()
                .set_key_publish(p.id, state, &urls, &detail, l.unix())?;
            if state == "done" {
                l.store().audit(l.unix(), None, "key", &detail)?;
            }
            Ok(())
        })?;
        if state == "done" {
            tell(&detail);
        }
    }
    Ok(())
}
