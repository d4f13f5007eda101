//! `conclave subscriber`: add, list and remove subscribers.

use std::io::Write;

use anyhow::{Context, Result};

use super::common::{open, open_unlocked};
use crate::cli::{Cli, SubscriberCmd};

/// Runs a `subscriber` subcommand.
pub fn dispatch(cli: &Cli, cmd: &SubscriberCmd, out: &mut impl Write) -> Result<()> {
    let mut list = match cmd {
        SubscriberCmd::CheckKeys => return check_keys(cli, out),
        _ => open(cli)?,
    };
    match cmd {
        SubscriberCmd::Add {
            address,
            key,
            replace,
        } => {
            let bytes = std::fs::read(key)
                .with_context(|| format!("cannot read the key file {}", key.display()))?;
            let current = list.subscriber_fingerprint(address)?;
            match current {
                Some(old) if *replace => {
                    let (s, dropped) = list.replace_subscriber_key(address, &old, &bytes)?;
                    if s.fingerprint == old {
                        writeln!(out, "updated the key {} of {}", s.fingerprint, s.address)?;
                    } else {
                        writeln!(
                            out,
                            "replaced the key of {}: {old} -> {} ({dropped} copies queued for the old key dropped)",
                            s.address, s.fingerprint
                        )?;
                    }
                }
                _ => {
                    let s = list.add_subscriber(address, &bytes)?;
                    writeln!(out, "subscribed {} with key {}", s.address, s.fingerprint)?;
                }
            }
        }
        SubscriberCmd::List {
            search,
            page,
            per_page,
            all,
        } => list_subscribers(&list, search.as_deref(), *page, *per_page, *all, out)?,
        SubscriberCmd::Import {
            keyring,
            csv,
            schleuder,
        } => import(
            &mut list,
            keyring,
            csv.as_deref(),
            schleuder.as_deref(),
            out,
        )?,
        SubscriberCmd::Enable { address } => {
            list.enable_delivery(address)?;
            writeln!(
                out,
                "copies go to {} again; bounce score cleared",
                address.trim().to_ascii_lowercase()
            )?;
        }
        SubscriberCmd::CheckKeys => {}
        SubscriberCmd::Remove { address } => {
            let dropped = list.remove_subscriber(address)?;
            match dropped {
                0 => writeln!(out, "removed {address}")?,
                n => writeln!(
                    out,
                    "removed {address} ({n} copies still queued for them dropped)"
                )?,
            }
        }
    }
    Ok(())
}

/// Up to this many subscribers are listed whole when no page is asked for.
const LIST_WHOLE_UP_TO: usize = 500;

/// `subscriber list`: a page of the subscribers (or all of them), read a
/// page at a time from the store, then the total.
fn list_subscribers(
    list: &conclave_core::List,
    search: Option<&str>,
    page: Option<u64>,
    per_page: u64,
    all: bool,
    out: &mut impl Write,
) -> Result<()> {
    let search = search.unwrap_or("").trim();
    let per_page = usize::try_from(per_page).unwrap_or(usize::MAX);
    // Without --page, a short list is shown whole.
    let first = list.subscriber_page(search, 0, 0)?;
    let total = first.total;
    let (from, to) = match page {
        _ if all => (0, total),
        None if total <= LIST_WHOLE_UP_TO => (0, total),
        p => {
            let p = usize::try_from(p.unwrap_or(1)).unwrap_or(usize::MAX);
            let from = p.saturating_sub(1).saturating_mul(per_page);
            (from, from.saturating_add(per_page).min(total))
        }
    };
    // Read in chunks, so that --all over a long list holds one chunk of
    // certificates at a time.
    let chunk = 1000;
    let mut at = from;
    while at < to {
        let n = chunk.min(to - at);
        let page = list.subscriber_page(search, at, n)?;
        if page.entries.is_empty() {
            break;
        }
        for e in &page.entries {
            writeln!(out, "{}", subscriber_line(e))?;
        }
        at += page.entries.len();
    }
    let matching = if search.is_empty() {
        String::new()
    } else {
        format!(" matching {search:?}")
    };
    let noun = if total == 1 {
        "subscriber"
    } else {
        "subscribers"
    };
    if from == 0 && to >= total {
        writeln!(out, "{total} {noun}{matching}")?;
    } else if from >= total {
        writeln!(
            out,
            "{total} {noun}{matching}; page {} is past the end",
            page.unwrap_or(1)
        )?;
    } else {
        let this = page.unwrap_or(1);
        let pages = total.div_ceil(per_page);
        let mut line = format!(
            "{}-{} of {total} {noun}{matching} (page {this} of {pages})",
            from + 1,
            to
        );
        if to < total {
            line.push_str(&format!("; --page {} for the next", this + 1));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// One subscriber's line of `subscriber list`.
fn subscriber_line(e: &conclave_core::list::RosterEntry) -> String {
    let s = &e.info;
    let mut line = format!("{} {}", s.address, s.fingerprint);
    if let Some(w) = &s.warning {
        line.push_str(&format!(" (warning: {w})"));
    }
    line.push_str(&format!(" delivery: {}", health(&s.delivery)));
    if let Some(n) = &e.not_receiving {
        line.push_str(" [not receiving");
        if let Some(since) = n.since {
            line.push_str(&format!(
                ": missed {} posts since {}",
                n.missed,
                conclave_core::clock::iso_date(super::common::unix(since))
            ));
        }
        line.push(']');
    } else if let Some(k) = &e.expiring {
        line.push_str(&format!(
            " [expires soon: {}{}]",
            conclave_core::clock::iso_date(k.expires),
            if k.told {
                "; told how to extend it"
            } else {
                ""
            }
        ));
    }
    line
}

/// `subscriber import`: one line per key and address, then the summary.
fn import(
    list: &mut conclave_core::List,
    keyring: &std::path::Path,
    csv: Option<&std::path::Path>,
    schleuder: Option<&std::path::Path>,
    out: &mut impl Write,
) -> Result<()> {
    use conclave_core::list::import::{read_csv, read_schleuder, Selection};
    let bytes = if keyring.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .context("cannot read the keyring from standard input")?;
        b
    } else {
        std::fs::read(keyring)
            .with_context(|| format!("cannot read the keyring {}", keyring.display()))?
    };
    let text = |p: &std::path::Path, what: &str| -> Result<String> {
        let b =
            std::fs::read(p).with_context(|| format!("cannot read the {what} {}", p.display()))?;
        String::from_utf8(b)
            .with_context(|| format!("the {what} {} is not UTF-8 text", p.display()))
    };
    let (selection, source) = match (csv, schleuder) {
        (Some(c), _) => (
            Selection::Listed(read_csv(&text(c, "CSV file")?)?),
            format!("{} with {}", keyring.display(), c.display()),
        ),
        (None, Some(s)) => (
            Selection::Listed(read_schleuder(&text(s, "Schleuder subscriptions")?)?),
            format!("Schleuder: {} with {}", s.display(), keyring.display()),
        ),
        (None, None) => (Selection::UserIds, keyring.display().to_string()),
    };
    let report = list.import_subscribers(&bytes, &selection, &source)?;
    for l in &report.lines {
        writeln!(out, "{}", crate::inert::one_line(&l.to_string()))?;
    }
    writeln!(out, "{}", report.summary())?;
    Ok(())
}

/// How a subscriber's copies fare, in a few words: `ok`, `score 1.5` or
/// `stopped (score 5)`, and the last failure.
fn health(h: &conclave_core::store::DeliveryHealth) -> String {
    let mut out = if h.disabled && h.score == 0.0 {
        "stopped (`subscriber enable` starts it)".to_string()
    } else if h.disabled {
        format!("stopped after bounces (score {})", h.score)
    } else if h.score > 0.0 {
        format!("bounce score {}", h.score)
    } else {
        "ok".to_string()
    };
    if h.last_failure_at > 0 {
        out.push_str(&format!(
            "; last failure {} {} {}",
            conclave_core::clock::rfc5322(super::common::unix(h.last_failure_at)),
            crate::inert::one_line(&h.last_failure_status),
            crate::inert::one_line(&h.last_failure_text)
        ));
    }
    out.trim_end().to_string()
}

/// `subscriber check-keys`: the key check, now.
fn check_keys(cli: &Cli, out: &mut impl Write) -> Result<()> {
    // The notices are signed with the list key.
    let mut list = open_unlocked(cli)?;
    let check = list.check_keys()?;
    let lines = check.lines();
    if lines.is_empty() {
        writeln!(out, "every key serves; none expires soon")?;
    }
    for l in lines {
        writeln!(out, "{l}")?;
    }
    if !check.told.is_empty() {
        writeln!(
            out,
            "{} notices queued; `conclave run --once` sends them",
            check.told.len()
        )?;
    }
    Ok(())
}
