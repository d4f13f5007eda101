//! Hostile and malformed input: each case gets its documented outcome, with a
//! reason the owner can read; nothing is dropped silently, the ciphertext is
//! kept, and nothing panics.

use std::io::Write;

use conclave_core::crypto::decrypt;
use conclave_core::crypto::keystore::{FileKeystore, ListKeystore};
use conclave_core::store::{PostState, Store};
use conclave_core::Password;
use conclave_tests::mime::{
    multipart_encrypted_message, multipart_signed_entity, text_plain_entity,
};
use conclave_tests::{pgp, Conclave, Engine, Post, Signing, Subscriber};
use openpgp::parse::Parse;
use openpgp::serialize::stream::{Compressor, Encryptor, LiteralWriter, Message, Recipient};
use openpgp::serialize::Serialize;
use sequoia_openpgp as openpgp;

const LIST: &str = "list@example.test";

struct Fixture {
    list: Conclave,
    cert: Vec<u8>,
    alice: Subscriber,
    bob: Subscriber,
}

fn fixture() -> Fixture {
    conclave_tests::require_programs(&["gpg"]);
    let list = Conclave::new();
    list.init(LIST, "Hostile");
    let cert = list.list_cert();
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    let bob = Subscriber::new(Engine::Gpg, "bob@example.test");
    list.add_subscriber(&alice);
    list.add_subscriber(&bob);
    Fixture {
        list,
        cert,
        alice,
        bob,
    }
}

fn headers(from: &str) -> Vec<(String, String)> {
    vec![
        ("From".into(), from.into()),
        ("To".into(), LIST.into()),
        ("Subject".into(), "...".into()),
        ("Date".into(), "Tue, 24 Nov 2026 10:00:00 +0000".into()),
        (
            "Message-ID".into(),
            format!("<{}@example.test>", rand_tag()),
        ),
    ]
}

fn rand_tag() -> String {
    let mut b = [0u8; 8];
    openpgp::crypto::random(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks that post `id` was kept with its state and reason, and that what is
/// stored opens with the list key to exactly the message as received.
fn kept(f: &Fixture, id: i64, state: PostState, input: &[u8]) {
    let store = Store::open(&f.list.home.path().join("list.db")).unwrap();
    let post = store
        .post(id)
        .unwrap()
        .unwrap_or_else(|| panic!("post {id} was not kept"));
    assert_eq!(post.state, state, "post {id}: {}", post.reason);
    assert!(!post.reason.is_empty(), "post {id} has no reason");
    assert!(post.sealed, "post {id} must be stored sealed");
    let pw = Password::from(conclave_tests::TEST_PASSPHRASE);
    let mut ks = FileKeystore::open(f.list.home.path(), &pw).unwrap();
    let opened = decrypt::open(
        &post.raw,
        ks.decryptors().unwrap(),
        &[],
        std::time::SystemTime::now(),
        1 << 30,
    )
    .unwrap();
    assert_eq!(
        opened.plaintext, input,
        "post {id} must be kept exactly as received"
    );
    let log = f.list.run_ok(&["log"]);
    assert!(
        log.contains(&format!(" #{id}: ")),
        "post {id} missing from the audit log:\n{log}"
    );
}

#[test]
fn malformed_mime_is_rejected_and_kept() {
    let f = fixture();
    let garbage = b"\x00\x01\x02 this is not mail \xff\xfe";
    let line = f.list.process(garbage);
    assert!(line.starts_with("rejected: "), "{line}");
    kept(&f, 1, PostState::Rejected, garbage);

    // A multipart/encrypted whose parts never close.
    let broken = b"From: alice@example.test\r\nTo: list@example.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--x\r\nContent-Type: application/octet-stream\r\n\r\nnot openpgp at all\r\n";
    let line = f.list.process(broken);
    assert!(
        line.starts_with("rejected: cannot read the OpenPGP message"),
        "{line}"
    );
    kept(&f, 2, PostState::Rejected, broken);
}

#[test]
fn truncated_armor_is_rejected_and_kept() {
    let f = fixture();
    let post = f
        .alice
        .compose_post(&f.cert, LIST, "cut", "this post is cut short");
    let text = String::from_utf8(post).unwrap();
    let start = text.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = text.find("-----END PGP MESSAGE-----").unwrap();
    let cut = start + (end - start) / 2;
    let truncated = format!("{}\r\n--{}", &text[..cut], "");
    let line = f.list.process(truncated.as_bytes());
    assert!(
        line.starts_with("rejected: cannot read the OpenPGP message"),
        "{line}"
    );
    kept(&f, 1, PostState::Rejected, truncated.as_bytes());
}

#[test]
fn data_without_mdc_is_rejected_as_efail() {
    let f = fixture();
    // A PKESK to the list key followed by a Symmetrically Encrypted Data
    // packet (tag 9, no integrity protection).
    let cert = openpgp::Cert::from_bytes(&f.cert).unwrap();
    let p = openpgp::policy::StandardPolicy::new();
    let key = cert
        .keys()
        .with_policy(&p, None)
        .for_transport_encryption()
        .next()
        .unwrap()
        .key()
        .clone();
    let sk = openpgp::crypto::SessionKey::new(32).unwrap();
    let pkesk = openpgp::packet::pkesk::PKESK3::for_recipient(
        openpgp::types::SymmetricAlgorithm::AES256,
        &sk,
        &key,
    )
    .unwrap();
    let mut bin = Vec::new();
    openpgp::Packet::from(pkesk).serialize(&mut bin).unwrap();
    bin.push(0xC9); // new-format header, tag 9
    bin.push(64);
    let mut body = [0u8; 64];
    openpgp::crypto::random(&mut body).unwrap();
    bin.extend_from_slice(&body);
    let mut armored = Vec::new();
    {
        let mut w =
            openpgp::armor::Writer::new(&mut armored, openpgp::armor::Kind::Message).unwrap();
        w.write_all(&bin).unwrap();
        w.finalize().unwrap();
    }
    let msg = multipart_encrypted_message(&headers("alice@example.test"), &armored);
    let line = f.list.process(&msg);
    assert!(
        line.starts_with("rejected: the encrypted data has no integrity protection (no MDC)"),
        "{line}"
    );
    kept(&f, 1, PostState::Rejected, &msg);
}

#[test]
fn compression_bomb_is_rejected() {
    let f = fixture();
    f.list.config_set("max_message_size_kb", "1024"); // plaintext limit: 8 MiB
    let cert = openpgp::Cert::from_bytes(&f.cert).unwrap();
    let p = openpgp::policy::StandardPolicy::new();
    let recipients: Vec<Recipient> = cert
        .keys()
        .with_policy(&p, None)
        .for_transport_encryption()
        .map(Recipient::from)
        .collect();
    let mut armored = Vec::new();
    {
        let m = Message::new(&mut armored);
        let m = openpgp::serialize::stream::Armorer::new(m).build().unwrap();
        let m = Encryptor::for_recipients(m, recipients).build().unwrap();
        let m = Compressor::new(m)
            .algo(openpgp::types::CompressionAlgorithm::Zlib)
            .level(openpgp::types::CompressionLevel::best())
            .build()
            .unwrap();
        let mut w = LiteralWriter::new(m).build().unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            w.write_all(&zeros).unwrap(); // 64 MiB of zeros
        }
        w.finalize().unwrap();
    }
    assert!(
        armored.len() < 512 * 1024,
        "the bomb itself is small: {}",
        armored.len()
    );
    let msg = multipart_encrypted_message(&headers("alice@example.test"), &armored);
    let line = f.list.process(&msg);
    assert!(
        line.starts_with(
            "rejected: decrypted content exceeds 8192 KiB; refused as a likely compression bomb"
        ),
        "{line}"
    );
    kept(&f, 1, PostState::Rejected, &msg);
}

#[test]
fn post_signed_by_another_subscriber_is_rejected() {
    let f = fixture();
    // Bob signs, but claims to be Alice.
    let mut post = Post::new("spoof", "I am Alice, honestly");
    post.from = Some("alice@example.test".into());
    let msg = f.bob.compose(&f.cert, LIST, &post);
    let line = f.list.process(&msg);
    assert!(
        line.starts_with(&format!(
            "rejected: signed by bob@example.test (key {}), but From: says alice@example.test",
            f.bob.fingerprint()
        )),
        "{line}"
    );
    kept(&f, 1, PostState::Rejected, &msg);
    assert!(f.list.export_copies().is_empty());
}

#[test]
fn unsigned_post_on_signed_only_list() {
    let f = fixture();
    let msg = f
        .alice
        .compose_unsigned_post(&f.cert, LIST, "unsigned", "no signature here");
    // Default: held for the owner.
    let line = f.list.process(&msg);
    assert_eq!(
        line,
        "held: not signed by the sender's key: this list accepts signed posts only"
    );
    kept(&f, 1, PostState::Held, &msg);
    // Stricter: rejected.
    f.list.config_set("receive_signed_only", "reject");
    let msg2 = f
        .alice
        .compose_unsigned_post(&f.cert, LIST, "unsigned", "no signature here either");
    let line = f.list.process(&msg2);
    assert_eq!(
        line,
        "rejected: not signed by the sender's key: this list accepts signed posts only"
    );
    kept(&f, 2, PostState::Rejected, &msg2);
    // The owner approves the held one; it goes out.
    assert_eq!(
        f.list.run_ok(&["held", "approve", "1"]).trim(),
        "distributed to 2"
    );
}

#[test]
fn replayed_post_is_rejected() {
    let f = fixture();
    let msg = f.alice.compose_post(&f.cert, LIST, "once", "say it once");
    assert_eq!(f.list.process(&msg), "distributed to 2");
    let line = f.list.process(&msg);
    assert!(
        line.starts_with("rejected: replayed: the same signed post arrived before as post #1"),
        "{line}"
    );
    kept(&f, 2, PostState::Rejected, &msg);

    // Bob takes Alice's signed original (which every subscriber receives)
    // and encrypts it to the list again: a new ciphertext, the same signature.
    let text = text_plain_entity("Alice's words, replayed by Bob");
    let sig = f.alice.sign_detached(&text).unwrap();
    let micalg = pgp::signature_info(&sig).unwrap()[0].micalg.clone();
    let signed = multipart_signed_entity(&text, &sig, &micalg);
    let first = multipart_encrypted_message(
        &headers("alice@example.test"),
        &f.bob.encrypt(&signed, &f.cert, false).unwrap(),
    );
    let again = multipart_encrypted_message(
        &headers("alice@example.test"),
        &f.bob.encrypt(&signed, &f.cert, false).unwrap(),
    );
    assert_eq!(f.list.process(&first), "distributed to 2");
    let line = f.list.process(&again);
    assert!(
        line.starts_with("rejected: replayed: the same signed post arrived before as post #3"),
        "{line}"
    );
    kept(&f, 4, PostState::Rejected, &again);
}

/// A post its sender did not sign is known again by its decrypted content:
/// processed three times (as it arrived, or encrypted anew), it goes out once.
#[test]
fn an_unsigned_post_is_not_distributed_twice() {
    let f = fixture();
    f.list.config_set("receive_signed_only", "distribute");
    let msg = f
        .alice
        .compose_unsigned_post(&f.cert, LIST, "unsigned", "UNSIGNED-ONCE");
    assert_eq!(f.list.process(&msg), "distributed to 2");
    for _ in 0..2 {
        let line = f.list.process(&msg);
        assert!(
            line.starts_with("rejected: replayed: the same post (the same decrypted content) arrived before as post #1"),
            "{line}"
        );
    }
    // The same text encrypted again: a new ciphertext, the same content.
    let inner = f.bob.compose_inner(
        &Post::new("unsigned", "UNSIGNED-ONCE").signing(Signing::Unsigned),
        LIST,
    );
    let first = multipart_encrypted_message(
        &headers("bob@example.test"),
        &f.bob.encrypt(&inner, &f.cert, false).unwrap(),
    );
    let again = multipart_encrypted_message(
        &headers("bob@example.test"),
        &f.bob.encrypt(&inner, &f.cert, false).unwrap(),
    );
    assert_eq!(f.list.process(&first), "distributed to 2");
    assert!(f.list.process(&again).starts_with("rejected: replayed:"));
    assert_eq!(
        f.list.export_copies().len(),
        4,
        "two posts, two copies each"
    );
    kept(&f, 5, PostState::Rejected, &again);
}

#[test]
fn oversized_post_is_refused_before_decryption() {
    let f = fixture();
    f.list.config_set("max_message_size_kb", "4");
    // Random text, so that compression cannot shrink it under the limit.
    let mut noise = vec![0u8; 4500];
    openpgp::crypto::random(&mut noise).unwrap();
    use base64::Engine as _;
    let big = base64::engine::general_purpose::STANDARD.encode(&noise);
    let msg = f.alice.compose(
        &f.cert,
        LIST,
        &Post::new("big", &big).signing(Signing::Inline),
    );
    let line = f.list.process(&msg);
    assert!(line.starts_with("rejected: too large: "), "{line}");
    assert!(line.ends_with("the limit is 4 KiB"), "{line}");
    kept(&f, 1, PostState::Rejected, &msg);
    f.list.config_set("max_message_size_action", "hold");
    let msg2 = f.alice.compose(
        &f.cert,
        LIST,
        &Post::new("big", &format!("{big}y")).signing(Signing::Inline),
    );
    assert!(f.list.process(&msg2).starts_with("held: too large: "));
    // Approving bypasses the limit.
    assert_eq!(
        f.list.run_ok(&["held", "approve", "2"]).trim(),
        "distributed to 2"
    );
}

#[test]
fn non_subscriber_is_held() {
    let f = fixture();
    let mallory = Subscriber::new(Engine::Gpg, "mallory@example.test");
    let msg = mallory.compose_post(&f.cert, LIST, "hi", "let me in");
    let line = f.list.process(&msg);
    assert!(
        line.starts_with("held: mallory@example.test is not a subscriber"),
        "{line}"
    );
    kept(&f, 1, PostState::Held, &msg);
    f.list
        .run_ok(&["held", "reject", "1", "--reason", "not a member"]);
    let log = f.list.run_ok(&["log"]);
    assert!(
        log.contains("rejected #1: rejected by the owner: not a member"),
        "{log}"
    );
}

/// A subscriber whose clock runs a little ahead of the list's still gets
/// through: the signature is "made in the future" by ten minutes, inside the
/// skew OpenPGP implementations allow. Two hours ahead is refused, with the
/// reason, and the post is kept.
#[test]
fn a_sender_clock_a_little_ahead_is_tolerated() {
    let f = fixture();
    f.alice.set_clock_ahead(10 * 60);
    let msg = f
        .alice
        .compose_post(&f.cert, LIST, "ten minutes ahead", "my clock is fast");
    assert_eq!(f.list.process(&msg), "distributed to 2");
    f.alice.set_clock_ahead(2 * 3600);
    let msg = f
        .alice
        .compose_post(&f.cert, LIST, "two hours ahead", "my clock is far off");
    let line = f.list.process(&msg);
    assert!(
        line.starts_with(&format!(
            "rejected: bad signature by key {}",
            f.alice.fingerprint()
        )) && line.contains("made 120 minutes ahead of this machine's clock"),
        "{line}"
    );
    kept(&f, 2, PostState::Rejected, &msg);
}

/// After posts carrying a unique canary (distributed, held, and one sent in
/// clear and refused), no file under the list home and no exported copy
/// contains it.
#[test]
fn no_plaintext_at_rest() {
    let f = fixture();
    let canary = format!("CANARY-{}", rand_tag());
    let msg = f.alice.compose_post(
        &f.cert,
        LIST,
        &format!("subject {canary}"),
        &format!("body {canary}"),
    );
    assert_eq!(f.list.process(&msg), "distributed to 2");
    let held = f.alice.compose_unsigned_post(
        &f.cert,
        LIST,
        &format!("held {canary}"),
        &format!("held body {canary}"),
    );
    assert!(f.list.process(&held).starts_with("held: "));
    let clear = format!(
        "From: alice@example.test\r\nTo: {LIST}\r\nSubject: {canary}\r\n\r\nclear {canary}\r\n"
    );
    assert!(f
        .list
        .process(clear.as_bytes())
        .starts_with("rejected: not encrypted"));
    let shown = f.list.run_ok(&["held", "show", "2"]);
    assert!(
        shown.contains(&canary),
        "the owner can read the held post: {shown}"
    );

    // The copies, and the notices to alice, hold no plaintext.
    assert_eq!(f.list.export_copies().len(), 2);
    let copies = f.list.export_outbox();
    for (name, eml) in &copies {
        assert!(
            !contains(eml, canary.as_bytes()),
            "copy {name} holds the canary in clear"
        );
    }
    let mut files = 0;
    for entry in walk(f.list.home.path()) {
        let data = std::fs::read(&entry).unwrap();
        files += 1;
        assert!(
            !contains(&data, canary.as_bytes()),
            "{} holds the canary in clear",
            entry.display()
        );
    }
    assert!(files >= 2, "the home holds the store and the key");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A message to the list's request address (what a client's
/// List-Unsubscribe button sends) is never distributed, even signed and
/// encrypted: it is read as a command and answered, never copied to the
/// subscribers.
#[test]
fn a_message_to_the_request_address_is_not_a_post() {
    let list = Conclave::new();
    list.init(LIST, "Request List");
    let cert = list.list_cert();
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    list.add_subscriber(&alice);
    let unsubscribe = b"Delivered-To: list+request@example.test\r\nFrom: alice@example.test\r\nTo: list+request@example.test\r\nSubject: unsubscribe\r\nMessage-ID: <u1@example.test>\r\n\r\nunsubscribe\r\n";
    let out = list.process(unsubscribe);
    assert!(
        out.starts_with("request: unsubscribe from alice@example.test"),
        "{out}"
    );
    let signed = alice.compose(
        &cert,
        "list+request@example.test",
        &Post::new("help", "help"),
    );
    let out = list.process(&signed);
    assert!(
        out.starts_with("request: help from alice@example.test"),
        "{out}"
    );
    // The only mail queued is the list's answers to alice, no copy.
    assert!(list.export_copies().is_empty(), "no copies");
    // A post to the list itself, delivered there, still goes out.
    let mut post = b"Delivered-To: list@example.test\r\n".to_vec();
    post.extend_from_slice(&alice.compose_post(&cert, LIST, "a post", "POST-NOT-REQUEST"));
    assert_eq!(list.process(&post), "distributed to 1");
}

/// A message on which the OpenPGP library panics (sequoia-openpgp 2.4.2,
/// a truncated encrypted packet after the session key is found) is refused
/// with "internal error", its ciphertext kept, and the next post goes out:
/// it once killed `conclave process` with exit 101.
#[test]
fn a_message_that_panics_the_openpgp_library_is_refused_and_kept() {
    let root = conclave_tests::workspace_root().join("tests/data");
    let key = std::fs::read(root.join("keys/deltachat/alice-secret.asc")).unwrap();
    let crash =
        std::fs::read(root.join("eml/crashes/seipdv1-truncated-after-session-key.eml")).unwrap();
    let list = Conclave::new();
    list.init_import("alice@example.org", "Crash List", &key);
    let f = list.write_aux("crash.eml", &crash);
    let out = list
        .cmd()
        .env_remove("RUST_BACKTRACE")
        .arg("process")
        .arg(&f)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    assert!(
        stdout.starts_with("rejected: internal error while reading the OpenPGP message"),
        "{stdout}"
    );
    assert!(
        stderr.lines().count() <= 1,
        "at most one line about the panic: {stderr}"
    );
    let store = Store::open(&list.home.path().join("list.db")).unwrap();
    let kept = store.posts_in_state(PostState::Rejected).unwrap();
    assert_eq!(kept.len(), 1, "the ciphertext is kept");
    // The next post is handled as ever.
    let cert = list.list_cert();
    let bob = Subscriber::new(Engine::Gpg, "bob@example.test");
    list.add_subscriber(&bob);
    let post = bob.compose_post(&cert, "alice@example.org", "after", "AFTER-THE-CRASH");
    assert_eq!(list.process(&post), "distributed to 1");
}

/// Escape sequences in a post (a subject that sets the window title, a body
/// that writes the clipboard with OSC 52, a line break that draws a fake
/// "Signature:" line) never reach the owner's terminal as such: `process`,
/// `held list`, `held show` and `log` print them inert.
#[test]
fn terminal_output_is_inert() {
    let list = Conclave::new();
    list.init(LIST, "Inert List");
    let cert = list.list_cert();
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    list.add_subscriber(&alice);
    // An unsigned post is held; its subject and body carry escapes.
    let subject = "=?utf-8?q?Hi=1B]0;pwned=07=0ASignature:_signed_by_alice?=";
    let body = "text \u{1b}]52;c;cHduZWQ=\u{7} and \u{9b}2J done";
    let post = alice.compose(
        &cert,
        LIST,
        &Post::new(subject, body).signing(Signing::Unsigned),
    );
    let held = list.process(&post);
    assert!(held.starts_with("held:"), "{held}");
    let id = held_id(&list);
    for args in [
        vec!["held", "list"],
        vec!["held", "show", id.as_str()],
        vec!["log"],
    ] {
        let out = list.run(&args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{args:?} printed a control character: {text:?}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("Signature: signed by alice")),
            "{args:?} drew a fake signature line: {text}"
        );
    }
    let shown = list.run_ok(&["held", "show", id.as_str()]);
    assert!(
        shown.contains("text \u{FFFD}]52;c;cHduZWQ=\u{FFFD} and \u{FFFD}2J done"),
        "{shown}"
    );
}

/// The id of the only held post.
fn held_id(list: &Conclave) -> String {
    list.run_ok(&["held", "list"])
        .split('\t')
        .next()
        .unwrap()
        .trim()
        .to_string()
}

/// The name a copy shows comes from the verified subscriber's key, never
/// from the sender's `From:` header: Mallory, a subscriber, cannot appear
/// as "Alice (treasurer) via List", and the "signed by" statement of
/// `signature_mode replace` names him as his key does.
#[test]
fn a_copy_names_the_author_as_their_key_does() {
    let list = Conclave::new();
    list.init(LIST, "Names List");
    let cert = list.list_cert();
    let mallory = Subscriber::with_user_id(
        Engine::Gpg,
        "mallory@example.test",
        "Mallory <mallory@example.test>",
    );
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    list.add_subscriber(&mallory);
    list.add_subscriber(&reader);
    for mode in ["carry", "replace"] {
        list.config_set("signature_mode", mode);
        let mut post = Post::new("Budget", &format!("NAMES-{mode}"));
        post.from = Some("\"Alice (treasurer)\" <mallory@example.test>".into());
        let eml = mallory.compose(&cert, LIST, &post);
        assert_eq!(list.process(&eml), "distributed to 2", "{mode}");
    }
    let copies = list.export_outbox();
    for key in ["reader@example.test", "reader@example.test.2"] {
        let d = reader.decrypt(&copies[key]).unwrap();
        let (signed, _) = d.split_signed().unwrap();
        // The copy's own From (the first one; the author's signed
        // original travels inside, with the headers they signed).
        let from = conclave_tests::mime::header(&signed, "From").unwrap_or_default();
        assert!(
            !from.contains("Alice"),
            "{key}: the header's name leaked: {from}"
        );
        assert!(
            from == "\"Mallory via Names List\" <list@example.test>"
                || from == "Mallory via Names List <list@example.test>",
            "{key}: {from}"
        );
    }
    let replaced = reader.decrypt(&copies["reader@example.test.2"]).unwrap();
    let texts = conclave_tests::mime::all_text_plain(&replaced.entity).join("\n");
    assert!(
        texts.contains("From: Mallory <mallory@example.test>"),
        "{texts}"
    );
}
