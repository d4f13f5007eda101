//! Real messages from real clients (Delta Chat core's corpus, see
//! tests/data/eml/deltachat/SOURCE.md), with a corpus key acting as the list key.

use std::path::PathBuf;

use conclave_tests::{require_programs, split_multipart_signed, Conclave, Engine, Subscriber};

fn data(rel: &str) -> PathBuf {
    conclave_tests::workspace_root()
        .join("tests/data")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A list whose key is `list_key` (a corpus secret key), with the corpus
/// author and a GnuPG reader subscribed.
fn list_with(
    list_addr: &str,
    list_key: &str,
    author: &str,
    author_key: &str,
) -> (Conclave, Subscriber) {
    require_programs(&["gpg"]);
    let list = Conclave::new();
    list.init_import(list_addr, "Corpus List", &read(list_key));
    let key = data(author_key);
    list.run_ok(&["subscriber", "add", author, "--key", &key.to_string_lossy()]);
    // The corpus was signed years ago; by default the list holds a
    // signature older than a week (`an_old_real_post_is_held_by_default`).
    list.config_set("max_signature_age_days", "0");
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    list.add_subscriber(&reader);
    (list, reader)
}

/// Alice's key in the Delta Chat messages.
const ALICE: &str = "keys/deltachat/alice-secret.asc";
/// Alice's key in the Thunderbird messages (the one Thunderbird attached).
const ALICE_TB: &str = "keys/deltachat/alice-thunderbird-public.asc";

fn accepted(file: &str, expect_subject: Option<&str>, alice_key: &str) {
    let (list, reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        alice_key,
    );
    let line = list.process(&read(&format!("eml/deltachat/{file}")));
    assert_eq!(line, "distributed to 2", "{file}");
    let copies = list.export_outbox();
    let copy = copies
        .get("reader@example.test")
        .expect("a copy for the reader");
    let d = reader
        .decrypt(copy)
        .unwrap_or_else(|e| panic!("{file}: the reader cannot decrypt: {e}"));
    let (signed, sig) = split_multipart_signed(&d.entity).expect("multipart/signed");
    let list_cert = list.list_cert();
    reader
        .verify_detached(&signed, &sig, &list_cert)
        .unwrap_or_else(|e| panic!("{file}: list signature: {e}"));
    let signed = String::from_utf8_lossy(&signed);
    assert!(
        signed.contains("From: \"Alice via Corpus List\" <bob@example.net>")
            || signed.contains("via Corpus List"),
        "{signed}"
    );
    if let Some(s) = expect_subject {
        assert!(
            signed.contains(&format!("Subject: {s}\r\n")),
            "{file}: protected subject {s:?} in\n{signed}"
        );
    }
    let log = list.run_ok(&["log"]);
    assert!(log.contains("distributed #1: 2 copies queued"), "{log}");
}

#[test]
fn an_old_real_post_is_held_by_default() {
    let (list, _reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        ALICE_TB,
    );
    list.config_set("max_signature_age_days", "7");
    let line = list.process(&read("eml/deltachat/thunderbird_encrypted_signed.eml"));
    assert!(
        line.starts_with("held: signed ")
            && line.ends_with(" days ago; this list takes signatures up to 7 days old"),
        "{line}"
    );
}

#[test]
fn thunderbird_signed_post_is_accepted() {
    accepted(
        "thunderbird_encrypted_signed.eml",
        Some("encrypted+signed"),
        ALICE_TB,
    );
}

#[test]
fn thunderbird_post_with_attached_key_is_accepted() {
    accepted(
        "thunderbird_encrypted_signed_with_pubkey.eml",
        None,
        ALICE_TB,
    );
}

#[test]
fn thunderbird_post_with_autocrypt_is_accepted() {
    accepted("thunderbird_with_autocrypt.eml", Some("Test"), ALICE);
}

/// Proton rearranges PGP/MIME into multipart/mixed with the control part and
/// the ciphertext as attachments. The corpus copy has its ciphertext removed
/// ("PGP PAYLOAD WAS HERE"), so it must be refused with that reason; the same
/// layout carrying real ciphertext must be accepted.
#[test]
fn proton_rearranged_post_is_accepted() {
    let (list, reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        ALICE,
    );
    let stripped = read("eml/deltachat/protonmail-mixed-up.eml");
    let line = list.process(&stripped);
    assert!(
        line.starts_with("rejected: cannot read the OpenPGP message"),
        "{line}"
    );

    // The same layout with a real post by a GnuPG user who is alice@example.org.
    let alice = Subscriber::new(Engine::Gpg, "alice@example.org");
    let key = alice.public_key_file();
    list.run_ok(&[
        "subscriber",
        "add",
        "alice@example.org",
        "--key",
        &key.to_string_lossy(),
        "--replace",
    ]);
    let inner = conclave_tests::mime::text_plain_entity("Proton layout, real ciphertext");
    let armored = alice.encrypt(&inner, &list.list_cert(), true).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&armored);
    let folded: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let text = String::from_utf8(stripped).unwrap();
    let real = text.replace("UEdQIFBBWUxPQUQgV0FTIEhFUkUK", &folded.join("\r\n"));
    assert_ne!(real, text);
    assert_eq!(list.process(real.as_bytes()), "distributed to 2");
    let copies = list.export_outbox();
    let d = reader
        .decrypt(copies.get("reader@example.test").unwrap())
        .unwrap();
    assert!(conclave_tests::mime::all_text_plain(&d.entity)
        .join("")
        .contains("Proton layout, real ciphertext"));
}

#[test]
fn google_workspace_rearranged_post_is_accepted() {
    accepted("google-workspace-mixed-up.eml", Some("Hello, Bob!"), ALICE);
}

#[test]
fn encapsulated_signature_post_is_accepted() {
    accepted("rfc1847_encapsulation.eml", Some("Hello, Bob!"), ALICE);
}

#[test]
fn delta_chat_posts_are_accepted() {
    accepted("encrypted-signed.eml", Some("Hi!"), ALICE);
    accepted(
        "text_from_alice_encrypted.eml",
        Some("Message from alice@example.org"),
        ALICE,
    );
}

#[test]
fn hidden_recipient_post_is_accepted() {
    accepted(
        "alice_to_bob_no_intended_recipient_fingerprint.eml",
        Some("Message from alice@example.org"),
        ALICE,
    );
}

#[test]
fn unsigned_thunderbird_post_is_held_then_approved() {
    let (list, reader) = list_with(
        "alice@example.org",
        "keys/deltachat/alice-secret.asc",
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
    );
    let line = list.process(&read("eml/deltachat/thunderbird_encrypted_unsigned.eml"));
    assert!(
        line.starts_with("held: not signed by the sender's key"),
        "{line}"
    );
    let held = list.run_ok(&["held", "list"]);
    assert!(
        held.starts_with("1\t") && held.contains("bob@example.net"),
        "{held}"
    );
    let shown = list.run_ok(&["held", "show", "1"]);
    assert!(shown.contains("Subject: Hello!"), "{shown}");
    assert!(shown.contains("Signature: not signed"), "{shown}");
    assert_eq!(
        list.run_ok(&["held", "approve", "1"]).trim(),
        "distributed to 2"
    );
    let copies = list.export_outbox();
    reader
        .decrypt(copies.get("reader@example.test").unwrap())
        .unwrap();
    assert!(list.run_ok(&["held", "list"]).trim().is_empty());
}

#[test]
fn passphrase_encrypted_posts_are_refused() {
    let (list, _reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        "keys/deltachat/alice-secret.asc",
    );
    for f in ["text_symmetrically_encrypted.eml", "stress.txt"] {
        let line = list.process(&read(&format!("eml/deltachat/{f}")));
        assert!(
            line.starts_with("rejected: encrypted with a passphrase"),
            "{f}: {line}"
        );
    }
    // No copy goes out; the sender, a subscriber, is told why.
    assert!(list.export_copies().is_empty());
}

#[test]
fn unencrypted_mail_is_refused_and_sealed() {
    let (list, _reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        "keys/deltachat/alice-secret.asc",
    );
    for f in [
        "thunderbird_signed_unencrypted.eml",
        "gmail_ndn.eml",
        "cp1252-html.eml",
        "list-from.eml",
        "schleuder.eml",
    ] {
        let line = list.process(&read(&format!("eml/deltachat/{f}")));
        // A delivery report is a bounce, never judged as a post; this one
        // names no copy the list sent.
        let expected = if f == "gmail_ndn.eml" {
            "bounce: a delivery report that names no copy the list sent; ignored"
        } else {
            "rejected: not encrypted"
        };
        assert!(line.starts_with(expected), "{f}: {line}");
    }
    // What arrived in clear is kept, but sealed to the list key.
    let store = conclave_core::store::Store::open(&list.home.path().join("list.db")).unwrap();
    for id in 1..=5 {
        let post = store.post(id).unwrap().unwrap();
        assert!(post.sealed, "post {id} must be stored sealed");
        assert!(
            !post.raw.windows(8).any(|w| w == b"Subject:"),
            "post {id} is stored in clear"
        );
    }
}

#[test]
fn a_message_that_panicked_another_parser_is_handled() {
    let (list, _reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        "keys/deltachat/alice-secret.asc",
    );
    let line = list.process(&read("eml/deltachat/mailparse-0.16.0-panic.eml"));
    assert!(
        line.starts_with("rejected: ") || line.starts_with("held: "),
        "{line}"
    );
}

/// Every fixture, whatever it is, gets exactly one outcome line, and the
/// command never crashes.
#[test]
fn every_fixture_gets_an_outcome() {
    let (list, _reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        ALICE,
    );
    let dir = data("eml/deltachat");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml" || e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 15);
    let args: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut argv = vec!["process"];
    argv.extend(args.iter().map(String::as_str));
    let out = list.run_ok(&argv);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), files.len(), "{out}");
    for (f, l) in files.iter().zip(&lines) {
        let known = [
            "distributed to ",
            "held: ",
            "rejected: ",
            "discarded: ",
            "bounce: ",
        ];
        assert!(
            known.iter().any(|k| l.starts_with(k)),
            "{}: {l}",
            f.display()
        );
    }
}

/// The real delivery reports are bounces before any policy (a report that
/// names no copy the list sent is ignored); a read receipt and a TLS report
/// are not, and meet the list's rules like any mail in clear.
#[test]
fn real_delivery_reports_are_bounces_and_other_reports_are_not() {
    let (list, _reader) = list_with(
        "bob@example.net",
        "keys/deltachat/bob-secret.asc",
        "alice@example.org",
        ALICE,
    );
    let mut files: Vec<_> = std::fs::read_dir(data("eml/bounces"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let line = list.process(&std::fs::read(&f).unwrap());
        let expected = match name.as_str() {
            "ms_exchange_report_disposition_notification.eml" | "tlsrpt.eml" => {
                "rejected: not encrypted"
            }
            _ => "bounce: a delivery report that names no copy the list sent; ignored",
        };
        assert!(line.starts_with(expected), "{name}: {line}");
    }
    assert!(list.export_outbox().is_empty(), "nobody is answered");
}
