//! Fuzz target: opening a post with a list key. The ciphertext is taken out
//! of the message as intake does (or the input is taken as an OpenPGP
//! message itself when it is not mail), then decrypted with the corpus
//! list keys (Bob's and Alice's) and its signatures checked against the
//! corpus certificates (`crypto::decrypt::open`).

use conclave_core::crypto::decrypt;
use conclave_core::crypto::keystore::ListKeystore;
use conclave_core::mime::parse;
use conclave_fuzz::{keystore, now, subscriber_certs, ALICE_SECRET, BOB_SECRET, PLAINTEXT_LIMIT};

fn main() {
    let mut keystores = [keystore(BOB_SECRET), keystore(ALICE_SECRET)];
    let certs = subscriber_certs();
    let now = now();
    afl::fuzz_nohook!(|data: &[u8]| {
        let message = match parse::incoming(data).map(|i| i.payload) {
            Ok(parse::Payload::PgpMime(m) | parse::Payload::Inline(m)) => m,
            _ => data.to_vec(),
        };
        let mut decryptors = Vec::new();
        for ks in keystores.iter_mut() {
            decryptors.extend(ks.decryptors().expect("decryptors"));
        }
        let _ = decrypt::open(&message, decryptors, &certs, now, PLAINTEXT_LIMIT);
    });
}
