//! Self-test of the testkit (no `conclave` binary needed): the three real
//! OpenPGP engines talk to each other through the testkit's helpers.

use conclave_tests::mime::{content_type, normalize_text};
use conclave_tests::{
    first_text_plain, header, require_all_engines, split_multipart_signed, Engine, Subscriber,
};

const BODY: &str = "Hello list,\nthis is a test post.\nGrüße, ✓\n";

#[test]
fn each_engine_composes_and_decrypts() {
    require_all_engines();
    for engine in Engine::ALL {
        let a = Subscriber::new(engine, &format!("a-{engine}@example.test"));
        let b = Subscriber::new(engine, &format!("b-{engine}@example.test"));
        let list_cert = b.public_key_armored();
        assert_eq!(
            conclave_tests::cert_fingerprint(&list_cert).unwrap(),
            b.fingerprint()
        );

        // Signed + encrypted in one OpenPGP message.
        let eml = a.compose_post(&list_cert, b.address(), "Test subject", BODY);
        assert_eq!(header(&eml, "From").as_deref(), Some(a.address()));
        assert_eq!(header(&eml, "To").as_deref(), Some(b.address()));
        assert_eq!(header(&eml, "Subject").as_deref(), Some("Test subject"));
        assert_eq!(header(&eml, "MIME-Version").as_deref(), Some("1.0"));
        assert!(header(&eml, "Date").is_some() && header(&eml, "Message-ID").is_some());
        let ct = content_type(&eml);
        assert_eq!(ct.mime_type, "multipart/encrypted", "{engine}");
        assert_eq!(ct.param("protocol"), Some("application/pgp-encrypted"));
        assert!(
            !eml.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "{engine}: bare LF in post"
        );

        let d = b.decrypt(&eml).unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert!(
            d.encrypted_to(&list_cert),
            "{engine}: recipients {:?}",
            d.recipients
        );
        assert!(
            !d.encrypted_to(&a.public_key_armored()),
            "{engine}: {:?}",
            d.recipients
        );
        assert_eq!(d.recipients.len(), 1, "{engine}: {:?}", d.recipients);
        let text = d.text().unwrap_or_else(|| {
            panic!(
                "{engine}: no text in {:?}",
                String::from_utf8_lossy(&d.entity)
            )
        });
        assert_eq!(normalize_text(&text), normalize_text(BODY), "{engine}");

        // A non-recipient cannot decrypt.
        assert!(a.decrypt(&eml).is_err(), "{engine}: author could decrypt");

        // RFC 3156 multipart/signed inside, encrypted without a second signature.
        let eml = a.compose_post_mime_signed(&list_cert, b.address(), "Signed", BODY);
        let d = b.decrypt(&eml).unwrap_or_else(|e| panic!("{engine}: {e}"));
        let ct = content_type(&d.entity);
        assert_eq!(ct.mime_type, "multipart/signed", "{engine}");
        assert_eq!(ct.param("protocol"), Some("application/pgp-signature"));
        assert!(
            ct.param("micalg").unwrap().starts_with("pgp-sha"),
            "{engine}: {ct:?}"
        );
        let (signed, sig) = split_multipart_signed(&d.entity).expect("multipart/signed splits");
        // Thunderbird's protected headers, then the text part.
        assert!(signed.starts_with(b"From: "), "{engine}");
        assert!(
            conclave_tests::mime::contains(&signed, b"\r\nContent-Type: text/plain"),
            "{engine}"
        );
        let fpr = b
            .verify_detached(&signed, &sig, &a.public_key_armored())
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_eq!(fpr, a.fingerprint());
        let mut tampered = signed.clone();
        tampered.extend_from_slice(b" ");
        assert!(
            b.verify_detached(&tampered, &sig, &a.public_key_armored())
                .is_err(),
            "{engine}"
        );
        assert_eq!(
            normalize_text(&first_text_plain(&d.entity).unwrap()),
            normalize_text(BODY)
        );

        // Unsigned.
        let eml = a.compose_unsigned_post(&list_cert, b.address(), "Unsigned", "plain ascii body");
        let d = b.decrypt(&eml).unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert_eq!(normalize_text(&d.text().unwrap()), "plain ascii body");
    }
}

#[test]
fn gpg_detached_signature_verifies_with_every_engine() {
    require_all_engines();
    let signer = Subscriber::new(Engine::Gpg, "signer@example.test");
    let other = Subscriber::new(Engine::Sq, "other@example.test");
    let data = b"Content-Type: text/plain; charset=utf-8\r\n\r\nsigned data\r\n".to_vec();
    let sig = signer.sign_detached(&data).expect("gpg signs");
    let mut tampered = data.clone();
    tampered[45] ^= 1;
    for engine in Engine::ALL {
        let v = Subscriber::new(engine, &format!("v-{engine}@example.test"));
        let fpr = v
            .verify_detached(&data, &sig, &signer.public_key_armored())
            .unwrap_or_else(|e| panic!("{engine}: good signature rejected: {e}"));
        assert_eq!(fpr, signer.fingerprint(), "{engine}");
        let e = v.verify_detached(&tampered, &sig, &signer.public_key_armored());
        assert!(e.is_err(), "{engine}: tampered data accepted: {e:?}");
        let e = v.verify_detached(&data, &sig, &other.public_key_armored());
        assert!(e.is_err(), "{engine}: wrong signer cert accepted: {e:?}");
    }
}
