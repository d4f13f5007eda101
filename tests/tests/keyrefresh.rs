//! Keys on the web, end to end: the real `conclave` binary against an
//! HTTPS server on loopback (certificate from the mail host's test CA) that
//! serves the Web Key Directory and the VKS API of keys.openpgp.org
//! (`conclave_tests::keyserver`). A subscriber's newer copy of their own key
//! is taken (an extended expiry, a revocation), a different key for their
//! address is not, a flooded copy is stripped before it is stored, the
//! lookups go through the system's proxy, `key wkd DIR` writes files a WKD
//! client finds, and `key publish` completes the keyserver's address check
//! by itself when the verification mail reaches the list mailbox.

use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use conclave_tests::keyserver::{ConnectProxy, Keyserver, KEYSERVER_FROM};
use conclave_tests::{Conclave, MailList, Mailhost};
use openpgp::cert::prelude::*;
use openpgp::crypto::KeyPair;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::UserID;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::types::{ReasonForRevocation, SignatureType};
use sequoia_openpgp as openpgp;

/// The mail host's mailboxes are shared by the tests that use them.
static MAILBOX: Mutex<()> = Mutex::new(());

const DAY: u64 = 86_400;

/// A subscriber's key made with Sequoia, expiring in 30 days.
fn make_key(address: &str) -> Cert {
    CertBuilder::new()
        .add_userid(format!("<{address}>"))
        .add_transport_encryption_subkey()
        .set_creation_time(SystemTime::now() - Duration::from_secs(DAY))
        .set_validity_period(Duration::from_secs(31 * DAY))
        .generate()
        .unwrap()
        .0
}

fn signer(cert: &Cert) -> KeyPair {
    cert.primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .into_keypair()
        .unwrap()
}

fn public(cert: &Cert) -> Vec<u8> {
    cert.clone().strip_secret_key_material().to_vec().unwrap()
}

fn armored_public(cert: &Cert) -> Vec<u8> {
    cert.clone()
        .strip_secret_key_material()
        .armored()
        .to_vec()
        .unwrap()
}

/// The same key, with its expiry moved to `days` from now.
fn extended(cert: &Cert, days: u64) -> Cert {
    let p = StandardPolicy::new();
    let mut keypair = signer(cert);
    let until = SystemTime::now() + Duration::from_secs(days * DAY);
    let mut sigs = cert
        .set_expiration_time(&p, None, &mut keypair, Some(until))
        .unwrap();
    // The encryption subkey moves with it.
    let vc = cert.with_policy(&p, None).unwrap();
    for ka in vc.keys().subkeys() {
        let sig = ka
            .set_expiration_time(&mut keypair, None, Some(until))
            .unwrap();
        sigs.extend(sig);
    }
    cert.clone().insert_packets(sigs).unwrap().0
}

/// The same key, revoked.
fn revoked(cert: &Cert) -> Cert {
    let sig = cert
        .revoke(
            &mut signer(cert),
            ReasonForRevocation::KeyRetired,
            b"retired",
        )
        .unwrap();
    cert.clone().insert_packets(Some(sig)).unwrap().0
}

/// `cert` with `n` certifications of its User ID by 20 other keys, as the
/// 2019 keyserver flooding left keys.
fn flooded(cert: &Cert, n: usize) -> Cert {
    let userid: UserID = cert.userids().next().unwrap().userid().clone();
    let floods: Vec<Cert> = (0..20)
        .map(|i| {
            CertBuilder::new()
                .add_userid(format!("<flood{i}@example.org>"))
                .generate()
                .unwrap()
                .0
        })
        .collect();
    let mut sigs = Vec::new();
    for i in 0..n {
        let mut by = signer(&floods[i % floods.len()]);
        let sig = SignatureBuilder::new(SignatureType::GenericCertification)
            .set_signature_creation_time(SystemTime::now() - Duration::from_secs(i as u64 + 10))
            .unwrap()
            .sign_userid_binding(&mut by, cert.primary_key().key(), &userid)
            .unwrap();
        sigs.push(sig);
    }
    cert.clone().insert_packets(sigs).unwrap().0
}

/// A list (not on the mail host) that looks keys up at `ks`.
fn list_with(ks: &Keyserver) -> Conclave {
    let list = Conclave::new();
    list.init("list@example.test", "Keys");
    list.config_set("tls.ca_file", &Mailhost::get().var("MAILHOST_CA_CERT"));
    list.config_set("net.resolve", &ks.resolve());
    list.config_set("keys.keyserver", &ks.base());
    list.config_set("net.timeout_seconds", "20");
    list
}

fn subscribe(list: &Conclave, address: &str, cert: &Cert) {
    let f = list.write_aux(&format!("{address}.asc"), &armored_public(cert));
    list.run_ok(&["subscriber", "add", address, "--key", &f.to_string_lossy()]);
}

/// `keys refresh --delay 0`, with the proxy variables of the environment
/// replaced by `env`.
fn refresh(list: &Conclave, env: &[(&str, &str)]) -> Output {
    let mut c = list.cmd();
    for v in [
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "http_proxy",
        "HTTP_PROXY",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(["keys", "refresh", "--delay", "0"]);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "keys refresh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The key the list holds for `address`.
fn stored(list: &Conclave, address: &str) -> Cert {
    let l = conclave_core::list::List::open(
        list.home.path(),
        std::sync::Arc::new(conclave_core::clock::SystemClock),
    )
    .unwrap();
    let s = l
        .store()
        .subscribers()
        .unwrap()
        .into_iter()
        .find(|s| s.address == address)
        .unwrap();
    Cert::from_bytes(&s.cert).unwrap()
}

fn expiry(cert: &Cert) -> Option<SystemTime> {
    let p = StandardPolicy::new();
    cert.with_policy(&p, None)
        .unwrap()
        .primary_key()
        .key_expiration_time()
}

fn days_from_now(t: Option<SystemTime>) -> u64 {
    t.unwrap()
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .as_secs()
        / DAY
}

#[test]
fn an_extended_expiry_served_by_wkd_is_taken_by_either_method() {
    let ks = Keyserver::start();
    let list = list_with(&ks);
    let (alice, bob, carol) = (
        make_key("alice@example.test"),
        make_key("bob@example.test"),
        make_key("carol@example.test"),
    );
    for (a, c) in [
        ("alice@example.test", &alice),
        ("bob@example.test", &bob),
        ("carol@example.test", &carol),
    ] {
        subscribe(&list, a, c);
    }
    // Alice's domain has the advanced method, Bob's copy sits at the
    // direct one; Carol's key is found nowhere.
    ks.put_wkd("alice@example.test", &public(&extended(&alice, 400)), true);
    ks.put_wkd("bob@example.test", &public(&extended(&bob, 500)), false);
    let out = stdout(&refresh(&list, &[]));
    assert!(
        out.contains("alice@example.test: key") && out.contains("updated from WKD"),
        "{out}"
    );
    assert!(out.contains("bob@example.test: key"), "{out}");
    assert!(
        out.contains("3 subscriber key(s) asked for, 2 updated"),
        "{out}"
    );
    assert!((399..=400).contains(&days_from_now(expiry(&stored(&list, "alice@example.test")))));
    assert!((499..=500).contains(&days_from_now(expiry(&stored(&list, "bob@example.test")))));
    assert!(days_from_now(expiry(&stored(&list, "carol@example.test"))) <= 30);
    // Each subscriber was asked for by their own local part and hash.
    let seen = ks.seen();
    let alice_hash = conclave_core::net::wkd::hash("alice");
    assert!(seen.iter().any(|s| s.host == "openpgpkey.example.test"
        && s.target == format!("/.well-known/openpgpkey/example.test/hu/{alice_hash}?l=alice")
        && s.status == 200));
    // The keyserver was asked by fingerprint too.
    assert!(seen
        .iter()
        .any(|s| s.host == "keys.example.test" && s.target.starts_with("/vks/v1/by-fingerprint/")));
    // The owner reads what changed in the log.
    let log = list.run_ok(&["log", "--limit", "20"]);
    assert!(log.contains("updated from WKD"), "{log}");
    // Asked again, nothing is new.
    let again = stdout(&refresh(&list, &[]));
    assert!(again.contains("0 updated"), "{again}");
}

#[test]
fn a_revocation_served_by_the_keyserver_is_taken() {
    let ks = Keyserver::start();
    let list = list_with(&ks);
    list.config_set("keys.wkd", "off");
    let alice = make_key("alice@example.test");
    subscribe(&list, "alice@example.test", &alice);
    let before = list.run_ok(&["subscriber", "list"]);
    assert!(!before.contains("revoked"), "{before}");
    ks.put_vks(&public(&revoked(&alice)));
    let out = stdout(&refresh(&list, &[]));
    assert!(out.contains("updated from keys.example.test"), "{out}");
    assert!(out.contains("revoked"), "{out}");
    let after = list.run_ok(&["subscriber", "list"]);
    assert!(
        after.contains("alice@example.test") && after.contains("revoked"),
        "{after}"
    );
    // WKD was off: not one WKD request.
    assert!(ks.seen().iter().all(|s| s.host == "keys.example.test"));
}

#[test]
fn a_different_key_for_the_address_is_not_taken() {
    let ks = Keyserver::start();
    let list = list_with(&ks);
    let alice = make_key("alice@example.test");
    subscribe(&list, "alice@example.test", &alice);
    let other = make_key("alice@example.test");
    ks.put_wkd("alice@example.test", &public(&other), true);
    let out = stdout(&refresh(&list, &[]));
    let other_fpr = other.fingerprint().to_hex();
    assert!(
        out.contains(&format!(
            "WKD offers another key for alice@example.test: {other_fpr}"
        )) && out.contains("not taken"),
        "{out}"
    );
    assert_eq!(
        stored(&list, "alice@example.test").fingerprint(),
        alice.fingerprint()
    );
    let log = list.run_ok(&["log", "--limit", "20"]);
    assert!(
        log.contains("WKD offers another key for alice@example.test"),
        "{log}"
    );
}

#[test]
fn a_flooded_key_is_stripped_before_it_is_stored() {
    let ks = Keyserver::start();
    let list = list_with(&ks);
    let alice = make_key("alice@example.test");
    subscribe(&list, "alice@example.test", &alice);
    // A newer copy of her key, flooded with 2,500 certifications.
    let flood = flooded(&extended(&alice, 400), 2_500);
    let served = public(&flood);
    assert!(served.len() > 200_000, "{} bytes", served.len());
    ks.put_wkd("alice@example.test", &served, true);
    let out = stdout(&refresh(&list, &[]));
    assert!(out.contains("updated from WKD"), "{out}");
    let kept = stored(&list, "alice@example.test");
    assert!((399..=400).contains(&days_from_now(expiry(&kept))));
    let own = openpgp::KeyHandle::from(alice.fingerprint());
    let foreign = kept
        .userids()
        .flat_map(|u| u.certifications())
        .chain(kept.userids().flat_map(|u| u.self_signatures()))
        .filter(|s| !s.get_issuers().iter().any(|h| h.aliases(&own)))
        .count();
    assert_eq!(foreign, 0, "third-party certifications were stored");
    let size = public(&kept).len();
    assert!(size < 10_000, "the stored key is {size} bytes");
}

#[test]
fn a_silent_or_flooding_server_costs_one_lookup_not_the_refresh() {
    let ks = Keyserver::start();
    let list = list_with(&ks);
    list.config_set("net.timeout_seconds", "2");
    let alice = make_key("alice@example.test");
    let bob = make_key("bob@example.test");
    subscribe(&list, "alice@example.test", &alice);
    subscribe(&list, "bob@example.test", &bob);
    // Alice's domain answers with 17 MiB; the keyserver's host accepts
    // connections and says nothing.
    ks.put_wkd("alice@example.test", &vec![0x99u8; 17 << 20], true);
    let silent = conclave_tests::SilentServer::start(Duration::from_secs(30));
    let resolve = format!(
        "example.test=127.0.0.1:{p},openpgpkey.example.test=127.0.0.1:{p},keys.example.test=127.0.0.1:{s}",
        p = ks.port,
        s = silent.port
    );
    list.config_set("net.resolve", &resolve);
    let started = std::time::Instant::now();
    let out = stdout(&refresh(&list, &[]));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.contains(&format!("sent more than {} bytes", 16 << 20)),
        "{out}"
    );
    assert!(out.contains("no answer within 2 seconds"), "{out}");
    assert!(
        out.contains("2 subscriber key(s) asked for, 0 updated"),
        "{out}"
    );
    assert!(silent.accepted() >= 2);
}

#[test]
fn lookups_go_through_the_proxy_the_system_names() {
    let ks = Keyserver::start();
    let list = list_with(&ks);
    let alice = make_key("alice@example.test");
    subscribe(&list, "alice@example.test", &alice);
    ks.put_wkd("alice@example.test", &public(&extended(&alice, 400)), true);
    let proxy = ConnectProxy::start(ks.port);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let out = stdout(&refresh(&list, &[("https_proxy", &url)]));
    assert!(out.contains("updated from WKD"), "{out}");
    let targets = proxy.targets();
    assert!(
        targets.contains(&"openpgpkey.example.test:443".to_string())
            && targets.contains(&"keys.example.test:443".to_string()),
        "{targets:?}"
    );
    // The proxy was asked for names, and TLS ran through it to the server.
    assert_eq!(proxy.connections(), targets.len());
    // no_proxy for the domain: straight there, the proxy sees nothing new.
    let before = proxy.connections();
    refresh(
        &list,
        &[("HTTPS_PROXY", &url), ("no_proxy", "example.test")],
    );
    assert_eq!(proxy.connections(), before);
    // all_proxy counts as well.
    refresh(&list, &[("all_proxy", &url)]);
    assert!(proxy.connections() > before);
}

#[test]
fn key_wkd_writes_files_the_wkd_client_finds_in_both_layouts() {
    let ks = Keyserver::start();
    // The list whose key is published, and a list that has it as a
    // subscriber and looks it up.
    let published = Conclave::new();
    published.init("list@example.test", "Published");
    let reader = Conclave::new();
    reader.init("reader@example.test", "Reader");
    reader.config_set("tls.ca_file", &Mailhost::get().var("MAILHOST_CA_CERT"));
    reader.config_set("net.resolve", &ks.resolve());
    reader.config_set("keys.keyserver", "");
    let key = published.list_cert();
    let kf = reader.write_aux("list.asc", &key);
    reader.run_ok(&[
        "subscriber",
        "add",
        "list@example.test",
        "--key",
        &kf.to_string_lossy(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    published.run_ok(&["key", "extend", "--years", "5"]);
    let out = published.run_ok(&["key", "wkd", &dir.path().to_string_lossy()]);
    let hash = conclave_core::net::wkd::hash("list");
    assert!(
        out.contains(&format!(
        "serve at https://openpgpkey.example.test/.well-known/openpgpkey/example.test/hu/{hash}"
    )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "serve at https://example.test/.well-known/openpgpkey/hu/{hash}"
        )),
        "{out}"
    );
    let direct = dir.path().join(".well-known/openpgpkey");
    assert!(direct.join("policy").exists());
    assert!(dir
        .path()
        .join("openpgpkey/example.test/.well-known/openpgpkey/example.test/policy")
        .exists());
    let file = std::fs::read(direct.join("hu").join(&hash)).unwrap();
    assert!(file[0] & 0x80 != 0, "the key file is binary");
    let cert = Cert::from_bytes(&file).unwrap();
    assert!(!cert.is_tsk(), "no secret parts");
    // GnuPG names the same URL, and reads the key file.
    let libexec = std::process::Command::new("gpgconf")
        .args(["--list-dirs", "libexecdir"])
        .output()
        .unwrap();
    let wks = std::path::PathBuf::from(String::from_utf8_lossy(&libexec.stdout).trim())
        .join("gpg-wks-client");
    let gpg_url = std::process::Command::new(&wks)
        .args(["--print-wkd-url", "list@example.test"])
        .output()
        .unwrap();
    let gpg_url = String::from_utf8_lossy(&gpg_url.stdout).trim().to_string();
    assert!(
        gpg_url.starts_with(&format!(
            "https://openpgpkey.example.test/.well-known/openpgpkey/example.test/hu/{hash}"
        )),
        "{gpg_url}"
    );
    let gnupghome = tempfile::tempdir().unwrap();
    let imported = std::process::Command::new("gpg")
        .arg("--homedir")
        .arg(gnupghome.path())
        .args(["--batch", "--import"])
        .arg(direct.join("hu").join(&hash))
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let listed = std::process::Command::new("gpg")
        .arg("--homedir")
        .arg(gnupghome.path())
        .args([
            "--batch",
            "--with-colons",
            "--list-keys",
            "list@example.test",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains(
        &conclave_tests::cert_fingerprint(&key)
            .unwrap()
            .to_ascii_uppercase()
    ));
    ks.serve_dir(dir.path());
    let out = stdout(&refresh(&reader, &[]));
    assert!(
        out.contains("list@example.test: key") && out.contains("updated from WKD"),
        "{out}"
    );
    assert!(ks
        .seen()
        .iter()
        .any(|s| s.host == "openpgpkey.example.test" && s.status == 200));
    // Without the advanced layout, the direct one is found.
    std::fs::remove_dir_all(dir.path().join("openpgpkey")).unwrap();
    // A later self-signature (signatures made in the same second tie).
    std::thread::sleep(Duration::from_millis(1100));
    published.run_ok(&["key", "extend", "--years", "7"]);
    published.run_ok(&["key", "wkd", &dir.path().to_string_lossy()]);
    std::fs::remove_dir_all(dir.path().join("openpgpkey")).unwrap();
    let out = stdout(&refresh(&reader, &[]));
    assert!(out.contains("updated from WKD"), "{out}");
    assert!(ks.seen().iter().any(|s| s.host == "example.test"
        && s.target
            .starts_with(&format!("/.well-known/openpgpkey/hu/{hash}"))
        && s.status == 200));
    assert!(days_from_now(expiry(&stored(&reader, "list@example.test"))) > 6 * 365);
}

#[test]
fn key_publish_completes_the_address_check_by_itself() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    mh.clear();
    let ks = Keyserver::start();
    let f = MailList::new("Published List");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server(
        "smtp",
        "MAILHOST_HOST",
        "MAILHOST_SUBMISSION_PORT",
        "starttls",
    );
    f.list.config_set("net.resolve", &ks.resolve());
    f.list.config_set("keys.keyserver", &ks.base());
    f.list.config_set("keys.refresh", "off");
    let fpr = conclave_tests::cert_fingerprint(&f.cert).unwrap();
    // A link in mail before any publish is never opened, even from the
    // keyserver's address.
    let early = format!(
        "From: <{KEYSERVER_FROM}>\r\nTo: list@example.test\r\nSubject: verify\r\nMessage-ID: <early@keys.example.test>\r\n\r\nhttps://keys.example.test/verify/early-token\r\n"
    );
    mh.inject(KEYSERVER_FROM, "list@example.test", early.as_bytes());
    f.list.run_ok(&["run", "--once"]);
    ks.hold_mail();
    let out = f.list.run_ok(&["key", "publish"]);
    assert!(
        out.contains("uploaded to https://keys.example.test"),
        "{out}"
    );
    assert!(!ks.has_fingerprint(&fpr), "published before the check");
    // While the publish waits, mail from elsewhere with a link to the
    // keyserver is not taken for its verification mail.
    let forged = "From: <someone@example.org>\r\nTo: list@example.test\r\nSubject: verify\r\nMessage-ID: <forged@example.org>\r\n\r\nhttps://keys.example.test/verify/forged-token\r\n";
    mh.inject(
        "someone@example.org",
        "list@example.test",
        forged.as_bytes(),
    );
    assert!(conclave_tests::wait_until(30, || mh.count("list", "") >= 1));
    let pass = f.list.run_ok(&["run", "--once"]);
    assert!(pass.contains("rejected"), "{pass}");
    // One that claims to come from the keyserver has its link tried, and
    // refused by the server; the publish still waits for the real mail.
    let spoofed = format!(
        "From: <{KEYSERVER_FROM}>\r\nTo: list@example.test\r\nSubject: verify\r\nMessage-ID: <spoofed@example.org>\r\n\r\nhttps://keys.example.test/verify/spoofed-token\r\n"
    );
    mh.inject(KEYSERVER_FROM, "list@example.test", spoofed.as_bytes());
    assert!(conclave_tests::wait_until(30, || mh.count("list", "") >= 1));
    let pass = f.list.run_ok(&["run", "--once"]);
    assert!(pass.contains("refused a verification link"), "{pass}");
    assert!(ks.verified().is_empty());
    // The keyserver's mail reaches the list mailbox; one pass of the relay
    // recognises it and opens its link.
    ks.send_held();
    assert!(conclave_tests::wait_until(30, || mh.count("list", "") >= 1));
    let pass = f.list.run_ok(&["run", "--once"]);
    assert!(pass.contains("confirmed the list address"), "{pass}");
    assert_eq!(ks.verified(), vec!["list@example.test".to_string()]);
    assert!(ks.has_fingerprint(&fpr), "the key is served by fingerprint");
    let verifies: Vec<String> = ks
        .seen()
        .into_iter()
        .filter(|s| s.target.starts_with("/verify/"))
        .map(|s| s.target)
        .collect();
    assert_eq!(verifies.len(), 2, "{verifies:?}");
    assert_eq!(verifies[0], "/verify/spoofed-token");
    assert!(verifies
        .iter()
        .all(|v| !v.contains("forged") && !v.contains("early")));
    let log = f.list.run_ok(&["log", "--limit", "30"]);
    assert!(
        log.contains("confirmed the list address list@example.test"),
        "{log}"
    );
    // Nothing of it went to the subscribers.
    for s in &f.subs {
        let user = s.address().split('@').next().unwrap();
        assert!(
            !mh.inbox(user)
                .iter()
                .any(|m| String::from_utf8_lossy(m).contains("verify")),
            "{user} received the verification mail"
        );
    }
}

#[test]
fn the_relay_refreshes_keys_on_its_schedule() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    Mailhost::get().clear();
    let ks = Keyserver::start();
    let f = MailList::new("Refreshing List");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server(
        "smtp",
        "MAILHOST_HOST",
        "MAILHOST_SUBMISSION_PORT",
        "starttls",
    );
    f.list.config_set("net.resolve", &ks.resolve());
    f.list.config_set("keys.keyserver", &ks.base());
    f.list.config_set("keys.refresh_delay_seconds", "0");
    let dave = make_key("dave@example.test");
    subscribe(&f.list, "dave@example.test", &dave);
    ks.put_wkd("dave@example.test", &public(&extended(&dave, 400)), true);
    // A list's first run asks the web for nothing: its keys were just added.
    let mut relay = f.list.spawn_relay();
    std::thread::sleep(Duration::from_secs(4));
    let _ = relay.kill();
    let _ = relay.wait();
    assert!(ks.seen().is_empty(), "{:?}", ks.seen());
    // Once keys.refresh_days have passed, `conclave run` refreshes, on a
    // thread of its own, and says what changed.
    {
        let l = conclave_core::list::List::open(
            f.list.home.path(),
            std::sync::Arc::new(conclave_core::clock::SystemClock),
        )
        .unwrap();
        let last = l
            .store()
            .key_refresh_last()
            .unwrap()
            .expect("the count started");
        l.store()
            .set_key_refresh_last(last - 7 * DAY as i64)
            .unwrap();
    }
    let mut relay = f.list.spawn_relay();
    let updated = conclave_tests::wait_until(60, || {
        f.list
            .run_ok(&["log", "--limit", "50"])
            .contains("key refresh: 4 subscriber key(s) asked for")
    });
    let _ = relay.kill();
    let _ = relay.wait();
    assert!(updated, "{}", f.list.run_ok(&["log", "--limit", "50"]));
    assert!((399..=400).contains(&days_from_now(expiry(&stored(
        &f.list,
        "dave@example.test"
    )))));
    let log = f.list.run_ok(&["log", "--limit", "50"]);
    assert!(
        log.contains("key refresh: 4 subscriber key(s) asked for, 1 updated"),
        "{log}"
    );
    // Started again within keys.refresh_days, it does not ask again.
    let asked = ks.seen().len();
    let mut relay = f.list.spawn_relay();
    std::thread::sleep(Duration::from_secs(4));
    let _ = relay.kill();
    let _ = relay.wait();
    assert_eq!(
        ks.seen().len(),
        asked,
        "asked again before keys.refresh_days"
    );
}
