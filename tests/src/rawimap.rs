//! A plain IMAP session on the mail host, for what another client of the
//! list mailbox (a co-owner's mail client, the host itself) does to it.

use std::io::{BufRead, BufReader, Write};

use crate::Mailhost;

/// A plain IMAP session as `list` on the mail host's loopback port without
/// TLS, for what another client of the mailbox does.
pub struct RawImap {
    reader: BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
    tag: u32,
}

impl RawImap {
    /// Logs in as `list`.
    pub fn login() -> RawImap {
        let mh = Mailhost::get();
        let s = std::net::TcpStream::connect((
            mh.var("MAILHOST_HOST").as_str(),
            mh.port("MAILHOST_IMAP_PORT"),
        ))
        .unwrap();
        let mut raw = RawImap {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            tag: 0,
        };
        let mut greeting = String::new();
        raw.reader.read_line(&mut greeting).unwrap();
        let password = mh.var("MAILHOST_PASSWORD");
        raw.ok(&format!("LOGIN list {password}"));
        raw
    }

    /// Runs a command; returns its untagged lines, or panics unless OK.
    pub fn ok(&mut self, command: &str) -> Vec<String> {
        let (lines, status) = self.run(command);
        assert!(status.starts_with("OK"), "{command}: {status}");
        lines
    }

    /// Runs a command; returns its untagged lines and its status.
    pub fn run(&mut self, command: &str) -> (Vec<String>, String) {
        self.tag += 1;
        let tag = format!("t{} ", self.tag);
        write!(self.writer, "{tag}{command}\r\n").unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "closed");
            if let Some(status) = line.strip_prefix(&tag) {
                return (lines, status.trim().to_owned());
            }
            lines.push(line);
        }
    }

    /// Appends a message to a folder with these flags.
    pub fn append(&mut self, folder: &str, flags: &str, eml: &[u8]) {
        let eml = crate::mime::to_crlf(eml);
        self.tag += 1;
        let tag = format!("t{} ", self.tag);
        write!(
            self.writer,
            "{tag}APPEND {folder} ({flags}) {{{}}}\r\n",
            eml.len()
        )
        .unwrap();
        let mut cont = String::new();
        self.reader.read_line(&mut cont).unwrap();
        assert!(cont.starts_with('+'), "{cont}");
        self.writer.write_all(&eml).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if let Some(status) = line.strip_prefix(&tag) {
                assert!(status.starts_with("OK"), "APPEND: {status}");
                return;
            }
        }
    }

    /// The UIDVALIDITY of a folder and the UIDs in it, selecting it.
    pub fn select(&mut self, folder: &str) -> (u32, Vec<u32>) {
        let lines = self.ok(&format!("SELECT {folder}"));
        let validity = lines
            .iter()
            .find_map(|l| l.split("[UIDVALIDITY ").nth(1))
            .and_then(|r| r.split(']').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        let uids = self
            .ok("UID SEARCH ALL")
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|r| r.split_whitespace().map(|n| n.parse().unwrap()))
            .collect::<Vec<u32>>();
        (validity, uids)
    }
}
