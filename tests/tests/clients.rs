//! What subscribers' clients show: one list with many authors (a protected
//! `Sender:` naming the list, the author named in every mode and, on
//! request, in the outer `From:`), a carried author signature that verifies
//! where it is shown, replies that thread in every subscriber's copy, and
//! the options around them. Posts are written and copies read with GnuPG
//! and RNP; the list is the real `conclave` binary.

use std::process::Command;

use conclave_tests::mime::{
    all_text_plain, header, multipart_encrypted_message, new_message_id, rfc2822_now,
    text_plain_entity,
};
use conclave_tests::{pgp, Conclave, Engine, Subscriber};

const LIST: &str = "list@example.test";
const NAME: &str = "Garden Club";

struct Fixture {
    list: Conclave,
    cert: Vec<u8>,
    /// Alice, Bob, Carol, in that order.
    subs: Vec<Subscriber>,
}

fn fixture() -> Fixture {
    conclave_tests::require_programs(&["gpg", "rnp"]);
    let list = Conclave::new();
    list.init(LIST, NAME);
    let cert = list.list_cert();
    let subs = vec![
        Subscriber::with_user_id(
            Engine::Gpg,
            "alice@example.test",
            "Alice <alice@example.test>",
        ),
        Subscriber::with_user_id(Engine::Rnp, "bob@example.test", "Bob <bob@example.test>"),
        Subscriber::with_user_id(
            Engine::Gpg,
            "carol@example.test",
            "Carol <carol@example.test>",
        ),
    ];
    for s in &subs {
        list.add_subscriber(s);
        s.import_cert(&cert).unwrap();
    }
    Fixture { list, cert, subs }
}

/// A post by `author`: `inner_headers` (LF lines, protected headers as
/// Thunderbird writes them, or none as Mutt) on a text/plain body, signed
/// and encrypted in one message, with these outer headers beside the usual.
fn post(
    f: &Fixture,
    author: &Subscriber,
    inner_headers: &str,
    body: &str,
    outer: &[(&str, &str)],
) -> Vec<u8> {
    let mut inner = inner_headers.replace('\n', "\r\n").into_bytes();
    inner.extend_from_slice(&text_plain_entity(body));
    let armored = author.encrypt(&inner, &f.cert, true).unwrap();
    encrypted_post(author, &armored, outer)
}

/// A post by Alice with protected headers and `subject`, processed: the
/// line `conclave process` prints.
fn alice_posts(f: &Fixture, subject: &str, body: &str) -> String {
    let inner = format!("From: alice@example.test\nTo: list@example.test\nSubject: {subject}\n");
    let eml = post(f, &f.subs[0], &inner, body, &[("Subject", "...")]);
    f.list.process(&eml)
}

fn encrypted_post(author: &Subscriber, armored: &[u8], outer: &[(&str, &str)]) -> Vec<u8> {
    let mut headers: Vec<(String, String)> = vec![
        ("From".into(), author.address().into()),
        ("To".into(), LIST.into()),
        ("Date".into(), rfc2822_now()),
    ];
    if !outer.iter().any(|(k, _)| *k == "Message-ID") {
        headers.push(("Message-ID".into(), new_message_id(author.address())));
    }
    headers.extend(outer.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    multipart_encrypted_message(&headers, armored)
}

/// A subscriber's copy of the `round`th post (0-based): the whole message
/// and the entity the list signed, decrypted by the subscriber's engine.
fn copy_of(f: &Fixture, who: &Subscriber, round: usize) -> (Vec<u8>, String) {
    let copies = f.list.export_outbox();
    let key = if round == 0 {
        who.address().to_string()
    } else {
        format!("{}.{}", who.address(), round + 1)
    };
    let eml = copies
        .get(&key)
        .unwrap_or_else(|| panic!("no copy {key}: {:?}", copies.keys()))
        .clone();
    let d = who.decrypt(&eml).unwrap();
    let (signed, _) = d.split_signed().expect("the copy is multipart/signed");
    (eml, String::from_utf8_lossy(&signed).into_owned())
}

fn inner(copy: &str, name: &str) -> Option<String> {
    header(copy.as_bytes(), name)
}

#[test]
fn a_reply_threads_under_the_post_it_answers_in_every_subscribers_copy() {
    let f = fixture();
    let (alice, bob, carol) = (&f.subs[0], &f.subs[1], &f.subs[2]);

    // Alice writes as Thunderbird does: her Message-ID is protected too.
    let eml = post(
        &f,
        alice,
        "From: alice@example.test\nTo: list@example.test\nSubject: Seeds\nMessage-ID: <seeds-1@alice.example>\n",
        "Who has tomato seeds?",
        &[("Subject", "..."), ("Message-ID", "<seeds-1@alice.example>")],
    );
    assert_eq!(f.list.process(&eml), "distributed to 3");
    let mut outer_ids = Vec::new();
    for s in &f.subs {
        let (eml, copy) = copy_of(&f, s, 0);
        // Her own Message-ID inside (the host never sees it there), so her
        // client knows the post as hers; one outer ID for every copy.
        assert_eq!(
            inner(&copy, "Message-ID").as_deref(),
            Some("<seeds-1@alice.example>"),
            "{copy}"
        );
        outer_ids.push(header(&eml, "Message-ID").unwrap());
    }
    outer_ids.dedup();
    assert_eq!(
        outer_ids.len(),
        1,
        "one outer Message-ID for every copy: {outer_ids:?}"
    );
    let outer1 = outer_ids.remove(0);
    assert_ne!(
        outer1, "<seeds-1@alice.example>",
        "the author's ID stays inside"
    );

    // Bob answers the copy he received, naming its outer Message-ID, as a
    // client that threads by the outer ID does.
    let eml = post(
        &f,
        bob,
        &format!("From: bob@example.test\nTo: list@example.test\nSubject: Re: Seeds\nMessage-ID: <re-seeds@bob.example>\nIn-Reply-To: {outer1}\nReferences: {outer1}\n"),
        "I have some.",
        &[("Subject", "...")],
    );
    assert_eq!(f.list.process(&eml), "distributed to 3");
    let mut outer2 = Vec::new();
    for s in &f.subs {
        let (eml, copy) = copy_of(&f, s, 1);
        // Every copy names what every subscriber received for the post:
        // the outer ID, then Alice's own inside.
        assert_eq!(
            inner(&copy, "In-Reply-To").as_deref(),
            Some("<seeds-1@alice.example>"),
            "{copy}"
        );
        assert_eq!(
            inner(&copy, "References").as_deref(),
            Some(format!("{outer1} <seeds-1@alice.example>").as_str()),
            "{copy}"
        );
        // Outside, by default, nothing that tells the host the thread.
        assert_eq!(header(&eml, "In-Reply-To"), None);
        assert_eq!(header(&eml, "References"), None);
        outer2.push(header(&eml, "Message-ID").unwrap());
    }

    // Carol answers Bob from Mutt: no protected headers, the outer
    // In-Reply-To names the outer ID of her copy; and, as Delta Chat
    // does, a reply naming Alice's own ID is placed under her post too.
    f.list.config_set("outer_references", "true");
    let eml = post(
        &f,
        carol,
        "",
        "Me too.",
        &[
            ("Subject", "Re: Seeds"),
            ("In-Reply-To", &outer2[0]),
            (
                "References",
                &format!("<seeds-1@alice.example> {}", outer2[0]),
            ),
        ],
    );
    assert_eq!(f.list.process(&eml), "distributed to 3");
    for s in &f.subs {
        let (eml, copy) = copy_of(&f, s, 2);
        assert_eq!(
            inner(&copy, "In-Reply-To").as_deref(),
            Some("<re-seeds@bob.example>"),
            "{copy}"
        );
        assert_eq!(
            inner(&copy, "References").as_deref(),
            Some(
                format!(
                    "{outer1} <seeds-1@alice.example> {} <re-seeds@bob.example>",
                    outer2[0]
                )
                .as_str()
            ),
            "{copy}"
        );
        // With outer_references, outside carries the outer IDs only.
        assert_eq!(header(&eml, "In-Reply-To"), Some(outer2[0].clone()));
        assert_eq!(
            header(&eml, "References"),
            Some(format!("{outer1} {}", outer2[0]))
        );
    }
}

#[test]
fn a_gpg_se_post_carries_a_signature_gpg_verify_accepts() {
    let f = fixture();
    let (alice, carol) = (&f.subs[0], &f.subs[2]);
    // What `gpg -se` and Mutt's sign-and-encrypt make: a binary signature
    // over an entity with LF line endings.
    let inner = "Content-Type: text/plain; charset=us-ascii\n\nPlant the beans on Sunday.\n";
    let armored = alice.encrypt(inner.as_bytes(), &f.cert, true).unwrap();
    let eml = encrypted_post(alice, &armored, &[("Subject", "Beans")]);
    assert_eq!(f.list.process(&eml), "distributed to 3");
    let (_, copy) = copy_of(&f, carol, 0);
    assert!(!copy.contains("signature over the text"), "{copy}");
    let signed = pgp::find_armor(copy.as_bytes(), "MESSAGE").expect("the author's signed message");
    carol.import_cert(&alice.public_key_armored()).unwrap();
    let file = carol.home().join("signed-by-author.asc");
    std::fs::write(&file, &signed).unwrap();
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(carol.home())
        .args(["--batch", "--status-fd", "1", "--verify"])
        .arg(&file)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gpg --verify: {status}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status.contains(&format!("VALIDSIG {}", alice.fingerprint().to_uppercase()))
            && !status.contains("BADSIG"),
        "{status}"
    );
    // It is the author's text, as they signed it.
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(carol.home())
        .args(["--batch", "--decrypt"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), inner);
}

#[test]
fn every_copy_names_the_list_as_sender_and_the_author_in_the_text() {
    let f = fixture();
    assert_eq!(alice_posts(&f, "Hi", "HELLO-ALL"), "distributed to 3");
    let (eml, copy) = copy_of(&f, &f.subs[1], 0);
    // Delta Chat keeps the list's contact name when a Sender: is there.
    assert_eq!(
        inner(&copy, "Sender").as_deref(),
        Some("\"Garden Club\" <list@example.test>"),
        "{copy}"
    );
    assert_eq!(
        inner(&copy, "From").as_deref(),
        Some("\"Alice via Garden Club\" <list@example.test>")
    );
    // In the default (carry) mode too, the text says who wrote it, for
    // clients that read only the protected Subject (Mutt).
    let texts = all_text_plain(copy.as_bytes()).join("\n");
    assert!(
        texts.contains("From: Alice <alice@example.test>"),
        "{texts}"
    );
    assert!(texts.contains("HELLO-ALL"), "{texts}");
    // Outside, the list, unless the owner asks for the author.
    assert_eq!(
        header(&eml, "From").as_deref(),
        Some("\"Garden Club\" <list@example.test>")
    );
    f.list.config_set("outer_from_author", "true");
    assert_eq!(
        alice_posts(&f, "Hi again", "HELLO-AGAIN"),
        "distributed to 3"
    );
    let (eml, _) = copy_of(&f, &f.subs[1], 1);
    assert_eq!(
        header(&eml, "From").as_deref(),
        Some("\"Alice via Garden Club\" <list@example.test>")
    );
}

#[test]
fn without_deliver_selfsent_the_author_gets_no_copy() {
    let f = fixture();
    assert_eq!(alice_posts(&f, "One", "ONE"), "distributed to 3");
    f.list.config_set("deliver_selfsent", "false");
    assert_eq!(alice_posts(&f, "Two", "TWO"), "distributed to 2");
    let copies = f.list.export_outbox();
    let keys: Vec<&String> = copies.keys().collect();
    assert_eq!(
        keys,
        [
            "alice@example.test",
            "bob@example.test",
            "bob@example.test.2",
            "carol@example.test",
            "carol@example.test.2"
        ],
    );
}

#[test]
fn a_new_list_key_carries_the_lists_name() {
    let list = Conclave::new();
    list.init(LIST, NAME);
    let uids = pgp::cert_user_ids(&list.list_cert()).unwrap();
    assert_eq!(uids, ["Garden Club <list@example.test>"]);
}

#[test]
fn the_list_signature_carries_no_salt_notation() {
    use sequoia_openpgp::parse::Parse;
    let f = fixture();
    assert_eq!(alice_posts(&f, "Salt", "NO-SALT"), "distributed to 3");
    let (bob, carol) = (&f.subs[1], &f.subs[2]);
    let copies = f.list.export_outbox();
    let d = bob.decrypt(&copies[bob.address()]).unwrap();
    let (signed, sig) = d.split_signed().unwrap();
    // RNP and GnuPG accept it as the list's.
    bob.verify_detached(&signed, &sig, &f.cert).unwrap();
    carol.verify_detached(&signed, &sig, &f.cert).unwrap();
    // Mutt prints every notation of a signature it checks: there is none.
    let pile = sequoia_openpgp::PacketPile::from_bytes(&sig).unwrap();
    let sigs: Vec<_> = pile
        .children()
        .filter_map(|p| match p {
            sequoia_openpgp::Packet::Signature(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].notation_data().count(), 0, "{:?}", sigs[0]);
    assert!(sigs[0].issuer_fingerprints().next().is_some());
}
