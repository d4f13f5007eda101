//! Bounces, end to end on the loopback mail host. Each copy leaves with a
//! VERP envelope sender (`list+bounces-TAG@example.test`); the mail host
//! accepts mail for bounce.example.test and then cannot deliver it, so
//! Postfix itself writes the delivery report to that address, which reaches
//! the list mailbox by sub-addressing. The relay knows it for a bounce
//! before any policy, files it in `Conclave/Bounces` and scores the
//! subscriber; five bounces on five days alert the owner, and with
//! `bounce_action disable` that subscriber gets no more copies until
//! `subscriber enable`. A bounce with a forged tag changes nothing; a report
//! sent to the list address itself counts only when it names a copy the
//! list sent; a refusal at submission counts like a bounce.

use std::sync::{Arc, Mutex, MutexGuard};

use conclave_core::{Event, List, ManualClock, Password};
use conclave_tests::mime::header;
use conclave_tests::{wait_until, Engine, MailList, Mailhost, Post, Subscriber};

const LIST: &str = "list@example.test";
const BOUNCER: &str = "x@bounce.example.test";

/// The tests share the list mailbox: one at a time.
static MAILBOX: Mutex<()> = Mutex::new(());

struct Fixture {
    ml: MailList,
    _guard: MutexGuard<'static, ()>,
}

/// A list on the mail host with alice, bob and carol, and `extra` (GnuPG
/// keys) subscribed too.
fn fixture(extra: &[&str]) -> Fixture {
    let guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    assert_eq!(
        mh.env_var("MAILHOST_BOUNCE_DOMAIN").as_deref(),
        Some("bounce.example.test"),
        "this mail host was started by an older mailhost.sh: stop it and start it again"
    );
    mh.clear();
    let ml = MailList::new("Bounce Club");
    ml.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    ml.server(
        "smtp",
        "MAILHOST_HOST",
        "MAILHOST_SUBMISSION_PORT",
        "starttls",
    );
    for address in extra {
        let s = Subscriber::new(Engine::Gpg, address);
        ml.list.add_subscriber(&s);
    }
    Fixture { ml, _guard: guard }
}

impl Fixture {
    /// alice posts to the list (signed, encrypted), and it reaches the
    /// list mailbox.
    fn post(&self, body: &str) {
        let alice = &self.ml.subs[0];
        let eml = alice.compose(&self.ml.cert, LIST, &Post::new("Meeting", body));
        let mh = Mailhost::get();
        mh.inject(alice.address(), LIST, &eml);
        assert!(
            wait_until(10, || mh.count("list", "") >= 1),
            "the post reaches the list mailbox"
        );
    }

    /// Waits for the mail host's report to reach the list mailbox.
    fn wait_for_report(&self) {
        let mh = Mailhost::get();
        assert!(
            wait_until(20, || mh.count("list", "") >= 1),
            "a delivery report reaches the list mailbox:\n{}",
            mh.logs()
        );
    }

    fn run(&self) -> String {
        self.ml.list.run_ok(&["run", "--once"])
    }

    /// The `subscriber list` line of `address`.
    fn health(&self, address: &str) -> String {
        self.ml
            .list
            .run_ok(&["subscriber", "list"])
            .lines()
            .find(|l| l.starts_with(address))
            .unwrap_or_else(|| panic!("{address} is not listed"))
            .to_string()
    }
}

/// A delivery report as a mail host writes it, to `to`, saying that the
/// message `message_id` could not be delivered to `recipient`.
fn report(to: &str, recipient: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{n}.report@mx.example.net>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\
         \r\n\
         --R\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Your message could not be delivered.\r\n\
         \r\n\
         --R\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: failed\r\n\
         Status: 5.2.2\r\n\
         Diagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n\
         \r\n\
         --R\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: Bounce Club <list@example.test>\r\n\
         To: <{recipient}>\r\n\
         Subject: ...\r\n\
         Message-ID: <{message_id}>\r\n\
         \r\n\
         --R--\r\n",
        date = conclave_tests::mime::rfc2822_now(),
        n = std::process::id(),
    )
    .into_bytes()
}

/// A copy accepted by the mail host and then undeliverable comes back as
/// Postfix's report to the copy's VERP address: a bounce, filed in
/// Conclave/Bounces, never answered, and scored against the subscriber.
#[test]
fn a_real_bounce_is_filed_and_scored() {
    let f = fixture(&[BOUNCER]);
    f.post("first");
    let out = f.run();
    assert!(out.contains("distributed to 4"), "{out}");
    f.wait_for_report();
    // The report went to the copy's own bounce address.
    let mh = Mailhost::get();
    let dsn = mh.inbox("list").pop().unwrap();
    let to = header(&dsn, "Delivered-To").unwrap_or_default();
    assert!(to.starts_with("list+bounces-"), "{to}");
    let out = f.run();
    assert!(
        out.contains(&format!("bounce: a bounce of the copy to {BOUNCER} (hard)")),
        "{out}"
    );
    assert!(
        wait_until(10, || mh.count("list", "Bounces") == 1),
        "filed in Conclave/Bounces"
    );
    let line = f.health(BOUNCER);
    assert!(line.contains("delivery: bounce score 1"), "{line}");
    assert!(line.contains("5.1.1"), "{line}");
    assert!(f.health("bob@example.test").contains("delivery: ok"));
    // Nobody was answered: the report's sender (the mail host) got nothing.
    assert!(!mh.logs().contains("to=<MAILER-DAEMON"));
    let log = f.ml.list.run_ok(&["log"]);
    assert!(
        log.contains("hard failure 5.1.1 for x@bounce.example.test (verp"),
        "{log}"
    );
}

/// Five bounces on five days alert the owner; with `bounce_action
/// disable`, the next one stops the subscriber's copies, and `subscriber
/// enable` lets them go again.
#[test]
fn five_bounces_alert_the_owner_and_disable_stops_the_copies() {
    let f = fixture(&[BOUNCER]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = Arc::new(ManualClock::at_unix(now));
    let mut list = List::open(f.ml.list.home.path(), clock.clone()).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = events.clone();
    list.set_event_sink(Some(Arc::new(move |e: &Event| {
        if let Event::Notice { message } = e {
            seen.lock().unwrap().push(message.clone());
        }
    })));
    let list = Mutex::new(list);
    let pass = || conclave_core::relay::run_once(&list).unwrap();
    let queued_for = |address: &str| {
        conclave_core::relay::lock(&list)
            .store()
            .queued_copies()
            .unwrap()
            .iter()
            .filter(|c| c.recipient == address)
            .count()
    };
    let bounce_day = |n: usize| {
        f.post(&format!("day {n}"));
        pass();
        f.wait_for_report();
        pass();
        clock.advance(86_400);
    };
    for day in 1..=4 {
        bounce_day(day);
        assert!(events.lock().unwrap().is_empty(), "no alert on day {day}");
    }
    bounce_day(5);
    let alerts = events.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains(BOUNCER) && alerts[0].contains("nothing was changed"),
        "{alerts:?}"
    );
    assert!(f.health(BOUNCER).contains("bounce score 5"));
    let log = f.ml.list.run_ok(&["log"]);
    assert!(log.contains("bounce-alert"), "{log}");

    // disable: the next counted bounce stops delivery to them.
    f.ml.list.config_set("bounce_action", "disable");
    bounce_day(6);
    let alerts = events.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts[1].contains("stopped"), "{alerts:?}");
    let line = f.health(BOUNCER);
    assert!(line.contains("delivery: stopped after bounces"), "{line}");

    // The next post: no copy for them, and so no bounce.
    f.post("after");
    conclave_core::relay::intake::poll_mailbox(&list).unwrap();
    assert_eq!(queued_for(BOUNCER), 0, "no copy for a stopped subscriber");
    let log = f.ml.list.run_ok(&["log"]);
    assert!(
        log.contains(&format!(
            "no copy for {BOUNCER}: delivery stopped after bounces"
        )),
        "{log}"
    );
    assert_eq!(queued_for("bob@example.test"), 1);
    conclave_core::relay::delivery::send_outbox(&list).unwrap();

    // Enabled again by the owner: copies go to them, the score is clear.
    let out = f.ml.list.run_ok(&["subscriber", "enable", BOUNCER]);
    assert!(out.contains("again"), "{out}");
    assert!(f.health(BOUNCER).contains("delivery: ok"));
    f.post("enabled");
    conclave_core::relay::intake::poll_mailbox(&list).unwrap();
    assert_eq!(queued_for(BOUNCER), 1, "a copy once enabled again");
}

/// A report to a bounce address whose tag the list never made changes
/// nothing; it is still a bounce (filed, never opened).
#[test]
fn a_forged_bounce_changes_nothing() {
    let f = fixture(&[BOUNCER]);
    f.post("first");
    f.run();
    f.wait_for_report();
    // The real report's address, its MAC changed; and a made-up row.
    let mh = Mailhost::get();
    let dsn = mh.inbox("list").pop().unwrap();
    let real = header(&dsn, "Delivered-To").unwrap();
    let real = real.trim();
    Mailhost::get().clear();
    let (local, _) = real.split_once('@').unwrap();
    let (id, mac) = local
        .strip_prefix("list+bounces-")
        .unwrap()
        .split_once('-')
        .unwrap();
    let flipped: String = mac
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    for to in [
        format!("list+bounces-{id}-{flipped}@example.test"),
        "list+bounces-1-0123456789abcdef@example.test".to_string(),
    ] {
        mh.inject("", &to, &report(&to, BOUNCER, "whatever@example.test"));
        f.wait_for_report();
        let out = f.run();
        assert!(out.contains("(forged); ignored"), "{out}");
    }
    assert!(f.health(BOUNCER).contains("delivery: ok"));
    assert_eq!(mh.count("list", "Bounces"), 2);
    let log = f.ml.list.run_ok(&["bounces"]);
    assert_eq!(log.matches(" forged").count(), 2, "{log}");

    // An automatic reply to a real bounce address (it answers the envelope
    // sender) is not a failure.
    let reply = format!(
        "From: {BOUNCER}\r\nTo: {real}\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n"
    );
    mh.inject("", real, reply.as_bytes());
    f.wait_for_report();
    let out = f.run();
    assert!(out.contains("bounce: a bounce of the copy to"), "{out}");
    assert!(f.health(BOUNCER).contains("delivery: ok"));
    let log = f.ml.list.run_ok(&["bounces"]);
    assert!(
        log.contains("none (verp) no-failure: not a delivery report"),
        "{log}"
    );
}

/// A genuine report about a copy the outbox no longer keeps (sent longer
/// ago than `store.sent_retention_days`) is filed and logged as such, and
/// counts for nothing: it is not taken for a forgery either.
#[test]
fn a_bounce_about_a_pruned_copy_is_ignored_as_such() {
    let f = fixture(&[BOUNCER]);
    f.post("first");
    f.run();
    f.wait_for_report();
    // The sent copies leave the outbox, as they do after the retention
    // period.
    let store = conclave_core::store::Store::open(&f.ml.list.home.path().join("list.db")).unwrap();
    assert!(store.prune_sent(i64::MAX).unwrap() >= 4);
    drop(store);
    let out = f.run();
    assert!(
        out.contains("a bounce about a copy the outbox no longer keeps"),
        "{out}"
    );
    assert!(f.health(BOUNCER).contains("delivery: ok"));
    assert_eq!(Mailhost::get().count("list", "Bounces"), 1);
    let log = f.ml.list.run_ok(&["bounces"]);
    assert!(log.contains(" unmatched"), "{log}");
    assert!(!log.contains("forged"), "{log}");
}

/// A report that reaches the list address itself (the provider rewrote the
/// envelope sender) counts when its recipient and Message-ID name a copy
/// the list sent; one that names no such copy is ignored.
#[test]
fn a_report_to_the_list_address_counts_only_for_a_copy_sent() {
    let f = fixture(&[]);
    f.post("first");
    f.run();
    let mh = Mailhost::get();
    assert!(wait_until(10, || !mh.inbox("bob").is_empty()));
    let copy = mh.inbox("bob").pop().unwrap();
    let id = header(&copy, "Message-ID").unwrap();
    let id = id.trim().trim_matches(['<', '>']);

    // carol's copy had that ID too, but no report can name an ID no copy
    // carried, or a recipient the list never sent it to.
    for (recipient, message_id) in [
        ("carol@example.test", "not-ours@example.test"),
        ("dave@example.test", id),
    ] {
        mh.inject("", LIST, &report(LIST, recipient, message_id));
        f.wait_for_report();
        let out = f.run();
        assert!(
            out.contains("names no copy the list sent; ignored"),
            "{out}"
        );
    }
    assert!(f.health("carol@example.test").contains("delivery: ok"));

    mh.inject("", LIST, &report(LIST, "bob@example.test", id));
    f.wait_for_report();
    let out = f.run();
    assert!(
        out.contains("a delivery report for the copy to bob@example.test"),
        "{out}"
    );
    let line = f.health("bob@example.test");
    assert!(
        line.contains("bounce score 1") && line.contains("5.2.2"),
        "{line}"
    );
    assert_eq!(mh.count("list", "Bounces"), 3);
}

/// A copy the submission server refuses at RCPT counts like a bounce; at
/// the threshold `run` tells the owner.
#[test]
fn a_refusal_at_submission_counts() {
    let f = fixture(&["unknown@example.test"]);
    f.ml.list.config_set("bounce_threshold", "1");
    f.post("first");
    let run = f.ml.list.run(&["run", "--once"]);
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{out}\n{err}");
    assert!(out.contains("distributed to 4"), "{out}");
    assert!(
        out.contains("notice: unknown@example.test: copies bounced (score 1 of 1)"),
        "{out}"
    );
    let line = f.health("unknown@example.test");
    assert!(line.contains("bounce score 1"), "{line}");
    assert!(line.contains("5.1.1"), "{line}");
    let log = f.ml.list.run_ok(&["log"]);
    assert!(log.contains("(smtp, copy #"), "{log}");
}
