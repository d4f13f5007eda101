//! Interop: posts written by GnuPG, RNP, sq and OpenPGP.js (with a v4
//! Curve25519, a v4 RSA-3072 and a v6 key) go through `conclave process`,
//! and every subscriber's own engine decrypts its copy and verifies the list
//! signature.

use conclave_tests::{
    require_all_engines, split_multipart_signed, Conclave, Engine, JsKey, Post, Signing, Subscriber,
};

const LIST: &str = "list@example.test";

struct Fixture {
    list: Conclave,
    list_cert: Vec<u8>,
    subs: Vec<Subscriber>,
}

fn fixture() -> Fixture {
    require_all_engines();
    let list = Conclave::new();
    list.init(LIST, "Interop List");
    let list_cert = list.list_cert();
    let subs = vec![
        Subscriber::new(Engine::Gpg, "alice@example.test"),
        Subscriber::new(Engine::Rnp, "bob@example.test"),
        Subscriber::new(Engine::Sq, "carol@example.test"),
        Subscriber::openpgpjs("dave@example.test", JsKey::Cv25519),
        Subscriber::openpgpjs("erin@example.test", JsKey::Rsa3072),
        Subscriber::openpgpjs("frank@example.test", JsKey::V6),
    ];
    for s in &subs {
        list.add_subscriber(s);
        s.import_cert(&list_cert).unwrap();
    }
    Fixture {
        list,
        list_cert,
        subs,
    }
}

/// Every subscriber decrypts its copy, sees it encrypted to its key alone,
/// verifies the list signature with its own engine, and finds the text.
/// `round` counts the posts already queued: export names a subscriber's
/// second copy `ADDR.2.eml`, and so on.
fn check_copies(f: &Fixture, body: &str, round: usize) {
    let copies = f.list.export_outbox();
    assert_eq!(
        copies.len(),
        f.subs.len() * (round + 1),
        "one copy per subscriber and post: {:?}",
        copies.keys()
    );
    for s in &f.subs {
        let key = if round == 0 {
            s.address().to_string()
        } else {
            format!("{}.{}", s.address(), round + 1)
        };
        let eml = copies.get(&key).unwrap_or_else(|| panic!("no copy {key}"));
        let outer = String::from_utf8_lossy(eml);
        assert!(
            outer.contains("Subject: ...\r\n"),
            "the outer subject is neutral"
        );
        assert!(
            !outer.contains(body),
            "the body must not be visible outside the encryption"
        );
        let d = s
            .decrypt(eml)
            .unwrap_or_else(|e| panic!("{} cannot decrypt its copy: {e}", s.engine.name()));
        assert!(
            d.encrypted_to(&s.public_key_armored()),
            "copy for {} is not encrypted to its key",
            s.address()
        );
        let others: Vec<_> = f
            .subs
            .iter()
            .filter(|o| o.address() != s.address())
            .collect();
        for o in &others {
            assert!(
                !d.encrypted_to(&o.public_key_armored()),
                "copy for {} also names {}",
                s.address(),
                o.address()
            );
        }
        let (signed, sig) =
            split_multipart_signed(&d.entity).expect("the copy is multipart/signed");
        let signer = s
            .verify_detached(&signed, &sig, &f.list_cert)
            .unwrap_or_else(|e| {
                panic!("{} cannot verify the list signature: {e}", s.engine.name())
            });
        assert_eq!(
            signer,
            conclave_tests::cert_fingerprint(&f.list_cert).unwrap(),
            "signed by the list key"
        );
        let text = String::from_utf8_lossy(&signed).into_owned();
        let plain = conclave_tests::mime::all_text_plain(&d.entity).join("\n");
        assert!(
            plain.contains(body) || text.contains(body),
            "{}'s copy lacks the post's text",
            s.address()
        );
        // The real subject travels inside; one from outside the
        // encryption (inline PGP) is marked as such.
        let subject = if round == 2 {
            "Subject: [unverified subject] Interop 2\r\n".to_string()
        } else {
            format!("Subject: Interop {round}\r\n")
        };
        assert!(
            text.contains(&subject),
            "protected Subject inside: {}",
            &text[..text.len().min(600)]
        );
    }
}

/// Each of the author's posts (PGP/MIME signed and encrypted in one
/// message, PGP/MIME `multipart/signed` inside, inline PGP in a plain text
/// body) is distributed and read by every engine. Returns how each post was
/// encrypted to the list ([`conclave_tests::pgp::encryption_container`]).
fn run_author(address: &str) -> Vec<String> {
    let f = fixture();
    let author = f.subs.iter().find(|s| s.address() == address).unwrap();
    let engine = author.engine;
    let mut containers = Vec::new();
    for (i, signing) in [Signing::Inline, Signing::MimeSigned]
        .into_iter()
        .enumerate()
    {
        let body = format!(
            "Hello from {} via {:?}, post {i}. Grüße!",
            engine.name(),
            signing
        );
        let post = author.compose(
            &f.list_cert,
            LIST,
            &Post::new(&format!("Interop {i}"), &body).signing(signing),
        );
        let armored = conclave_tests::extract_armored_message(&post).unwrap();
        containers.push(conclave_tests::pgp::encryption_container(&armored).unwrap());
        let line = f.list.process(&post);
        assert_eq!(
            line,
            format!("distributed to {}", f.subs.len()),
            "{} post ({signing:?})",
            engine.name()
        );
        check_copies(&f, &body, i);
    }
    // Inline PGP: the signed and encrypted text is the body itself.
    let body = format!("Inline PGP from {}. Grüße!", engine.name());
    let armored = author.encrypt(body.as_bytes(), &f.list_cert, true).unwrap();
    containers.push(conclave_tests::pgp::encryption_container(&armored).unwrap());
    let mut msg = format!(
        "From: {address}\r\nTo: {LIST}\r\nSubject: Interop 2\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    msg.extend_from_slice(&armored);
    assert_eq!(
        f.list.process(&msg),
        format!("distributed to {}", f.subs.len()),
        "{} inline post",
        engine.name()
    );
    check_copies(&f, &body, 2);
    containers
}

#[test]
fn gnupg_posts_reach_every_client() {
    run_author("alice@example.test");
}

#[test]
fn rnp_posts_reach_every_client() {
    run_author("bob@example.test");
}

#[test]
fn sq_posts_reach_every_client() {
    run_author("carol@example.test");
}

/// OpenPGP.js with its own defaults writes SEIPDv2 (AEAD) to the list key,
/// which advertises it; the list reads it.
fn js_posts_use_aead(containers: &[String]) {
    for c in containers {
        assert!(c.starts_with("SEIPDv2 "), "OpenPGP.js used {c}");
    }
}

#[test]
fn openpgpjs_curve25519_posts_reach_every_client() {
    js_posts_use_aead(&run_author("dave@example.test"));
}

#[test]
fn openpgpjs_rsa3072_posts_reach_every_client() {
    js_posts_use_aead(&run_author("erin@example.test"));
}

#[test]
fn openpgpjs_v6_key_posts_reach_every_client() {
    js_posts_use_aead(&run_author("frank@example.test"));
}

/// A subscriber who still holds the list key as lists made it before it
/// named AEAD preferences (SEIPDv2, nothing more) is sent OCB by OpenPGP.js,
/// the mode RFC 9580 makes mandatory: the post is read and distributed. The
/// list itself took the new self-signatures when its key was imported.
#[test]
fn openpgpjs_sends_ocb_to_a_list_key_without_aead_preferences() {
    use openpgp::cert::prelude::*;
    use openpgp::serialize::SerializeInto;
    use sequoia_openpgp as openpgp;
    require_all_engines();
    // The list key as `init --generate-key` made it before: Sequoia's
    // defaults, which advertise SEIPDv2 but no AEAD ciphersuite.
    let made = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    let (old, _) = CertBuilder::new()
        .set_profile(openpgp::Profile::RFC4880)
        .unwrap()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(made)
        .set_primary_key_flags(
            openpgp::types::KeyFlags::empty()
                .set_certification()
                .set_signing(),
        )
        .add_subkey(
            openpgp::types::KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        )
        .add_userid(LIST)
        .generate()
        .unwrap();
    let old_public = old.armored().to_vec().unwrap();
    let list = Conclave::new();
    let out = list.init_import(
        LIST,
        "Older List",
        &old.as_tsk().armored().to_vec().unwrap(),
    );
    assert!(
        out.contains("certified again") && out.contains("AEAD"),
        "{out}"
    );
    let list_cert = list.list_cert();
    let dave = Subscriber::openpgpjs("dave@example.test", JsKey::Cv25519);
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    // Dave's client still has the key from before (the testkit keeps one
    // copy per fingerprint, so he is given the new one only to check
    // signatures).
    list.add_subscriber(&dave);
    list.add_subscriber(&alice);
    alice.import_cert(&list_cert).unwrap();
    let body = "Sent with OCB to the key the subscriber had.";
    let post = dave.compose(&old_public, LIST, &Post::new("Interop OCB", body));
    let armored = conclave_tests::extract_armored_message(&post).unwrap();
    assert_eq!(
        conclave_tests::pgp::encryption_container(&armored).unwrap(),
        "SEIPDv2 AES-128-OCB"
    );
    assert_eq!(list.process(&post), "distributed to 2");
    let copies = list.export_outbox();
    for s in [&dave, &alice] {
        let d = s.decrypt(&copies[s.address()]).unwrap();
        let (signed, sig) = split_multipart_signed(&d.entity).unwrap();
        s.verify_detached(&signed, &sig, &list_cert)
            .unwrap_or_else(|e| panic!("{}: {e}", s.engine));
        assert!(String::from_utf8_lossy(&signed).contains(body));
    }
}

/// The outer headers carry what delivery and clients need (List-*, Autocrypt
/// with the list key) and nothing that leaks; the real headers travel inside;
/// the list signature is dated at the copy's `Date:`.
#[test]
fn copies_carry_list_headers_and_drop_leaky_ones() {
    use openpgp::parse::Parse;
    use sequoia_openpgp as openpgp;
    let f = fixture();
    let alice = &f.subs[0];
    let post = Post::new("Header check", "headers, please")
        .header("User-Agent", "LeakyMail 1.0")
        .header("X-Mailer", "LeakyMail 1.0")
        .header("Received", "from secret-laptop.home (10.1.2.3)");
    let msg = alice.compose(&f.list_cert, LIST, &post);
    assert_eq!(
        f.list.process(&msg),
        format!("distributed to {}", f.subs.len())
    );
    let copies = f.list.export_outbox();
    let eml = copies.get("bob@example.test").unwrap();
    let outer = String::from_utf8_lossy(eml);
    for h in [
        "List-Id: ",
        "List-Post: <mailto:list@example.test>",
        "List-Help: ",
        "List-Unsubscribe: ",
        "Autocrypt: addr=list@example.test; ",
    ] {
        assert!(outer.contains(h), "missing {h} in\n{outer}");
    }
    let bob = &f.subs[1];
    let d = bob.decrypt(eml).unwrap();
    let whole = String::from_utf8_lossy(&d.entity);
    for leak in ["LeakyMail", "secret-laptop", "10.1.2.3"] {
        assert!(
            !outer.contains(leak) && !whole.contains(leak),
            "{leak} leaked"
        );
    }
    // The original Message-ID stays behind unless the list keeps it.
    let original = conclave_tests::header(&msg, "Message-ID").unwrap();
    assert!(!outer.contains(original.trim()) && !whole.contains(original.trim()));

    // Autocrypt's keydata is the list key.
    let ac = conclave_tests::mime::header(eml, "Autocrypt").unwrap();
    let kd: String = ac
        .split("keydata=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    use base64::Engine as _;
    let kd = base64::engine::general_purpose::STANDARD
        .decode(kd)
        .unwrap();
    let ac_cert = openpgp::Cert::from_bytes(&kd).unwrap();
    assert_eq!(
        ac_cert.fingerprint().to_hex(),
        conclave_tests::cert_fingerprint(&f.list_cert).unwrap()
    );

    // The list signature is made at the Date: of the copy (within a minute).
    let (sig_time, inner_date, outer_date) = conclave_tests::pgp::copy_times(eml, &d.entity);
    let (signed, _) = split_multipart_signed(&d.entity).unwrap();
    let inner = mail_parser::MessageParser::default()
        .parse(&signed[..])
        .unwrap();
    assert!(
        (sig_time - inner_date).abs() <= 60,
        "signature {sig_time} vs inner Date {inner_date}"
    );
    assert!(
        (sig_time - outer_date).abs() <= 60,
        "signature {sig_time} vs outer Date {outer_date}"
    );
    assert_eq!(inner.subject(), Some("Header check"));
}

/// Inline PGP: an armored message in a text/plain body, signed and encrypted
/// by GnuPG. In `replace` mode the copy states who signed instead of carrying
/// the signature.
#[test]
fn inline_pgp_post_in_replace_mode() {
    let f = fixture();
    f.list.config_set("signature_mode", "replace");
    let alice = &f.subs[0];
    let body = "Inline PGP still exists, and works.";
    let armored = alice.encrypt(body.as_bytes(), &f.list_cert, true).unwrap();
    let mut msg = format!("From: alice@example.test\r\nTo: {LIST}\r\nSubject: inline\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n").into_bytes();
    msg.extend_from_slice(&armored);
    assert_eq!(
        f.list.process(&msg),
        format!("distributed to {}", f.subs.len())
    );
    let copies = f.list.export_outbox();
    let carol = &f.subs[2];
    let d = carol
        .decrypt(copies.get("carol@example.test").unwrap())
        .unwrap();
    let texts = conclave_tests::mime::all_text_plain(&d.entity).join("\n");
    assert!(texts.contains(body), "{texts}");
    assert!(
        texts.contains("-- The list verified this post --"),
        "{texts}"
    );
    assert!(
        texts.contains(&format!(
            "Signed by: alice@example.test, key {}",
            &alice.fingerprint()[..4]
        )),
        "{texts}"
    );
    // And no compression anywhere in the copy (gpg shows a compressed packet if there is one).
    let gpg_copy = copies.get("alice@example.test").unwrap();
    let armored = conclave_tests::extract_armored_message(gpg_copy).unwrap();
    let afile = f.list.write_aux("alice-copy.asc", &armored);
    let out = std::process::Command::new("gpg")
        .args([
            "--homedir",
            &alice.home().to_string_lossy(),
            "--batch",
            "--list-packets",
            &afile.to_string_lossy(),
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(":pubkey enc packet:"), "{listing}");
    assert!(
        listing.contains(":encrypted data packet:") || listing.contains("encrypted data"),
        "{listing}"
    );
    assert!(
        !listing.contains(":compressed packet:"),
        "copies must not be compressed:\n{listing}"
    );
    assert!(
        listing.contains("mdc_method: 2"),
        "SEIPDv1 with MDC:\n{listing}"
    );
}
