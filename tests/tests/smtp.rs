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
