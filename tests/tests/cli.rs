//! The command line's contract: every command has --help with an example,
//! every failure exits non-zero with one clear line on stderr, `-` reads
//! standard input, and the passphrase comes from a flag or the environment.

use conclave_tests::{Conclave, Engine, Subscriber};

const LIST: &str = "list@example.test";

fn one_line_error(c: &Conclave, args: &[&str], expect: &str) {
    let (code, stderr) = c.run_err(args);
    assert_ne!(code, 0, "{args:?} must fail");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: one line on stderr, got {stderr:?}"
    );
    assert!(stderr.starts_with("conclave: error: "), "{stderr}");
    assert!(
        stderr.contains(expect),
        "{args:?}: expected {expect:?} in {stderr:?}"
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    let c = Conclave::new();
    let commands: &[&[&str]] = &[
        &[],
        &["init"],
        &["key", "export"],
        &["key", "extend"],
        &["key", "backup"],
        &["subscriber", "add"],
        &["subscriber", "import"],
        &["subscriber", "list"],
        &["subscriber", "enable"],
        &["subscriber", "remove"],
        &["config", "set"],
        &["config", "show"],
        &["config", "password"],
        &["process"],
        &["outbox", "export"],
        &["outbox", "send"],
        &["run"],
        &["held", "list"],
        &["held", "show"],
        &["held", "approve"],
        &["held", "reject"],
        &["held", "discard"],
        &["log"],
        &["bounces"],
        &["invite"],
        &["certs", "list"],
        &["certs", "show"],
        &["certs", "accept"],
        &["card", "list"],
        &["card", "use"],
        &["card", "import"],
        &["card", "generate"],
        &["certs", "forget"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = c.run_ok(&args);
        assert!(
            out.contains("Example"),
            "{cmd:?} --help has no example:\n{out}"
        );
        assert!(out.contains("conclave"), "{cmd:?}");
    }
}

#[test]
fn failures_are_one_clear_line() {
    let c = Conclave::new();
    one_line_error(&c, &["subscriber", "list"], "no list in");
    c.init(LIST, "CLI");
    one_line_error(
        &c,
        &["init", "--address", LIST, "--name", "x", "--generate-key"],
        "already holds a list",
    );
    one_line_error(
        &c,
        &["config", "set", "no_such_option", "1"],
        "unknown setting no_such_option",
    );
    one_line_error(
        &c,
        &["config", "set", "receive_signed_only", "maybe"],
        "bad value for receive_signed_only",
    );
    one_line_error(&c, &["held", "show", "42"], "no post #42");
    one_line_error(
        &c,
        &["subscriber", "remove", "nobody@example.test"],
        "nobody@example.test is not a subscriber",
    );
    one_line_error(
        &c,
        &["process", "/nonexistent/post.eml"],
        "cannot read /nonexistent/post.eml",
    );

    // A key whose User ID is another address.
    let s = Subscriber::new(Engine::Gpg, "alice@example.test");
    let key = s.public_key_file();
    one_line_error(
        &c,
        &[
            "subscriber",
            "add",
            "mallory@example.test",
            "--key",
            &key.to_string_lossy(),
        ],
        "has no valid User ID for mallory@example.test",
    );
    let junk = c.write_aux("junk.asc", b"not a key");
    one_line_error(
        &c,
        &[
            "subscriber",
            "add",
            "a@example.test",
            "--key",
            &junk.to_string_lossy(),
        ],
        "cannot read the key",
    );

    // No passphrase, and a wrong one.
    let post = c.write_aux("p.eml", b"From: a@example.test\r\n\r\nhi\r\n");
    let out = c
        .cmd()
        .env_remove("CONCLAVE_PASSPHRASE_FILE")
        .args(["process", &post.to_string_lossy()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "the list key is locked: give --passphrase-file or set CONCLAVE_PASSPHRASE_FILE"
        ),
        "{err}"
    );
    let wrong = c.write_aux("wrong", b"not the passphrase");
    let out = c
        .cmd()
        .args([
            "--passphrase-file",
            &wrong.to_string_lossy(),
            "process",
            &post.to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot unlock the list key: wrong passphrase"));
}

#[test]
fn process_reads_stdin_and_prints_one_line_per_message() {
    let c = Conclave::new();
    c.init(LIST, "CLI");
    let cert = c.list_cert();
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    c.add_subscriber(&alice);
    let post = alice.compose_post(&cert, LIST, "stdin", "from standard input");
    let out = c.run_ok_stdin(&["process", "-"], &post);
    assert_eq!(out, "distributed to 1\n");
    // Several files: one line each, in order.
    let a = c.write_aux("a.eml", &alice.compose_post(&cert, LIST, "a", "first"));
    let b = c.write_aux(
        "b.eml",
        b"From: alice@example.test\r\nSubject: clear\r\n\r\nin clear\r\n",
    );
    let out = c.run_ok(&["process", &a.to_string_lossy(), &b.to_string_lossy()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "distributed to 1");
    assert!(lines[1].starts_with("rejected: not encrypted"), "{out}");
}

#[test]
fn config_show_lists_every_option() {
    let c = Conclave::new();
    c.init(LIST, "CLI");
    c.config_set("signature_mode", "replace");
    let out = c.run_ok(&["config", "show"]);
    for k in [
        "receive_encrypted_only = reject",
        "receive_signed_only = hold",
        "subscribers_only = hold",
        "max_message_size_kb = 10240",
        "signature_mode = replace",
        "list.address = list@example.test",
        "list.request_address = list+request@example.test",
    ] {
        assert!(out.contains(k), "{k} missing:\n{out}");
    }
}

/// `key extend` moves the expiry of the primary key and the encryption
/// subkey; the exported key shows it, posts still go out signed by it, and
/// GnuPG takes the new date. `key backup` writes the key file as kept: mode
/// 0600, every secret part encrypted, opening with the list passphrase.
#[test]
fn the_list_key_is_extended_and_backed_up() {
    use openpgp::parse::Parse;
    use sequoia_openpgp as openpgp;
    use std::time::{Duration, SystemTime};
    let c = Conclave::new();
    c.init("list@example.test", "Keys");
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    c.add_subscriber(&alice);
    let policy = openpgp::policy::StandardPolicy::new();
    let expiry = |armored: &[u8]| {
        let cert = openpgp::Cert::from_bytes(armored).unwrap();
        let vc = cert.with_policy(&policy, None).unwrap();
        let primary = vc.primary_key().key_expiration_time().unwrap();
        let subs: Vec<SystemTime> = vc
            .keys()
            .subkeys()
            .map(|k| k.key_expiration_time().unwrap())
            .collect();
        (primary, subs)
    };
    let (before, _) = expiry(&c.list_cert());
    let year = Duration::from_secs(365 * 24 * 3600);
    assert!(before < SystemTime::now() + 4 * year);

    let out = c.run_ok(&["key", "extend", "--years", "5"]);
    assert!(out.contains("now expires"), "{out}");
    let cert = c.list_cert();
    let (primary, subs) = expiry(&cert);
    let want = SystemTime::now() + 5 * year;
    let near = |t: SystemTime| {
        t.duration_since(want)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap()
            < Duration::from_secs(2 * 24 * 3600)
    };
    assert!(near(primary), "{primary:?}");
    assert_eq!(subs.len(), 1);
    assert!(subs.iter().all(|&t| near(t)), "{subs:?}");

    // GnuPG takes the extended key, and the list still signs with it.
    alice.import_cert(&cert).unwrap();
    let post = alice.compose_post(&cert, "list@example.test", "...", "after the extension");
    assert_eq!(c.process(&post), "distributed to 1");
    let copy = c.export_outbox().into_values().next().unwrap();
    let d = alice.decrypt(&copy).unwrap();
    let (signed, sig) = d.split_signed().unwrap();
    alice.verify_detached(&signed, &sig, &cert).unwrap();
    // The key file has the new signatures too: a fresh unlock signs with
    // the new expiry in force (the copy above came from one).
    let file = std::fs::read(c.home.path().join("list-key.asc")).unwrap();
    assert_eq!(expiry(&file).0, primary);

    let backup = c.home.path().join("backup.asc");
    let out = c.run_ok(&["key", "backup", backup.to_str().unwrap()]);
    assert!(out.contains("encrypted backup written to"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let tsk = openpgp::Cert::from_bytes(&std::fs::read(&backup).unwrap()).unwrap();
    assert_eq!(tsk.keys().secret().count(), 2);
    let pw = openpgp::crypto::Password::from(conclave_tests::TEST_PASSPHRASE);
    for k in tsk.keys().secret() {
        assert!(k.key().secret().is_encrypted());
        k.key().clone().decrypt_secret(&pw).unwrap();
    }
    one_line_error(
        &c,
        &["key", "backup", backup.to_str().unwrap()],
        "exists already",
    );
}
