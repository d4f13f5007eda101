//! A subscriber's key changes only by the owner's explicit act: adding a
//! subscriber never replaces the key they have, replacing it is audited with
//! both fingerprints, copies still queued for an old key are dropped, and a
//! held post offers only an attached key that made its signature.

use conclave_tests::mime::{multipart_encrypted_message, text_plain_entity, with_key_attached};
use conclave_tests::{Conclave, Engine, Post, Subscriber};

const LIST: &str = "list@example.test";

fn list_of(subs: &[&Subscriber]) -> (Conclave, Vec<u8>) {
    conclave_tests::require_programs(&["gpg"]);
    let list = Conclave::new();
    list.init(LIST, "Keys");
    for s in subs {
        list.add_subscriber(s);
    }
    let cert = list.list_cert();
    (list, cert)
}

#[test]
fn a_different_key_replaces_a_subscribers_only_on_purpose() {
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    let (list, cert) = list_of(&[&alice, &reader]);
    // A post waits in the outbox for both.
    let post = reader.compose_post(&cert, LIST, "Before", "QUEUED-FOR-THE-OLD-KEY");
    assert_eq!(list.process(&post), "distributed to 2");

    // Someone hands the owner another key for alice.
    let other = Subscriber::new(Engine::Gpg, "alice@example.test");
    let file = other.public_key_file();
    let file = file.to_string_lossy();
    let (_, err) = list.run_err(&["subscriber", "add", "alice@example.test", "--key", &file]);
    assert!(
        err.contains(&format!(
            "alice@example.test is subscribed with key {}",
            alice.fingerprint()
        )) && err.contains(other.fingerprint())
            && err.contains("--replace"),
        "{err}"
    );
    let subs = list.run_ok(&["subscriber", "list"]);
    assert!(subs.contains(alice.fingerprint()), "{subs}");
    assert!(!subs.contains(other.fingerprint()), "{subs}");
    assert!(list.export_outbox().contains_key("alice@example.test"));

    // Re-adding the same key is no change.
    let again = alice.public_key_file();
    list.run_ok(&[
        "subscriber",
        "add",
        "alice@example.test",
        "--key",
        &again.to_string_lossy(),
    ]);

    // On purpose: both fingerprints said, the old key's copy dropped.
    let out = list.run_ok(&[
        "subscriber",
        "add",
        "alice@example.test",
        "--key",
        &file,
        "--replace",
    ]);
    assert_eq!(
        out.trim(),
        format!(
            "replaced the key of alice@example.test: {} -> {} (1 copies queued for the old key dropped)",
            alice.fingerprint(),
            other.fingerprint()
        )
    );
    let outbox = list.export_outbox();
    assert!(
        !outbox.contains_key("alice@example.test"),
        "{:?}",
        outbox.keys()
    );
    assert!(outbox.contains_key("reader@example.test"));
    let log = list.run_ok(&["log"]);
    assert!(
        log.contains(&format!(
            "alice@example.test: key {} replaced with {} by the owner",
            alice.fingerprint(),
            other.fingerprint()
        )),
        "{log}"
    );
    // The next post reaches the new key.
    let post = reader.compose_post(&cert, LIST, "After", "FOR-THE-NEW-KEY");
    assert_eq!(list.process(&post), "distributed to 2");
    let outbox = list.export_outbox();
    let copy = &outbox["alice@example.test"];
    assert!(other.decrypt(copy).is_ok());
    assert!(alice.decrypt(copy).is_err());
}

#[test]
fn removing_a_subscriber_drops_their_queued_copies() {
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    let (list, cert) = list_of(&[&alice, &reader]);
    let post = reader.compose_post(&cert, LIST, "Queued", "QUEUED");
    assert_eq!(list.process(&post), "distributed to 2");
    let out = list.run_ok(&["subscriber", "remove", "alice@example.test"]);
    assert_eq!(
        out.trim(),
        "removed alice@example.test (1 copies still queued for them dropped)"
    );
    let outbox = list.export_outbox();
    assert_eq!(outbox.keys().collect::<Vec<_>>(), ["reader@example.test"]);
}

#[test]
fn a_held_post_offers_only_an_attached_key_that_signed_it() {
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    let (list, cert) = list_of(&[&reader]);
    // A newcomer writes with their own key attached, signed with it.
    let dave = Subscriber::new(Engine::Gpg, "dave@example.test");
    let post = dave.compose(&cert, LIST, &Post::new("Hello", "LET-ME-JOIN").with_key());
    assert!(list.process(&post).starts_with("held: "));
    let shown = list.run_ok(&["held", "show", "1"]);
    assert!(
        shown.contains(&format!(
            "Attached key that signed this post: {} (for dave@example.test)",
            dave.fingerprint()
        )),
        "{shown}"
    );

    // A post signed with dave's key that carries another key made for his
    // address (anyone can attach any key): it signed nothing, so it is not
    // offered.
    let mallory = Subscriber::new(Engine::Gpg, "dave@example.test");
    let inner = with_key_attached(
        &text_plain_entity("MALLORY-AS-DAVE"),
        &mallory.public_key_armored(),
        "0000000000000000",
    );
    let armored = dave.encrypt(&inner, &cert, true).unwrap();
    let eml = multipart_encrypted_message(
        &[
            ("From".into(), "dave@example.test".into()),
            ("To".into(), LIST.into()),
            ("Subject".into(), "Hello again".into()),
        ],
        &armored,
    );
    assert!(list.process(&eml).starts_with("held: "));
    let shown = list.run_ok(&["held", "show", "2"]);
    assert!(!shown.contains("Attached key"), "{shown}");
    assert!(!shown.contains(mallory.fingerprint()), "{shown}");
}
