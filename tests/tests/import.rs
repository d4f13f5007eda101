//! Many subscribers at once, through the real `conclave` binary: a keyring
//! of keys made by GnuPG, sq and Sequoia (armored, then binary) with every
//! kind of key an owner is handed (expired, sign-only, no address, twice,
//! another key for a subscribed address), each reported on its own line; a
//! CSV file choosing who is subscribed; a Schleuder list moved in one step;
//! and `subscriber list` searched and paged over thousands of subscribers.

use std::time::Instant;

use conclave_tests::{Conclave, Engine, Subscriber};
use sequoia_openpgp as openpgp;

use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::serialize::SerializeInto;
use openpgp::Cert;

const LIST: &str = "list@example.test";

fn new_list() -> Conclave {
    let list = Conclave::new();
    list.init(LIST, "Import");
    list
}

fn armored(cert: &Cert) -> Vec<u8> {
    cert.armored().to_vec().expect("armor a cert")
}

fn binary(armored: &[u8]) -> Vec<u8> {
    conclave_tests::pgp::parse_cert(armored)
        .expect("parse a cert")
        .to_vec()
        .expect("serialise a cert")
}

fn fpr(cert: &Cert) -> String {
    cert.fingerprint().to_hex()
}

/// Armored blocks one after another, with a blank line between them, as
/// `gpg --export --armor A; gpg --export --armor B` writes them.
fn concat(blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in blocks {
        out.extend_from_slice(b);
        out.extend_from_slice(b"\n");
    }
    out
}

fn import(list: &Conclave, keyring: &[u8], extra: &[&str]) -> Vec<String> {
    let file = list.write_aux("keyring", keyring);
    let file = file.to_string_lossy().to_string();
    let mut args = vec!["subscriber", "import", file.as_str()];
    args.extend_from_slice(extra);
    list.run_ok(&args).lines().map(str::to_string).collect()
}

/// Asserts that `lines` holds `expected` exactly once.
fn has(lines: &[String], expected: &str) {
    assert_eq!(
        lines.iter().filter(|l| l.as_str() == expected).count(),
        1,
        "expected the line {expected:?} in:\n{}",
        lines.join("\n")
    );
}

/// Asserts that `lines` holds exactly one line starting with `prefix`, and
/// returns it.
fn starts<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    let found: Vec<_> = lines.iter().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one line starting {prefix:?} in:\n{}",
        lines.join("\n")
    );
    found[0]
}

fn subscribed(list: &Conclave) -> Vec<(String, String)> {
    list.run_ok(&["subscriber", "list", "--all"])
        .lines()
        .filter(|l| l.contains('@'))
        .map(|l| {
            let mut w = l.split_whitespace();
            (
                w.next().unwrap_or_default().to_string(),
                w.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_keyring_from_every_tool_subscribes_each_usable_key_and_says_why_not() {
    conclave_tests::require_programs(&["gpg", "sq"]);
    let mut alice = Subscriber::with_user_id(
        Engine::Gpg,
        "alice@example.test",
        "Alice <alice@example.test>",
    );
    let bob = Subscriber::new(Engine::Sq, "bob@example.test");
    let (carol, _) = CertBuilder::general_purpose(Some("Carol <carol@example.test>"))
        .add_userid("Carol at work <carol@work.example.test>")
        .generate()
        .unwrap();
    let dave = Subscriber::made_ago(Engine::Gpg, "dave@example.test", 20, "10d");
    let (erin, _) = CertBuilder::new()
        .add_userid("erin@example.test")
        .add_signing_subkey()
        .generate()
        .unwrap();
    let (frank, _) = CertBuilder::general_purpose(Some("Frank, no address"))
        .generate()
        .unwrap();
    let grace = Subscriber::new(Engine::Gpg, "grace@example.test");
    let (grace_other, _) = CertBuilder::general_purpose(Some("grace@example.test"))
        .set_cipher_suite(CipherSuite::RSA3k)
        .generate()
        .unwrap();

    let list = new_list();
    list.add_subscriber(&grace);

    let blocks = vec![
        alice.public_key_armored(),
        bob.public_key_armored(),
        armored(&carol),
        dave.public_key_armored(),
        armored(&erin),
        armored(&frank),
        alice.public_key_armored(),
        armored(&grace_other),
    ];
    let lines = import(&list, &concat(&blocks), &[]);
    has(
        &lines,
        &format!("added alice@example.test {}", alice.fingerprint()),
    );
    has(
        &lines,
        &format!("added bob@example.test {}", bob.fingerprint()),
    );
    has(&lines, &format!("added carol@example.test {}", fpr(&carol)));
    has(
        &lines,
        &format!("added carol@work.example.test {}", fpr(&carol)),
    );
    let expired = starts(
        &lines,
        &format!("refused dave@example.test {}: ", dave.fingerprint()),
    );
    assert!(expired.contains("it expired on"), "{expired}");
    has(
        &lines,
        &format!(
            "refused erin@example.test {}: it has no encryption subkey",
            fpr(&erin)
        ),
    );
    has(
        &lines,
        &format!(
            "skipped - {}: no User ID of the key carries an e-mail address",
            fpr(&frank)
        ),
    );
    has(
        &lines,
        &format!(
            "skipped - {}: the same key appears again in the keyring; its copies were merged",
            alice.fingerprint()
        ),
    );
    let kept = starts(
        &lines,
        &format!("skipped grace@example.test {}: ", fpr(&grace_other)),
    );
    assert!(
        kept.contains(&format!(
            "subscribed with another key, {}, which stays",
            grace.fingerprint()
        )),
        "{kept}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "imported: 4 added, 2 refused, 3 skipped (8 keys read)"
    );

    let mut want = vec![
        (
            "alice@example.test".to_string(),
            alice.fingerprint().to_string(),
        ),
        (
            "bob@example.test".to_string(),
            bob.fingerprint().to_string(),
        ),
        ("carol@example.test".to_string(), fpr(&carol)),
        ("carol@work.example.test".to_string(), fpr(&carol)),
        (
            "grace@example.test".to_string(),
            grace.fingerprint().to_string(),
        ),
    ];
    want.sort();
    assert_eq!(subscribed(&list), want);
    let total = list.run_ok(&["subscriber", "list"]);
    assert_eq!(total.lines().last(), Some("5 subscribers"), "{total}");

    // The same keys again, binary this time: nothing new.
    let ring: Vec<u8> = blocks.iter().flat_map(|b| binary(b)).collect();
    let lines = import(&list, &ring, &[]);
    has(
        &lines,
        &format!("unchanged alice@example.test {}", alice.fingerprint()),
    );
    has(
        &lines,
        &format!("unchanged carol@work.example.test {}", fpr(&carol)),
    );
    assert_eq!(
        lines.last().unwrap(),
        "imported: 4 unchanged, 2 refused, 3 skipped (8 keys read)"
    );
    assert_eq!(subscribed(&list), want);

    // Alice extends her key: her newer copy is taken.
    alice.extend_key("2y");
    let lines = import(&list, &alice.public_key_armored(), &[]);
    assert_eq!(
        lines,
        [
            format!("updated alice@example.test {}", alice.fingerprint()),
            "imported: 1 updated (1 keys read)".to_string()
        ]
    );
    let line = list
        .run_ok(&["subscriber", "list", "--search", "alice"])
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(!line.contains("warning"), "{line}");

    // One audit line per import, not one per key.
    let log = list.run_ok(&["log", "--limit", "50"]);
    assert_eq!(log.matches("subscriber: import from").count(), 3, "{log}");
    assert!(!log.contains("alice@example.test added"), "{log}");
    assert!(
        log.contains("import from") && log.contains("4 added, 2 refused, 3 skipped"),
        "{log}"
    );
}

#[test]
fn nothing_readable_is_an_error_and_one_bad_block_is_not() {
    let list = new_list();
    let file = list.write_aux("junk.asc", b"just some text\n");
    let (code, err) = list.run_err(&["subscriber", "import", &file.to_string_lossy()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("holds no key") || err.contains("no key could be read"),
        "{err}"
    );

    let (good, _) = CertBuilder::general_purpose(Some("ok@example.test"))
        .generate()
        .unwrap();
    let broken = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGZZZZZZ!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n".to_vec();
    let lines = import(&list, &concat(&[broken, armored(&good)]), &[]);
    let bad = starts(&lines, "skipped - -: ");
    assert!(bad.contains("armored block 1"), "{bad}");
    has(&lines, &format!("added ok@example.test {}", fpr(&good)));
    assert_eq!(
        lines.last().unwrap(),
        "imported: 1 added, 1 skipped (1 keys read)"
    );
}

#[test]
fn a_csv_file_chooses_who_is_subscribed() {
    let gen = |uid: &str| {
        CertBuilder::general_purpose(Some(uid))
            .generate()
            .unwrap()
            .0
    };
    let alice = gen("alice@example.test");
    let carol_old = gen("carol@example.test");
    let carol_new = gen("Carol <carol@example.test>");
    let dan = gen("dan@example.test");
    let ring: Vec<u8> = [&alice, &carol_old, &carol_new, &dan]
        .iter()
        .flat_map(|c| c.to_vec().unwrap())
        .collect();
    let list = new_list();
    let csv = format!(
        "address,fingerprint\n# the members who stay\nAlice@Example.test\n\"carol@example.test\",{}\nnobody@example.test\nbob@example.test,{}\nnot-an-address\nalice@example.test\n",
        fpr(&carol_new).to_lowercase(),
        fpr(&dan)[..38].to_string() + "00"
    );
    let csv = list.write_aux("members.csv", csv.as_bytes());
    let lines = import(&list, &ring, &["--csv", &csv.to_string_lossy()]);
    has(&lines, &format!("added alice@example.test {}", fpr(&alice)));
    has(
        &lines,
        &format!("added carol@example.test {}", fpr(&carol_new)),
    );
    has(
        &lines,
        "skipped nobody@example.test -: no key in the keyring has a User ID for this address",
    );
    let bob = starts(
        &lines,
        "skipped bob@example.test -: the keyring has no key ",
    );
    assert!(bob.ends_with("00"), "{bob}");
    has(&lines, "skipped not-an-address -: not an e-mail address");
    has(
        &lines,
        "skipped alice@example.test -: named again; done once",
    );
    assert_eq!(
        lines.last().unwrap(),
        "imported: 2 added, 4 skipped (4 keys read)"
    );
    // Dan is in the keyring but not in the file.
    assert_eq!(
        subscribed(&list),
        [
            ("alice@example.test".to_string(), fpr(&alice)),
            ("carol@example.test".to_string(), fpr(&carol_new)),
        ]
    );
}

fn schleuder_file(name: &str) -> std::path::PathBuf {
    conclave_tests::workspace_root()
        .join("tests/data/schleuder")
        .join(name)
}

#[test]
fn a_schleuder_list_moves_in_one_step() {
    let keys = schleuder_file("keys.asc");
    let keys = keys.to_string_lossy();
    let alice = "85C79EEEB9EB4B31E5F45709445044625576D945";
    let bob = "C417EB422F72477723D67B146153437E0EC7B6C3";
    let dave = "E1CF69BA9DF1BC0D0DDA6AEA229757D3EC7ECBD2";
    let erin = "44C41EBE5963DDF059F15190DE9DBDB5EAB1BA52";
    let mut outputs = Vec::new();
    for subs in ["subscriptions.txt", "subscriptions.json"] {
        let list = new_list();
        let file = schleuder_file(subs);
        let out = list.run_ok(&[
            "subscriber",
            "import",
            &keys,
            "--schleuder",
            &file.to_string_lossy(),
        ]);
        let lines: Vec<String> = out.lines().map(str::to_string).collect();
        has(&lines, &format!("added alice@example.test {alice}; an admin of the Schleuder list; here the list has one owner, you"));
        has(&lines, &format!("added bob@example.test {bob}; delivery was disabled in Schleuder, so copies stay stopped; `conclave subscriber enable bob@example.test` starts them"));
        has(
            &lines,
            "skipped carol@example.test -: no key in the keyring has a User ID for this address",
        );
        has(&lines, &format!("refused dave@example.test {dave}: it has no valid User ID for dave@example.test (it has: dave@old.example.test)"));
        has(&lines, &format!("added erin@example.test {erin}"));
        assert_eq!(
            lines.last().unwrap(),
            "imported: 3 added, 1 refused, 1 skipped (5 keys read)"
        );
        // The list's own key, in Schleuder's keyring, subscribes nobody.
        assert_eq!(
            subscribed(&list)
                .into_iter()
                .map(|(a, _)| a)
                .collect::<Vec<_>>(),
            [
                "alice@example.test",
                "bob@example.test",
                "erin@example.test"
            ]
        );
        let bob_line = list.run_ok(&["subscriber", "list", "--search", "bob@"]);
        assert!(bob_line.contains("delivery: stopped"), "{bob_line}");
        list.run_ok(&["subscriber", "enable", "bob@example.test"]);
        let bob_line = list.run_ok(&["subscriber", "list", "--search", "bob@"]);
        assert!(bob_line.contains("delivery: ok"), "{bob_line}");
        outputs.push(out);
    }
    // Both of schleuder-cli's forms say the same.
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn search_and_pages_over_thousands_of_subscribers() {
    const N: usize = 3000;
    let addresses: Vec<String> = (0..N)
        .map(|i| {
            if i % 10 == 0 {
                format!("member{i:05}@other.example")
            } else {
                format!("member{i:05}@example.test")
            }
        })
        .collect();
    let t = Instant::now();
    let certs = conclave_tests::bench::generate_certs(&addresses, CipherSuite::Cv25519);
    eprintln!("{N} keys made in {:.1} s", t.elapsed().as_secs_f64());
    let mut ring: Vec<u8> = certs.iter().flat_map(|c| c.to_vec().unwrap()).collect();
    // The first key again at the end, long after it was stored: an import
    // reads a keyring a part at a time, and still knows it.
    ring.extend(certs[0].to_vec().unwrap());
    let list = new_list();
    let t = Instant::now();
    let lines = import(&list, &ring, &[]);
    eprintln!(
        "{N} keys imported (debug build) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!("imported: {N} added, 1 skipped ({} keys read)", N + 1)
    );
    assert_eq!(
        lines[N],
        format!(
            "skipped - {}: the same key appears again in the keyring; its copies were merged",
            fpr(&certs[0])
        )
    );

    let mut sorted: Vec<(String, String)> = addresses
        .iter()
        .cloned()
        .zip(certs.iter().map(fpr))
        .collect();
    sorted.sort();

    // Over 500: the first page, and how to see the next.
    let t = Instant::now();
    let out = list.run_ok(&["subscriber", "list"]);
    let first_page = t.elapsed();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 101, "{out}");
    assert!(
        lines[0].starts_with(&format!("{} {} ", sorted[0].0, sorted[0].1)),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[100],
        format!("1-100 of {N} subscribers (page 1 of 30); --page 2 for the next")
    );

    // A page in the middle, a size of our own.
    let t = Instant::now();
    let out = list.run_ok(&["subscriber", "list", "--page", "7", "--per-page", "250"]);
    let middle_page = t.elapsed();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 251);
    for (i, l) in lines[..250].iter().enumerate() {
        let (a, f) = &sorted[1500 + i];
        assert!(l.starts_with(&format!("{a} {f} ")), "{l}");
    }
    assert_eq!(
        lines[250],
        format!("1501-1750 of {N} subscribers (page 7 of 12); --page 8 for the next")
    );
    // The last page says no next; past the end says so.
    let out = list.run_ok(&["subscriber", "list", "--page", "12", "--per-page", "250"]);
    assert_eq!(
        out.lines().last(),
        Some(format!("2751-3000 of {N} subscribers (page 12 of 12)").as_str())
    );
    let out = list.run_ok(&["subscriber", "list", "--page", "13", "--per-page", "250"]);
    assert_eq!(
        out.trim(),
        format!("{N} subscribers; page 13 is past the end")
    );

    // Search: a domain (300 of them, under 500: all shown), case ignored.
    let out = list.run_ok(&["subscriber", "list", "--search", "OTHER.Example"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 301);
    assert!(lines[..300].iter().all(|l| l.contains("@other.example ")));
    assert_eq!(lines[300], "300 subscribers matching \"OTHER.Example\"");

    // Search: a piece of a fingerprint, lower case, with a space in it.
    let (a, f) = &sorted[1234];
    let piece = format!("{} {}", &f[8..12], &f[12..20]).to_lowercase();
    let out = list.run_ok(&["subscriber", "list", "--search", &piece]);
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{a} {f} "))),
        "{out}"
    );
    assert!(out
        .lines()
        .last()
        .unwrap()
        .ends_with(&format!("matching {piece:?}")));

    // `_` and `%` are taken as they are.
    let out = list.run_ok(&["subscriber", "list", "--search", "member_"]);
    assert_eq!(out.trim(), "0 subscribers matching \"member_\"");

    // Every one.
    let out = list.run_ok(&["subscriber", "list", "--all"]);
    assert_eq!(out.lines().count(), N + 1);
    assert_eq!(
        out.lines().last(),
        Some(format!("{N} subscribers").as_str())
    );

    eprintln!(
        "first page {:.3} s, page 7 of 250 {:.3} s (debug build, {N} subscribers)",
        first_page.as_secs_f64(),
        middle_page.as_secs_f64()
    );
    // A page reads its own rows only: far less than a second even here.
    assert!(first_page.as_secs_f64() < 3.0, "{first_page:?}");
}

/// The figure the README gives: `subscriber import` of 100,000 keys, then
/// a page and a search, timed. Too long for every run: `cargo test -p
/// conclave-tests --test import -- --ignored`, with `CONCLAVE_BIN` pointing
/// at a release build (`CONCLAVE_IMPORT_N` changes the number; the keyring
/// is kept in /tmp for the next run).
#[test]
#[ignore]
fn import_of_a_hundred_thousand_keys() {
    let n: usize = std::env::var("CONCLAVE_IMPORT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let path = std::path::PathBuf::from(format!("/tmp/conclave-import-{n}.gpg"));
    if !path.exists() {
        let addresses: Vec<String> = (0..n)
            .map(|i| format!("member{i:06}@example.test"))
            .collect();
        let t = Instant::now();
        let certs = conclave_tests::bench::generate_certs(&addresses, CipherSuite::Cv25519);
        let ring: Vec<u8> = certs.iter().flat_map(|c| c.to_vec().unwrap()).collect();
        std::fs::write(&path, ring).unwrap();
        eprintln!("{n} keys made in {:.1} s", t.elapsed().as_secs_f64());
    }
    let list = new_list();
    let keyring = path.to_string_lossy().to_string();
    let time = |args: &[&str]| {
        let t = Instant::now();
        let out = list.run_ok(args);
        (t.elapsed().as_secs_f64(), out)
    };
    let (import_s, out) = time(&["subscriber", "import", &keyring]);
    assert_eq!(
        out.lines().last().unwrap(),
        format!("imported: {n} added ({n} keys read)")
    );
    let (first_s, out) = time(&["subscriber", "list"]);
    assert!(out
        .lines()
        .last()
        .unwrap()
        .contains(&format!("of {n} subscribers")));
    let last_page = (n / 100).to_string();
    let (deep_s, _) = time(&["subscriber", "list", "--page", &last_page]);
    let (search_s, out) = time(&["subscriber", "list", "--search", "member000042@"]);
    assert!(out.starts_with("member000042@example.test "), "{out}");
    let (again_s, out) = time(&["subscriber", "import", &keyring]);
    assert_eq!(
        out.lines().last().unwrap(),
        format!("imported: {n} unchanged ({n} keys read)")
    );
    eprintln!(
        "{n} keys: import {import_s:.1} s, again (unchanged) {again_s:.1} s; list: first page {first_s:.2} s, page {last_page} {deep_s:.2} s, search {search_s:.2} s"
    );
}
