//! The live relay against the real loopback Postfix + Dovecot: posts sent to
//! list@example.test over SMTP are fetched over IMAP, processed, filed, and
//! the copies submitted; two instances never both distribute a post; IDLE
//! relays a post within seconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use conclave_tests::{wait_until, MailList, Mailhost, Subscriber};

const LIST: &str = "list@example.test";

/// The tests share the list mailbox: one at a time.
static MAILBOX: Mutex<()> = Mutex::new(());

/// A list on the mail host, with the mailboxes emptied first.
fn fixture() -> MailList {
    Mailhost::get().clear();
    let f = MailList::new("Relay List");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server(
        "smtp",
        "MAILHOST_HOST",
        "MAILHOST_SUBMISSION_PORT",
        "starttls",
    );
    f
}

/// The copies in `s`'s INBOX whose decrypted text contains `needle`.
fn copies_with(s: &Subscriber, needle: &str) -> usize {
    let user = s.address().split('@').next().unwrap();
    Mailhost::get()
        .inbox(user)
        .iter()
        .filter(|m| String::from_utf8_lossy(m).contains("List-Id: "))
        .filter_map(|m| s.decrypt(m).ok())
        .filter(|d| {
            conclave_tests::mime::all_text_plain(&d.entity)
                .join("")
                .contains(needle)
        })
        .count()
}

#[test]
fn a_post_goes_from_smtp_through_imap_to_every_subscriber() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    // The secret is in the body only: what a client sends in clear outer
    // headers (its Subject, say) the host sees whatever the list does, so
    // this post, like Thunderbird's, says "..." outside.
    let canary = format!("CANARY-RELAY-{}", std::process::id());
    let post = f.subs[0].compose_post(&f.cert, LIST, "...", &format!("body {canary}"));
    mh.inject("alice@example.test", LIST, &post);
    // An unsigned one too, which this list holds.
    mh.inject(
        "bob@example.test",
        LIST,
        &f.subs[1].compose_unsigned_post(&f.cert, LIST, "unsigned", "hold me"),
    );
    assert!(
        wait_until(10, || mh.count("list", "") == 2),
        "the posts reach the list mailbox"
    );
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("post #1: distributed to 3"), "{out}");
    assert!(out.contains("post #2: held: not signed"), "{out}");
    // Three copies, and bob told why his post is held.
    assert!(out.contains("sent 4, failed 0, deferred 0"), "{out}");
    for s in &f.subs {
        assert!(
            wait_until(10, || copies_with(s, &canary) == 1),
            "{} gets exactly one copy",
            s.address()
        );
    }
    // Filed on the host: INBOX empty, one in Processed, one in Held.
    assert_eq!(mh.count("list", ""), 0);
    assert_eq!(mh.count("list", "Processed"), 1);
    assert_eq!(mh.count("list", "Held"), 1);
    // No plaintext anywhere at the host.
    for file in mh.stored_files() {
        let data = std::fs::read(&file).unwrap_or_default();
        assert!(
            !data.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{} holds the canary",
            file.display()
        );
    }
    // A second pass finds nothing new.
    let again = f.list.run_ok(&["run", "--once"]);
    assert_eq!(again.trim(), "sent 0, failed 0, deferred 0", "{again}");
}

/// The server passwords live in the OS keyring (the Secret Service on the
/// session bus), not in files: the relay reads them from there, a wrong one
/// there is what the server gets, and with no keyring to reach the relay
/// stops with a reason and leaves the post in the mailbox.
#[test]
fn server_passwords_come_from_the_os_keyring() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    conclave_tests::keyring_bus();
    let mh = Mailhost::get();
    let f = fixture();
    let password = mh.var("MAILHOST_PASSWORD");
    for server in ["imap", "smtp"] {
        let out = f.list.run_ok_stdin(
            &["config", "password", server],
            format!("{password}\n").as_bytes(),
        );
        let account = format!(
            "{server}://list@{}:{}",
            mh.var("MAILHOST_HOST"),
            mh.var(if server == "imap" {
                "MAILHOST_IMAPS_PORT"
            } else {
                "MAILHOST_SUBMISSION_PORT"
            })
        );
        assert_eq!(
            out.trim(),
            format!("the {server} password is kept in the OS keyring (Conclave/{account})")
        );
        let show = f.list.run_ok(&["config", "show"]);
        assert!(
            show.contains(&format!("{server}.password_file = \n")),
            "{show}"
        );
    }
    // No password file anywhere in the list's folder.
    let files: Vec<_> = std::fs::read_dir(f.list.home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|n| n.contains("password")), "{files:?}");

    let post = f.subs[0].compose_post(&f.cert, LIST, "...", "through the keyring");
    mh.inject("alice@example.test", LIST, &post);
    assert!(wait_until(10, || mh.count("list", "") == 1));

    // No keyring to reach: a clear error, and the post stays where it is.
    let out = f
        .list
        .cmd()
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .args(["run", "--once"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the OS keyring cannot be reached"), "{err}");
    assert_eq!(mh.count("list", ""), 1);

    // A wrong password in the keyring is the one the server sees.
    f.list
        .run_ok_stdin(&["config", "password", "imap"], b"not-the-password\n");
    let (_, err) = f.list.run_err(&["run", "--once"]);
    assert!(
        err.contains("cannot log in") && err.contains("AUTHENTICATIONFAILED"),
        "{err}"
    );
    assert_eq!(mh.count("list", ""), 1);

    f.list
        .run_ok_stdin(&["config", "password", "imap"], password.as_bytes());
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("post #1: distributed to 3"), "{out}");
    assert!(out.contains("sent 3, failed 0"), "{out}");
    assert!(wait_until(10, || copies_with(
        &f.subs[1],
        "through the keyring"
    ) == 1));
}

#[test]
fn two_instances_never_both_distribute_a_post() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    // A co-owner's instance: the same list (key, subscribers, settings).
    let second = f.list.copy_home();
    let n = 12;
    for i in 0..n {
        let post = f.subs[i % 3].compose_post(
            &f.cert,
            LIST,
            &format!("race {i}"),
            &format!("RACE-{i}-{}", std::process::id()),
        );
        mh.inject(f.subs[i % 3].address(), LIST, &post);
    }
    assert!(wait_until(10, || mh.count("list", "") == n));
    let a = f
        .list
        .cmd()
        .args(["run", "--once"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = std::process::Command::new(conclave_tests::conclave_bin())
        .env("CONCLAVE_PASSPHRASE_FILE", &f.list.passphrase_file)
        .arg("--home")
        .arg(second.path())
        .args(["run", "--once"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    assert_eq!(
        text.matches("distributed to 3").count(),
        n,
        "each post distributed once in all:\n{text}"
    );
    for i in 0..n {
        let needle = format!("RACE-{i}-{}", std::process::id());
        for s in &f.subs {
            assert!(
                wait_until(10, || copies_with(s, &needle) == 1),
                "{} must get post {i} exactly once",
                s.address()
            );
        }
    }
}

#[test]
fn idle_relays_a_post_within_three_seconds() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    let mut run = f.list.spawn_relay();
    // Let it make its first pass and start idling.
    std::thread::sleep(Duration::from_secs(2));
    let needle = format!("IDLE-{}", std::process::id());
    let post = f.subs[0].compose_post(&f.cert, LIST, "idle", &needle);
    mh.inject("alice@example.test", LIST, &post);
    let arrived = Instant::now();
    let ok = wait_until(10, || copies_with(&f.subs[1], &needle) == 1);
    let took = arrived.elapsed();
    let _ = run.kill();
    let _ = run.wait();
    assert!(ok, "the post was not relayed");
    assert!(
        took <= Duration::from_secs(3),
        "relayed in {took:?}, more than 3 s"
    );
}

/// kill -9 in the middle of a 200-subscriber delivery, then a restart: every
/// subscriber gets the post and no outbox row is left unsent. (A copy sent
/// twice carries the same Message-ID, so clients show it once.)
#[test]
fn a_crash_mid_delivery_loses_nothing() {
    use openpgp::cert::prelude::*;
    use openpgp::serialize::SerializeInto;
    use sequoia_openpgp as openpgp;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    // 200 more subscribers, all delivered to alice's mailbox by plus addressing.
    let n = 200;
    let dir = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = (0..n)
        .map(|i| format!("alice+s{i:03}@example.test"))
        .collect();
    for a in &addrs {
        let (cert, _) = CertBuilder::general_purpose(Some(a.as_str()))
            .set_cipher_suite(CipherSuite::Cv25519)
            .generate()
            .unwrap();
        let file = dir.path().join(format!("{a}.asc"));
        std::fs::write(&file, cert.armored().to_vec().unwrap()).unwrap();
        f.list
            .run_ok(&["subscriber", "add", a, "--key", &file.to_string_lossy()]);
    }
    // One copy every 20 ms, so that the kill lands mid-delivery.
    f.list.config_set("smtp.rate_per_minute", "3000");
    let needle = format!("CRASH-{}", std::process::id());
    mh.inject(
        "bob@example.test",
        LIST,
        &f.subs[1].compose_post(&f.cert, LIST, "...", &needle),
    );
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let delivered = |mh: &Mailhost| -> std::collections::BTreeSet<String> {
        mh.inbox("alice")
            .iter()
            .filter_map(|m| conclave_tests::header(m, "To"))
            .map(|t| t.trim().trim_matches(['<', '>']).to_string())
            .filter(|t| t.starts_with("alice+s"))
            .collect()
    };
    let mut first = f
        .list
        .cmd()
        .args(["run", "--once"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(60, || delivered(mh).len() >= 10),
        "delivery did not start"
    );
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = delivered(mh).len();
    assert!(
        at_kill < n,
        "the run finished before it could be killed ({at_kill} delivered)"
    );
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("failed 0"), "{out}");
    assert!(
        wait_until(30, || delivered(mh).len() == n),
        "after the restart, only {} of {n} got the post",
        delivered(mh).len()
    );
    let store = conclave_core::store::Store::open(&f.list.home.path().join("list.db")).unwrap();
    let counts = store.outbox_counts().unwrap();
    assert!(
        !counts.iter().any(|(s, c)| s == "queued" && *c > 0),
        "rows left unsent: {counts:?}"
    );
    let sent: i64 = counts
        .iter()
        .filter(|(s, _)| s == "sent")
        .map(|(_, c)| *c)
        .sum();
    assert_eq!(sent as usize, n + 3);
}

/// The list of `f` in an engine, unlocked, and the events it reports.
fn engine_for(
    f: &MailList,
) -> (
    conclave_core::relay::Engine,
    std::sync::Arc<std::sync::Mutex<Vec<conclave_core::Event>>>,
) {
    use conclave_core::relay::Engine;
    use conclave_core::Event;
    use conclave_core::{List, Password, SystemClock};
    use std::sync::{Arc, Mutex};
    let mut list = List::open(f.list.home.path(), Arc::new(SystemClock)).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    let engine = Engine::new(list);
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    engine.subscribe(Arc::new(move |e: &Event| {
        seen.lock().unwrap().push(e.clone())
    }));
    (engine, events)
}

/// A post that reaches the mailbox after a pass has listed INBOX, and before
/// the relay starts waiting for mail, raises no IDLE report of its own: the
/// relay must see that INBOX moved on and read it at once, not after the
/// next IDLE renewal minutes later. The post is delivered from inside the
/// event of the first pass, so it always lands in that gap.
#[test]
fn a_post_that_arrives_between_a_pass_and_the_wait_is_read_at_once() {
    use conclave_core::{Event, Outcome};
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    let (engine, events) = engine_for(&f);
    let needle = format!("GAP-{}", std::process::id());
    let post = f.subs[0].compose_post(&f.cert, LIST, "...", &needle);
    let once = std::sync::Once::new();
    engine.subscribe(std::sync::Arc::new(move |e: &Event| {
        if matches!(e, Event::Pass { .. }) {
            once.call_once(|| {
                mh.inject("alice@example.test", LIST, &post);
                assert!(wait_until(20, || mh.count("list", "") == 1));
            });
        }
    }));
    engine.start();
    let distributed = wait_until(60, || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Post(Outcome::Distributed { copies: 3, .. })))
    });
    engine.stop();
    assert!(distributed, "{:?}", events.lock().unwrap());
    assert!(wait_until(20, || copies_with(&f.subs[1], &needle) == 1));
}

/// The engine the desktop app runs: the relay on its own thread reports
/// each post, the progress of its copies and each pass as events; the list
/// stays usable while the relay waits for mail; `stop` returns at once.
#[test]
fn the_engine_reports_events_and_stops_at_once() {
    use conclave_core::Event;
    use conclave_core::Outcome;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    let (engine, events) = engine_for(&f);
    let count =
        |pred: &dyn Fn(&Event) -> bool| events.lock().unwrap().iter().filter(|e| pred(e)).count();
    engine.start();
    assert!(wait_until(10, || count(&|e| matches!(
        e,
        Event::Pass { .. }
    )) >= 1));
    let needle = format!("ENGINE-{}", std::process::id());
    mh.inject(
        "alice@example.test",
        LIST,
        &f.subs[0].compose_post(&f.cert, LIST, "...", &needle),
    );
    assert!(
        wait_until(10, || count(&|e| matches!(
            e,
            Event::Pass { delivery, .. } if delivery.sent == 3
        )) == 1),
        "{:?}",
        events.lock().unwrap()
    );
    assert_eq!(
        count(&|e| matches!(e, Event::Post(Outcome::Distributed { copies: 3, .. }))),
        1
    );
    assert_eq!(
        count(&|e| matches!(e, Event::Progress { done: 3, total: 3 })),
        1
    );
    // While the relay waits for mail, the owner's commands go through.
    let t = Instant::now();
    assert_eq!(engine.list().subscriber_page("", 0, 50).unwrap().total, 3);
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = Instant::now();
    engine.stop();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(!engine.is_running());
    assert!(matches!(
        events.lock().unwrap().last(),
        Some(Event::Stopped)
    ));
}

/// A server nothing trusts stops the relay with an event that carries the
/// certificate, for the app's accept-or-refuse dialog.
#[test]
fn the_engine_stops_on_an_untrusted_certificate_and_says_which() {
    use conclave_core::net::tls::TlsError;
    use conclave_core::ErrorKind;
    use conclave_core::Event;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    f.server(
        "imap",
        "MAILHOST_UNTRUSTED_HOST",
        "MAILHOST_UNTRUSTED_IMAPS_PORT",
        "tls",
    );
    let (engine, events) = engine_for(&f);
    engine.start();
    assert!(wait_until(10, || !engine.is_running()));
    let events = events.lock().unwrap();
    let (kind, tls) = events
        .iter()
        .find_map(|e| match e {
            Event::Error {
                kind,
                tls,
                fatal: true,
                ..
            } => Some((*kind, tls.clone())),
            _ => None,
        })
        .expect("a fatal error event");
    assert_eq!(kind, ErrorKind::UntrustedCertificate);
    let Some(TlsError::Untrusted { chain, .. }) = tls else {
        panic!("no certificate in the event: {tls:?}")
    };
    let expected = mh
        .var("MAILHOST_SELFSIGNED_CERT_SHA256")
        .to_ascii_lowercase();
    assert_eq!(chain[0].sha256, expected, "the event names the certificate");
    assert!(matches!(events.last(), Some(Event::Stopped)));
}

/// A mail host that cannot be reached is not the owner's to mend: the relay
/// reports it and keeps retrying with backoff, and does not stop.
#[test]
fn the_engine_keeps_retrying_when_the_server_is_unreachable() {
    use conclave_core::Event;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let f = fixture();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    f.list.config_set("imap.port", &port.to_string());
    let (engine, events) = engine_for(&f);
    engine.start();
    assert!(wait_until(10, || events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Error { fatal: false, .. }))));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(engine.is_running(), "{:?}", events.lock().unwrap());
    assert!(!events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Error { fatal: true, .. })));
    engine.stop();
    assert!(!engine.is_running());
}

/// `make demo` without the window: its script makes the demo list (three
/// GnuPG subscribers) on this mail host and writes `send-post.sh`; the post
/// that script sends goes through the list, and bob's GnuPG reads it.
#[test]
fn the_demo_post_goes_through_and_bob_reads_it() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    mh.clear();
    let demo = tempfile::Builder::new()
        .prefix("ctk-demo")
        .tempdir_in("/tmp")
        .unwrap();
    let root = conclave_tests::conclave::workspace_root();
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/demo-app.sh"))
        .env("CONCLAVE_DEMO_DIR", demo.path())
        .env("CONCLAVE_DEMO_NO_APP", "1")
        .env("MAILHOST_DIR", &mh.dir)
        .env("CONCLAVE_BIN", conclave_tests::conclave_bin())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let send = demo.path().join("send-post.sh");
    assert!(said.contains(&send.display().to_string()), "{said}");

    let needle = format!("DEMO-POST-{}", std::process::id());
    let out = std::process::Command::new("bash")
        .arg(&send)
        .arg(&needle)
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("sent."));
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let out = std::process::Command::new(conclave_tests::conclave_bin())
        .arg("--home")
        .arg(demo.path().join("list"))
        .arg("--passphrase-file")
        .arg(demo.path().join("passphrase"))
        .args(["run", "--once"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("post #1: distributed to 3"), "{said}");
    assert!(said.contains("sent 3, failed 0"), "{said}");
    let gnupg = demo.path().join("g-bob");
    let read = wait_until(10, || {
        mh.inbox("bob").iter().any(|m| {
            let mut gpg = std::process::Command::new("gpg")
                .args(["--batch", "-q", "-d", "--homedir"])
                .arg(&gnupg)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            let armored = conclave_tests::extract_armored_message(m).unwrap_or_default();
            let _ = gpg.stdin.take().unwrap().write_all(&armored);
            let out = gpg.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout).contains(&needle)
        })
    });
    assert!(read, "bob's GnuPG reads the demo post");
}

/// While a delivery pass waits on an SMTP server that accepted the
/// connection and then says nothing, the owner's commands answer at once
/// (a held post opens within a second, the subscribers and the settings
/// show); the relay gives up on the server after `net.timeout_seconds`,
/// says so, keeps the copies queued and carries on.
#[test]
fn a_held_post_opens_at_once_while_delivery_waits_on_a_silent_server() {
    use conclave_core::Event;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let f = fixture();
    let silent = conclave_tests::SilentServer::start(Duration::from_secs(60));
    for (k, v) in [
        ("smtp.host", "127.0.0.1".to_string()),
        ("smtp.port", silent.port.to_string()),
        ("smtp.security", "starttls".to_string()),
        ("net.timeout_seconds", "6".to_string()),
    ] {
        f.list.config_set(k, &v);
    }
    let alice = &f.subs[0];
    let needle = format!("HELD-WHILE-SILENT-{}", std::process::id());
    assert_eq!(
        f.list
            .process(&alice.compose_post(&f.cert, LIST, "goes out", "COPIES-WAIT")),
        "distributed to 3"
    );
    let held = f
        .list
        .process(&alice.compose_unsigned_post(&f.cert, LIST, "held", &needle));
    assert!(held.starts_with("held:"), "{held}");
    let (engine, events) = engine_for(&f);
    let held_id = engine.list().held().unwrap()[0].id;
    engine.start();
    assert!(
        wait_until(10, || silent.accepted() >= 1),
        "the relay never reached the silent server"
    );
    // The pass is now waiting for the server's greeting.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let view = engine.list().held_show(held_id).unwrap();
    let subscribers = engine.list().subscriber_page("", 0, 50).unwrap();
    let settings = engine.list().config_show().unwrap();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the owner's commands waited {took:?} for the relay"
    );
    assert!(view.text.contains(&needle), "{}", view.text);
    assert_eq!(subscribers.total, 3);
    assert_eq!(settings["smtp.port"], silent.port.to_string());
    // The deadline ends the wait; the error is reported, not fatal.
    let said = |e: &Event| {
        matches!(e, Event::Error { fatal: false, message, .. }
            if message.contains("no answer within 6 seconds"))
    };
    assert!(
        wait_until(20, || events.lock().unwrap().iter().any(said)),
        "{:?}",
        events.lock().unwrap()
    );
    assert!(engine.is_running(), "a silent server is retried, not fatal");
    engine.stop();
    let queued: i64 = engine
        .list()
        .store()
        .outbox_counts()
        .unwrap()
        .iter()
        .filter(|(s, _)| s == "queued")
        .map(|(_, n)| *n)
        .sum();
    // Three copies, and alice's notice that her unsigned post is held.
    assert_eq!(queued, 4, "nothing is lost");
}

/// An IMAP server that says nothing ends `run --once` after the deadline,
/// naming the server, with the posts still in the mailbox.
#[test]
fn a_silent_imap_server_ends_the_pass_after_the_deadline() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let f = fixture();
    let silent = conclave_tests::SilentServer::start(Duration::from_secs(30));
    for (k, v) in [
        ("imap.host", "127.0.0.1".to_string()),
        ("imap.port", silent.port.to_string()),
        ("imap.security", "tls".to_string()),
        ("net.timeout_seconds", "3".to_string()),
    ] {
        f.list.config_set(k, &v);
    }
    let t = Instant::now();
    let (_, err) = f.list.run_err(&["run", "--once"]);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(err.contains(&format!("127.0.0.1:{}", silent.port)), "{err}");
    assert!(silent.accepted() >= 1);
}

/// `run --once` unlocks the key file while it logs in to the mail host. A
/// wrong passphrase fails the run all the same, with no post waiting or
/// with one, and nothing is claimed with it: the post stays in INBOX, and
/// the right passphrase distributes it.
#[test]
fn run_once_with_a_wrong_passphrase_fails_and_claims_nothing() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    let wrong = f.list.write_aux("wrong", b"not the passphrase");
    let wrong = wrong.to_string_lossy().into_owned();
    let run_wrong = || {
        let out = f
            .list
            .cmd()
            .args(["--passphrase-file", &wrong, "run", "--once"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("cannot unlock the list key: wrong passphrase"),
            "{err}"
        );
    };
    run_wrong();
    let needle = format!("WRONG-PASSPHRASE-{}", std::process::id());
    let post = f.subs[0].compose_post(&f.cert, LIST, "...", &needle);
    mh.inject("alice@example.test", LIST, &post);
    assert!(wait_until(20, || mh.count("list", "") == 1));
    run_wrong();
    assert_eq!(mh.count("list", ""), 1, "the post left INBOX");
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("distributed to 3"), "{out}");
    assert!(wait_until(20, || copies_with(&f.subs[1], &needle) == 1));
}

/// `run --once` opens its SMTP connections beside the intake, as soon as
/// the mailbox has mail to process: they are logged in before the
/// delivery starts (they used to be opened after the outbox was read). A
/// pass with nothing to fetch and nothing due opens none.
#[test]
fn run_once_logs_in_to_smtp_while_the_post_is_still_being_processed() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    let stages = |f: &MailList| -> Vec<String> {
        let out = f
            .list
            .cmd()
            .env("CONCLAVE_TIMINGS", "1")
            .args(["run", "--once"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err.lines()
            .filter_map(|l| l.strip_prefix("conclave-timing "))
            .filter_map(|l| l.split_once(' ').map(|(_, stage)| stage.to_string()))
            .collect()
    };
    let idle = stages(&f);
    assert!(
        !idle.iter().any(|s| s == "smtp connections logged in"),
        "{idle:?}"
    );
    let needle = format!("AHEAD-{}", std::process::id());
    let post = f.subs[0].compose_post(&f.cert, LIST, "...", &needle);
    mh.inject("alice@example.test", LIST, &post);
    assert!(wait_until(20, || mh.count("list", "") == 1));
    let busy = stages(&f);
    let at = |stage: &str| {
        busy.iter()
            .position(|s| s == stage)
            .unwrap_or_else(|| panic!("no {stage:?} in {busy:?}"))
    };
    assert!(
        at("smtp connections logged in") < at("delivery started"),
        "{busy:?}"
    );
    assert!(at("imap inbox selected and searched") < at("smtp connections logged in"));
    for s in &f.subs {
        assert!(
            wait_until(20, || copies_with(s, &needle) == 1),
            "{} gets its copy",
            s.address()
        );
    }
}

/// A delivery pass beside the intake sends the copies a fan-out queues
/// while the intake goes on: `run --once` has its fan-out say `More` each
/// time it commits copies, and here every subscriber has their copy before
/// the intake says `Send` (the pass used to wait for it). Told `Send`, the
/// pass ends once the outbox is empty, with every copy counted once.
#[test]
fn a_pass_beside_the_intake_sends_the_copies_queued_before_the_intake_is_done() {
    use conclave_core::relay::delivery::{ahead_channel, send_outbox_ahead, Ahead};
    use conclave_core::{List, Outcome, Password, SystemClock};
    use std::sync::Arc;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    Mailhost::get();
    let f = fixture();
    let mut list = List::open(f.list.home.path(), Arc::new(SystemClock)).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    let (tell, told) = ahead_channel();
    let fed = tell.clone();
    list.set_queued_hook(Some(Arc::new(move || fed.tell(Ahead::More))));
    let list = Mutex::new(list);
    let needle = format!("STREAM-{}", std::process::id());
    let post = f.subs[0].compose_post(&f.cert, LIST, "...", &needle);
    let report = std::thread::scope(|scope| {
        let pass = scope.spawn(|| send_outbox_ahead(&list, told));
        tell.tell(Ahead::Open);
        let outcome = list.lock().unwrap().receive(&post).unwrap();
        assert!(
            matches!(outcome, Outcome::Distributed { copies, .. } if copies == f.subs.len()),
            "{outcome:?}"
        );
        // Who has their copy before the intake says Send (looked at
        // before asserting: the pass must be let go in any case).
        let early: Vec<bool> = f
            .subs
            .iter()
            .map(|s| wait_until(20, || copies_with(s, &needle) == 1))
            .collect();
        list.lock().unwrap().set_queued_hook(None);
        tell.tell(Ahead::Send);
        drop(tell);
        let report = pass.join().unwrap().unwrap();
        assert!(
            early.iter().all(|e| *e),
            "every subscriber has their copy before the intake is done: {early:?}"
        );
        report
    });
    assert_eq!(
        (report.sent, report.failed, report.deferred),
        (f.subs.len(), 0, 0)
    );
    let list = list.into_inner().unwrap();
    assert!(list.store().queued_copies().unwrap().is_empty());
}

/// The relay loop's pass (the desktop app's, and `run` without `--once`)
/// sends copies beside the intake too: the copies of a post are in the
/// subscribers' mailboxes while the intake is still at its key check,
/// which waits here, in the notice it raises, until they are (it used to
/// send only once the intake was done, so it would wait in vain).
#[test]
fn the_relay_loop_sends_copies_while_its_intake_is_still_going() {
    use conclave_core::{Event, List, Password, SystemClock};
    use std::sync::Arc;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let f = fixture();
    // A key that expires in nine days: the pass's key check raises a notice.
    let erin = Subscriber::made_ago(
        conclave_tests::Engine::Gpg,
        "carol+erin@example.test",
        1,
        "10d",
    );
    f.list.add_subscriber(&erin);
    let needle = format!("LOOP-{}", std::process::id());
    let post = f.subs[0].compose_post(&f.cert, LIST, "...", &needle);
    mh.inject("alice@example.test", LIST, &post);
    assert!(wait_until(20, || mh.count("list", "") == 1));
    let mut list = List::open(f.list.home.path(), Arc::new(SystemClock)).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    // The key check's notice says it is reached, and waits for the go.
    let (reached, at_check) = std::sync::mpsc::channel::<()>();
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let (reached, wait_go) = (Mutex::new(reached), Mutex::new(wait_go));
    list.set_event_sink(Some(Arc::new(move |e: &Event| {
        if matches!(e, Event::Notice { message } if message.contains("expires on")) {
            let _ = reached.lock().unwrap().send(());
            let _ = wait_go
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(60));
        }
    })));
    let list = Mutex::new(list);
    let (early, (intake, delivery)) = std::thread::scope(|scope| {
        let pass = scope.spawn(|| conclave_core::relay::run_once(&list));
        // Who has their copy while the intake waits at its key check
        // (looked at before asserting: the pass must be let go in any case).
        let early: Vec<bool> = match at_check.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => f
                .subs
                .iter()
                .map(|s| wait_until(20, || copies_with(s, &needle) == 1))
                .collect(),
            Err(_) => Vec::new(),
        };
        let _ = go.send(());
        (early, pass.join().unwrap().unwrap())
    });
    assert_eq!(intake.outcomes.len(), 1, "{intake:?}");
    assert!(
        early.len() == f.subs.len() && early.iter().all(|e| *e),
        "every subscriber had their copy before the intake was done: {early:?}"
    );
    // The post's copies and erin's notice, each sent once.
    assert_eq!(
        (delivery.sent, delivery.failed, delivery.deferred),
        (f.subs.len() + 2, 0, 0)
    );
    for s in &f.subs {
        assert_eq!(copies_with(s, &needle), 1, "{}", s.address());
    }
}
