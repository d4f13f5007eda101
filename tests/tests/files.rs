//! The owner's secret files, through the real `conclave` binary on real
//! files: secrets are written 0600 and never through a symbolic link, a
//! passphrase or password file is read only when it is private and the
//! user's own, and the list's folder and store are the owner's alone.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use conclave_tests::Conclave;

fn list() -> Conclave {
    let c = Conclave::new();
    c.init("list@example.test", "Files");
    c
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A user id that is not ours, for files that belong to someone else.
const NOBODY: u32 = 65534;

/// Gives `path` to another user, if this user may (root may); false if not.
fn give_away(path: &Path) -> bool {
    std::os::unix::fs::chown(path, Some(NOBODY), None).is_ok()
}

#[test]
fn a_password_file_replaces_what_was_there_and_follows_no_link() {
    let c = list();
    // A link planted where the IMAP password will go, to a file elsewhere.
    let victim = c.write_aux("victim", b"someone else's file\n");
    chmod(&victim, 0o644);
    let imap = c.home.path().join("imap-password");
    std::os::unix::fs::symlink(&victim, &imap).unwrap();
    // A file of a loose mode where the SMTP password will go.
    let smtp = c.home.path().join("smtp-password");
    std::fs::write(&smtp, "old\n").unwrap();
    chmod(&smtp, 0o644);
    for (server, path) in [("imap", &imap), ("smtp", &smtp)] {
        c.run_ok_stdin(&["config", "password", server, "--file"], b"s3cret\n");
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{server}: {:?}",
            meta.file_type()
        );
        assert_eq!(mode(path), 0o600, "{server}");
        assert_eq!(std::fs::read_to_string(path).unwrap(), "s3cret\n");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "someone else's file\n"
    );
    assert_eq!(mode(&victim), 0o644);
    // Nothing half-written is left beside them.
    let stray: Vec<_> = std::fs::read_dir(c.home.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_key_backup_is_new_and_follows_no_link() {
    let c = list();
    // A dangling link where the backup is to go: following it would write
    // the key wherever the link points.
    let target = c.aux.path().join("elsewhere.asc");
    let backup = c.aux.path().join("backup.asc");
    std::os::unix::fs::symlink(&target, &backup).unwrap();
    let (code, err) = c.run_err(&["key", "backup", backup.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains(backup.to_str().unwrap()), "{err}");
    assert!(!target.exists(), "the backup followed the link");
    assert!(std::fs::symlink_metadata(&backup)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_passphrase_file_must_be_private_and_ours() {
    let c = list();
    let pf = c.write_aux("pass", conclave_tests::TEST_PASSPHRASE.as_bytes());
    let args = [
        "--passphrase-file",
        pf.to_str().unwrap(),
        "key",
        "extend",
        "--years",
        "2",
    ];
    // Private and ours: it unlocks.
    c.run_ok(&args);
    chmod(&pf, 0o640);
    let (code, err) = c.run_err(&args);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "refusing the passphrase file {}: its mode is 0640; make it 0600",
            pf.display()
        )),
        "{err}"
    );
    chmod(&pf, 0o600);
    if give_away(&pf) {
        let (code, err) = c.run_err(&args);
        assert_eq!(code, 1);
        assert!(
            err.contains(&format!(
                "refusing the passphrase file {}: it belongs to user {NOBODY}",
                pf.display()
            )),
            "{err}"
        );
    }
}

#[test]
fn a_password_file_of_another_user_is_refused() {
    let c = list();
    let pw = c.write_aux("smtp-password", b"s3cret\n");
    c.config_set("smtp.host", "127.0.0.1");
    c.config_set("smtp.password_file", pw.to_str().unwrap());
    if !give_away(&pw) {
        eprintln!("cannot give a file to another user here; skipped");
        return;
    }
    let (code, err) = c.run_err(&["outbox", "send"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "refusing the password file {}: it belongs to user {NOBODY}",
            pw.display()
        )),
        "{err}"
    );
}

#[test]
fn the_list_folder_and_store_are_the_owners_alone() {
    let c = Conclave::new();
    // The folder the owner chose was open to others.
    chmod(c.home.path(), 0o755);
    c.init("list@example.test", "Files");
    c.run_ok(&["config", "show"]);
    assert_eq!(mode(c.home.path()), 0o700);
    let db = c.home.path().join("list.db");
    let mut files = vec![db.clone(), c.home.path().join("list-key.asc")];
    for suffix in ["-wal", "-shm"] {
        let f = c.home.path().join(format!("list.db{suffix}"));
        if f.exists() {
            files.push(f);
        }
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // Loosened afterwards: opening the list makes them private again.
    chmod(c.home.path(), 0o755);
    chmod(&db, 0o644);
    c.run_ok(&["config", "show"]);
    assert_eq!(mode(c.home.path()), 0o700);
    assert_eq!(mode(&db), 0o600);
}
