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

/// Hex in groups of four, the way a fingerprint is read aloud.
pub fn grouped(hex: &str) -> String {
    let mut out = String::with_capacity(hex.len() + hex.len() / 4);
    for (i, c) in hex.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// SHA-256 of `data`, as bytes (empty if the hash is not available).
fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    use sequoia_openpgp::types::HashAlgorithm;
    let Ok(ctx) = HashAlgorithm::SHA256.context() else {
        return Vec::new();
    };
    let mut ctx = ctx.for_digest();
    for p in parts {
        ctx.update(p);
    }
    ctx.into_digest().unwrap_or_default()
}

/// HMAC-SHA-256 (RFC 2104) of `data` under `key`, upper-case hex.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        sha256(&[key])
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = sha256(&[&ipad, data]);
    hex(&sha256(&[&opad, &inner]))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_grouped_in_fours() {
        assert_eq!(grouped("ABCDEF0123"), "ABCD EF01 23");
        assert_eq!(grouped(""), "");
    }

    /// RFC 4231, test cases 1 and 6 (a key longer than the block).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        assert_eq!(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
            "B0344C61D8DB38535CA8AFCEAF0BF12B881DC200C9833DA726E9376C2E32CFF7"
        );
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60E431591EE0B67F0D8A26AACBF5B77F8E0BC6213728C5140546040F0EE37F54"
        );
    }
}
