//! The replay cache holds across a list's instances (co-owners each run
//! one): a post one instance took is refused by the other when the mail host
//! (or anyone) puts it into the mailbox again, signed or not. The marks the
//! instances share in the mailbox are keyed digests: no content, and nothing
//! the mail host can check a guess against.

use conclave_tests::{wait_until, MailList, Mailhost};

const LIST: &str = "list@example.test";

/// A co-owner's instance: a copy of the list's folder, run with the same
/// passphrase. Returns its `run --once` output.
fn run_once(home: &std::path::Path, f: &MailList) -> String {
    let out = std::process::Command::new(conclave_tests::conclave_bin())
        .env("CONCLAVE_PASSPHRASE_FILE", &f.list.passphrase_file)
        .arg("--home")
        .arg(home)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tests share the list mailbox: one at a time.
static MAILBOX: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_post_one_instance_took_is_refused_by_the_other() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Shared Replay");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    f.list.config_set("receive_signed_only", "distribute");
    let second = f.list.copy_home();

    let tag = std::process::id();
    let signed = f.subs[0].compose_post(&f.cert, LIST, "...", &format!("SIGNED-{tag}"));
    let unsigned =
        f.subs[1].compose_unsigned_post(&f.cert, LIST, "...", &format!("UNSIGNED-{tag}"));
    mh.inject("alice@example.test", LIST, &signed);
    mh.inject("bob@example.test", LIST, &unsigned);
    assert!(wait_until(10, || mh.count("list", "") == 2));
    // The first instance takes both.
    let first = run_once(f.list.home.path(), &f);
    assert_eq!(first.matches("distributed to 3").count(), 2, "{first}");

    // Both come again, byte for byte; the other instance has never seen them.
    mh.inject("alice@example.test", LIST, &signed);
    mh.inject("bob@example.test", LIST, &unsigned);
    assert!(wait_until(10, || mh.count("list", "") == 2));
    let second_out = run_once(second.path(), &f);
    assert!(
        second_out.contains("rejected: replayed: the same signed post was taken before by another instance of this list"),
        "{second_out}"
    );
    assert!(
        second_out.contains("rejected: replayed: the same post (the same decrypted content) was taken before by another instance of this list"),
        "{second_out}"
    );
    assert!(!second_out.contains("distributed"), "{second_out}");

    // What the instances share holds no content.
    let marks = mh.count("list", "Replay");
    assert!(marks >= 2, "a key and the marks: {marks}");
    for file in mh.stored_files() {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&format!("SIGNED-{tag}")),
            "{} holds plaintext",
            file.display()
        );
    }
}

/// The mail host leaves a "replay key" of its own in the folder before any
/// instance made one, sealed to the public list key but not signed by it:
/// it is passed over, the list makes its own, and an instance that comes
/// later takes the list's (the oldest the list signed), so replays are
/// still refused across instances.
#[test]
fn a_replay_key_the_list_did_not_sign_is_passed_over() {
    use conclave_tests::RawImap;
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Planted Key");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    let second = f.list.copy_home();
    // A first pass with nothing to do makes the folders.
    run_once(f.list.home.path(), &f);
    let mut raw = RawImap::login();
    let listed = raw.ok("LIST \"\" \"Conclave*\"");
    let folder = listed
        .iter()
        .filter_map(|l| l.trim_end().rsplit(' ').next())
        .map(|n| n.trim_matches('"').to_string())
        .find(|n| n.ends_with("Replay"))
        .expect("the replay folder");
    let planted = f.subs[0]
        .encrypt(format!("{}\n", "AB".repeat(32)).as_bytes(), &f.cert, false)
        .unwrap();
    let mut message = b"From: <list@example.test>\r\nSubject: Conclave replay key\r\n\r\nconclave-replay-key v1\r\n".to_vec();
    message.extend_from_slice(&planted);
    raw.append(&format!("\"{folder}\""), "\\Seen", &message);

    let tag = std::process::id();
    let signed = f.subs[0].compose_post(&f.cert, LIST, "...", &format!("PLANTED-{tag}"));
    mh.inject("alice@example.test", LIST, &signed);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let first = run_once(f.list.home.path(), &f);
    assert!(first.contains("distributed to 3"), "{first}");
    // The planted key was passed over: the list left its own after it.
    raw.select(&format!("\"{folder}\""));
    let keys = raw
        .ok("UID SEARCH SUBJECT \"Conclave replay key\"")
        .concat();
    assert_eq!(keys.split_whitespace().count(), 4, "two keys: {keys}");
    raw.ok("LOGOUT");

    mh.inject("alice@example.test", LIST, &signed);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let second_out = run_once(second.path(), &f);
    assert!(
        second_out.contains("was taken before by another instance of this list"),
        "{second_out}"
    );
}
