//! The list key on an OpenPGP card, on a real PC/SC stack: pcscd, vpcd and
//! the virtual card of `tests/testbed/card.sh`. One card, so the tests take
//! turns ([`VirtualCard::lock`]) and each starts from a fresh card.

use conclave_tests::card::{pin_flags, ADMIN_PIN, USER_PIN};
use conclave_tests::{Conclave, Engine, MailList, Mailhost, Subscriber, VirtualCard};

const LIST: &str = "list@example.test";

/// `conclave --home H FLAGS… ARGS…`
fn with_flags<'a>(flags: &'a [String], args: &[&'a str]) -> Vec<&'a str> {
    flags
        .iter()
        .map(String::as_str)
        .chain(args.iter().copied())
        .collect()
}

/// A fresh card, and a list with alice and bob (GnuPG) whose key was moved
/// onto it. Returns the list, its subscribers, the PIN flags and the ident.
fn list_on_card() -> (Conclave, Vec<Subscriber>, Vec<String>, String) {
    let (_, ident) = VirtualCard::fresh();
    let list = Conclave::new();
    list.init(LIST, "Card List");
    let cert = list.list_cert();
    let subs: Vec<Subscriber> = ["alice", "bob"]
        .iter()
        .map(|u| Subscriber::new(Engine::Gpg, &format!("{u}@example.test")))
        .collect();
    for s in &subs {
        list.add_subscriber(s);
        s.import_cert(&cert).unwrap();
    }
    let flags = pin_flags(&list, USER_PIN, ADMIN_PIN);
    let out = list.run_ok(&with_flags(&flags, &["card", "import", &ident]));
    assert!(out.contains("the key file was deleted"), "{out}");
    (list, subs, flags, ident)
}

/// Checks that `s` can read its copy in the outbox and verify the list's
/// signature over it.
fn reads_its_copy(list: &Conclave, s: &Subscriber, cert: &[u8], needle: &str) {
    let copies = list.export_outbox();
    let copy = copies
        .get(s.address())
        .unwrap_or_else(|| panic!("no copy for {}", s.address()));
    let d = s.decrypt(copy).expect("the subscriber decrypts its copy");
    let (signed, sig) = d.split_signed().expect("a signed copy");
    s.verify_detached(&signed, &sig, cert)
        .expect("the list signature verifies");
    assert!(conclave_tests::mime::all_text_plain(&d.entity)
        .join("")
        .contains(needle));
}

#[test]
fn card_list_shows_the_virtual_card() {
    let _guard = VirtualCard::lock();
    let card = VirtualCard::get();
    card.reset();
    let list = VirtualCard::list();
    let ident = card.ident();
    let (m, s) = ident.split_once(':').expect("MMMM:SSSSSSSS");
    assert!(
        m.len() == 4 && s.len() == 8 && ident.chars().all(|c| c == ':' || c.is_ascii_hexdigit()),
        "ident {ident:?}"
    );
    assert!(list.contains("PIN tries left: user 3"), "{list}");
    assert!(list.contains("signatures made: 0"), "{list}");
    assert_eq!(card.slots(), ("(empty)".into(), "(empty)".into()));
}

/// The file key moves onto the card; a post to 50 subscribers costs the
/// card exactly one signature; the copies decrypt in GnuPG and the list
/// signature verifies.
#[test]
fn a_post_to_fifty_subscribers_costs_the_card_one_signature() {
    use openpgp::cert::prelude::*;
    use openpgp::parse::Parse;
    use openpgp::serialize::SerializeInto;
    use sequoia_openpgp as openpgp;
    let _guard = VirtualCard::lock();
    let card = VirtualCard::get();
    let (list, subs, flags, _) = list_on_card();
    assert!(!list.home.path().join("list-key.asc").exists());
    let cert = list.list_cert();
    let parsed = openpgp::Cert::from_bytes(&cert).unwrap();
    let (sig_slot, dec_slot) = card.slots();
    assert_eq!(sig_slot, parsed.fingerprint().to_hex());
    assert!(parsed
        .keys()
        .subkeys()
        .any(|k| k.key().fingerprint().to_hex() == dec_slot));
    for i in 0..48 {
        let a = format!("s{i:02}@example.test");
        let (c, _) = CertBuilder::general_purpose(Some(a.as_str()))
            .set_cipher_suite(CipherSuite::Cv25519)
            .generate()
            .unwrap();
        let f = list.write_aux(&format!("{a}.asc"), &c.armored().to_vec().unwrap());
        list.run_ok(&["subscriber", "add", &a, "--key", &f.to_string_lossy()]);
    }
    // Without the PIN the card cannot be used, and the owner is told how.
    let post = subs[0].compose_post(&cert, LIST, "on the card", "FIFTY-ON-CARD");
    let f = list.write_aux("post.eml", &post);
    let (_, err) = list.run_err(&["process", &f.to_string_lossy()]);
    assert!(err.contains("--pin-file"), "{err}");
    let before = card.signature_count();
    let out = list.run_ok(&with_flags(&flags, &["process", &f.to_string_lossy()]));
    assert_eq!(out.trim(), "distributed to 50");
    assert_eq!(
        card.signature_count(),
        before + 1,
        "one card signature per post"
    );
    for s in &subs {
        reads_its_copy(&list, s, &cert, "FIFTY-ON-CARD");
    }
}

/// `card import` on one copy of a list, `card use` on another: both work
/// from the same card; a list with another key is refused.
#[test]
fn card_import_then_card_use_round_trip() {
    let _guard = VirtualCard::lock();
    let (_, ident) = VirtualCard::fresh();
    let a = Conclave::new();
    a.init(LIST, "Round Trip");
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    a.add_subscriber(&alice);
    let cert = a.list_cert();
    alice.import_cert(&cert).unwrap();
    // A co-owner's copy of the list, with its key file, taken before the move.
    let b = Conclave::new();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", a.home.path().display()))
        .arg(b.home.path())
        .status()
        .unwrap();
    assert!(status.success());
    let a_flags = pin_flags(&a, USER_PIN, ADMIN_PIN);
    let out = a.run_ok(&with_flags(
        &a_flags,
        &["card", "import", &ident, "--keep-file"],
    ));
    assert!(out.contains("the key file is kept"), "{out}");
    assert!(a.home.path().join("list-key.asc").exists());
    let b_flags = pin_flags(&b, USER_PIN, ADMIN_PIN);
    let out = b.run_ok(&with_flags(&b_flags, &["card", "use", &ident]));
    assert!(out.contains(&format!("from the card {ident}")), "{out}");
    for (list, flags, n) in [(&a, &a_flags, 1), (&b, &b_flags, 2)] {
        let post = alice.compose_post(&cert, LIST, "round trip", &format!("ROUND-TRIP-{n}"));
        let f = list.write_aux("post.eml", &post);
        let out = list.run_ok(&with_flags(flags, &["process", &f.to_string_lossy()]));
        assert_eq!(out.trim(), "distributed to 1");
        reads_its_copy(list, &alice, &cert, &format!("ROUND-TRIP-{n}"));
    }
    // Another list's key is not on this card.
    let c = Conclave::new();
    c.init("other@example.test", "Other");
    let c_flags = pin_flags(&c, USER_PIN, ADMIN_PIN);
    let (_, err) = c.run_err(&with_flags(&c_flags, &["card", "use", &ident]));
    assert!(err.contains("does not hold the list key"), "{err}");
}

/// A wrong PIN says how many tries are left and is not tried again; the
/// post is not rejected for it. Once blocked, no PIN is sent at all.
#[test]
fn a_wrong_pin_says_how_many_tries_are_left() {
    let _guard = VirtualCard::lock();
    let (list, subs, good, ident) = list_on_card();
    let cert = list.list_cert();
    let bad = pin_flags(&list, "654321", ADMIN_PIN);
    let post = subs[0].compose_post(&cert, LIST, "pin", "WRONG-PIN");
    let f = list.write_aux("pin-post.eml", &post);
    let f = f.to_string_lossy().into_owned();
    let (_, err) = list.run_err(&with_flags(&bad, &["process", &f]));
    assert!(err.contains("wrong user PIN"), "{err}");
    assert!(err.contains(&ident), "{err}");
    assert!(err.contains("2 tries left"), "{err}");
    assert!(VirtualCard::list().contains("PIN tries left: user 2"));
    let log = list.run_ok(&["log"]);
    assert!(!log.contains("rejected"), "{log}");
    // The right PIN works, and resets the counter.
    let out = list.run_ok(&with_flags(&good, &["process", &f]));
    assert_eq!(out.trim(), "distributed to 2");
    assert!(VirtualCard::list().contains("PIN tries left: user 3"));
    // Three wrong PINs block it; then Conclave says so and sends none.
    for left in ["2 tries left", "1 try left"] {
        let (_, err) = list.run_err(&with_flags(&bad, &["process", &f]));
        assert!(err.contains(left), "{err}");
    }
    let (_, err) = list.run_err(&with_flags(&bad, &["process", &f]));
    assert!(err.contains("is blocked"), "{err}");
    let (_, err) = list.run_err(&with_flags(&good, &["process", &f]));
    assert!(
        err.contains("is blocked") && err.contains("unblock"),
        "{err}"
    );
    assert!(VirtualCard::list().contains("PIN tries left: user 0"));
}

/// The full relay with the list key on the card: a post waits in the list
/// mailbox, the card is pulled, `run --once` fails with a clear error and
/// loses nothing; the card goes back, the post goes out, and GnuPG reads
/// and verifies every copy.
#[test]
fn pulling_the_card_mid_relay_loses_nothing() {
    let _guard = VirtualCard::lock();
    let (card, ident) = VirtualCard::fresh();
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Card Relay");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    let flags = pin_flags(&f.list, USER_PIN, ADMIN_PIN);
    f.list
        .run_ok(&with_flags(&flags, &["card", "import", &ident]));
    let needle = format!("CARD-RELAY-{}", std::process::id());
    mh.inject(
        "alice@example.test",
        LIST,
        &f.subs[0].compose_post(&f.cert, LIST, "...", &needle),
    );
    assert!(conclave_tests::wait_until(10, || mh.count("list", "") == 1));
    card.eject();
    let (_, err) = f.list.run_err(&with_flags(&flags, &["run", "--once"]));
    assert!(err.contains("cannot be reached"), "{err}");
    assert!(err.contains(&ident), "{err}");
    let log = f.list.run_ok(&["log"]);
    assert!(!log.contains("rejected"), "{log}");
    card.insert();
    let out = f.list.run_ok(&with_flags(&flags, &["run", "--once"]));
    assert!(out.contains("distributed to 3"), "{out}");
    assert!(out.contains("sent 3, failed 0, deferred 0"), "{out}");
    for s in &f.subs {
        let user = s.address().split('@').next().unwrap();
        let found = conclave_tests::wait_until(10, || {
            mh.inbox(user).iter().any(|m| {
                s.decrypt(m).is_ok_and(|d| {
                    conclave_tests::mime::all_text_plain(&d.entity)
                        .join("")
                        .contains(&needle)
                        && d.split_signed().is_some_and(|(signed, sig)| {
                            s.verify_detached(&signed, &sig, &f.cert).is_ok()
                        })
                })
            })
        });
        assert!(found, "{user} reads and verifies the post");
    }
    let again = f.list.run_ok(&with_flags(&flags, &["run", "--once"]));
    assert_eq!(again.trim(), "sent 0, failed 0, deferred 0");
}

/// `card generate` makes a new list key on the card, with the list address
/// as its User ID; posts to it are relayed and the copies verify against it.
#[test]
fn card_generate_makes_the_list_key_on_the_card() {
    let _guard = VirtualCard::lock();
    let (card, ident) = VirtualCard::fresh();
    let list = Conclave::new();
    list.init(LIST, "Generated");
    let old = conclave_tests::cert_fingerprint(&list.list_cert()).unwrap();
    let flags = pin_flags(&list, USER_PIN, ADMIN_PIN);
    let out = list.run_ok(&with_flags(&flags, &["card", "generate", &ident]));
    let cert = list.list_cert();
    let fpr = conclave_tests::cert_fingerprint(&cert).unwrap();
    assert_ne!(fpr, old);
    assert!(out.contains(&fpr), "{out}");
    assert_eq!(card.slots().0, fpr);
    assert!(String::from_utf8_lossy(&cert).contains("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(list
        .home
        .path()
        .join(format!("list-key-{old}.asc"))
        .exists());
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    list.add_subscriber(&alice);
    alice.import_cert(&cert).unwrap();
    {
        use sequoia_openpgp::parse::Parse;
        let parsed = sequoia_openpgp::Cert::from_bytes(&cert).unwrap();
        assert!(
            parsed
                .userids()
                .any(|u| u.userid().email().ok().flatten() == Some(LIST)),
            "the new key carries the list address"
        );
    }
    let post = alice.compose_post(&cert, LIST, "generated", "GENERATED-ON-CARD");
    let f = list.write_aux("post.eml", &post);
    let out = list.run_ok(&with_flags(&flags, &["process", &f.to_string_lossy()]));
    assert_eq!(out.trim(), "distributed to 1");
    reads_its_copy(&list, &alice, &cert, "GENERATED-ON-CARD");
}

/// A list whose certificate is an old one, its self-signatures made with
/// SHA-1 (as GnuPG made keys before 2.1), with the secret key on a card:
/// `card use` binds it anyway and certifies it again through the card
/// (one line says so), and posts go out signed by it, which GnuPG accepts.
#[test]
fn card_use_certifies_an_old_sha1_list_key_through_the_card() {
    let _guard = VirtualCard::lock();
    let (card, ident) = VirtualCard::fresh();
    // GnuPG in 2016: Ed25519 + Cv25519, every self-signature SHA-1.
    let gnupg = tempfile::Builder::new()
        .prefix("ctk-old")
        .tempdir_in("/tmp")
        .unwrap();
    let gpg = |args: &[&str]| {
        conclave_tests::programs::run_checked(
            std::process::Command::new("gpg")
                .env("GNUPGHOME", gnupg.path())
                .args(conclave_tests::subscriber::GPG_COMMON)
                .args([
                    "--faked-system-time",
                    "20160301T120000!",
                    "--cert-digest-algo",
                    "SHA1",
                ])
                .args(args),
            None,
        )
        .unwrap()
        .stdout
    };
    gpg(&["--quick-gen-key", LIST, "ed25519", "sign,cert", "never"]);
    let listing =
        String::from_utf8_lossy(&gpg(&["--with-colons", "--list-keys", LIST])).into_owned();
    let fpr = listing
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .unwrap();
    gpg(&["--quick-add-key", &fpr, "cv25519", "encr", "never"]);
    let old_public = gpg(&["--armor", "--export", &fpr]);
    let old_secret = gpg(&["--armor", "--export-secret-keys", &fpr]);
    // The secret keys go onto the card (through a list of their own).
    let mover = Conclave::new();
    mover.init_import(LIST, "Mover", &old_secret);
    let flags = pin_flags(&mover, USER_PIN, ADMIN_PIN);
    mover.run_ok(&with_flags(&flags, &["card", "import", &ident]));
    let (sig_slot, dec_slot) = card.slots();
    assert_eq!(sig_slot, fpr, "the primary key signs on the card");
    assert!(!dec_slot.is_empty());
    // The list knows only the old certificate, and no key file.
    let list = Conclave::new();
    list.init(LIST, "Old Card List");
    std::fs::remove_file(list.home.path().join("list-key.asc")).unwrap();
    let public = conclave_tests::pgp::parse_cert(&old_public).unwrap();
    let store = conclave_core::store::Store::open(&list.home.path().join("list.db")).unwrap();
    store
        .set_list_key(
            &fpr,
            &conclave_core::crypto::certs::binary(&public).unwrap(),
            "file",
        )
        .unwrap();
    drop(store);
    let before = card.signature_count();
    let flags = pin_flags(&list, USER_PIN, ADMIN_PIN);
    let out = list.run_ok(&with_flags(&flags, &["card", "use", &ident]));
    assert!(out.contains(&format!("from the card {ident}")), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("certified again"))
        .unwrap_or_else(|| panic!("no renewal line: {out}"));
    assert!(line.contains("SHA1"), "{line}");
    assert!(
        card.signature_count() > before,
        "the card made the new signatures"
    );
    let cert = list.list_cert();
    assert_eq!(conclave_tests::cert_fingerprint(&cert).unwrap(), fpr);
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    list.add_subscriber(&alice);
    alice.import_cert(&cert).unwrap();
    let post = alice.compose_post(&cert, LIST, "old card key", "OLD-CARD-KEY-RELAYS");
    let f = list.write_aux("post.eml", &post);
    let out = list.run_ok(&with_flags(&flags, &["process", &f.to_string_lossy()]));
    assert_eq!(out.trim(), "distributed to 1");
    reads_its_copy(&list, &alice, &cert, "OLD-CARD-KEY-RELAYS");
}

/// While the relay waits for the card's PIN (the app's dialog is open), the
/// owner's commands answer at once: the PIN is asked before the list is
/// locked. Once the PIN is given, the post goes out.
#[test]
fn the_owners_commands_answer_while_the_card_waits_for_its_pin() {
    use conclave_core::crypto::card::{PinKind, PinRequest, PinSource};
    use conclave_core::{Event, List, Outcome, Password, SystemClock};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let _guard = VirtualCard::lock();
    let (_, ident) = VirtualCard::fresh();
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Card PIN Wait");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    let flags = pin_flags(&f.list, USER_PIN, ADMIN_PIN);
    f.list
        .run_ok(&with_flags(&flags, &["card", "import", &ident]));
    let needle = format!("PIN-WAIT-{}", std::process::id());
    mh.inject(
        "alice@example.test",
        LIST,
        &f.subs[0].compose_post(&f.cert, LIST, "...", &needle),
    );
    assert!(conclave_tests::wait_until(10, || mh.count("list", "") == 1));
    // A PIN source like the app's dialog: it waits until the owner answers.
    let (asked_tx, asked) = mpsc::channel::<()>();
    let (answer, answered) = mpsc::channel::<()>();
    let answered = Mutex::new(answered);
    let asked_tx = Mutex::new(asked_tx);
    let given = Mutex::new(false);
    let pins: PinSource = Arc::new(move |req: &PinRequest| {
        if req.kind != PinKind::User {
            return None;
        }
        let mut given = given.lock().unwrap();
        if !*given {
            let _ = asked_tx.lock().unwrap().send(());
            answered
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(60))
                .ok()?;
            *given = true;
        }
        Some(Password::from(USER_PIN))
    });
    let mut list = List::open(f.list.home.path(), Arc::new(SystemClock)).unwrap();
    list.unlock_card(pins).unwrap();
    let engine = conclave_core::relay::Engine::new(list);
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    engine.subscribe(Arc::new(move |e: &Event| {
        seen.lock().unwrap().push(e.clone())
    }));
    engine.start();
    asked
        .recv_timeout(Duration::from_secs(20))
        .expect("the relay asks for the PIN");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let subscribers = engine.list().subscriber_page("", 0, 50).unwrap();
    let settings = engine.list().config_show().unwrap();
    let held = engine.list().held().unwrap();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the owner's commands waited {took:?} for the PIN"
    );
    assert_eq!(subscribers.total, 3);
    assert!(settings.contains_key("receive_signed_only"));
    assert!(held.is_empty());
    answer.send(()).unwrap();
    assert!(
        conclave_tests::wait_until(30, || events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Post(Outcome::Distributed { copies: 3, .. })))),
        "{:?}",
        events.lock().unwrap()
    );
    engine.stop();
}

/// `eml` (PGP/MIME, encrypted to the list key) with the ephemeral point of
/// its ECDH recipient packets rewritten by `point`, as a hostile sender could.
fn with_point(eml: &[u8], point: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    use openpgp::crypto::mpi::{Ciphertext, MPI};
    use openpgp::packet::PKESK;
    use openpgp::parse::Parse;
    use openpgp::serialize::Serialize;
    use openpgp::{Packet, PacketPile};
    use sequoia_openpgp as openpgp;
    let armored = conclave_tests::extract_armored_message(eml).unwrap();
    let pile = PacketPile::from_bytes(&armored).unwrap();
    let mut out = Vec::new();
    {
        let mut w = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Message).unwrap();
        for p in pile.into_children() {
            let p = match p {
                Packet::PKESK(PKESK::V3(mut k)) => {
                    if let Ciphertext::ECDH { e, key } = k.esk().clone() {
                        k.set_esk(Ciphertext::ECDH {
                            e: MPI::new(&point(e.value())),
                            key,
                        });
                    }
                    Packet::PKESK(PKESK::V3(k))
                }
                other => other,
            };
            p.serialize(&mut w).unwrap();
        }
        w.finalize().unwrap();
    }
    conclave_tests::mime::multipart_encrypted_message(
        &[
            ("From".into(), "alice@example.test".into()),
            ("To".into(), LIST.into()),
            ("Subject".into(), "...".into()),
        ],
        &out,
    )
}

/// A post whose recipient packet is malformed (a Cv25519 point of the wrong
/// length, or one of the right length that the card computes a useless
/// secret from) is refused for itself: it is not a card failure, and the
/// post behind it goes out in the same pass.
#[test]
fn a_malformed_recipient_packet_stops_only_its_post() {
    let _guard = VirtualCard::lock();
    let (_card, ident) = VirtualCard::fresh();
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Card Packets");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    let flags = pin_flags(&f.list, USER_PIN, ADMIN_PIN);
    f.list
        .run_ok(&with_flags(&flags, &["card", "import", &ident]));
    let alice = &f.subs[0];
    let post = |tag: &str| alice.compose_post(&f.cert, LIST, "...", tag);
    // Too short: checked before the card sees it.
    let short = with_point(&post("SHORT-POINT"), |e| e[..e.len() - 1].to_vec());
    // The right length, another point: the card answers, the key does not unwrap.
    let other = with_point(&post("OTHER-POINT"), |e| {
        let mut e = e.to_vec();
        if let Some(b) = e.last_mut() {
            *b ^= 0x55;
        }
        e
    });
    let needle = format!("AFTER-THE-BAD-ONES-{}", std::process::id());
    for m in [&short, &other, &post(&needle)] {
        mh.inject("alice@example.test", LIST, m);
    }
    assert!(conclave_tests::wait_until(10, || mh.count("list", "") == 3));
    let out = f.list.run_ok(&with_flags(&flags, &["run", "--once"]));
    let rejected = out.lines().filter(|l| l.contains("rejected")).count();
    assert_eq!(rejected, 2, "{out}");
    assert!(out.contains("distributed to 3"), "{out}");
    let log = f.list.run_ok(&["log"]);
    assert!(log.contains("is malformed"), "{log}");
    assert!(
        log.contains("does not open") || log.contains("refused it"),
        "{log}"
    );
    let got = conclave_tests::wait_until(10, || {
        mh.inbox("bob").iter().any(|m| {
            f.subs[1].decrypt(m).is_ok_and(|d| {
                conclave_tests::mime::all_text_plain(&d.entity)
                    .join("")
                    .contains(&needle)
            })
        })
    });
    assert!(got, "the post behind the bad ones reached bob");
    // Nothing is left to retry.
    let again = f.list.run_ok(&with_flags(&flags, &["run", "--once"]));
    assert_eq!(again.trim(), "sent 0, failed 0, deferred 0");
}
