//! A verified signature means "this subscriber wrote this, for this list,
//! recently": a subscriber's signed mail that someone else sends on to the
//! list, material beside what the signature covers, and headers the mail
//! host can change never go out as the author's. Each post here is built
//! and signed with GnuPG, as an attacker holding a subscriber's signed mail
//! would.

use std::sync::Arc;

use conclave_core::{List, ManualClock, Password};
use conclave_tests::mime::{
    header, multipart_encrypted_message, multipart_signed_entity, text_plain_entity,
};
use conclave_tests::{pgp, Conclave, Engine, Subscriber};

const LIST: &str = "list@example.test";

struct Fixture {
    list: Conclave,
    cert: Vec<u8>,
    alice: Subscriber,
    reader: Subscriber,
}

fn fixture() -> Fixture {
    conclave_tests::require_programs(&["gpg"]);
    let list = Conclave::new();
    list.init(LIST, "Bound");
    let cert = list.list_cert();
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    list.add_subscriber(&alice);
    list.add_subscriber(&reader);
    Fixture {
        list,
        cert,
        alice,
        reader,
    }
}

/// A text/plain entity with `headers` on it (protected headers, as
/// Thunderbird writes them on the part it signs).
fn part_with_headers(headers: &str, body: &str) -> Vec<u8> {
    let mut out = headers.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(&text_plain_entity(body));
    out
}

/// `signed` signed by `who` (detached), in a multipart/signed.
fn mime_signed(who: &Subscriber, signed: &[u8]) -> Vec<u8> {
    let sig = who.sign_detached(signed).unwrap();
    let micalg = pgp::signature_info(&sig).unwrap()[0].micalg.clone();
    multipart_signed_entity(signed, &sig, &micalg)
}

/// `inner` encrypted (not signed) to the list key, in a PGP/MIME message
/// with these outer headers: what anyone holding the public list key can send.
fn sent_on(f: &Fixture, inner: &[u8], outer: &[(&str, &str)]) -> Vec<u8> {
    let armored = f.alice.encrypt(inner, &f.cert, false).unwrap();
    let mut headers: Vec<(String, String)> = vec![
        ("From".into(), "alice@example.test".into()),
        ("To".into(), LIST.into()),
        ("Date".into(), conclave_tests::mime::rfc2822_now()),
        (
            "Message-ID".into(),
            conclave_tests::mime::new_message_id("alice@example.test"),
        ),
    ];
    headers.extend(outer.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    multipart_encrypted_message(&headers, &armored)
}

/// The entity the list signed in the reader's copy.
fn the_copy(f: &Fixture) -> String {
    let copies = f.list.export_outbox();
    let d = f.reader.decrypt(&copies[f.reader.address()]).unwrap();
    let (signed, _) = d.split_signed().unwrap();
    String::from_utf8_lossy(&signed).into_owned()
}

#[test]
fn a_signed_mail_for_someone_else_is_held() {
    let f = fixture();
    // Alice's private mail to Bob, as Thunderbird signs it: To inside.
    let private = part_with_headers("To: bob@example.org\nSubject: between us\n", "MEET-AT-NOON");
    let eml = sent_on(&f, &mime_signed(&f.alice, &private), &[("Subject", "...")]);
    let line = f.list.process(&eml);
    assert_eq!(
        line,
        "held: signed for someone else (To: bob@example.org), not for this list",
    );
    // No copy; alice alone is told, encrypted to her key.
    assert!(f.list.export_copies().is_empty());

    // The same mail written to the list goes out.
    let f = fixture();
    let post = part_with_headers(
        "To: Bound <list@example.test>\nCc: bob@example.org\nSubject: for all\n",
        "MEET-AT-NOON",
    );
    let eml = sent_on(&f, &mime_signed(&f.alice, &post), &[("Subject", "...")]);
    assert_eq!(f.list.process(&eml), "distributed to 2");
    assert!(the_copy(&f).contains("Subject: for all\r\n"));
}

#[test]
fn a_subject_on_the_multipart_signed_root_counts_for_nothing() {
    let f = fixture();
    let signed = mime_signed(&f.alice, &text_plain_entity("ROOT-HEADER-BODY"));
    // An unsigned Subject put on the root of the multipart/signed.
    let mut inner = b"Subject: Wire the money today\r\n".to_vec();
    inner.extend_from_slice(&signed);
    let eml = sent_on(&f, &inner, &[("Subject", "Minutes")]);
    assert_eq!(f.list.process(&eml), "distributed to 2");
    let copy = the_copy(&f);
    assert!(!copy.contains("Wire the money"), "{copy}");
    assert!(
        copy.contains("Subject: [unverified subject] Minutes\r\n"),
        "{copy}"
    );
}

#[test]
fn a_part_beside_the_signed_one_makes_a_post_unsigned() {
    let f = fixture();
    let signed = mime_signed(&f.alice, &text_plain_entity("SIGNED-PART"));
    // A third part, added after the signature.
    let at = signed
        .windows(2)
        .rposition(|w| w == b"--")
        .expect("closing delimiter");
    let closing_line = signed[..at].to_vec();
    let boundary_line = closing_line
        .rsplit(|b| *b == b'\n')
        .next()
        .unwrap()
        .to_vec();
    let mut inner = closing_line.clone();
    inner.extend_from_slice(
        b"\r\nContent-Type: text/plain\r\n\r\nADDED: send the keys to mallory\r\n",
    );
    inner.extend_from_slice(&boundary_line);
    inner.extend_from_slice(b"--\r\n");
    let eml = sent_on(&f, &inner, &[("Subject", "...")]);
    let line = f.list.process(&eml);
    assert!(
        line.starts_with("held: not signed by the sender's key")
            && line.contains("its multipart/signed has 3 parts instead of two"),
        "{line}"
    );
}

#[test]
fn text_around_a_clearsigned_block_makes_a_post_unsigned() {
    let f = fixture();
    let clear = f.alice.clearsign("CLEARSIGNED-TEXT\n").unwrap();
    let inline = |text: &[u8]| -> Vec<u8> {
        let armored = f.alice.encrypt(text, &f.cert, false).unwrap();
        let mut eml = format!(
            "From: alice@example.test\r\nTo: {LIST}\r\nSubject: inline\r\nMessage-ID: {}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
            conclave_tests::mime::new_message_id("alice@example.test")
        )
        .into_bytes();
        eml.extend_from_slice(&armored);
        eml
    };
    let mut added = clear.clone();
    added.extend_from_slice(b"\nP.S. the meeting moved to Mallory's place\n");
    let line = f.list.process(&inline(&added));
    assert!(
        line.starts_with("held: not signed by the sender's key")
            && line.contains("text outside its cleartext-signed block"),
        "{line}"
    );
    let mut before = b"Forwarded:\n".to_vec();
    before.extend_from_slice(&clear);
    let line = f.list.process(&inline(&before));
    assert!(
        line.contains("text outside its cleartext-signed block"),
        "{line}"
    );
    // The block alone, with blank lines around it, is signed.
    let mut alone = b"\n\n".to_vec();
    alone.extend_from_slice(&clear);
    alone.extend_from_slice(b"\n\n");
    assert_eq!(f.list.process(&inline(&alone)), "distributed to 2");
}

#[test]
fn an_old_signature_is_held_saying_how_old() {
    let f = fixture();
    let eml = f
        .alice
        .compose_post(&f.cert, LIST, "Old", "SIGNED-LONG-AGO");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The list reads the post ten days after it was signed.
    let clock = Arc::new(ManualClock::at_unix(now + 10 * 86_400));
    let later = Arc::new(ManualClock::at_unix(now + 6 * 86_400));
    let mut list = List::open(f.list.home.path(), clock.clone()).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    let outcome = list.receive(&eml).unwrap();
    let text = format!("{outcome:?}");
    assert!(
        text.contains("signed 10 days ago; this list takes signatures up to 7 days old"),
        "{text}"
    );
    // Six days after: within the limit.
    drop(list);
    let f = fixture();
    let eml = f
        .alice
        .compose_post(&f.cert, LIST, "Recent", "SIGNED-RECENTLY");
    let mut list = List::open(f.list.home.path(), later).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    let outcome = list.receive(&eml).unwrap();
    assert!(
        format!("{outcome:?}").contains("Distributed"),
        "{outcome:?}"
    );
}

#[test]
fn headers_from_outside_the_encryption_are_not_the_authors() {
    let f = fixture();
    f.list.config_set("keep_message_id", "true");
    // No protected headers at all, as Mutt and K-9 send: the outer ones are
    // the mail host's to change.
    let inner = mime_signed(&f.alice, &text_plain_entity("OUTSIDE-HEADERS"));
    let eml = sent_on(
        &f,
        &inner,
        &[
            ("Subject", "Board decision"),
            ("In-Reply-To", "<thread@elsewhere.example>"),
            (
                "References",
                "<thread@elsewhere.example> <0123456789abcdef0123456789abcdef@example.test>",
            ),
        ],
    );
    // An outer Message-ID with a bare CR in it.
    let eml = String::from_utf8(eml)
        .unwrap()
        .replacen("Message-ID: <", "Message-ID: <x\rInjected: 1", 1)
        .into_bytes();
    assert_eq!(f.list.process(&eml), "distributed to 2");
    let copy = the_copy(&f);
    assert!(
        copy.contains("Subject: [unverified subject] Board decision\r\n"),
        "{copy}"
    );
    assert!(!copy.contains("elsewhere.example"), "{copy}");
    assert!(
        copy.contains("References: <0123456789abcdef0123456789abcdef@example.test>\r\n"),
        "{copy}"
    );
    assert!(!copy.contains("Injected"), "{copy}");
    let bare_cr = copy
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\r' && w[1] != b'\n');
    assert!(!bare_cr, "a bare CR in the signed copy: {copy:?}");

    // Headers the author signed are theirs, the Message-ID too.
    let f = fixture();
    f.list.config_set("keep_message_id", "true");
    let post = part_with_headers(
        "To: list@example.test\nSubject: Board decision, signed\nMessage-ID: <signed-id@example.test>\nIn-Reply-To: <earlier@example.test>\n",
        "INSIDE-HEADERS",
    );
    let eml = sent_on(&f, &mime_signed(&f.alice, &post), &[("Subject", "...")]);
    assert_eq!(f.list.process(&eml), "distributed to 2");
    let copy = the_copy(&f);
    assert!(
        copy.contains("Subject: Board decision, signed\r\n"),
        "{copy}"
    );
    assert_eq!(
        header(copy.as_bytes(), "Message-ID").as_deref(),
        Some("<signed-id@example.test>")
    );
    assert_eq!(
        header(copy.as_bytes(), "In-Reply-To").as_deref(),
        Some("<earlier@example.test>")
    );
}
