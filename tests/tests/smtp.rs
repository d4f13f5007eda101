//! Submission over SMTP to the real loopback Postfix: copies reach each
//! subscriber's mailbox, encrypted to them alone; untrusted servers get no
//! credential; the password file must be private; 5xx fails one copy and
//! tells the owner; nothing in clear reaches the mail host.

use std::os::unix::fs::PermissionsExt;

use conclave_tests::{Engine, MailList, Mailhost, Subscriber};

const LIST: &str = "list@example.test";

/// A list submitting to one of the mail host's SMTP endpoints.
fn fixture(host_key: &str, port_key: &str, security: &str) -> MailList {
    let f = MailList::new("SMTP List");
    f.server("smtp", host_key, port_key, security);
    f
}

/// The Message-ID of the copy queued for `addr`.
fn queued_ids(f: &MailList) -> Vec<(String, String)> {
    f.list
        .export_outbox()
        .into_iter()
        .map(|(addr, eml)| {
            (
                addr,
                conclave_tests::header(&eml, "Message-ID")
                    .unwrap()
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn copies_reach_every_mailbox_over_smtps_and_starttls() {
    let mh = Mailhost::get();
    for (port, security) in [
        ("MAILHOST_SMTPS_PORT", "tls"),
        ("MAILHOST_SUBMISSION_PORT", "starttls"),
    ] {
        let f = fixture("MAILHOST_HOST", port, security);
        let canary = format!("CANARY-SMTP-{security}-{}", std::process::id());
        let post = f.subs[0].compose_post(
            &f.cert,
            LIST,
            &format!("subject {canary}"),
            &format!("body {canary}"),
        );
        assert_eq!(f.list.process(&post), "distributed to 3");
        let ids = queued_ids(&f);
        assert_eq!(ids.len(), 3);
        let out = f.list.run_ok(&["outbox", "send"]);
        assert_eq!(
            out.trim(),
            "sent 3, failed 0, deferred 0, still queued 0",
            "{security}"
        );
        for s in &f.subs {
            let user = s.address().split('@').next().unwrap();
            let id = &ids.iter().find(|(a, _)| a == s.address()).unwrap().1;
            let copy = mh
                .wait_for(user, id, 10)
                .unwrap_or_else(|| panic!("no copy for {user} ({security})"));
            let d = s
                .decrypt(&copy)
                .unwrap_or_else(|e| panic!("{user} cannot decrypt: {e}"));
            assert!(d.encrypted_to(&s.public_key_armored()));
            for o in f.subs.iter().filter(|o| o.address() != s.address()) {
                assert!(
                    !d.encrypted_to(&o.public_key_armored()),
                    "{user}'s copy names {}",
                    o.address()
                );
            }
            let (signed, sig) = d.split_signed().unwrap();
            s.verify_detached(&signed, &sig, &f.cert).unwrap();
            assert!(conclave_tests::mime::all_text_plain(&d.entity)
                .join("")
                .contains(&canary));
        }
        // Nothing in clear at the host: no mailbox, no queue file holds the canary.
        for file in mh.stored_files() {
            let data = std::fs::read(&file).unwrap_or_default();
            assert!(
                !data.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{} holds the canary",
                file.display()
            );
        }
        // Sending again sends nothing.
        assert_eq!(
            f.list.run_ok(&["outbox", "send"]).trim(),
            "sent 0, failed 0, deferred 0, still queued 0"
        );
    }
}

#[test]
fn untrusted_server_gets_no_credential() {
    let mh = Mailhost::get();
    let f = fixture(
        "MAILHOST_UNTRUSTED_HOST",
        "MAILHOST_UNTRUSTED_SMTPS_PORT",
        "tls",
    );
    assert_eq!(
        f.list
            .process(&f.subs[0].compose_post(&f.cert, LIST, "s", "untrusted")),
        "distributed to 3"
    );
    let before = mh
        .logs()
        .lines()
        .filter(|l| l.contains("smtps-untrusted") && l.contains("sasl_"))
        .count();
    let (code, err) = f.list.run_err(&["outbox", "send"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot trust the certificate of 127.0.0.2:"),
        "{err}"
    );
    let after = mh
        .logs()
        .lines()
        .filter(|l| l.contains("smtps-untrusted") && l.contains("sasl_"))
        .count();
    assert_eq!(before, after, "no AUTH may reach an untrusted server");
    let store = conclave_core::store::Store::open(&f.list.home.path().join("list.db")).unwrap();
    assert_eq!(store.queued_copies().unwrap().len(), 3);
    drop(store);
    // Once the owner accepts exactly that certificate, the copies go out.
    let ep = mh.endpoint("MAILHOST_UNTRUSTED_HOST", "MAILHOST_UNTRUSTED_SMTPS_PORT");
    f.list.run_ok(&[
        "certs",
        "accept",
        &ep,
        "--sha256",
        &mh.var("MAILHOST_SELFSIGNED_CERT_SHA256"),
    ]);
    assert_eq!(
        f.list.run_ok(&["outbox", "send"]).trim(),
        "sent 3, failed 0, deferred 0, still queued 0"
    );
}

#[test]
fn password_file_must_be_private() {
    let f = fixture("MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    assert_eq!(
        f.list
            .process(&f.subs[0].compose_post(&f.cert, LIST, "s", "mode")),
        "distributed to 3"
    );
    let pw = f.list.aux.path().join("password");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = f.list.run_err(&["outbox", "send"]);
    assert_eq!(code, 1);
    assert!(err.contains("its mode is 0644; make it 0600"), "{err}");
    // The environment works instead.
    let out = f
        .list
        .cmd()
        .env("CONCLAVE_SMTP_PASSWORD", "secret")
        .args(["outbox", "send"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_permanent_refusal_fails_one_copy_and_tells_the_owner() {
    let f = fixture("MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    // The mail host refuses unknown example.test addresses with 550.
    let ghost = Subscriber::new(Engine::Gpg, "ghost@example.test");
    f.list.add_subscriber(&ghost);
    assert_eq!(
        f.list
            .process(&f.subs[0].compose_post(&f.cert, LIST, "s", "ghost")),
        "distributed to 4"
    );
    let out = f.list.run_ok(&["outbox", "send"]);
    assert_eq!(out.trim(), "sent 3, failed 1, deferred 0, still queued 0");
    let log = f.list.run_ok(&["log"]);
    assert!(
        log.contains("not-delivered #1: ghost@example.test refused for good: "),
        "{log}"
    );
}

/// The Postfix smtpd processes that accepted the messages with this
/// Message-ID (every copy of a post carries the same one), one for each.
fn accepting_smtpds(log: &str, message_id: &str) -> Vec<String> {
    let needle = format!("message-id=<{message_id}>");
    log.lines()
        .filter(|l| l.contains("postfix/cleanup") && l.contains(&needle))
        .filter_map(|l| {
            let queue_id = l.split(": ").nth(1)?;
            let client = format!("{queue_id}: client=");
            let line = log
                .lines()
                .find(|l| l.contains("/smtpd[") && l.contains(&client))?;
            Some(line.split("/smtpd[").nth(1)?.split(']').next()?.to_string())
        })
        .collect()
}

#[test]
fn copies_go_out_over_as_many_connections_as_configured() {
    let mh = Mailhost::get();
    for (connections, want) in [("1", 1), ("3", 3)] {
        let f = fixture("MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
        f.list.config_set("smtp.connections", connections);
        let post = f.subs[0].compose_post(&f.cert, LIST, "...", "spread over connections");
        assert_eq!(f.list.process(&post), "distributed to 3");
        let ids: std::collections::BTreeSet<String> =
            queued_ids(&f).into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), 1, "one Message-ID for every copy of a post");
        let id = ids.first().unwrap();
        let out = f.list.run_ok(&["outbox", "send"]);
        assert_eq!(out.trim(), "sent 3, failed 0, deferred 0, still queued 0");
        let mut found = Vec::new();
        for _ in 0..100 {
            found = accepting_smtpds(&mh.logs(), id);
            if found.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(found.len(), 3, "no Postfix log of every copy of {id}");
        let pids: std::collections::BTreeSet<String> = found.into_iter().collect();
        assert_eq!(pids.len(), want, "smtp.connections {connections}: {pids:?}");
    }
}

/// A copy that waits more than an hour in the outbox is signed again before
/// it goes out, so its signature time matches its `Date:`; one that waited
/// less keeps its signature. Either way the Message-ID stays.
#[test]
fn copies_signed_over_an_hour_ago_are_signed_again() {
    use conclave_core::{List, ManualClock, Outcome, Password};
    use std::sync::Arc;
    let mh = Mailhost::get();
    let f = fixture("MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = Arc::new(ManualClock::at_unix(start));
    let mut list = List::open(f.list.home.path(), clock.clone()).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    let tag = format!("STALE-{}", std::process::id());
    let mut receive = |n: u32| {
        let post = f.subs[1].compose_post(&f.cert, LIST, "...", &format!("{tag} post {n}"));
        assert!(matches!(
            list.receive(&post).unwrap(),
            Outcome::Distributed { copies: 3, .. }
        ));
    };
    receive(1);
    clock.advance(90 * 60);
    receive(2);
    clock.advance(40 * 60);
    // Post 1 was signed 130 minutes ago, post 2 40 minutes ago.
    let before: Vec<(String, String)> = list
        .store()
        .queued_copies()
        .unwrap()
        .into_iter()
        .map(|c| (c.recipient, c.message_id))
        .collect();
    assert_eq!(before.len(), 6);
    let list = std::sync::Mutex::new(list);
    let report = conclave_core::relay::delivery::send_outbox(&list).unwrap();
    assert_eq!((report.sent, report.failed), (6, 0));
    let alice = &f.subs[0];
    let mut seen = 0;
    for (addr, id) in before.iter().filter(|(a, _)| a == alice.address()) {
        let copy = mh
            .wait_for("alice", id, 10)
            .unwrap_or_else(|| panic!("no copy {id} for {addr}"));
        let d = alice.decrypt(&copy).unwrap();
        let text = conclave_tests::mime::all_text_plain(&d.entity).join("");
        let (signed, sig) = d.split_signed().unwrap();
        alice.verify_detached(&signed, &sig, &f.cert).unwrap();
        let times = conclave_tests::pgp::copy_times(&copy, &d.entity);
        let (start, now) = (start as i64, conclave_core::Clock::unix(&*clock));
        let expected = if text.contains(&format!("{tag} post 1")) {
            now // signed again at sending time
        } else {
            assert!(text.contains(&format!("{tag} post 2")), "{text}");
            start + 90 * 60 // as signed at fan-out
        };
        assert_eq!(times, (expected, expected, expected), "{text}");
        seen += 1;
    }
    assert_eq!(seen, 2);
    let log = f.list.run_ok(&["log"]);
    assert!(log.contains("re-signed"), "{log}");
    assert_eq!(log.matches("re-signed").count(), 1, "{log}");
}

/// With PIPELINING (Postfix offers it), MAIL FROM + RCPT TO + DATA go out
/// at once, and the next copy's envelope goes out with the end of the
/// message before it: a copy costs one turn of the client after the first
/// (four without PIPELINING, two with it but without the overlap); a
/// recipient refused in the middle fails that copy alone, and the copies
/// after it go out over the same connection.
#[test]
fn copies_are_pipelined_and_a_refused_recipient_fails_alone() {
    use conclave_tests::cutproxy::{CutProxy, Rng};
    let mh = Mailhost::get();
    let f = fixture("MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    let target = mh
        .endpoint("MAILHOST_HOST", "MAILHOST_SMTPS_PORT")
        .parse()
        .unwrap();
    // A proxy that cuts nothing and counts the client's turns to speak.
    let proxy = CutProxy::start(target, 0, 2, std::sync::Arc::new(Rng::new(1)));
    f.list.config_set("smtp.port", &proxy.port.to_string());
    f.list.config_set("smtp.connections", "1");
    // beth has no mailbox (550 at RCPT); carol+late comes after her.
    for a in ["beth@example.test", "carol+late@example.test"] {
        f.list.add_subscriber(&Subscriber::new(Engine::Gpg, a));
    }
    let tag = format!("PIPELINED-{}", std::process::id());
    assert_eq!(
        f.list
            .process(&f.subs[0].compose_post(&f.cert, LIST, "s", &tag)),
        "distributed to 5"
    );
    let order: Vec<String> = queued_ids(&f).into_iter().map(|(a, _)| a).collect();
    let beth = order.iter().position(|a| a == "beth@example.test").unwrap();
    assert!(beth > 0 && beth < order.len() - 1, "{order:?}");
    let id = queued_ids(&f).first().map(|(_, id)| id.clone()).unwrap();
    let out = f.list.run_ok(&["outbox", "send"]);
    assert_eq!(out.trim(), "sent 4, failed 1, deferred 0, still queued 0");
    let log = f.list.run_ok(&["log"]);
    assert!(
        log.contains("beth@example.test refused for good: RCPT TO refused: 550 5.1.1"),
        "{log}"
    );
    // Every other copy reached its mailbox, carol+late's too.
    for user in ["alice", "bob", "carol"] {
        assert!(mh.wait_for(user, &id, 10).is_some(), "{user}");
    }
    assert!(conclave_tests::wait_until(10, || {
        mh.inbox("carol")
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains("Delivered-To: carol+late@example.test"))
    }));
    // One connection: the TLS handshake (2 turns), EHLO, AUTH, the first
    // envelope, then each message with the next envelope (5), RSET after
    // the refusal and the envelope after it, QUIT: 13. Two turns per copy
    // would take 16; waiting for each reply, 26.
    assert_eq!(proxy.connections(), 1);
    let turns = proxy.turns();
    assert!(
        turns <= 4 + 1 + 5 + 2 + 1,
        "{turns} round trips for 5 copies"
    );
}

/// A temporary refusal (450 at RCPT, inside a pipelined batch) leaves the
/// copy queued for a retry; the others are sent.
#[test]
fn a_temporary_refusal_defers_one_copy() {
    let mh = Mailhost::get();
    let f = fixture("MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    f.list.config_set("smtp.connections", "1");
    let busy = format!("busy@{}", mh.var("MAILHOST_DEFER_DOMAIN"));
    f.list.add_subscriber(&Subscriber::new(Engine::Gpg, &busy));
    assert_eq!(
        f.list
            .process(&f.subs[0].compose_post(&f.cert, LIST, "s", "busy")),
        "distributed to 4"
    );
    let out = f.list.run_ok(&["outbox", "send"]);
    assert_eq!(out.trim(), "sent 3, failed 0, deferred 1, still queued 1");
    // Not due again yet; sent again on demand, and refused for now again.
    let out = f.list.run_ok(&["outbox", "send"]);
    assert_eq!(out.trim(), "sent 0, failed 0, deferred 0, still queued 1");
    let out = f.list.run_ok(&["outbox", "send", "--now"]);
    assert_eq!(out.trim(), "sent 0, failed 0, deferred 1, still queued 1");
}

/// `smtp.rate_per_minute` paces the copies over one connection.
#[test]
fn a_rate_limit_paces_the_copies_over_one_connection() {
    let mh = Mailhost::get();
    let f = fixture("MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    f.list.config_set("smtp.connections", "4");
    // 600 a minute: one every 100 ms.
    f.list.config_set("smtp.rate_per_minute", "600");
    for a in [
        "alice+r1@example.test",
        "bob+r2@example.test",
        "carol+r3@example.test",
    ] {
        f.list.add_subscriber(&Subscriber::new(Engine::Gpg, a));
    }
    let post = f.subs[0].compose_post(&f.cert, LIST, "...", "paced");
    assert_eq!(f.list.process(&post), "distributed to 6");
    let id = queued_ids(&f).first().map(|(_, id)| id.clone()).unwrap();
    let t0 = std::time::Instant::now();
    let out = f.list.run_ok(&["outbox", "send"]);
    let took = t0.elapsed();
    assert_eq!(out.trim(), "sent 6, failed 0, deferred 0, still queued 0");
    assert!(
        took >= std::time::Duration::from_millis(500),
        "6 copies at 600 a minute in {took:?}"
    );
    let mut found = Vec::new();
    for _ in 0..100 {
        found = accepting_smtpds(&mh.logs(), &id);
        if found.len() == 6 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pids: std::collections::BTreeSet<String> = found.into_iter().collect();
    assert_eq!(pids.len(), 1, "one connection: {pids:?}");
}
