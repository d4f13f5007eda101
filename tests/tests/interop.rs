//! Interop: posts written by GnuPG, RNP and sq go through `conclave process`,
//! and every subscriber's own engine decrypts its copy and verifies the list
//! signature.

use conclave_tests::{
    require_all_engines, split_multipart_signed, Conclave, Engine, Post, Signing, Subscriber,
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
        // The real subject travels inside.
        assert!(
            text.contains("Subject: Interop"),
            "protected Subject inside: {}",
            &text[..text.len().min(600)]
        );
    }
}

fn run_author(engine: Engine) {
    let f = fixture();
    let author = f.subs.iter().find(|s| s.engine == engine).unwrap();
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
        let line = f.list.process(&post);
        assert_eq!(
            line,
            "distributed to 3",
            "{} post ({signing:?})",
            engine.name()
        );
        check_copies(&f, &body, i);
    }
}

#[test]
fn gnupg_posts_reach_every_client() {
    run_author(Engine::Gpg);
}

#[test]
fn rnp_posts_reach_every_client() {
    run_author(Engine::Rnp);
}

#[test]
fn sq_posts_reach_every_client() {
    run_author(Engine::Sq);
}
