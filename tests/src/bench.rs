//! Helpers shared by the benchmarks (`tests/benches/`): timing, the
//! generated post text, and the GnuPG anchor each figure is printed beside.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds, as a float.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `0.0123 s` below a second, `1.23 s` above.
pub fn fmt_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.4} s", s)
    } else {
        format!("{:.2} s", s)
    }
}

/// The median of a non-empty list.
pub fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The post: a MIME entity of `size` bytes of text with CRLF lines.
pub fn entity(size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "list",
        "relay",
        "encrypted",
        "subscriber",
        "copy",
        "post",
        "key",
        "signature",
        "meeting",
        "tomorrow",
        "agenda",
        "minutes",
        "please",
        "review",
        "draft",
        "budget",
        "volunteers",
        "and",
        "of",
        "to",
        "in",
        "for",
        "with",
        "on",
        "at",
        "we",
        "will",
    ];
    let mut text = Vec::with_capacity(size + 80);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut line_len = 0usize;
    while text.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let w = WORDS[(state % WORDS.len() as u64) as usize];
        if line_len + w.len() + 1 > 72 {
            text.extend_from_slice(b"\r\n");
            line_len = 0;
        } else if line_len > 0 {
            text.push(b' ');
            line_len += 1;
        }
        text.extend_from_slice(w.as_bytes());
        line_len += w.len();
    }
    text.truncate(size - 2);
    // Do not end on a lone CR.
    if text.last() == Some(&b'\r') {
        text.pop();
        text.push(b'.');
    }
    text.extend_from_slice(b"\r\n");
    assert_eq!(text.len(), size);
    let mut out = b"Content-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
    out.extend_from_slice(&text);
    out
}

/// `gpg` with `GNUPGHOME=home` and no stdin.
pub fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home).stdin(Stdio::null());
    c
}

/// Runs `c`, panicking with its stderr if it fails.
pub fn run_ok(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One gpg process per subscriber, in turn. Returns the time for all `fprs`.
pub fn gpg_per_process(home: &Path, fprs: &[String], input: &Path, output: &Path) -> f64 {
    let t0 = Instant::now();
    for fpr in fprs {
        let mut c = gpg(home);
        c.args(["--batch", "--trust-model", "always", "--yes", "-e", "-r"])
            .arg(fpr)
            .arg("-o")
            .arg(output)
            .arg(input);
        run_ok(c, "gpg -e (one recipient)");
    }
    secs(t0.elapsed())
}

/// Generates one certificate per address (a User ID each, `suite` keys),
/// spread over the machine's cores, in the order of `addresses`.
pub fn generate_certs(
    addresses: &[String],
    suite: sequoia_openpgp::cert::CipherSuite,
) -> Vec<sequoia_openpgp::Cert> {
    use sequoia_openpgp::cert::CertBuilder;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let chunk = addresses.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = addresses
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|a| {
                            CertBuilder::general_purpose(Some(a.as_str()))
                                .set_cipher_suite(suite)
                                .generate()
                                .expect("generate a subscriber cert")
                                .0
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("keygen thread"))
            .collect()
    })
}

/// Imports the armored certificates in `file` into the GnuPG home `home`
/// and returns how many public keys it then holds.
pub fn gpg_import(home: &Path, file: &Path) -> usize {
    let mut c = gpg(home);
    c.args(["--batch", "--quiet", "--import"]).arg(file);
    run_ok(c, "gpg --import");
    let listed = gpg(home)
        .args(["--batch", "--with-colons", "--list-keys"])
        .output()
        .expect("gpg --list-keys");
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| l.starts_with("pub:"))
        .count()
}

/// Stops the GnuPG agents of `home`.
pub fn gpg_kill(home: &Path) {
    let mut c = Command::new("gpgconf");
    c.arg("--homedir").arg(home).args(["--kill", "all"]);
    run_ok(c, "gpgconf --kill all");
}
