//! MIME: reading posts into our own types (with mail-parser), and building
//! the copies (PGP/MIME, RFC 3156, with header protection, RFC 9788).

pub mod build;
pub mod parse;

/// Splits an entity into its header block and body, at the first empty line.
/// Returns (headers, body); a missing empty line means all headers, no body.
pub fn split_head(entity: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < entity.len() {
        // An empty line: "\n\n" or "\n\r\n" (or the entity starts with one).
        let at_line_start = i == 0 || entity.get(i - 1) == Some(&b'\n');
        if at_line_start {
            if entity.get(i) == Some(&b'\n') {
                return (
                    entity.get(..i).unwrap_or_default(),
                    entity.get(i + 1..).unwrap_or_default(),
                );
            }
            if entity.get(i) == Some(&b'\r') && entity.get(i + 1) == Some(&b'\n') {
                return (
                    entity.get(..i).unwrap_or_default(),
                    entity.get(i + 2..).unwrap_or_default(),
                );
            }
        }
        i += 1;
    }
    (entity, &[])
}

/// Splits a multipart body into its parts (RFC 2046). Each part runs from
/// after its delimiter line to just before the line break that precedes the
/// next delimiter. Returns None when the closing delimiter is missing.
pub fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<&'a [u8]>> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < body.len() {
        let line_start = i;
        let line_end = body
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map(|p| i + p);
        let line = body
            .get(line_start..line_end.unwrap_or(body.len()))
            .unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(delim) {
            let closing = rest.starts_with(b"--");
            let trailing_ok = rest
                .strip_prefix(b"--")
                .unwrap_or(rest)
                .iter()
                .all(|b| *b == b' ' || *b == b'\t');
            if trailing_ok {
                if let Some(s) = start {
                    // The part ends before the line break preceding this delimiter.
                    let mut end = line_start;
                    if end > s && body.get(end - 1) == Some(&b'\n') {
                        end -= 1;
                        if end > s && body.get(end - 1) == Some(&b'\r') {
                            end -= 1;
                        }
                    }
                    parts.push(body.get(s..end.max(s)).unwrap_or_default());
                }
                if closing {
                    return Some(parts);
                }
                start = line_end.map(|e| e + 1).or(Some(body.len()));
            }
        }
        i = match line_end {
            Some(e) => e + 1,
            None => body.len(),
        };
    }
    None
}

/// Converts bare LF line endings to CRLF.
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multipart_exactly() {
        let body = b"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nsecond\r\n--b--\r\nepilogue";
        let parts = split_multipart(body, "b").unwrap();
        assert_eq!(
            parts,
            vec![
                &b"Content-Type: text/plain\r\n\r\nhello"[..],
                &b"second"[..]
            ]
        );
        // LF only.
        let body = b"--b\nA\n--b\nB\n--b--\n";
        assert_eq!(
            split_multipart(body, "b").unwrap(),
            vec![&b"A"[..], &b"B"[..]]
        );
        // No closing delimiter.
        assert!(split_multipart(b"--b\r\nA\r\n", "b").is_none());
        // A longer boundary that merely starts like ours is not ours.
        let body = b"--b\r\nx\r\n--bb\r\ny\r\n--b--\r\n";
        assert_eq!(
            split_multipart(body, "b").unwrap(),
            vec![&b"x\r\n--bb\r\ny"[..]]
        );
    }

    #[test]
    fn splits_head() {
        assert_eq!(
            split_head(b"A: b\r\n\r\nbody"),
            (&b"A: b\r\n"[..], &b"body"[..])
        );
        assert_eq!(split_head(b"A: b\n\nbody"), (&b"A: b\n"[..], &b"body"[..]));
        assert_eq!(split_head(b"\r\nbody"), (&b""[..], &b"body"[..]));
    }
}
