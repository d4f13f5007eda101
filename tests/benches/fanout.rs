//! Fan-out benchmark: Conclave's per-subscriber fan-out against GnuPG.
//!
//! Run with `cargo bench -p conclave-tests --bench fanout`.
//!
//! For each case (N subscribers, key type, post size) the bench measures:
//!
//! 1. Conclave's `List::fan_out` (sign once with the list key, encrypt the
//!    body once, one PKESK set per subscriber, queue every copy in SQLite),
//!    as the median over several posts, in a child process that opens the
//!    list as a relay does after a start and reports its peak RSS (VmHWM)
//!    from then on, the first post's time and how many list signatures each
//!    post cost.
//! 2. The floor, in another child: the same recipient packets for the same
//!    keys held in memory, on every core, nothing stored.
//! 3. GnuPG, one `gpg -e -r FPR` process per subscriber (Schleuder's way),
//!    without signing: for up to 1000 subscribers, extrapolated beyond.
//! 4. GnuPG, one `gpg -e -r FPR1 … -r FPRN` multi-recipient message, up to
//!    10,000 subscribers.
//!
//! Subscriber keys are generated once, in batches, and kept in
//! `target/bench-keys` (or `$CONCLAVE_BENCH_KEYS`) for later runs: 100,000
//! Cv25519 keys take minutes to make. Set `CONCLAVE_BENCH_QUICK=1` to run the
//! per-process GnuPG anchor on the first 100 subscribers only. Set
//! `CONCLAVE_BENCH_MAX=N` to skip the cases above N subscribers.
//!
//! The process exits non-zero if any post cost other than exactly one list
//! signature, or if a step fails. A missed time or memory target is reported
//! as MISS but does not fail the process.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use conclave_core::crypto::keystore::{FileKeystore, ListKeystore};
use conclave_core::{KeySource, List, Password, SystemClock};
use conclave_tests::bench::{self, entity, fmt_secs, gpg, gpg_per_process, median, run_ok, secs};
use openpgp::cert::prelude::*;
use openpgp::crypto::{mpi, Decryptor, Signer};
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::Key;
use openpgp::types::HashAlgorithm;
use sequoia_openpgp as openpgp;

const SMALL: usize = 20 * 1024;
const LARGE: usize = 2 * 1024 * 1024;
const LIST_ADDRESS: &str = "bench-list@example.test";
const LIST_PASSWORD: &str = "bench passphrase";

/// The cases, in the order they run: (N, key kind, post size).
const CASES: &[(usize, Kind, usize)] = &[
    (10, Kind::Cv25519, SMALL),
    (10, Kind::Cv25519, LARGE),
    (100, Kind::Cv25519, SMALL),
    (100, Kind::Cv25519, LARGE),
    (1000, Kind::Cv25519, SMALL),
    (1000, Kind::Cv25519, LARGE),
    (100, Kind::Rsa3k, SMALL),
    (100, Kind::Rsa3k, LARGE),
    (10_000, Kind::Cv25519, SMALL),
    (100_000, Kind::Cv25519, SMALL),
];

/// The largest list GnuPG's multi-recipient anchor runs for (its keyring
/// import and its command line grow with N).
const GPG_MULTI_MAX: usize = 10_000;

/// Targets.
const TARGET_1000_SMALL: f64 = 0.12;
const TARGET_1000_LARGE: f64 = 0.5;
const TARGET_RSS_KIB: u64 = 64 * 1024;
/// Peak RSS at 100,000 subscribers.
const TARGET_RSS_LARGE_KIB: u64 = 256 * 1024;
/// Conclave's fan-out against the floor at 100,000 subscribers.
const TARGET_FLOOR_RATIO: f64 = 1.2;
/// The first post after a start against a later one, at 100,000.
const TARGET_FIRST_RATIO: f64 = 1.5;
/// Subscribers at which the large-list targets apply.
const LARGE_LIST: usize = 100_000;

/// How many per-process subscribers the quick mode runs.
const QUICK_LIMIT: usize = 100;
/// How many per-process subscribers run at most (beyond: extrapolated).
const PER_PROCESS_MAX: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cv25519,
    Rsa3k,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cv25519 => "cv25519",
            Kind::Rsa3k => "rsa3072",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "cv25519" => Kind::Cv25519,
            "rsa3072" => Kind::Rsa3k,
            other => panic!("unknown key kind {other:?}"),
        }
    }

    fn suite(self) -> CipherSuite {
        match self {
            Kind::Cv25519 => CipherSuite::Cv25519,
            Kind::Rsa3k => CipherSuite::RSA3k,
        }
    }

    /// How many subscribers of this kind the cases need.
    fn needed(self, max: usize) -> usize {
        CASES
            .iter()
            .filter(|c| c.1 == self && c.0 <= max)
            .map(|c| c.0)
            .max()
            .unwrap_or(0)
    }
}

fn address(i: usize) -> String {
    format!("s{:06}@example.test", i + 1)
}

/// Every subscriber certificate of a kind, binary, one after the other.
fn keyring_path(keydir: &Path, kind: Kind) -> PathBuf {
    keydir.join(format!("{}.pgp", kind.name()))
}

fn fprs_path(keydir: &Path, kind: Kind) -> PathBuf {
    keydir.join(format!("{}.fprs", kind.name()))
}

/// The first `n` subscriber certificates of a kind, read one at a time.
fn certs(keydir: &Path, kind: Kind, n: usize) -> impl Iterator<Item = openpgp::Cert> {
    use openpgp::parse::Parse;
    openpgp::cert::CertParser::from_file(keyring_path(keydir, kind))
        .expect("open the subscriber keyring")
        .take(n)
        .map(|c| c.expect("read a subscriber cert"))
}

fn human_size(size: usize) -> String {
    if size >= 1024 * 1024 && size.is_multiple_of(1024 * 1024) {
        format!("{} MiB", size / (1024 * 1024))
    } else {
        format!("{} KiB", size / 1024)
    }
}

// ---------------------------------------------------------------------------
// Counting keystore: proves one list signature per post.

struct CountingKeystore {
    inner: FileKeystore,
    signatures: Arc<AtomicUsize>,
    signers: Arc<AtomicUsize>,
}

impl ListKeystore for CountingKeystore {
    fn cert(&self) -> &openpgp::Cert {
        self.inner.cert()
    }

    fn decryptors(&mut self) -> conclave_core::Result<Vec<Box<dyn Decryptor + Send + Sync>>> {
        self.inner.decryptors()
    }

    fn signer(&mut self) -> conclave_core::Result<Box<dyn Signer + Send + Sync>> {
        self.signers.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.signer()?;
        Ok(Box::new(CountingSigner {
            inner,
            signatures: self.signatures.clone(),
        }))
    }

    fn kind(&self) -> &'static str {
        "counting"
    }

    fn update_cert(&mut self, cert: &openpgp::Cert) -> conclave_core::Result<()> {
        self.inner.update_cert(cert)
    }
}

struct CountingSigner {
    inner: Box<dyn Signer + Send + Sync>,
    signatures: Arc<AtomicUsize>,
}

impl Signer for CountingSigner {
    fn public(&self) -> &Key<PublicParts, UnspecifiedRole> {
        self.inner.public()
    }

    fn acceptable_hashes(&self) -> &[HashAlgorithm] {
        self.inner.acceptable_hashes()
    }

    fn sign(&mut self, hash_algo: HashAlgorithm, digest: &[u8]) -> openpgp::Result<mpi::Signature> {
        self.signatures.fetch_add(1, Ordering::SeqCst);
        self.inner.sign(hash_algo, digest)
    }
}

// ---------------------------------------------------------------------------
// Child: one case, timed, with its own peak RSS.

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn child(args: &[String]) {
    let n: usize = args[0].parse().expect("N");
    let kind = Kind::parse(&args[1]);
    let size: usize = args[2].parse().expect("SIZE");
    let keydir = PathBuf::from(&args[3]);
    let runs: usize = args[4].parse().expect("RUNS");

    // Setup (not timed): the list, its subscribers, the counting keystore.
    let work = tempfile::Builder::new()
        .prefix("conclave-bench-list")
        .tempdir()
        .expect("tempdir");
    let home = work.path().join("list");
    let pw = Password::from(LIST_PASSWORD);
    let mut list = List::init(
        &home,
        LIST_ADDRESS,
        "Bench List",
        KeySource::Generate,
        &pw,
        Arc::new(SystemClock),
    )
    .expect("init the list");
    // Setup: the subscribers come in one import of their keyring (the
    // first N keys of the kind), as an owner moving a list brings them.
    let t0 = Instant::now();
    let mut keyring = Vec::new();
    for cert in certs(&keydir, kind, n) {
        use openpgp::serialize::Serialize;
        cert.serialize(&mut keyring).expect("serialize a cert");
    }
    let report = list
        .import_subscribers(
            &keyring,
            &conclave_core::list::import::Selection::UserIds,
            "the bench's keyring",
        )
        .expect("import the subscribers");
    drop(keyring);
    let subscribed = list
        .store()
        .subscriber_fingerprints()
        .expect("read the subscribers")
        .len();
    assert_eq!(subscribed, n, "{}", report.summary());
    if n >= 10_000 {
        eprintln!(
            "[bench]   {n} subscribers added in {:.1} s (setup, not timed)",
            secs(t0.elapsed())
        );
    }
    drop(list);
    // The posts go through the list in a process of their own, as a relay
    // opens the list after a start: its peak RSS is the fan-out's alone.
    let exe = std::env::current_exe().expect("current_exe");
    let status = Command::new(exe)
        .arg("--posts")
        .arg(&home)
        .arg(n.to_string())
        .arg(size.to_string())
        .arg(runs.to_string())
        .stdin(Stdio::null())
        .status()
        .expect("run the posts");
    assert!(status.success(), "the posts failed: {status}");
}

/// The timed posts, on a list made by [`child`].
fn posts_child(args: &[String]) {
    let home = PathBuf::from(&args[0]);
    let n: usize = args[1].parse().expect("N");
    let size: usize = args[2].parse().expect("SIZE");
    let runs: usize = args[3].parse().expect("RUNS");
    let pw = Password::from(LIST_PASSWORD);
    let signatures = Arc::new(AtomicUsize::new(0));
    let signers = Arc::new(AtomicUsize::new(0));
    let mut list = List::open(&home, Arc::new(SystemClock)).expect("open the list");
    let inner = FileKeystore::open(&home, &pw).expect("open the list key");
    list.set_keystore(Box::new(CountingKeystore {
        inner,
        signatures: signatures.clone(),
        signers: signers.clone(),
    }))
    .expect("set the counting keystore");

    let post = entity(size);
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);

    // The first post after the start, then `runs` timed posts.
    let mut times = Vec::with_capacity(runs);
    let mut sig_counts = Vec::with_capacity(runs + 1);
    let mut first = 0.0;
    for run in 0..=runs {
        // A distinct post per run: copies of one (post, subscriber) pair are queued once.
        let mut raw = post.clone();
        raw.extend_from_slice(format!("\r\n{nonce:032x}{run:032x}\r\n").as_bytes());
        let (post_id, digest) = list
            .record_post(&raw, "author@example.test")
            .expect("record a post");
        let before = signatures.load(Ordering::SeqCst);
        let t0 = Instant::now();
        let copies = list
            .fan_out(post_id, &digest, &post, SystemTime::now())
            .expect("fan out");
        let took = secs(t0.elapsed());
        let sigs = signatures.load(Ordering::SeqCst) - before;
        assert_eq!(
            copies, n,
            "fan_out queued {copies} copies for {n} subscribers"
        );
        sig_counts.push(sigs);
        if run == 0 {
            first = took;
        } else {
            times.push(took);
        }
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let med = median(times.clone());
    let rss = vm_hwm_kib();
    let sigs: Vec<String> = sig_counts.iter().map(|c| c.to_string()).collect();
    println!(
        "CHILD_RESULT median={med:.6} min={min:.6} first={first:.6} rss_kib={rss} sigs={} signers={} posts={}",
        sigs.join(","),
        signers.load(Ordering::SeqCst),
        runs + 1,
    );
    drop(list);
}

/// The floor: the same recipient packets a fan-out makes (two X25519
/// operations, the KDF and the key wrap per copy, with Conclave's own
/// code), from what the list keeps of the same keys, held in memory, on
/// every core, with no store, no headers, no I/O. Prints the median of
/// three rounds.
fn floor_child(args: &[String]) {
    use conclave_core::crypto::{certs as ccerts, seal::SealedBody};
    let n: usize = args[0].parse().expect("N");
    let kind = Kind::parse(&args[1]);
    let keydir = PathBuf::from(&args[2]);
    let now = SystemTime::now();
    let mut v2 = false;
    // What the list keeps of each key, held in memory.
    let keys: Vec<Vec<u8>> = certs(&keydir, kind, n)
        .map(|c| {
            let r = ccerts::recipient(&c, now).expect("derive a recipient");
            v2 = r.seipd_v2;
            r.keys
        })
        .collect();
    let body = SealedBody::new(&entity(SMALL), v2).expect("seal a body");
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1);
    let chunk = keys.len().div_ceil(threads).max(1);
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let made: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = keys
                .chunks(chunk)
                .map(|c| {
                    let body = &body;
                    scope.spawn(move || {
                        c.iter()
                            .map(|k| body.pkesks_for_kept(k).expect("a recipient packet").len())
                            .filter(|len| *len > 0)
                            .count()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("floor thread"))
                .sum()
        });
        rounds.push(secs(t0.elapsed()));
        assert_eq!(made, n, "the floor made a packet for every key");
    }
    println!(
        "FLOOR_RESULT median={:.6} threads={threads}",
        median(rounds)
    );
}

fn run_floor(n: usize, kind: Kind, keydir: &Path) -> f64 {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .arg("--floor")
        .arg(n.to_string())
        .arg(kind.name())
        .arg(keydir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the floor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the floor for N={n} failed: {stdout}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("FLOOR_RESULT median="))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no floor result: {stdout}"))
}

// ---------------------------------------------------------------------------
// Parent: keys, children, GnuPG anchors, table.

struct ChildResult {
    median: f64,
    first: f64,
    rss_kib: u64,
    sigs: Vec<usize>,
}

fn run_child(n: usize, kind: Kind, size: usize, keydir: &Path, runs: usize) -> ChildResult {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .arg("--child")
        .arg(n.to_string())
        .arg(kind.name())
        .arg(size.to_string())
        .arg(keydir)
        .arg(runs.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!("{stdout}");
        panic!(
            "child for N={n} {} {} failed: {}",
            kind.name(),
            human_size(size),
            out.status
        );
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("CHILD_RESULT "))
        .unwrap_or_else(|| panic!("no result from the child: {stdout}"));
    let field = |k: &str| -> String {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {line}"))
            .to_owned()
    };
    ChildResult {
        median: field("median").parse().expect("median"),
        first: field("first").parse().expect("first"),
        rss_kib: field("rss_kib").parse().expect("rss"),
        sigs: field("sigs")
            .split(',')
            .map(|s| s.parse().expect("sig count"))
            .collect(),
    }
}

/// Generates (or reuses) the subscriber certificates, in batches so that
/// they are never all in memory, and writes the keyring GnuPG imports: the
/// Cv25519 keys its anchors need and every RSA key. Returns the
/// fingerprints per kind.
fn prepare_keys(keydir: &Path, max: usize) -> (Vec<String>, Vec<String>) {
    use openpgp::serialize::Serialize;
    let mut for_gpg = Vec::new();
    let mut fprs_by_kind = Vec::new();
    for kind in [Kind::Cv25519, Kind::Rsa3k] {
        let need = kind.needed(max);
        let fprs_file = fprs_path(keydir, kind);
        let mut fprs: Vec<String> = std::fs::read_to_string(&fprs_file)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        if fprs.len() >= need && keyring_path(keydir, kind).exists() {
            eprintln!(
                "[bench] reusing {need} {} subscriber certs in {}",
                kind.name(),
                keydir.display()
            );
        } else {
            let t0 = Instant::now();
            let have = fprs.len();
            eprintln!(
                "[bench] generating {} {} subscriber certs (setup, not timed; kept in {})...",
                need - have,
                kind.name(),
                keydir.display()
            );
            let mut ring = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(keyring_path(keydir, kind))
                .expect("open the keyring");
            let mut list = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&fprs_file)
                .expect("open the fingerprints");
            let mut i = have;
            while i < need {
                let batch: Vec<String> = (i..need.min(i + 5000)).map(address).collect();
                for cert in bench::generate_certs(&batch, kind.suite()) {
                    cert.serialize(&mut ring).expect("write a cert");
                    writeln!(list, "{}", cert.fingerprint().to_hex()).expect("write a fpr");
                    fprs.push(cert.fingerprint().to_hex());
                }
                i += batch.len();
                if need >= 10_000 {
                    eprintln!("[bench]   {i} of {need}");
                }
            }
            eprintln!("[bench]   done in {:.1} s", secs(t0.elapsed()));
        }
        fprs.truncate(need);
        let for_anchor = match kind {
            Kind::Cv25519 => need.min(GPG_MULTI_MAX),
            Kind::Rsa3k => need,
        };
        for cert in certs(keydir, kind, for_anchor) {
            cert.serialize(&mut for_gpg).expect("write a cert");
        }
        fprs_by_kind.push(fprs);
    }
    std::fs::write(keydir.join("for-gpg.pgp"), &for_gpg).expect("write for-gpg.pgp");
    let rsa = fprs_by_kind.pop().expect("rsa fprs");
    let cv = fprs_by_kind.pop().expect("cv fprs");
    (cv, rsa)
}

/// One gpg process encrypting to every subscriber at once.
fn gpg_multi(home: &Path, fprs: &[String], input: &Path, output: &Path) -> f64 {
    let mut c = gpg(home);
    c.args(["--batch", "--trust-model", "always", "--yes", "-e"]);
    for fpr in fprs {
        c.arg("-r").arg(fpr);
    }
    c.arg("-o").arg(output).arg(input);
    let t0 = Instant::now();
    run_ok(c, "gpg -e (every recipient)");
    secs(t0.elapsed())
}

struct Row {
    floor: f64,
    n: usize,
    kind: Kind,
    size: usize,
    conclave: ChildResult,
    runs: usize,
    per_process: f64,
    per_process_extrapolated: bool,
    per_process_runs: usize,
    multi: Option<f64>,
}

fn parent() -> i32 {
    let quick = std::env::var("CONCLAVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let started = Instant::now();

    // Subscriber certs: generated once, here; the children only read them.
    // They are kept (target/bench-keys, or $CONCLAVE_BENCH_KEYS) for later runs.
    let keydir = std::env::var_os("CONCLAVE_BENCH_KEYS")
        .map(PathBuf::from)
        .unwrap_or_else(|| conclave_tests::workspace_root().join("target/bench-keys"));
    std::fs::create_dir_all(&keydir).expect("mkdir keydir");
    let max: usize = std::env::var("CONCLAVE_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let (cv_fprs, rsa_fprs) = prepare_keys(&keydir, max);

    // One GnuPG homedir for the anchors, with a short path.
    let gh = tempfile::Builder::new()
        .prefix("cbg")
        .tempdir_in("/tmp")
        .expect("gnupg tempdir");
    let ghome = gh.path().to_owned();
    let t0 = Instant::now();
    let imported = bench::gpg_import(&ghome, &keydir.join("for-gpg.pgp"));
    eprintln!(
        "[bench] imported {imported} public certs into GNUPGHOME={} in {:.1} s",
        ghome.display(),
        secs(t0.elapsed())
    );
    assert_eq!(
        imported,
        cv_fprs.len().min(GPG_MULTI_MAX) + rsa_fprs.len(),
        "gpg imported every cert its anchors need"
    );

    let work = tempfile::Builder::new()
        .prefix("conclave-bench-work")
        .tempdir()
        .expect("tempdir");
    let gpg_out = work.path().join("out.gpg");

    let mut rows = Vec::new();
    for &(n, kind, size) in CASES.iter().filter(|c| c.0 <= max) {
        let label = format!("N={n} {} {}", kind.name(), human_size(size));
        let post = entity(size);
        let input = work.path().join(format!("post-{size}.eml"));
        std::fs::write(&input, &post).expect("write the plaintext");

        let runs = if n >= 1000 && size >= LARGE { 3 } else { 5 };
        eprintln!("[bench] {label}: Conclave fan-out, {runs} timed posts (+1 first post) ...");
        let conclave = run_child(n, kind, size, &keydir, runs);
        eprintln!(
            "[bench]   median {}  peak RSS {} MiB  signatures {:?}",
            fmt_secs(conclave.median),
            conclave.rss_kib / 1024,
            conclave.sigs
        );

        let fprs = match kind {
            Kind::Cv25519 => &cv_fprs[..n],
            Kind::Rsa3k => &rsa_fprs[..n],
        };
        eprintln!("[bench] {label}: the floor (3 rounds) ...");
        let floor = run_floor(n, kind, &keydir);
        eprintln!(
            "[bench]   floor {}  Conclave / floor {:.2}",
            fmt_secs(floor),
            conclave.median / floor
        );
        // One gpg process per subscriber runs for up to 1000 of them (100
        // in quick mode); beyond, the figure is extrapolated.
        let limit = if quick { QUICK_LIMIT } else { PER_PROCESS_MAX };
        let (pp_fprs, extrapolated) = if n > limit {
            (&fprs[..limit], true)
        } else {
            (fprs, false)
        };
        let pp_runs = if pp_fprs.len() <= 100 { 3 } else { 1 };
        eprintln!(
            "[bench] {label}: gpg per process ({} processes{}, {pp_runs} run(s)) ...",
            pp_fprs.len(),
            if extrapolated {
                ", extrapolated to N"
            } else {
                ""
            }
        );
        let mut pp = Vec::new();
        for _ in 0..pp_runs {
            pp.push(gpg_per_process(&ghome, pp_fprs, &input, &gpg_out));
        }
        let mut per_process = median(pp);
        if extrapolated {
            per_process *= n as f64 / pp_fprs.len() as f64;
        }
        let multi_runs = match n {
            n if n > GPG_MULTI_MAX => 0,
            n if n > 1000 => 1,
            _ => 3,
        };
        eprintln!("[bench] {label}: gpg multi-recipient ({multi_runs} runs) ...");
        let multi = (multi_runs > 0).then(|| {
            median(
                (0..multi_runs)
                    .map(|_| gpg_multi(&ghome, fprs, &input, &gpg_out))
                    .collect(),
            )
        });
        eprintln!(
            "[bench]   gpg per process {}{}  multi {}",
            fmt_secs(per_process),
            if extrapolated { " (extrapolated)" } else { "" },
            multi.map(fmt_secs).unwrap_or_else(|| "not run".into())
        );
        rows.push(Row {
            floor,
            n,
            kind,
            size,
            conclave,
            runs,
            per_process,
            per_process_extrapolated: extrapolated,
            per_process_runs: pp_runs,
            multi,
        });
    }
    bench::gpg_kill(&ghome);

    // ----- the table -----
    let mut out = String::new();
    let w = &mut out;
    use std::fmt::Write as _;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Conclave fan-out vs GnuPG (gpg without signing; Conclave signs once per post)"
    );
    let _ = writeln!(
        w,
        "{:>6} | {:<7} | {:>6} | {:>9} | {:>7} | {:>9} | {:>7} | {:>9} | {:>9} | {:>9} | {:>5} | {:>12} | {:>9} | {:>8} | {:>10}",
        "N", "key", "post", "Conclave", "µs/copy", "floor", "/floor", "1st post", "1st/later", "peak RSS", "sigs",
        "gpg per-proc", "gpg multi", "pp/Concl", "multi/Concl"
    );
    let _ = writeln!(w, "{}", "-".repeat(163));
    for r in &rows {
        let lo = r.conclave.sigs.iter().min().copied().unwrap_or(0);
        let hi = r.conclave.sigs.iter().max().copied().unwrap_or(0);
        let sigs = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}..{hi}")
        };
        let pp = format!(
            "{}{}",
            fmt_secs(r.per_process),
            if r.per_process_extrapolated { "*" } else { "" }
        );
        let _ = writeln!(
            w,
            "{:>6} | {:<7} | {:>6} | {:>9} | {:>7.1} | {:>9} | {:>6.2}x | {:>9} | {:>8.2}x | {:>5.1} MiB | {:>5} | {:>12} | {:>9} | {:>7.0}x | {:>10}",
            r.n,
            r.kind.name(),
            human_size(r.size),
            fmt_secs(r.conclave.median),
            r.conclave.median * 1e6 / r.n as f64,
            fmt_secs(r.floor),
            r.conclave.median / r.floor,
            fmt_secs(r.conclave.first),
            r.conclave.first / r.conclave.median,
            r.conclave.rss_kib as f64 / 1024.0,
            sigs,
            pp,
            r.multi.map(fmt_secs).unwrap_or_else(|| "-".into()),
            r.per_process / r.conclave.median,
            r.multi
                .map(|m| format!("{:.1}x", m / r.conclave.median))
                .unwrap_or_else(|| "-".into()),
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "Conclave = median of the timed posts (5, or 3 for N=1000 x 2 MiB) of List::fan_out, SQLite writes included;"
    );
    let _ = writeln!(
        w,
        "  '1st post' = the first post after the list is opened (untimed in the median); peak RSS = the VmHWM of the process that opens the list and"
    );
    let _ = writeln!(
        w,
        "  runs the posts (the subscribers were imported before, by another). floor = the same recipient packets (X25519 x 2 + KDF + key wrap per copy, Conclave's code)"
    );
    let _ = writeln!(
        w,
        "  for the same keys held in memory, on all {} cores, nothing stored: median of 3 rounds, measured in this run.",
        std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1)
    );
    let _ = writeln!(
        w,
        "gpg per-proc = one `gpg --batch --trust-model always --yes -e -r FPR -o OUT IN` per subscriber, in turn (no signing);"
    );
    let _ = writeln!(
        w,
        "  median of 3 runs for N <= 100, 1 run otherwise.{}",
        if rows.iter().any(|r| r.per_process_extrapolated) {
            format!(
                " * = EXTRAPOLATED linearly from the first {} subscribers.",
                if quick { QUICK_LIMIT } else { PER_PROCESS_MAX }
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        w,
        "gpg multi = one `gpg -e -r FPR1 ... -r FPRN` (one message, every key ID visible), median of 3 runs (1 beyond N=1000; not run beyond N={GPG_MULTI_MAX})."
    );
    let _ = writeln!(w);

    // ----- targets -----
    let find = |n: usize, kind: Kind, size: usize| {
        rows.iter()
            .find(|r| r.n == n && r.kind == kind && r.size == size)
            .map(|r| r.conclave.median)
    };
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let _ = writeln!(w, "Targets:");
    if let Some(t) = find(1000, Kind::Cv25519, SMALL) {
        let _ = writeln!(
            w,
            "  [{}] N=1000 cv25519 x 20 KiB <= {TARGET_1000_SMALL} s: {}",
            verdict(t <= TARGET_1000_SMALL),
            fmt_secs(t)
        );
    }
    if let Some(t) = find(1000, Kind::Cv25519, LARGE) {
        let _ = writeln!(
            w,
            "  [{}] N=1000 cv25519 x 2 MiB  <= {TARGET_1000_LARGE} s: {}",
            verdict(t <= TARGET_1000_LARGE),
            fmt_secs(t)
        );
    }
    let worst_rss = rows
        .iter()
        .filter(|r| r.n <= 1000)
        .max_by_key(|r| r.conclave.rss_kib)
        .expect("rows");
    for r in rows.iter().filter(|r| r.n >= LARGE_LIST) {
        let _ = writeln!(
            w,
            "  [{}] N={} peak RSS <= {} MiB: {:.1} MiB",
            verdict(r.conclave.rss_kib <= TARGET_RSS_LARGE_KIB),
            r.n,
            TARGET_RSS_LARGE_KIB / 1024,
            r.conclave.rss_kib as f64 / 1024.0
        );
        let _ = writeln!(
            w,
            "  [{}] N={} fan-out <= {TARGET_FLOOR_RATIO} x the floor: {} = {:.2} x {}",
            verdict(r.conclave.median <= TARGET_FLOOR_RATIO * r.floor),
            r.n,
            fmt_secs(r.conclave.median),
            r.conclave.median / r.floor,
            fmt_secs(r.floor)
        );
        let _ = writeln!(
            w,
            "  [{}] N={} first post after a start <= {TARGET_FIRST_RATIO} x a later one: {} = {:.2} x {}",
            verdict(r.conclave.first <= TARGET_FIRST_RATIO * r.conclave.median),
            r.n,
            fmt_secs(r.conclave.first),
            r.conclave.first / r.conclave.median,
            fmt_secs(r.conclave.median)
        );
    }
    let _ = writeln!(
        w,
        "  [{}] peak RSS <= 64 MiB in every case up to N=1000: max {:.1} MiB (N={} {} {})",
        verdict(worst_rss.conclave.rss_kib <= TARGET_RSS_KIB),
        worst_rss.conclave.rss_kib as f64 / 1024.0,
        worst_rss.n,
        worst_rss.kind.name(),
        human_size(worst_rss.size)
    );
    let bad_sigs: Vec<&Row> = rows
        .iter()
        .filter(|r| r.conclave.sigs.iter().any(|&s| s != 1))
        .collect();
    let posts: usize = rows.iter().map(|r| r.conclave.sigs.len()).sum();
    let _ = writeln!(
        w,
        "  [{}] exactly one list signature per post: {} of {posts} posts",
        if bad_sigs.is_empty() { "PASS" } else { "FAIL" },
        posts
            - bad_sigs
                .iter()
                .map(|r| r.conclave.sigs.iter().filter(|&&s| s != 1).count())
                .sum::<usize>(),
    );
    let _ = writeln!(w, "\n(total bench wall time {:.0} s; timed runs per Conclave case: {:?}; gpg per-process runs: {:?})",
        secs(started.elapsed()),
        rows.iter().map(|r| r.runs).collect::<Vec<_>>(),
        rows.iter().map(|r| r.per_process_runs).collect::<Vec<_>>());
    print!("{out}");
    let _ = std::io::stdout().flush();

    drop(gh);
    if bad_sigs.is_empty() {
        0
    } else {
        eprintln!("FAIL: a post was not signed exactly once by the list key");
        1
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("--posts") {
        posts_child(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("--floor") {
        floor_child(&args[1..]);
        return;
    }
    // `cargo bench` passes `--bench` (and maybe a filter): ignore them.
    std::process::exit(parent());
}
