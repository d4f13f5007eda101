//! Crashes and dropped connections lose nothing. `conclave run` is killed
//! with SIGKILL at random moments (in intake, fan-out or delivery) while
//! posts keep arriving, and connections to the real mail host are cut in
//! the middle of what they carry; afterwards every subscriber has every
//! post, and never one post under two Message-IDs. A copy sent again after
//! a kill carries the Message-ID it had, which clients show once: those are
//! counted, not refused.
//!
//! `make test` runs a short version; `make chaos` runs 50 kills and more
//! cut connections (`CONCLAVE_CHAOS_KILLS`, `CONCLAVE_CHAOS_PASSES`;
//! `CONCLAVE_CHAOS_SEED` replays a run).

use std::collections::{BTreeMap, BTreeSet};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use conclave_core::store::Store;
use conclave_tests::cutproxy::{CutProxy, Rng};
use conclave_tests::{wait_until, MailList, Mailhost};

const LIST: &str = "list@example.test";

/// Only one of these tests uses the mail host at a time.
static MAILBOX: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What reached the subscribers.
#[derive(Debug, Default)]
struct Tally {
    posts: usize,
    copies_expected: usize,
    lost: usize,
    /// Copies that arrived more than once under the one Message-ID.
    repeated: usize,
    /// (subscriber, post) pairs that arrived under two Message-IDs.
    split: usize,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} posts, {} copies expected, {} lost, {} sent again under the same Message-ID, {} under two Message-IDs",
            self.posts, self.copies_expected, self.lost, self.repeated, self.split
        )
    }
}

/// Reads every subscriber's INBOX: which post (by its needle) each copy
/// carries, under which Message-ID.
fn tally(f: &MailList, needles: &[String]) -> Tally {
    let mh = Mailhost::get();
    let mut t = Tally {
        posts: needles.len(),
        copies_expected: needles.len() * f.subs.len(),
        ..Tally::default()
    };
    for s in &f.subs {
        let user = s.address().split('@').next().unwrap_or_default();
        let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for m in mh.inbox(user) {
            if !String::from_utf8_lossy(&m).contains("List-Id: ") {
                continue;
            }
            let id = conclave_tests::header(&m, "Message-ID").unwrap_or_default();
            let Ok(d) = s.decrypt(&m) else { continue };
            let text = conclave_tests::mime::all_text_plain(&d.entity).join("");
            if let Some(n) = needles.iter().find(|n| text.contains(n.as_str())) {
                seen.entry(n.as_str()).or_default().push(id);
            }
        }
        for n in needles {
            match seen.get(n.as_str()) {
                None => t.lost += 1,
                Some(ids) => {
                    let distinct: BTreeSet<&String> = ids.iter().collect();
                    t.repeated += ids.len() - distinct.len();
                    if distinct.len() > 1 {
                        t.split += 1;
                    }
                }
            }
        }
    }
    t
}

/// Passes until INBOX is empty and nothing is queued (deferred copies are
/// sent at once): what an owner gets by letting the relay run on.
fn finish(f: &MailList) {
    let mh = Mailhost::get();
    for _ in 0..30 {
        let once = f.list.run(&["run", "--once"]);
        let send = f.list.run(&["outbox", "send", "--now"]);
        let sent = String::from_utf8_lossy(&send.stdout).into_owned();
        if once.status.success()
            && send.status.success()
            && mh.count("list", "") == 0
            && sent.contains("still queued 0")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("the list did not settle: {}", f.list.run_ok(&["log"]));
}

/// Injects a post from one of the subscribers and returns its needle.
fn post(f: &MailList, i: usize, tag: &str) -> String {
    let needle = format!("{tag}-{i}-{}", std::process::id());
    let author = &f.subs[i % f.subs.len()];
    Mailhost::get().inject(
        author.address(),
        LIST,
        &author.compose_post(&f.cert, LIST, "...", &needle),
    );
    needle
}

/// Waits until every post reached every subscriber (or a minute passed),
/// then tallies.
fn delivered(f: &MailList, needles: &[String]) -> Tally {
    wait_until(60, || tally(f, needles).lost == 0);
    tally(f, needles)
}

#[test]
fn killing_the_relay_at_random_loses_nothing() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let kills = env_number("CONCLAVE_CHAOS_KILLS", 8);
    let seed = Rng::seed_from_env();
    let rng = Rng::new(seed);
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Chaos");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    // Copies go out one every 200 ms, so that delivery lasts long enough
    // for kills to land in it, as they do in intake and fan-out.
    f.list.config_set("smtp.rate_per_minute", "300");
    let mut needles = Vec::new();
    let mut phases = [0usize; 4];
    for _ in 0..kills {
        // Posts keep arriving, a few at a time.
        let waiting = mh.count("list", "");
        let new = rng.range(1, 4) as usize;
        for _ in 0..new {
            needles.push(post(&f, needles.len(), "KILLED"));
        }
        wait_until(10, || mh.count("list", "") >= waiting + new);
        let mut child = f.list.spawn_relay();
        // Anywhere from its start to well into a pass of several posts.
        std::thread::sleep(Duration::from_millis(rng.range(0, 1500)));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        // Where it was: posts still in INBOX (intake), claimed and not
        // concluded (fan-out), copies queued (delivery), or nothing to do.
        let in_inbox = mh.count("list", "");
        let store = Store::open(&f.list.home.path().join("list.db")).unwrap();
        let claimed = store.claimed_unprocessed().unwrap().len();
        let queued: i64 = store
            .outbox_counts()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == "queued")
            .map(|(_, n)| n)
            .sum();
        let phase = match (in_inbox, claimed, queued) {
            (1.., _, _) => 0,
            (0, 1.., _) => 1,
            (0, 0, 1..) => 2,
            _ => 3,
        };
        phases[phase] += 1;
    }
    finish(&f);
    let t = delivered(&f, &needles);
    println!(
        "chaos (seed {seed}): {kills} kills ({} in intake, {} in fan-out, {} in delivery, {} idle); {t}",
        phases[0], phases[1], phases[2], phases[3]
    );
    assert_eq!(t.lost, 0, "seed {seed}: {t}");
    assert_eq!(t.split, 0, "seed {seed}: {t}");
    // Nothing is left held or rejected by the kills.
    let log = f.list.run_ok(&["log"]);
    assert!(!log.contains("rejected"), "seed {seed}: {log}");
    assert!(f.list.run_ok(&["held", "list"]).trim().is_empty());
}

#[test]
fn cut_connections_lose_nothing() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let passes = env_number("CONCLAVE_CHAOS_PASSES", 12);
    let seed = Rng::seed_from_env();
    let rng = Arc::new(Rng::new(seed));
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Cut");
    let target = |port_key: &str| {
        format!("{}:{}", mh.var("MAILHOST_HOST"), mh.var(port_key))
            .to_socket_addrs()
            .unwrap()
            .next()
            .unwrap()
    };
    // Half the connections are cut, within their first 6 KiB: the
    // handshake, a command, a reply, or a copy being submitted.
    let imap = CutProxy::start(target("MAILHOST_IMAPS_PORT"), 50, 6 * 1024, rng.clone());
    let smtp = CutProxy::start(target("MAILHOST_SMTPS_PORT"), 50, 6 * 1024, rng.clone());
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    f.list.config_set("imap.port", &imap.port.to_string());
    f.list.config_set("smtp.port", &smtp.port.to_string());
    f.list.config_set("net.timeout_seconds", "5");
    let mut needles = Vec::new();
    for _ in 0..passes {
        for _ in 0..rng.range(0, 3) {
            needles.push(post(&f, needles.len(), "CUT"));
        }
        // Each pass may fail on a cut connection; what it did not finish,
        // a later one does.
        let _ = f.list.run(&["run", "--once"]);
        let _ = f.list.run(&["outbox", "send", "--now"]);
    }
    let cuts = imap.cuts() + smtp.cuts();
    imap.stop_cutting();
    smtp.stop_cutting();
    finish(&f);
    let t = delivered(&f, &needles);
    println!(
        "cut connections (seed {seed}): {passes} passes, {} IMAP and {} SMTP connections, {cuts} cut; {t}",
        imap.connections(),
        smtp.connections()
    );
    assert!(cuts > 0, "no connection was cut");
    assert_eq!(t.lost, 0, "seed {seed}: {t}");
    assert_eq!(t.split, 0, "seed {seed}: {t}");
}
