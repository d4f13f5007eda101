//! The engine through its own seam (no CLI): SEIPD versions per subscriber,
//! one signature per post, and copies that open with each subscriber's key.

use std::io::Read;
use std::sync::Arc;
use std::time::SystemTime;

use conclave_core::{KeySource, List, Password, SystemClock};
use openpgp::cert::prelude::*;
use openpgp::packet::{Packet, PKESK, SEIP};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::serialize::SerializeInto;
use openpgp::types::Features;
use sequoia_openpgp as openpgp;

fn subscriber(addr: &str, v2: bool) -> Cert {
    let features = if v2 {
        Features::empty().set_seipdv1().set_seipdv2()
    } else {
        Features::empty().set_seipdv1()
    };
    CertBuilder::general_purpose(Some(addr))
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_features(features)
        .unwrap()
        .generate()
        .unwrap()
        .0
}

/// (PKESK versions, SEIP version) of an OpenPGP message.
fn shape(msg: &[u8]) -> (Vec<u8>, u8) {
    let mut pkesks = Vec::new();
    let mut ppr = PacketParser::from_bytes(msg).unwrap();
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            Packet::PKESK(PKESK::V3(_)) => pkesks.push(3),
            Packet::PKESK(PKESK::V6(_)) => pkesks.push(6),
            Packet::SEIP(SEIP::V1(_)) => return (pkesks, 1),
            Packet::SEIP(SEIP::V2(_)) => return (pkesks, 2),
            _ => {}
        }
        ppr = pp.next().unwrap().1;
    }
    panic!("no SEIP packet")
}

struct Opener(Cert);
impl VerificationHelper for Opener {
    fn get_certs(&mut self, _: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }
    fn check(&mut self, _: MessageStructure) -> openpgp::Result<()> {
        Ok(())
    }
}
impl DecryptionHelper for Opener {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _: &[openpgp::packet::SKESK],
        sym: Option<openpgp::types::SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(
            Option<openpgp::types::SymmetricAlgorithm>,
            &openpgp::crypto::SessionKey,
        ) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let p = openpgp::policy::StandardPolicy::new();
        for ka in self
            .0
            .keys()
            .with_policy(&p, None)
            .secret()
            .for_transport_encryption()
        {
            let mut pair = ka.key().clone().into_keypair()?;
            for pkesk in pkesks {
                if let Some((a, sk)) = pkesk.decrypt(&mut pair, sym) {
                    if decrypt(a, &sk) {
                        return Ok(None);
                    }
                }
            }
        }
        Err(openpgp::anyhow::anyhow!("not for us"))
    }
}

#[test]
fn seipd_v2_only_for_keys_that_advertise_it() {
    let dir = tempfile::tempdir().unwrap();
    let pw = Password::from("engine test");
    let mut list = List::init(
        dir.path(),
        "list@example.test",
        "Engine",
        KeySource::Generate,
        &pw,
        Arc::new(SystemClock),
    )
    .unwrap();
    let v1 = subscriber("v1@example.test", false);
    let v2 = subscriber("v2@example.test", true);
    for (addr, c) in [("v1@example.test", &v1), ("v2@example.test", &v2)] {
        list.add_subscriber(addr, &c.armored().to_vec().unwrap())
            .unwrap();
    }
    let (post, digest) = list
        .record_post(b"From: a@example.test\r\n\r\nx", "a@example.test")
        .unwrap();
    let entity = b"Content-Type: text/plain\r\n\r\nhello, both versions\r\n";
    assert_eq!(
        list.fan_out(post, &digest, entity, SystemTime::now())
            .unwrap(),
        2
    );
    // The same post again queues nothing new, and says so.
    assert_eq!(
        list.fan_out(post, &digest, entity, SystemTime::now())
            .unwrap(),
        0
    );
    let copies = list.store().queued_copies().unwrap();
    assert_eq!(copies.len(), 2);
    for copy in copies {
        let mut msg = copy.pkesks.clone();
        msg.extend_from_slice(&list.store().body(copy.body_id).unwrap());
        let (pkesks, seip) = shape(&msg);
        let cert = if copy.recipient == "v2@example.test" {
            &v2
        } else {
            &v1
        };
        if copy.recipient == "v2@example.test" {
            assert_eq!((pkesks.as_slice(), seip), (&[6u8][..], 2), "v2 subscriber");
        } else {
            assert_eq!((pkesks.as_slice(), seip), (&[3u8][..], 1), "v1 subscriber");
        }
        let p = openpgp::policy::StandardPolicy::new();
        let mut d = DecryptorBuilder::from_bytes(&msg)
            .unwrap()
            .with_policy(&p, None, Opener(cert.clone()))
            .unwrap();
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert!(String::from_utf8_lossy(&out).contains("hello, both versions"));
        // The other subscriber's key does not open it.
        let other = if copy.recipient == "v2@example.test" {
            &v1
        } else {
            &v2
        };
        assert!(DecryptorBuilder::from_bytes(&msg)
            .unwrap()
            .with_policy(&p, None, Opener(other.clone()))
            .is_err());
    }
}
