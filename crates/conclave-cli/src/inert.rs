//! Terminal output that a post cannot steer. Text from posts (senders,
//! subjects, bodies, reasons) reaches the owner's terminal; an escape
//! sequence in it could draw a fake "Signature: signed by alice" line, set
//! the window title or write the clipboard (OSC 52). Everything this command
//! prints goes through [`Inert`], which replaces C0 and C1 control
//! characters (but newline and tab) with U+FFFD and drops carriage returns;
//! fields shown on one line go through [`one_line`] as well, so a line break
//! in a subject cannot start a line of its own.

use std::io::{self, Write};

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// A writer that neutralises control characters on their way out.
pub struct Inert<W: Write> {
    inner: W,
    /// A 0xC2 byte seen at the end of the last write: C1 controls are
    /// U+0080 to U+009F, two bytes in UTF-8 (C2 80 to C2 9F).
    pending_c2: bool,
}

impl<W: Write> Inert<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Inert {
            inner,
            pending_c2: false,
        }
    }
}

impl<W: Write> Write for Inert<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + 8);
        for &b in buf {
            if std::mem::take(&mut self.pending_c2) {
                if (0x80..=0x9F).contains(&b) {
                    out.extend_from_slice(REPLACEMENT);
                    continue;
                }
                out.push(0xC2);
            }
            match b {
                b'\n' | b'\t' => out.push(b),
                b'\r' => {}
                0x00..=0x1F | 0x7F => out.extend_from_slice(REPLACEMENT),
                0xC2 => self.pending_c2 = true,
                _ => out.push(b),
            }
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.pending_c2) {
            self.inner.write_all(&[0xC2])?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Inert<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A field for one line: every control character, line breaks included,
/// becomes U+FFFD.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_c1_controls_are_neutralised() {
        let mut out = Inert::new(Vec::new());
        // ESC ] 52 (clipboard), a C1 CSI, a bell, CR, and a C1 split over writes.
        out.write_all(b"a\x1b]52;c;aGk=\x07b\r\n").unwrap();
        out.write_all("c\u{9b}31md\te".as_bytes()).unwrap();
        out.write_all(&[0xC2]).unwrap();
        out.write_all(&[0x9D, b'f']).unwrap();
        out.write_all("é".as_bytes()).unwrap();
        out.flush().unwrap();
        let text = String::from_utf8(out.inner.clone()).unwrap();
        assert_eq!(
            text,
            "a\u{FFFD}]52;c;aGk=\u{FFFD}b\nc\u{FFFD}31md\te\u{FFFD}fé"
        );
        assert_eq!(one_line("Re: x\nSignature: y"), "Re: x\u{FFFD}Signature: y");
    }
}
