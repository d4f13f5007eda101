//! Delivery benchmark: from a post sitting in the list mailbox until the
//! mail host has accepted the last of its 1000 copies.
//!
//! Run with `make bench` (or `cargo bench -p conclave-tests --bench
//! delivery`), as root: it uses the loopback Postfix + Dovecot of
//! `tests/testbed/mailhost.sh`, starting it if it is not running.
//!
//! The list has 1000 subscribers: alice (GnuPG, who posts) and 999 generated
//! Cv25519 keys at `alice+sNNNN@example.test`, which Postfix delivers to
//! alice's mailbox by plus addressing (the catch-all). For each timed post:
//!
//! 1. alice's GnuPG signs and encrypts a 20 KiB post; it is injected over
//!    SMTP and the bench waits until Dovecot has it in the list's INBOX;
//! 2. the clock starts, and `conclave run --once` logs in over IMAPS,
//!    fetches, records and claims the post, decrypts and verifies it, fans
//!    it out, and submits the 1000 copies over SMTPS; it exits once Postfix
//!    has answered 250 to the last one (a copy is marked sent only then);
//! 3. the clock stops when it exits. Process start, TLS handshakes and
//!    logins are inside the figure.
//!
//! Between posts the bench waits for Postfix to finish delivering the
//! previous copies to the mailbox, so one post's local delivery does not run
//! during the next one's timing. (During a post, Postfix's own delivery of
//! the copies already accepted does run, on the same two cores.)
//!
//! Beside it, the anchor measured in the same run: one `gpg -e -r FPR`
//! process per subscriber encrypting the same 20 KiB text, without signing
//! and without sending anything.
//!
//! The `conclave` binary is `$CONCLAVE_BIN` (`make bench` builds a release
//! one and sets it), else `target/release/conclave` if it exists, else the
//! debug build.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use conclave_core::{List, SystemClock};
use conclave_tests::bench::{self, entity, fmt_secs, gpg_per_process, median, secs};
use conclave_tests::{wait_until, MailList, Mailhost};
use openpgp::serialize::SerializeInto;
use sequoia_openpgp as openpgp;

const LIST: &str = "list@example.test";
const SUBSCRIBERS: usize = 1000;
const POST_SIZE: usize = 20 * 1024;
const POSTS: usize = 3;
const TARGET: f64 = 5.0;

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CONCLAVE_BIN") {
        return PathBuf::from(p);
    }
    let release = conclave_tests::workspace_root().join("target/release/conclave");
    if release.is_file() {
        return release;
    }
    conclave_tests::conclave_bin()
}

/// One timed post: what `run --once` printed, with the time of each line.
struct Timed {
    total: f64,
    /// When the "post #N: distributed to M" line came: the post decrypted,
    /// verified and fanned out into the outbox.
    fanned_out: f64,
    lines: Vec<String>,
}

fn timed_run(f: &MailList, bin: &PathBuf) -> Timed {
    let t0 = Instant::now();
    let mut child = std::process::Command::new(bin)
        .env("CONCLAVE_PASSPHRASE_FILE", &f.list.passphrase_file)
        .arg("--home")
        .arg(f.list.home.path())
        .args(["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start conclave run --once");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut fanned_out = f64::NAN;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read conclave's output");
        if line.contains("distributed to") {
            fanned_out = secs(t0.elapsed());
        }
        lines.push(line);
    }
    let out = child.wait_with_output().expect("wait for conclave");
    let total = secs(t0.elapsed());
    assert!(
        out.status.success(),
        "conclave run --once failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Timed {
        total,
        fanned_out,
        lines,
    }
}

fn main() {
    let started = Instant::now();
    let bin = binary();
    eprintln!("[bench] conclave binary: {}", bin.display());
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Delivery Bench");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    // alice stays (she posts, with GnuPG); bob and carol make room for the
    // generated subscribers.
    for s in &f.subs[1..] {
        f.list.run_ok(&["subscriber", "remove", s.address()]);
    }
    let alice = &f.subs[0];

    // The generated subscribers, and the same certificates for the anchor.
    let t = Instant::now();
    let n = SUBSCRIBERS - 1;
    let addresses: Vec<String> = (1..=n)
        .map(|i| format!("alice+s{i:04}@example.test"))
        .collect();
    let certs = bench::generate_certs(&addresses, openpgp::cert::CipherSuite::Cv25519);
    let mut list = List::open(f.list.home.path(), Arc::new(SystemClock)).expect("open the list");
    let mut all_public = Vec::new();
    for (a, cert) in addresses.iter().zip(&certs) {
        let armored = cert.armored().to_vec().expect("armor");
        list.add_subscriber(a, &armored).expect("add a subscriber");
        all_public.extend_from_slice(&armored);
    }
    drop(list);
    eprintln!(
        "[bench] {} subscribers set up in {:.1} s (not timed)",
        SUBSCRIBERS,
        secs(t.elapsed())
    );

    // The anchor's GnuPG home: the same keys, plus one more so that it too
    // encrypts exactly SUBSCRIBERS copies.
    let work = tempfile::Builder::new()
        .prefix("cbd")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let ghome = work.path().join("gnupg");
    std::fs::create_dir_all(&ghome).expect("mkdir");
    let extra = bench::generate_certs(
        &["anchor@example.test".to_string()],
        openpgp::cert::CipherSuite::Cv25519,
    );
    all_public.extend(extra[0].armored().to_vec().expect("armor"));
    let keyfile = work.path().join("all.asc");
    std::fs::write(&keyfile, &all_public).expect("write keys");
    let imported = bench::gpg_import(&ghome, &keyfile);
    assert_eq!(imported, SUBSCRIBERS, "gpg imported every cert");
    let fprs: Vec<String> = certs
        .iter()
        .chain(&extra)
        .map(|c| c.fingerprint().to_hex())
        .collect();

    let text = entity(POST_SIZE);
    let body = String::from_utf8_lossy(&text)
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.replace("\r\n", "\n"))
        .expect("the entity has a body");

    let mut runs = Vec::new();
    for k in 1..=POSTS {
        let post = alice.compose_post(&f.cert, LIST, "...", &format!("post {k}\n{body}"));
        mh.inject(alice.address(), LIST, &post);
        assert!(
            wait_until(30, || mh.count("list", "") == 1),
            "the post did not reach the list mailbox"
        );
        eprintln!("[bench] post {k} of {POSTS}: in the list mailbox; run --once ...");
        let r = timed_run(&f, &bin);
        let joined = r.lines.join("\n");
        assert!(
            joined.contains(&format!("distributed to {SUBSCRIBERS}")),
            "{joined}"
        );
        assert!(
            joined.contains(&format!("sent {SUBSCRIBERS}, failed 0, deferred 0")),
            "{joined}"
        );
        eprintln!(
            "[bench]   {} (fanned out at {}); waiting for Postfix to deliver them ...",
            fmt_secs(r.total),
            fmt_secs(r.fanned_out)
        );
        // Let Postfix finish delivering before the next timed post.
        let want = k * SUBSCRIBERS;
        assert!(
            wait_until(300, || mh.count("alice", "") >= want),
            "Postfix delivered only {} of {want} copies",
            mh.count("alice", "")
        );
        runs.push(r);
    }

    eprintln!("[bench] anchor: {SUBSCRIBERS} gpg processes ...");
    let input = work.path().join("post.eml");
    std::fs::write(&input, &text).expect("write the plaintext");
    let gpg = gpg_per_process(&ghome, &fprs, &input, &work.path().join("out.gpg"));
    bench::gpg_kill(&ghome);

    let conclave = median(runs.iter().map(|r| r.total).collect());
    let fan = median(runs.iter().map(|r| r.fanned_out).collect());
    let mut out = String::new();
    use std::fmt::Write as _;
    let w = &mut out;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Conclave delivery vs GnuPG encryption alone: {SUBSCRIBERS} subscribers, 20 KiB post, loopback Postfix + Dovecot"
    );
    let _ = writeln!(
        w,
        "{:>28} | {:>11} | {:>14} | {:>9}",
        "", "median", "runs", "per copy"
    );
    let _ = writeln!(w, "{}", "-".repeat(73));
    let rows = [
        (
            "Conclave, mailbox -> 250",
            conclave,
            runs.iter().map(|r| r.total).collect::<Vec<_>>(),
        ),
        (
            "  of which up to fan-out",
            fan,
            runs.iter().map(|r| r.fanned_out).collect(),
        ),
        ("GnuPG, 1 process per copy", gpg, vec![gpg]),
    ];
    for (label, median, all) in rows {
        let all: Vec<String> = all.iter().map(|s| format!("{s:.2}")).collect();
        let _ = writeln!(
            w,
            "{label:>28} | {:>11} | {:>14} | {:>6.2} ms",
            fmt_secs(median),
            all.join(" "),
            median * 1e3 / SUBSCRIBERS as f64
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Conclave = `conclave run --once` started with the post in the list INBOX, until it exits after Postfix"
    );
    let _ = writeln!(
        w,
        "  accepted the last copy (IMAPS login, fetch, claim, decrypt, verify, fan-out, 1000 SMTPS submissions over\n  smtp.connections = 4 connections)."
    );
    let _ = writeln!(
        w,
        "GnuPG = `gpg --batch --trust-model always -e -r FPR` per subscriber on the same text: encryption only, nothing sent."
    );
    let _ = writeln!(w, "Conclave / GnuPG = {:.2}", conclave / gpg);
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Target:\n  [{}] mailbox -> last copy accepted <= {TARGET} s: {}",
        if conclave <= TARGET { "PASS" } else { "MISS" },
        fmt_secs(conclave)
    );
    let _ = writeln!(
        w,
        "\n(binary {}; total bench wall time {:.0} s)",
        bin.display(),
        secs(started.elapsed())
    );
    print!("{out}");
    let _ = std::io::stdout().flush();
    mh.clear();
}
