//! Delivery benchmark: from a post sitting in the list mailbox until the
//! mail host has accepted the last of its copies, beside Postfix's own
//! `smtp-source` pushing as many messages of the same size into the same
//! Postfix, over as many connections.
//!
//! Run with `make bench` (or `cargo bench -p conclave-tests --bench
//! delivery`), as root: it uses the loopback Postfix + Dovecot of
//! `tests/testbed/mailhost.sh`, starting it if it is not running.
//!
//! Two sizes, 1000 and 10,000 copies (`CONCLAVE_BENCH_SIZES=1000,...`
//! chooses others). The list's subscribers are alice (GnuPG, who posts) and
//! generated Cv25519 keys at `sNNNNN@sink.example.test`, which the mail
//! host delivers to alice's mailbox (as `alice+sNNNNN`). The generated keys are
//! kept between runs in `target/bench-keys/` (or `$CONCLAVE_BENCH_KEYS`).
//! For each timed post:
//!
//! 1. alice's GnuPG signs and encrypts a 20 KiB post; it is injected over
//!    SMTP and the bench waits until Dovecot has it in the list's INBOX;
//! 2. the clock starts, and `conclave run --once` logs in over IMAPS,
//!    fetches, records and claims the post, decrypts and verifies it, fans
//!    it out, and submits every copy over SMTPS; once Postfix has answered
//!    250 to the last one and the copies are marked sent, it says so
//!    (`CONCLAVE_TIMINGS=1` makes it say when each step ended, on the same
//!    clock as the bench's; the bench prints that breakdown), then exits;
//! 3. the figure ends there, at the last copy accepted and recorded, as the
//!    target says; the time to its exit (the store's journal written back
//!    into the database at close, mostly) is printed beside it. Process
//!    start, the passphrase derivations, TLS handshakes and logins are
//!    inside the figure.
//!
//! After each Conclave run, `/usr/sbin/smtp-source -d -s C -m N -N -F COPY`
//! sends N messages over C sessions to the mail host's plain SMTP port (it
//! speaks no TLS), each the bytes of one copy Conclave sent (taken from
//! alice's mailbox), each to a recipient of its own (`-N`: `1s@`, `2s@`, ...
//! of the sink domain), as a list's copies are: Postfix resolves and
//! rewrites every address afresh (its manual says that without `-N` the
//! address caches hit every time, which no real load does) and delivers
//! them to the same mailbox through the same LMTP, so it does the same
//! work. C is the list's `smtp.connections`. The two take turns, post by
//! post, so a machine that slows down during the bench slows both.
//!
//! The target is judged turn by turn: each turn's Conclave time over the
//! smtp-source time right after it, and the median of those ratios. On a
//! two-core virtual machine a run of either varies by up to a factor of
//! two from one turn to the next, and the two medians (printed too, with
//! their ratio) come from different turns: over five runs of the same code
//! at 1000 copies their ratio went from 0.91 to 1.35, while the median of
//! the turns' own ratios, which keeps what each pair shared of the
//! machine's state, stayed between 1.01 and 1.20.
//!
//! During each timed run Postfix holds what it accepts (`mailhost.sh
//! hold`: its cleanup daemon writes every message to the hold queue, as it
//! would to the incoming one, and nothing is delivered): the clock times
//! the mail host *accepting* the mail, which is what the target compares.
//! Letting Postfix deliver to Dovecot during the run, on the same two
//! cores, made the figure mostly a matter of how the machine split itself
//! between acceptance and local delivery: in one profiled pair at 10,000,
//! Dovecot's LMTP took 0.2 s a message during Conclave's run and 0.65 s
//! during smtp-source's, on the same CPU time, and the acceptance side
//! used the same CPU time in both (`CONCLAVE_BENCH_LOCAL_DELIVERY=during`
//! still times it that way). After the run the bench checks that Postfix
//! holds all N messages and delivered none; Conclave's are then released
//! and the bench waits until all N reached the mailbox (one of them is the
//! message smtp-source sends); smtp-source's are deleted. Every run starts
//! from empty mailboxes.
//!
//! Beside them, for 1000, the anchor measured in the same run: one
//! `gpg -e -r FPR` process per subscriber encrypting the same 20 KiB text,
//! without signing and without sending anything.
//!
//! `CONCLAVE_BENCH_PERF=DIR` runs each Conclave and smtp-source run under
//! `perf record -a -g`, one file in DIR each, to see where the machine's
//! time went (`perf report --sort comm`).
//!
//! The `conclave` binary is `$CONCLAVE_BIN` (`make bench` builds a release
//! one and sets it), else `target/release/conclave` if it exists, else the
//! debug build.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use conclave_core::{List, SystemClock};
use conclave_tests::bench::{self, entity, fmt_secs, gpg_per_process, median, secs};
use conclave_tests::{wait_until, MailList, Mailhost};
use openpgp::parse::Parse as _;
use openpgp::serialize::{Serialize as _, SerializeInto as _};
use sequoia_openpgp as openpgp;

const LIST: &str = "list@example.test";
const POST_SIZE: usize = 20 * 1024;
/// Timed posts per size (each beside an smtp-source run;
/// `CONCLAVE_BENCH_POSTS` sets another number): on a virtual machine with
/// two cores a run of a few seconds varies by a factor of two from one turn
/// to the next (1.7 to 4.5 s for the same 1000 copies), for both, so the
/// medians need many turns; with Postfix holding the mail, a turn at 1000
/// costs about 17 s in all, one at 10,000 about 2 minutes.
fn posts(n: usize) -> usize {
    if let Some(k) = std::env::var("CONCLAVE_BENCH_POSTS")
        .ok()
        .and_then(|k| k.parse().ok())
    {
        return k;
    }
    if n <= 1000 {
        15
    } else {
        5
    }
}
/// The mail host's sink domain (`tests/testbed/mailhost.sh`).
const SINK: &str = "sink.example.test";
/// Conclave may take this many times what `smtp-source` takes.
const TARGET: f64 = 1.2;
/// The anchor's size: one gpg process per copy costs about 7 s here.
const ANCHOR_SIZE: usize = 1000;

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

fn sizes() -> Vec<usize> {
    std::env::var("CONCLAVE_BENCH_SIZES")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.split(',')
                .map(|n| n.trim().parse().expect("CONCLAVE_BENCH_SIZES: numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![1000, 10_000])
}

/// A generated subscriber's address: the mail host delivers every address
/// of its sink domain to alice's mailbox, as [`delivered_to`].
fn address(i: usize) -> String {
    format!("s{i:05}@{SINK}")
}

/// Where the copy for [`address`] `i` lands: alice's mailbox, with this
/// `Delivered-To:`.
fn delivered_to(i: usize) -> String {
    format!("alice+s{i:05}@example.test")
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

/// The step `run --once` names once the server has answered every copy
/// and the copies are marked sent.
const ANSWERED: &str = "every copy answered";

/// One timed post: what `run --once` printed, with the time of each line.
struct Timed {
    /// From the start to the last copy accepted and marked sent.
    total: f64,
    /// From the start to the process's exit.
    exited: f64,
    /// When the "post #N: distributed to M" line came: the post decrypted,
    /// verified and fanned out into the outbox.
    fanned_out: f64,
    lines: Vec<String>,
    /// `CONCLAVE_TIMINGS` stages: seconds after the start, and the stage.
    stages: Vec<(f64, String)>,
}

fn timed_run(f: &MailList, bin: &Path) -> Timed {
    let start = unix_micros();
    let t0 = Instant::now();
    let mut child = perf_wrapped(bin, "conclave")
        .env("CONCLAVE_PASSPHRASE_FILE", &f.list.passphrase_file)
        .env("CONCLAVE_TIMINGS", "1")
        .arg("--home")
        .arg(f.list.home.path())
        .args(["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start conclave run --once");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut lines = Vec::new();
    let mut fanned_out = f64::NAN;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read conclave's output");
        if line.contains("distributed to") {
            fanned_out = secs(t0.elapsed());
        }
        lines.push(line);
    }
    let status = child.wait().expect("wait for conclave");
    let exited = secs(t0.elapsed());
    let errors = errors.join().expect("stderr reader");
    assert!(
        status.success(),
        "conclave run --once failed: {status}\n{errors}"
    );
    let stages = errors
        .lines()
        .filter_map(|l| l.strip_prefix("conclave-timing "))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(t, stage)| {
            let t: u128 = t.parse().ok()?;
            Some((t.saturating_sub(start) as f64 / 1e6, stage.to_string()))
        })
        .collect::<Vec<(f64, String)>>();
    let total = stages
        .iter()
        .find(|(_, stage)| stage == ANSWERED)
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("run --once did not say {ANSWERED:?}:\n{errors}"));
    Timed {
        total,
        exited,
        fanned_out,
        lines,
        stages,
    }
}

/// `program`, or `perf record -a` running it when `CONCLAVE_BENCH_PERF`
/// names a folder for the profiles (the whole machine while it runs).
fn perf_wrapped(program: &Path, name: &str) -> std::process::Command {
    let Some(dir) = std::env::var_os("CONCLAVE_BENCH_PERF") else {
        return std::process::Command::new(program);
    };
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut c = std::process::Command::new("perf");
    c.args(["record", "-q", "-a", "-g", "-o"])
        .arg(PathBuf::from(dir).join(format!("{k:02}-{name}.data")))
        .arg("--")
        .arg(program);
    c
}

/// The generated subscribers' certificates, `n` of them, from the cache
/// (generating and adding the missing ones).
fn certs(n: usize) -> Vec<openpgp::Cert> {
    let dir = std::env::var_os("CONCLAVE_BENCH_KEYS")
        .map(PathBuf::from)
        .unwrap_or_else(|| conclave_tests::workspace_root().join("target/bench-keys"));
    std::fs::create_dir_all(&dir).expect("mkdir the key cache");
    let file = dir.join("delivery-cv25519.pgp");
    let mut certs: Vec<openpgp::Cert> = match std::fs::read(&file) {
        Ok(bytes) => openpgp::cert::CertParser::from_bytes(&bytes)
            .expect("parse the key cache")
            .collect::<openpgp::Result<Vec<_>>>()
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    // The cache is good only if its certs are the addresses, in order.
    let good = certs
        .iter()
        .enumerate()
        .take_while(|(i, c)| {
            c.userids()
                .next()
                .is_some_and(|u| u.userid().value() == address(i + 1).as_bytes())
        })
        .count();
    certs.truncate(good);
    if certs.len() < n {
        let t = Instant::now();
        let missing: Vec<String> = (certs.len() + 1..=n).map(address).collect();
        eprintln!(
            "[bench] generating {} Cv25519 subscriber keys (kept in {}) ...",
            missing.len(),
            dir.display()
        );
        certs.extend(bench::generate_certs(
            &missing,
            openpgp::cert::CipherSuite::Cv25519,
        ));
        let mut out = Vec::new();
        for c in &certs {
            c.as_tsk().serialize(&mut out).expect("serialize a cert");
        }
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, &out).expect("write the key cache");
        std::fs::rename(&tmp, &file).expect("keep the key cache");
        eprintln!("[bench]   done in {:.1} s", secs(t.elapsed()));
    }
    certs.truncate(n);
    certs
}

/// The copy as Conclave submitted it: a message from alice's mailbox
/// without the lines the mail host put in front of it.
fn submitted_copy(mh: &Mailhost, to: &str) -> Vec<u8> {
    let needle = format!("Delivered-To: {to}\n");
    let stored = mh
        .inbox("alice")
        .into_iter()
        .find(|m| m.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .expect("a copy in alice's mailbox");
    let text = String::from_utf8_lossy(&stored).into_owned();
    let lines = text.split_inclusive('\n');
    let mut skipping = false;
    let mut out = String::new();
    let mut head = true;
    for line in lines {
        if head {
            let added = ["Return-Path:", "Delivered-To:", "Received:"]
                .iter()
                .any(|h| line.starts_with(h));
            let continued = line.starts_with([' ', '\t']);
            if added || (skipping && continued) {
                skipping = true;
                continue;
            }
            head = false;
        }
        out.push_str(line);
    }
    out.into_bytes()
}

/// One `smtp-source` run: `n` messages of `copy` over `sessions` sessions
/// to the plain SMTP port, timed until it exits.
fn smtp_source(mh: &Mailhost, copy: &Path, n: usize, sessions: usize) -> f64 {
    let target = format!(
        "{}:{}",
        mh.var("MAILHOST_HOST"),
        mh.port("MAILHOST_SMTP_PORT")
    );
    let t0 = Instant::now();
    let out = perf_wrapped(Path::new("/usr/sbin/smtp-source"), "source")
        .args(["-d", "-s", &sessions.to_string(), "-m", &n.to_string()])
        .args([
            "-f",
            LIST,
            // A recipient of its own for each message, as a list's
            // copies have: 1s@, 2s@, ... of the sink domain.
            "-N",
            "-t",
            &format!("s@{SINK}"),
            "-M",
            "conclave.invalid",
        ])
        .arg("-F")
        .arg(copy)
        .arg(&target)
        .output()
        .expect("run /usr/sbin/smtp-source (the postfix package)");
    let took = secs(t0.elapsed());
    assert!(
        out.status.success(),
        "smtp-source failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// What was measured at one size.
struct Row {
    n: usize,
    runs: Vec<Timed>,
    source: Vec<f64>,
    copy_size: usize,
    gpg: Option<f64>,
}

/// Waits until alice's mailbox holds `want` messages. It looks twice a
/// second: reading a directory of 10,000 names a hundred times a second
/// took a quarter of a core from the delivery it waits for.
/// Before a timed run: what the steps before it wrote (a previous run's
/// messages delivered into the mailbox, deleted again) goes to the disk
/// now, not under the fsyncs of the run.
fn settle() {
    let status = std::process::Command::new("sync")
        .status()
        .expect("run sync");
    assert!(status.success(), "sync failed: {status}");
}

/// Whether Postfix holds what is accepted during a timed run (the
/// default), rather than delivering it to Dovecot on the same two cores
/// (`CONCLAVE_BENCH_LOCAL_DELIVERY=during`).
fn hold_during_runs() -> bool {
    match std::env::var("CONCLAVE_BENCH_LOCAL_DELIVERY").as_deref() {
        Ok("during") => false,
        Ok("held") | Ok("") | Err(_) => true,
        Ok(other) => panic!("CONCLAVE_BENCH_LOCAL_DELIVERY: held or during, not {other:?}"),
    }
}

/// After a held run: Postfix holds all `n` messages, and none reached the
/// mailbox (which held `before`), so the run was timed as it should be.
fn check_held(mh: &Mailhost, n: usize, before: usize) {
    assert_eq!(mh.held(), n, "Postfix should hold every message of the run");
    assert_eq!(
        mh.count("alice", ""),
        before,
        "nothing may be delivered while Postfix holds"
    );
}

fn wait_delivered(mh: &Mailhost, want: usize) {
    let deadline = Instant::now() + std::time::Duration::from_secs(900);
    while mh.count("alice", "") < want && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        mh.count("alice", "") >= want,
        "Postfix delivered only {} of {want} messages",
        mh.count("alice", "")
    );
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
    // The list's default, unless CONCLAVE_BENCH_CONNECTIONS says otherwise.
    let connections: usize = std::env::var("CONCLAVE_BENCH_CONNECTIONS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4);
    f.list.run_ok(&[
        "config",
        "set",
        "smtp.connections",
        &connections.to_string(),
    ]);
    // alice stays (she posts, with GnuPG); bob and carol make room for the
    // generated subscribers.
    for s in &f.subs[1..] {
        f.list.run_ok(&["subscriber", "remove", s.address()]);
    }
    let alice = &f.subs[0];
    let sizes = sizes();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let certs = certs(largest.saturating_sub(1));

    let text = entity(POST_SIZE);
    let body = String::from_utf8_lossy(&text)
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.replace("\r\n", "\n"))
        .expect("the entity has a body");
    let work = tempfile::Builder::new()
        .prefix("cbd")
        .tempdir_in("/tmp")
        .expect("tempdir");

    let held = hold_during_runs();
    let mut subscribed = 1;
    let mut rows = Vec::new();
    for &n in &sizes {
        // The list grows to n subscribers (or the bench starts again from
        // a list of n, when sizes shrink).
        assert!(n >= subscribed, "sizes must grow: {sizes:?}");
        let t = Instant::now();
        let mut list =
            List::open(f.list.home.path(), Arc::new(SystemClock)).expect("open the list");
        for (i, cert) in certs.iter().enumerate().take(n - 1).skip(subscribed - 1) {
            let armored = cert.armored().to_vec().expect("armor");
            list.add_subscriber(&address(i + 1), &armored)
                .expect("add a subscriber");
        }
        drop(list);
        eprintln!(
            "[bench] {} subscribers set up in {:.1} s (not timed)",
            n,
            secs(t.elapsed())
        );
        subscribed = n;
        mh.clear();

        // Conclave and smtp-source take turns, so that a machine that
        // slows down or speeds up during the bench does so for both.
        let mut runs = Vec::new();
        let mut source = Vec::new();
        let mut copy_size = 0;
        let posts = posts(n);
        for k in 1..=posts {
            let post = alice.compose_post(&f.cert, LIST, "...", &format!("post {k}\n{body}"));
            mh.inject(alice.address(), LIST, &post);
            assert!(
                wait_until(30, || mh.count("list", "") == 1),
                "the post did not reach the list mailbox"
            );
            eprintln!(
                "[bench] {n} copies, post {k} of {posts}: in the list mailbox; run --once ..."
            );
            let before = mh.count("alice", "");
            if held {
                mh.hold();
            }
            settle();
            let r = timed_run(&f, &bin);
            let joined = r.lines.join("\n");
            assert!(joined.contains(&format!("distributed to {n}")), "{joined}");
            assert!(
                joined.contains(&format!("sent {n}, failed 0, deferred 0")),
                "{joined}"
            );
            eprintln!(
                "[bench]   {} (fanned out at {}, exited at {}); waiting for Postfix to deliver them ...",
                fmt_secs(r.total),
                fmt_secs(r.fanned_out),
                fmt_secs(r.exited)
            );
            if held {
                check_held(mh, n, before);
                mh.release();
            }
            // Every copy reaches the mailbox (and one of them is the
            // message smtp-source sends).
            wait_delivered(mh, before + n);
            runs.push(r);

            // smtp-source, with the bytes of one copy.
            let copy = submitted_copy(mh, &delivered_to(1));
            let copy_file = work.path().join("copy.eml");
            std::fs::write(&copy_file, &copy).expect("write the copy");
            copy_size = copy.len() + copy.iter().filter(|b| **b == b'\n').count();
            // Each run starts from an empty mailbox: Dovecot's delivery
            // (which runs beside both) slows down as a mailbox grows.
            mh.clear();
            eprintln!(
                "[bench] smtp-source, {n} messages of {copy_size} bytes, run {k} of {posts} ..."
            );
            let before = mh.count("alice", "");
            if held {
                mh.hold();
            }
            settle();
            let took = smtp_source(mh, &copy_file, n, connections);
            eprintln!("[bench]   {}", fmt_secs(took));
            if held {
                check_held(mh, n, before);
                mh.drop_held();
            } else {
                wait_delivered(mh, before + n);
            }
            source.push(took);
            mh.clear();
        }
        mh.clear();

        let gpg = (n == ANCHOR_SIZE).then(|| anchor(&work, &certs[..n - 1], &text));
        rows.push(Row {
            n,
            runs,
            source,
            copy_size,
            gpg,
        });
    }
    print!("{}", table(&rows, connections, held, &bin, started));
    let _ = std::io::stdout().flush();
    mh.clear();
}

/// One gpg process per subscriber (plus one more key, so that it too makes
/// as many copies as the list) on the same text.
fn anchor(work: &tempfile::TempDir, certs: &[openpgp::Cert], text: &[u8]) -> f64 {
    let ghome = work.path().join("gnupg");
    std::fs::create_dir_all(&ghome).expect("mkdir");
    let extra = bench::generate_certs(
        &["anchor@example.test".to_string()],
        openpgp::cert::CipherSuite::Cv25519,
    );
    let mut all_public = Vec::new();
    for c in certs.iter().chain(&extra) {
        all_public.extend(c.armored().to_vec().expect("armor"));
    }
    let keyfile = work.path().join("all.asc");
    std::fs::write(&keyfile, &all_public).expect("write keys");
    let imported = bench::gpg_import(&ghome, &keyfile);
    assert_eq!(imported, certs.len() + 1, "gpg imported every cert");
    let fprs: Vec<String> = certs
        .iter()
        .chain(&extra)
        .map(|c| c.fingerprint().to_hex())
        .collect();
    eprintln!("[bench] anchor: {} gpg processes ...", fprs.len());
    let input = work.path().join("post.eml");
    std::fs::write(&input, text).expect("write the plaintext");
    let took = gpg_per_process(&ghome, &fprs, &input, &work.path().join("out.gpg"));
    bench::gpg_kill(&ghome);
    took
}

fn runs_text(v: &[f64]) -> String {
    v.iter()
        .map(|s| format!("{s:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn table(rows: &[Row], connections: usize, held: bool, bin: &Path, started: Instant) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Delivery: Conclave beside Postfix's smtp-source, 20 KiB post, loopback Postfix + Dovecot, {connections} connections"
    );
    let _ = writeln!(
        w,
        "{:>7} | {:>28} | {:>11} | {:>11} | {:>22} | {:>6} | target",
        "copies", "", "median", "per copy", "runs", "ratio"
    );
    let _ = writeln!(w, "{}", "-".repeat(110));
    let mut verdicts = Vec::new();
    for r in rows {
        let totals: Vec<f64> = r.runs.iter().map(|t| t.total).collect();
        let fans: Vec<f64> = r.runs.iter().map(|t| t.fanned_out).collect();
        let conclave = median(totals.clone());
        let source = median(r.source.clone());
        let ratio = conclave / source;
        // Each turn's own ratio: the two ran a few seconds apart, on a
        // machine in about the same state. Their median is what the
        // target judges (see the module's doc).
        let turns: Vec<f64> = totals.iter().zip(&r.source).map(|(c, s)| c / s).collect();
        let paired = median(turns.clone());
        let pass = paired <= TARGET;
        let per = |s: f64| format!("{:.3} ms", s * 1e3 / r.n as f64);
        let _ = writeln!(
            w,
            "{:>7} | {:>28} | {:>11} | {:>11} | {:>22} | {:>6.2} |",
            r.n,
            "Conclave, mailbox -> last 250",
            fmt_secs(conclave),
            per(conclave),
            runs_text(&totals),
            ratio,
        );
        let exits: Vec<f64> = r.runs.iter().map(|t| t.exited).collect();
        let _ = writeln!(
            w,
            "{:>7} | {:>28} | {:>11} | {:>11} | {:>22} |",
            "",
            "  and to its exit",
            fmt_secs(median(exits.clone())),
            "",
            runs_text(&exits)
        );
        let _ = writeln!(
            w,
            "{:>7} | {:>28} | {:>11} | {:>11} | {:>22} |",
            "",
            "  of which up to fan-out",
            fmt_secs(median(fans.clone())),
            "",
            runs_text(&fans)
        );
        let _ = writeln!(
            w,
            "{:>7} | {:>28} | {:>11} | {:>11} | {:>22} |",
            "",
            format!("smtp-source, {} B each", r.copy_size),
            fmt_secs(source),
            per(source),
            runs_text(&r.source)
        );
        let _ = writeln!(
            w,
            "{:>7} | {:>28} | {:>11} | {:>11} | {:>22} | {:>6.2} | <= {TARGET} x: {}",
            "",
            "turn by turn, the ratio",
            "",
            "",
            runs_text(&turns),
            paired,
            if pass { "PASS" } else { "MISS" }
        );
        if let Some(g) = r.gpg {
            let _ = writeln!(
                w,
                "{:>7} | {:>28} | {:>11} | {:>11} | {:>22} |",
                "",
                "GnuPG, 1 process per copy",
                fmt_secs(g),
                per(g),
                format!("{g:.2}")
            );
        }
        verdicts.push((r.n, paired, conclave, source, ratio, pass));
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Conclave = `conclave run --once` started with the post in the list INBOX, until Postfix accepted the last copy and"
    );
    let _ = writeln!(
        w,
        "  the copies are marked sent (process start, key unlock, IMAPS login, fetch, claim, decrypt, verify, fan-out, SMTPS"
    );
    let _ = writeln!(
        w,
        "  submissions over {connections} connections); 'and to its exit' adds the exit (the store's journal written back at close)."
    );
    let _ = writeln!(
        w,
        "smtp-source = `smtp-source -d -s {connections} -m N -N -F COPY` into the plain SMTP port of the same Postfix, delivered to"
    );
    let _ = writeln!(
        w,
        "  the same mailbox, a recipient of its own per message; COPY = the bytes of one copy Conclave sent. No TLS, no login,"
    );
    let _ = writeln!(
        w,
        "  one envelope sender for all (Conclave's names each copy, for bounces), nothing to encrypt; the two take turns."
    );
    if held {
        let _ = writeln!(
            w,
            "Postfix holds what it accepts during each timed run (cleanup writes it to the hold queue; the mailbox check and"
        );
        let _ = writeln!(
            w,
            "  Dovecot's delivery come after the clock stops): both are timed against the mail host accepting mail, not against"
        );
        let _ = writeln!(
            w,
            "  its local delivery on the same two cores (CONCLAVE_BENCH_LOCAL_DELIVERY=during times them with it)."
        );
    } else {
        let _ = writeln!(
            w,
            "Postfix delivers to Dovecot during each timed run, on the same two cores (CONCLAVE_BENCH_LOCAL_DELIVERY=during)."
        );
    }
    let _ = writeln!(
        w,
        "GnuPG = `gpg --batch --trust-model always -e -r FPR` per subscriber on the same text: encryption only, nothing sent."
    );
    // Where the median run spent its time.
    for r in rows {
        let mut runs: Vec<&Timed> = r.runs.iter().collect();
        runs.sort_by(|a, b| a.total.total_cmp(&b.total));
        let Some(mid) = runs.get(runs.len() / 2) else {
            continue;
        };
        let _ = writeln!(
            w,
            "\nWhere the median run at {} copies spent its time (ms since the start, and since the step before):",
            r.n
        );
        let mut last = 0.0;
        for (t, stage) in &mid.stages {
            let _ = writeln!(w, "  {:>9.1} {:>+9.1}  {stage}", t * 1e3, (t - last) * 1e3);
            last = *t;
        }
        let _ = writeln!(
            w,
            "  {:>9.1} {:>+9.1}  process exited",
            mid.exited * 1e3,
            (mid.exited - last) * 1e3
        );
    }
    let _ = writeln!(w, "\nTargets:");
    for (n, paired, conclave, source, ratio, pass) in verdicts {
        let _ = writeln!(
            w,
            "  [{}] {n} copies: mailbox -> last copy accepted <= {TARGET} x smtp-source, turn by turn: median {paired:.2} (the medians: {} / {} = {ratio:.2})",
            if pass { "PASS" } else { "MISS" },
            fmt_secs(conclave),
            fmt_secs(source)
        );
    }
    let _ = writeln!(
        w,
        "\n(binary {}; total bench wall time {:.0} s)",
        bin.display(),
        secs(started.elapsed())
    );
    out
}
