//! Old keys, made by GnuPG as keys were made years ago: self-signatures with
//! SHA-1, which Sequoia's policy (and so Conclave's) no longer accepts. A
//! list key like that is certified again by the list, which holds its
//! secret; a subscriber key like that is refused with the exact reason and
//! the command that renews it. Every other refusal names its real cause.

use std::process::Command;

use conclave_tests::programs::run_checked;
use conclave_tests::{require_all_engines, split_multipart_signed, Conclave, Engine, Subscriber};

const LIST: &str = "list@example.test";

/// A GnuPG home of its own, for keys made with a faked clock and SHA-1.
struct OldGpg {
    home: tempfile::TempDir,
}

impl OldGpg {
    fn new() -> OldGpg {
        let home = tempfile::Builder::new()
            .prefix("ctk-old")
            .tempdir_in("/tmp")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        OldGpg { home }
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path())
            .args(conclave_tests::subscriber::GPG_COMMON);
        c
    }

    /// `gpg ARGS` as GnuPG did it on 1 March 2016, certifying with SHA-1.
    fn gpg_2016(&self) -> Command {
        let mut c = self.gpg();
        c.args([
            "--faked-system-time",
            "20160301T120000!",
            "--cert-digest-algo",
            "SHA1",
        ]);
        c
    }

    /// An RSA-3072 key for `uid`, certify+sign primary and an encryption
    /// subkey, made in 2016 with SHA-1 self-signatures. Returns its
    /// fingerprint.
    fn make_2016_key(&self, uid: &str, expire: &str) -> String {
        run_checked(
            self.gpg_2016()
                .args(["--quick-gen-key", uid, "rsa3072", "sign,cert", expire]),
            None,
        )
        .unwrap();
        let fpr = self.fingerprint(uid);
        run_checked(
            self.gpg_2016()
                .args(["--quick-add-key", &fpr, "rsa3072", "encr", expire]),
            None,
        )
        .unwrap();
        fpr
    }

    fn fingerprint(&self, uid: &str) -> String {
        let out =
            run_checked(self.gpg().args(["--with-colons", "--list-keys", uid]), None).unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .unwrap()
    }

    fn export(&self, fpr: &str) -> Vec<u8> {
        run_checked(self.gpg().args(["--armor", "--export", fpr]), None)
            .unwrap()
            .stdout
    }

    fn export_secret(&self, fpr: &str) -> Vec<u8> {
        run_checked(
            self.gpg().args(["--armor", "--export-secret-keys", fpr]),
            None,
        )
        .unwrap()
        .stdout
    }

    /// The digest algorithms of the key's signatures, as gpg lists them.
    fn digest_algos(&self, key: &[u8]) -> Vec<String> {
        let out = run_checked(self.gpg().arg("--list-packets"), Some(key)).unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("digest algo "))
            .map(|l| l.split(',').next().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for OldGpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}

/// A list key made by GnuPG in 2016 (SHA-1 self-signatures) imports: the
/// list certifies it again with SHA-512, says so in one line, writes the
/// renewed public key, and relays a post that GnuPG verifies.
#[test]
fn a_gnupg_2016_list_key_with_sha1_self_signatures_imports_and_relays() {
    require_all_engines();
    let old = OldGpg::new();
    let fpr = old.make_2016_key(LIST, "never");
    let public = old.export(&fpr);
    assert!(
        old.digest_algos(&public).iter().all(|d| d == "2"),
        "the key is certified with SHA-1: {:?}",
        old.digest_algos(&public)
    );
    let list = Conclave::new();
    let out = list.init_import(LIST, "Old List", &old.export_secret(&fpr));
    assert!(out.contains(&format!("list key {fpr}")), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("certified again"))
        .unwrap_or_else(|| panic!("no line about the renewal: {out}"));
    assert!(
        line.contains("SHA-512") && line.contains("SHA1"),
        "names both hashes: {line}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("certified again"))
            .count(),
        1,
        "{out}"
    );
    let exported = list.home.path().join("list-public-key.asc");
    assert!(line.contains(&exported.display().to_string()), "{line}");
    let renewed = std::fs::read(&exported).unwrap();
    assert_eq!(renewed, list.list_cert(), "the file holds the list's key");
    assert!(
        old.digest_algos(&renewed).iter().any(|d| d == "10"),
        "SHA-512 self-signatures now: {:?}",
        old.digest_algos(&renewed)
    );
    // The renewed key advertises SEIPDv2 with the AEAD modes the list reads.
    let cert = conclave_tests::pgp::parse_cert(&renewed).unwrap();
    let policy = sequoia_openpgp::policy::StandardPolicy::new();
    let vc = cert
        .with_policy(&policy, None)
        .expect("valid under today's policy");
    let sig = vc.primary_userid().unwrap().binding_signature().clone();
    assert!(sig.features().unwrap().supports_seipdv2());
    assert!(!sig.preferred_aead_ciphersuites().unwrap().is_empty());
    // The audit log says it once.
    let log = list.run_ok(&["log"]);
    assert_eq!(log.matches("certified again").count(), 1, "{log}");

    // A post goes through, and GnuPG verifies the list's signature.
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    list.add_subscriber(&alice);
    alice.import_cert(&renewed).unwrap();
    let post = alice.compose_post(&renewed, LIST, "Old key", "SHA1-ERA-LIST-WORKS");
    assert_eq!(list.process(&post), "distributed to 1");
    let copies = list.export_outbox();
    let d = alice.decrypt(&copies["alice@example.test"]).unwrap();
    let (signed, sig) = split_multipart_signed(&d.entity).unwrap();
    let signer = alice
        .verify_detached(&signed, &sig, &renewed)
        .expect("gpg verifies the list signature");
    assert_eq!(signer, fpr);
    assert!(String::from_utf8_lossy(&signed).contains("SHA1-ERA-LIST-WORKS"));
    // Unlocking again renews nothing more.
    let again = list.run(&[
        "process",
        &list.write_aux("again.eml", &post).to_string_lossy(),
    ]);
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("certified again"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(list.run_ok(&["log"]).matches("certified again").count(), 1);
}

/// A list made before list keys advertised AEAD: its key gets the new
/// self-signature the next time it is unlocked, once, and says so.
#[test]
fn an_existing_list_key_gets_the_aead_preferences_once() {
    require_all_engines();
    let list = Conclave::new();
    list.init(LIST, "Older List");
    // Put back a key as lists had it before, made a month ago: SEIPDv1
    // only, no AEAD (as GnuPG 2.2 makes keys).
    let old = OldGpg::new();
    let then = ago(30);
    run_checked(
        old.gpg().args([
            "--faked-system-time",
            &then,
            "--quick-gen-key",
            LIST,
            "ed25519",
            "sign,cert",
            "2y",
        ]),
        None,
    )
    .unwrap();
    let fpr = old.fingerprint(LIST);
    run_checked(
        old.gpg().args([
            "--faked-system-time",
            &then,
            "--quick-add-key",
            &fpr,
            "cv25519",
            "encr",
            "2y",
        ]),
        None,
    )
    .unwrap();
    let secret = old.export_secret(&fpr);
    let pw = conclave_core::Password::from(conclave_tests::conclave::TEST_PASSPHRASE);
    let tsk = conclave_core::crypto::keystore::import(&secret, &pw).unwrap();
    conclave_core::crypto::keystore::write_key_file(list.home.path(), &tsk).unwrap();
    let public = tsk.clone().strip_secret_key_material();
    let store = conclave_core::store::Store::open(&list.home.path().join("list.db")).unwrap();
    store
        .set_list_key(
            &public.fingerprint().to_hex(),
            &conclave_core::crypto::certs::binary(&public).unwrap(),
            "file",
        )
        .unwrap();
    drop(store);
    let before = list.list_cert();
    assert!(!advertises_aead(&before), "GnuPG 2.2 keys do not");

    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    list.add_subscriber(&alice);
    let post = alice.compose_post(&before, LIST, "First", "FIRST-AFTER-UPGRADE");
    let f = list.write_aux("first.eml", &post);
    let out = list.run(&["process", &f.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("certified again") && stderr.contains("AEAD"),
        "says why: {stderr}"
    );
    let after = list.list_cert();
    assert!(advertises_aead(&after));
    assert_eq!(
        conclave_tests::cert_fingerprint(&after).unwrap(),
        fpr,
        "the same key, only new self-signatures"
    );
    let post = alice.compose_post(&after, LIST, "Second", "SECOND-AFTER-UPGRADE");
    let f = list.write_aux("second.eml", &post);
    let out = list.run(&["process", &f.to_string_lossy()]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("certified again"));
    assert_eq!(list.run_ok(&["log"]).matches("certified again").count(), 1);
    // Copies are signed by the same key, and GnuPG accepts them.
    alice.import_cert(&after).unwrap();
    let copies = list.export_outbox();
    let d = alice.decrypt(&copies["alice@example.test.2"]).unwrap();
    let (signed, sig) = split_multipart_signed(&d.entity).unwrap();
    assert_eq!(alice.verify_detached(&signed, &sig, &after).unwrap(), fpr);
}

fn advertises_aead(cert: &[u8]) -> bool {
    let cert = conclave_tests::pgp::parse_cert(cert).unwrap();
    let policy = sequoia_openpgp::policy::StandardPolicy::new();
    let vc = cert.with_policy(&policy, None).unwrap();
    let sig = vc.primary_userid().unwrap().binding_signature().clone();
    sig.features().is_some_and(|f| f.supports_seipdv2())
        && sig
            .preferred_aead_ciphersuites()
            .is_some_and(|s| !s.is_empty())
}

fn add_refused(list: &Conclave, address: &str, key: &[u8]) -> String {
    let f = list.write_aux("key.asc", key);
    let (_, err) = list.run_err(&["subscriber", "add", address, "--key", &f.to_string_lossy()]);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

/// A subscriber key bound with SHA-1 is refused saying so, with the GnuPG
/// command that mends it; after that command (and the one for the subkey,
/// which the next refusal names), the same key is accepted.
#[test]
fn a_subscriber_key_bound_with_sha1_is_refused_with_the_way_to_renew_it() {
    require_all_engines();
    let list = Conclave::new();
    list.init(LIST, "Strict List");
    let old = OldGpg::new();
    let addr = "olga@example.test";
    let fpr = old.make_2016_key(addr, "never");
    let err = add_refused(&list, addr, &old.export(&fpr));
    let expected = format!(
        "its User ID is bound with SHA-1, which is no longer accepted; the subscriber can renew it with `gpg --quick-set-expire {fpr} 2y`"
    );
    assert!(err.contains(&expected), "{err}");
    // The subscriber follows the advice.
    run_checked(old.gpg().args(["--quick-set-expire", &fpr, "2y"]), None).unwrap();
    let err = add_refused(&list, addr, &old.export(&fpr));
    let expected = format!(
        "its encryption subkey is bound with SHA-1, which is no longer accepted; the subscriber can renew it with `gpg --quick-set-expire {fpr} 2y '*'`"
    );
    assert!(err.contains(&expected), "{err}");
    run_checked(
        old.gpg().args(["--quick-set-expire", &fpr, "2y", "*"]),
        None,
    )
    .unwrap();
    let key = old.export(&fpr);
    let f = list.write_aux("renewed.asc", &key);
    let out = list.run_ok(&["subscriber", "add", addr, "--key", &f.to_string_lossy()]);
    assert!(out.contains(addr), "{out}");
}

/// Each other refusal names its real cause.
#[test]
fn every_refused_subscriber_key_names_its_cause() {
    require_all_engines();
    let list = Conclave::new();
    list.init(LIST, "Strict List");
    let g = OldGpg::new();

    // Expired: made two years ago, valid for one.
    let mut c = g.gpg();
    c.args(["--faked-system-time", &ago(2 * 365)]);
    run_checked(
        c.args([
            "--quick-gen-key",
            "exp@example.test",
            "ed25519",
            "default",
            "1y",
        ]),
        None,
    )
    .unwrap();
    let fpr = g.fingerprint("exp@example.test");
    let err = add_refused(&list, "exp@example.test", &g.export(&fpr));
    assert!(err.contains("it expired on "), "{err}");

    // Revoked: GnuPG's own revocation certificate imported.
    run_checked(
        g.gpg().args([
            "--quick-gen-key",
            "rev@example.test",
            "ed25519",
            "default",
            "never",
        ]),
        None,
    )
    .unwrap();
    let fpr = g.fingerprint("rev@example.test");
    let rev = g
        .home
        .path()
        .join("openpgp-revocs.d")
        .join(format!("{fpr}.rev"));
    let rev = std::fs::read_to_string(&rev).unwrap().replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    );
    run_checked(g.gpg().arg("--import"), Some(rev.as_bytes())).unwrap();
    let err = add_refused(&list, "rev@example.test", &g.export(&fpr));
    assert!(err.contains("it is revoked"), "{err}");

    // No encryption subkey: a signing key alone.
    run_checked(
        g.gpg().args([
            "--quick-gen-key",
            "sign@example.test",
            "ed25519",
            "sign",
            "never",
        ]),
        None,
    )
    .unwrap();
    let fpr = g.fingerprint("sign@example.test");
    let err = add_refused(&list, "sign@example.test", &g.export(&fpr));
    assert!(err.contains("it has no encryption subkey"), "{err}");

    // Another address.
    let err = add_refused(&list, "someone@example.test", &g.export(&fpr));
    assert!(
        err.contains(
            "it has no valid User ID for someone@example.test (it has: sign@example.test)"
        ),
        "{err}"
    );
}

/// Seconds since the epoch, `days` ago, for `--faked-system-time`.
fn ago(days: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 24 * 3600);
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    format!("{secs}")
}
