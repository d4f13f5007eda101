//! SMTP submission: a small client of our own, over a TLS stream whose
//! certificate our own verifier checked ([`tls::connect`], which also runs
//! STARTTLS before the handshake). AUTH is only ever sent on that verified
//! stream.
//!
//! It speaks what submission needs and no more: EHLO, AUTH PLAIN or LOGIN,
//! one recipient per message, dot-stuffed DATA, RSET after a refused
//! envelope, QUIT. When the server offers PIPELINING (RFC 2920), MAIL FROM,
//! RCPT TO and DATA go out in one write and their replies are read in
//! order, and the next message's envelope goes out with the end of the
//! message before it ([`SmtpSession::send_each`]): the server goes from one
//! message to the next without waiting for the client, and a copy costs
//! one round trip and a half instead of four.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::tls::{self, Endpoint, TlsError, TlsStream, TrustSettings};

/// Where and how to submit.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The submission server.
    pub endpoint: Endpoint,
    /// What to trust besides public roots.
    pub trust: TrustSettings,
    /// The login.
    pub username: String,
    /// The password.
    pub password: crate::private::Secret,
    /// How long one operation may take ([`tls::within`]).
    pub deadline: std::time::Duration,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// TLS did not happen: nothing was sent.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The server refused the login.
    #[error("cannot log in to {endpoint}: {detail}")]
    Auth {
        /// `host:port`.
        endpoint: String,
        /// What the server said.
        detail: String,
    },
    /// A temporary refusal (4xx) or a broken connection: try again later.
    #[error("{0}")]
    Transient(String),
    /// A permanent refusal (5xx) for this recipient.
    #[error("{0}")]
    Permanent(String),
}

/// The longest reply line taken (RFC 5321 allows 512 octets).
const MAX_LINE: usize = 4096;
/// The most lines one reply may have (an EHLO reply has a dozen).
const MAX_LINES: usize = 100;

/// One reply of the server: its code and its text, lines joined by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) lines: Vec<String>,
}

impl Reply {
    fn positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// `CODE text`, on one line, as the owner reads it in the log.
    fn said(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
            .trim()
            .to_string()
    }

    /// The refusal this reply is, for the copy in hand.
    fn refusal(&self, step: &str) -> SendError {
        let said = format!("{step} refused: {}", self.said());
        if self.code >= 500 {
            SendError::Permanent(said)
        } else {
            SendError::Transient(said)
        }
    }
}

/// Reads one line of a reply: its code, whether more lines follow, and its
/// text (without the line end, control characters dropped).
pub(crate) fn parse_line(line: &[u8]) -> Result<(u16, bool, String), String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let shown = || crate::text::clean(&String::from_utf8_lossy(line));
    let (digits, rest) = line.split_at_checked(3).ok_or_else(|| {
        format!(
            "the server sent a reply line too short to have a code: {}",
            shown()
        )
    })?;
    let code = match digits {
        [a @ b'2'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => {
            return Err(format!(
                "the server sent a reply without a code: {}",
                shown()
            ))
        }
    };
    let (more, text) = match rest.split_first() {
        None => (false, &[][..]),
        Some((b' ', text)) => (false, text),
        Some((b'-', text)) => (true, text),
        Some(_) => return Err(format!("the server sent a malformed reply: {}", shown())),
    };
    let text = crate::text::clean(&String::from_utf8_lossy(text));
    Ok((code, more, text))
}

/// The message as DATA carries it: every line ending in CRLF (a bare LF
/// becomes CRLF), a dot doubled at the start of a line (RFC 5321 4.5.2),
/// and the closing `.` line.
pub(crate) fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    push_stuffed(&mut out, message);
    out
}

/// Appends [`dot_stuffed`]`(message)` to `out`. A message that needs no
/// change (what Conclave builds: CRLF lines, none starting with a dot) is
/// copied whole.
fn push_stuffed(out: &mut Vec<u8>, message: &[u8]) {
    let clean = message.is_empty()
        || (message.ends_with(b"\r\n")
            && message.first() != Some(&b'.')
            && memchr::memchr_iter(b'\n', message).all(|i| {
                i.checked_sub(1).and_then(|p| message.get(p)) == Some(&b'\r')
                    && message.get(i + 1) != Some(&b'.')
            }));
    if clean {
        out.extend_from_slice(message);
        out.extend_from_slice(b".\r\n");
    } else {
        push_stuffed_lines(out, message);
    }
}

/// [`push_stuffed`], line by line.
fn push_stuffed_lines(out: &mut Vec<u8>, message: &[u8]) {
    for line in message.split_inclusive(|b| *b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        match line.strip_suffix(b"\n") {
            Some(body) => {
                out.extend_from_slice(body.strip_suffix(b"\r").unwrap_or(body));
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(line),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// An address fit for `MAIL FROM:<...>` or `RCPT TO:<...>`: nothing that
/// could end the command or start another.
fn envelope_address(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 254
        && a.bytes()
            .all(|b| b > b' ' && b < 0x7f && b != b'<' && b != b'>')
}

/// Both envelope addresses, or why one cannot go out.
fn check_envelope(from: &str, to: &str) -> Result<(), SendError> {
    if !envelope_address(from) {
        return Err(SendError::Permanent(format!(
            "bad sender address {}",
            crate::text::clean(from)
        )));
    }
    if !envelope_address(to) {
        return Err(SendError::Permanent(format!(
            "bad recipient address {}",
            crate::text::clean(to)
        )));
    }
    Ok(())
}

/// MAIL FROM, RCPT TO and DATA, as one group (addresses already checked).
fn envelope_commands(from: &str, to: &str) -> Vec<u8> {
    format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n").into_bytes()
}

/// What [`SmtpSession::send_each`] asks of its caller about each item.
pub trait SendCalls<T, E> {
    /// The item's envelope sender and recipient.
    fn envelope(&mut self, item: &T) -> (String, String);
    /// The item's message.
    fn message(&mut self, item: &T) -> Result<Vec<u8>, E>;
    /// The server's answer to the item (or why it was not sent).
    fn answered(&mut self, item: T, result: Result<(), SendError>) -> Result<(), E>;
}

/// An item whose envelope is checked.
struct Outgoing<T> {
    item: T,
    from: String,
    to: String,
}

/// An open, authenticated submission session.
pub struct SmtpSession {
    io: BufReader<TlsStream>,
    pipelining: bool,
    broken: bool,
    deadline: Duration,
}

impl std::fmt::Debug for SmtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSession")
            .field("pipelining", &self.pipelining)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl SmtpSession {
    /// Connects, verifies the certificate, greets and logs in, within the
    /// deadline.
    pub async fn open(settings: &SmtpSettings) -> Result<SmtpSession, SendError> {
        let key = settings.endpoint.key();
        tls::within(
            settings.deadline,
            |d| SendError::Transient(format!("{key}: {d}")),
            Self::open_now(settings),
        )
        .await
    }

    async fn open_now(settings: &SmtpSettings) -> Result<SmtpSession, SendError> {
        let (stream, _chain, _by) = tls::connect(&settings.endpoint, &settings.trust).await?;
        let key = settings.endpoint.key();
        let mut session = SmtpSession {
            io: BufReader::new(stream),
            pipelining: false,
            broken: false,
            deadline: settings.deadline,
        };
        let greet = |e: SendError| SendError::Transient(format!("cannot greet {key}: {e}"));
        // After STARTTLS the server does not greet again (RFC 3207).
        if settings.endpoint.security == tls::Security::Tls {
            let greeting = session.reply().await.map_err(greet)?;
            if greeting.code != 220 {
                return Err(greet(greeting.refusal("the connection")));
            }
        }
        let ehlo = session
            .command(b"EHLO conclave.invalid\r\n")
            .await
            .map_err(greet)?;
        if ehlo.code != 250 {
            return Err(greet(ehlo.refusal("EHLO")));
        }
        let mut mechanisms = Vec::new();
        for line in ehlo.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            match words.next().map(str::to_ascii_uppercase).as_deref() {
                Some("PIPELINING") => session.pipelining = true,
                Some("AUTH") => mechanisms.extend(words.map(str::to_ascii_uppercase)),
                _ => {}
            }
        }
        let refused = |detail: String| SendError::Auth {
            endpoint: key.clone(),
            detail,
        };
        let b64 =
            |s: &[u8]| zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(s));
        let user = settings.username.as_bytes();
        let password = settings.password.expose().as_bytes();
        let done = if mechanisms.iter().any(|m| m == "PLAIN") || mechanisms.is_empty() {
            // The login is wiped from memory once sent.
            let mut token =
                zeroize::Zeroizing::new(Vec::with_capacity(user.len() + password.len() + 2));
            token.push(0);
            token.extend_from_slice(user);
            token.push(0);
            token.extend_from_slice(password);
            let line = zeroize::Zeroizing::new(format!("AUTH PLAIN {}\r\n", *b64(&token)));
            session.command(line.as_bytes()).await?
        } else if mechanisms.iter().any(|m| m == "LOGIN") {
            let ask = session.command(b"AUTH LOGIN\r\n").await?;
            if ask.code != 334 {
                return Err(refused(ask.said()));
            }
            let ask = session
                .command(format!("{}\r\n", *b64(user)).as_bytes())
                .await?;
            if ask.code != 334 {
                return Err(refused(ask.said()));
            }
            let line = zeroize::Zeroizing::new(format!("{}\r\n", *b64(password)));
            session.command(line.as_bytes()).await?
        } else {
            return Err(refused(format!(
                "the server offers no login method Conclave knows (PLAIN, LOGIN): {}",
                mechanisms.join(" ")
            )));
        };
        if done.code != 235 {
            return Err(refused(done.said()));
        }
        Ok(session)
    }

    /// Whether the server took several commands at once (PIPELINING).
    pub fn pipelining(&self) -> bool {
        self.pipelining
    }

    /// Submits each item in turn, on this connection, and tells `answered`
    /// the server's answer to each, in order. `envelope` gives an item's
    /// sender and recipient; `message` its bytes, asked for while the
    /// server answers its envelope.
    ///
    /// With PIPELINING (and no `pause`), the envelope of the next item goes
    /// out in the same write as the end of the message before it (RFC
    /// 2920: the end of the data may start a new group of commands), so the
    /// server never waits for the client between two messages. Its message
    /// still waits for the server's 354. A refused envelope or message does
    /// not stop the items after it. With a `pause`, the items go one at a
    /// time, `pause` apart.
    ///
    /// When the connection breaks, the item in hand is answered with a
    /// temporary failure, and the item whose envelope had already gone out
    /// (if any) is given back untried: the caller opens a new connection and
    /// goes on with it. An error of `message` or `answered` stops at once
    /// (the connection is then left for broken).
    pub async fn send_each<T, E>(
        &mut self,
        first: Option<T>,
        rest: &mut dyn Iterator<Item = T>,
        pause: Duration,
        calls: &mut dyn SendCalls<T, E>,
    ) -> Result<Option<T>, E> {
        let pipelined = self.pipelining && pause.is_zero();
        let mut waiting = first;
        let mut started = false;
        loop {
            if self.broken {
                return Ok(waiting);
            }
            // The next item whose envelope is good.
            let Some(cur) = Self::next_item(&mut waiting, rest, calls)? else {
                return Ok(None);
            };
            if started && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            started = true;
            if !pipelined {
                let message = calls
                    .message(&cur.item)
                    .inspect_err(|_| self.broken = true)?;
                let result = self.send(&cur.from, &cur.to, &message).await;
                calls.answered(cur.item, result)?;
                continue;
            }
            let mut cur = cur;
            if let Err(e) = self.write(&envelope_commands(&cur.from, &cur.to)).await {
                calls.answered(cur.item, Err(e))?;
                return Ok(None);
            }
            // Each pass: `cur`'s envelope is out.
            loop {
                let message = calls
                    .message(&cur.item)
                    .inspect_err(|_| self.broken = true)?;
                let deadline = self.deadline;
                let replies = tokio::time::timeout(deadline, self.envelope_replies()).await;
                match replies.unwrap_or_else(|_| Err(self.timed_out())) {
                    Ok(None) => {}
                    Ok(Some(refused)) => {
                        calls.answered(cur.item, Err(refused))?;
                        break;
                    }
                    Err(e) => {
                        calls.answered(cur.item, Err(e))?;
                        return Ok(None);
                    }
                }
                let next = Self::next_item(&mut waiting, rest, calls)?;
                let mut out = Vec::with_capacity(message.len() + 256);
                push_stuffed(&mut out, &message);
                if let Some(n) = &next {
                    out.extend_from_slice(&envelope_commands(&n.from, &n.to));
                }
                let result = match self.write(&out).await {
                    Ok(()) => {
                        let deadline = self.deadline;
                        let answer = tokio::time::timeout(deadline, self.message_answer()).await;
                        answer.unwrap_or_else(|_| Err(self.timed_out()))
                    }
                    Err(e) => Err(e),
                };
                calls.answered(cur.item, result)?;
                match next {
                    // Its envelope went out with a connection now lost.
                    Some(n) if self.broken => return Ok(Some(n.item)),
                    Some(n) => cur = n,
                    None => return Ok(None),
                }
            }
        }
    }

    /// The first of `waiting`, then of `rest`, whose envelope addresses
    /// are fit to send; the others are answered with a permanent failure.
    fn next_item<T, E>(
        waiting: &mut Option<T>,
        rest: &mut dyn Iterator<Item = T>,
        calls: &mut dyn SendCalls<T, E>,
    ) -> Result<Option<Outgoing<T>>, E> {
        while let Some(item) = waiting.take().or_else(|| rest.next()) {
            let (from, to) = calls.envelope(&item);
            match check_envelope(&from, &to) {
                Ok(()) => return Ok(Some(Outgoing { item, from, to })),
                Err(e) => calls.answered(item, Err(e))?,
            }
        }
        Ok(None)
    }

    /// The server did not answer within the deadline: the connection is
    /// in an unknown state, so it is marked broken (the next copy takes a
    /// new one).
    fn timed_out(&mut self) -> SendError {
        self.broken = true;
        SendError::Transient(format!(
            "the server gave no answer within {} seconds",
            self.deadline.as_secs()
        ))
    }

    /// Reads the replies to MAIL FROM, RCPT TO and DATA sent at once:
    /// None when the server waits for the message (354), else why not,
    /// after ending the refused transaction so that the next can start.
    async fn envelope_replies(&mut self) -> Result<Option<SendError>, SendError> {
        let mail = self.reply().await?;
        let rcpt = self.reply().await?;
        let data = self.reply().await?;
        let refused = if !mail.positive() {
            mail.refusal("MAIL FROM")
        } else if !rcpt.positive() {
            rcpt.refusal("RCPT TO")
        } else if data.code != 354 {
            data.refusal("DATA")
        } else {
            return Ok(None);
        };
        if data.code == 354 {
            // The server wants a message for an envelope it refused:
            // an empty one ends it.
            self.command(b".\r\n").await?;
        }
        if mail.positive() {
            self.reset().await?;
        }
        Ok(Some(refused))
    }

    /// Submits one message; Ok once the server accepted it.
    pub async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<(), SendError> {
        check_envelope(from, to)?;
        let body = dot_stuffed(message);
        match tokio::time::timeout(self.deadline, self.transaction(from, to, &body)).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn transaction(&mut self, from: &str, to: &str, body: &[u8]) -> Result<(), SendError> {
        if self.pipelining {
            self.write(&envelope_commands(from, to)).await?;
            if let Some(refused) = self.envelope_replies().await? {
                return Err(refused);
            }
        } else {
            let mail = format!("MAIL FROM:<{from}>\r\n");
            let rcpt = format!("RCPT TO:<{to}>\r\n");
            let reply = self.command(mail.as_bytes()).await?;
            if !reply.positive() {
                return Err(reply.refusal("MAIL FROM"));
            }
            let reply = self.command(rcpt.as_bytes()).await?;
            if !reply.positive() {
                self.reset().await?;
                return Err(reply.refusal("RCPT TO"));
            }
            let reply = self.command(b"DATA\r\n").await?;
            if reply.code != 354 {
                self.reset().await?;
                return Err(reply.refusal("DATA"));
            }
        }
        self.write(body).await?;
        self.message_answer().await
    }

    /// Reads the server's answer to a message's data.
    async fn message_answer(&mut self) -> Result<(), SendError> {
        let reply = self.reply().await?;
        if reply.positive() {
            Ok(())
        } else {
            Err(reply.refusal("the message"))
        }
    }

    /// RSET: the next message starts from a clean transaction.
    async fn reset(&mut self) -> Result<(), SendError> {
        let reply = self.command(b"RSET\r\n").await?;
        if !reply.positive() {
            self.broken = true;
        }
        Ok(())
    }

    /// Writes `bytes` and reads the reply.
    async fn command(&mut self, bytes: &[u8]) -> Result<Reply, SendError> {
        self.write(bytes).await?;
        self.reply().await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        let written = async {
            self.io.get_mut().write_all(bytes).await?;
            self.io.get_mut().flush().await
        }
        .await;
        written.map_err(|e| self.lost(&e.to_string()))
    }

    /// Reads one whole reply (every line of it).
    async fn reply(&mut self) -> Result<Reply, SendError> {
        self.ack_at_once();
        let mut lines = Vec::new();
        let mut code = 0;
        for _ in 0..MAX_LINES {
            let line = self.line().await?;
            let (c, more, text) = parse_line(&line).map_err(|e| self.lost(&e))?;
            if code != 0 && c != code {
                return Err(self.lost("the server changed the code in the middle of a reply"));
            }
            code = c;
            lines.push(text);
            if !more {
                if code == 421 {
                    // The server is closing the connection.
                    self.broken = true;
                }
                return Ok(Reply { code, lines });
            }
        }
        Err(self.lost("the server sent a reply of too many lines"))
    }

    /// Asks the kernel to acknowledge what the server sends at once, not
    /// after the delayed-ACK timer. A server that writes a TLS record in
    /// two pieces without TCP_NODELAY (Postfix's smtpd does, after a large
    /// message) holds the second piece back until the first is
    /// acknowledged: without this every "250 queued" waited up to 40 ms.
    /// Linux resets the mode as it pleases, so it is asked before each
    /// reply; where it cannot be set, nothing changes.
    fn ack_at_once(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let (tcp, _) = self.io.get_ref().get_ref();
            let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
        }
    }

    /// One line, at most [`MAX_LINE`] bytes.
    async fn line(&mut self) -> Result<Vec<u8>, SendError> {
        let mut line = Vec::new();
        loop {
            let step = match self.io.fill_buf().await {
                Ok([]) => None,
                Ok(available) => {
                    let (taken, end) = match available.iter().position(|b| *b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (available.len(), false),
                    };
                    line.extend_from_slice(available.get(..taken).unwrap_or_default());
                    Some((taken, end))
                }
                Err(e) => {
                    let e = e.to_string();
                    return Err(self.lost(&e));
                }
            };
            let Some((taken, end)) = step else {
                return Err(self.lost("the server closed the connection"));
            };
            self.io.consume(taken);
            if line.len() > MAX_LINE {
                return Err(self.lost("the server sent a reply line that is too long"));
            }
            if end {
                return Ok(line);
            }
        }
    }

    /// The connection can no longer be used: the copy in hand is tried again
    /// later.
    fn lost(&mut self, why: &str) -> SendError {
        self.broken = true;
        SendError::Transient(format!("the connection failed: {why}"))
    }

    /// True when the connection can no longer be used.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Says goodbye.
    pub async fn close(mut self) {
        if self.broken {
            return;
        }
        let _ = tokio::time::timeout(self.deadline, self.command(b"QUIT\r\n")).await;
        let _ = tokio::time::timeout(self.deadline, self.io.get_mut().shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_are_read_with_their_code_and_continuation() {
        assert_eq!(
            parse_line(b"250-mail.example.test\r\n"),
            Ok((250, true, "mail.example.test".into()))
        );
        assert_eq!(
            parse_line(b"250 PIPELINING\r\n"),
            Ok((250, false, "PIPELINING".into()))
        );
        assert_eq!(parse_line(b"354\r\n"), Ok((354, false, String::new())));
        assert_eq!(parse_line(b"221 bye\n"), Ok((221, false, "bye".into())));
        assert_eq!(
            parse_line(b"550 5.1.1 <x@example.test>: rejected\r\n"),
            Ok((550, false, "5.1.1 <x@example.test>: rejected".into()))
        );
    }

    #[test]
    fn hostile_reply_lines_get_a_reason() {
        for bad in [
            &b""[..],
            b"25",
            b"abc hello",
            b"650 no such class",
            b"150 preliminary",
            b"2x0 ok",
            b"250+ok",
        ] {
            let e = parse_line(bad).expect_err("refused");
            assert!(e.starts_with("the server sent"), "{e}");
        }
        // Control characters in the text never reach the owner's log.
        let (_, _, text) = parse_line(b"550 bad\x1b[31m red\r\n").unwrap();
        assert!(!text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn a_reply_of_several_lines_is_one_reply() {
        let lines = [
            &b"250-first"[..],
            b"250-PIPELINING",
            b"250 AUTH PLAIN LOGIN",
        ];
        let parsed: Vec<_> = lines.iter().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(
            parsed.iter().map(|p| p.1).collect::<Vec<_>>(),
            [true, true, false]
        );
        let reply = Reply {
            code: 250,
            lines: parsed.into_iter().map(|p| p.2).collect(),
        };
        assert_eq!(reply.said(), "250 first PIPELINING AUTH PLAIN LOGIN");
    }

    #[test]
    fn refusals_are_permanent_or_temporary_by_their_code() {
        let r = |code| Reply {
            code,
            lines: vec!["no".into()],
        };
        assert!(
            matches!(r(550).refusal("RCPT TO"), SendError::Permanent(s) if s == "RCPT TO refused: 550 no")
        );
        assert!(matches!(r(452).refusal("RCPT TO"), SendError::Transient(_)));
        assert!(matches!(
            r(421).refusal("MAIL FROM"),
            SendError::Transient(_)
        ));
    }

    #[test]
    fn dots_at_the_start_of_a_line_are_doubled() {
        assert_eq!(dot_stuffed(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuffed(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuffed(b"a.b\r\n..\r\n"), b"a.b\r\n...\r\n.\r\n");
        // A dot not at the start of a line stays single.
        assert_eq!(dot_stuffed(b"x. y\r\n"), b"x. y\r\n.\r\n");
    }

    #[test]
    fn every_line_ends_in_crlf_and_the_message_is_closed() {
        assert_eq!(dot_stuffed(b"a\nb"), b"a\r\nb\r\n.\r\n");
        assert_eq!(dot_stuffed(b"a\n.\n"), b"a\r\n..\r\n.\r\n");
        assert_eq!(dot_stuffed(b""), b".\r\n");
        // The end marker can never appear inside the message.
        let stuffed = dot_stuffed(b"x\r\n.\r\ny\r\n");
        let inner = &stuffed[..stuffed.len() - 3];
        assert!(!inner.windows(5).any(|w| w == b"\r\n.\r\n"));
    }

    /// Whatever the message, copying it whole when it needs no change
    /// gives what stuffing it line by line gives.
    #[test]
    fn a_message_that_needs_no_stuffing_is_sent_as_it_is() {
        let pieces: [&[u8]; 7] = [b"abc", b"\r\n", b"\n", b".", b"..", b"x.y", b"\r"];
        for seed in 0u32..5000 {
            let mut message = Vec::new();
            let mut x = seed;
            for _ in 0..(seed % 9) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                message.extend_from_slice(pieces[(x >> 16) as usize % pieces.len()]);
            }
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            push_stuffed(&mut fast, &message);
            push_stuffed_lines(&mut slow, &message);
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&message));
        }
        let armor = b"-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA...\r\n=abcd\r\n";
        assert_eq!(dot_stuffed(armor), [&armor[..], b".\r\n"].concat());
    }

    #[test]
    fn envelope_addresses_cannot_carry_commands() {
        assert!(envelope_address("alice+s00001@example.test"));
        for bad in [
            "",
            "a@b\r\nRCPT TO:<x@y>",
            "a b@c",
            "a>@b",
            "<a@b",
            "\u{e9}@b",
        ] {
            assert!(!envelope_address(bad), "{bad:?}");
        }
    }
}
