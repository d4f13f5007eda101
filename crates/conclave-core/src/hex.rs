//! Bytes as hex, and their SHA-256 digest as hex: for fingerprints, post
//! digests and certificate pins. A leaf: every layer uses it.

/// Upper-case hex of bytes, the way fingerprints are shown.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// SHA-256 of `data`, upper-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sequoia_openpgp::types::HashAlgorithm;
    let Ok(ctx) = HashAlgorithm::SHA256.context() else {
        return String::new();
    };
    let mut ctx = ctx.for_digest();
    ctx.update(data);
    ctx.into_digest().map(|d| hex(&d)).unwrap_or_default()
}
