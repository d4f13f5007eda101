//! IMAP intake with async-imap over our verified TLS stream (implicit TLS,
//! or STARTTLS that is never skipped). The list mailbox is the shared state
//! with the host: a post is claimed with a conditional flag store (CONDSTORE),
//! which exactly one of two racing instances wins, then moved into
//! `Conclave/Processed`. (`UID MOVE` alone is no lock: on a Maildir server two
//! sessions can both copy a message before either expunges it.)

use futures::TryStreamExt;

use crate::events::InboxState;

use super::tls::{self, Endpoint, Security, TlsError, TlsStream, TrustSettings};

/// An open IMAP session.
pub type Session = async_imap::Session<TlsStream>;

/// Where and how to log in.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    /// The IMAP server.
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

/// Why the mailbox could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImapError {
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
    /// Any other failure.
    #[error("IMAP error with {endpoint}: {detail}")]
    Protocol {
        /// `host:port`.
        endpoint: String,
        /// What happened.
        detail: String,
    },
}

/// The folders Conclave files posts into.
#[derive(Debug, Clone)]
pub struct Folders {
    /// Distributed posts (and posts being processed).
    pub processed: String,
    /// Held posts.
    pub held: String,
    /// Rejected or discarded posts.
    pub rejected: String,
    /// The replay marks the list's instances share, and their key.
    pub replay: String,
    /// Delivery reports (bounces), kept sealed in the store too.
    pub bounces: String,
}

/// Connects, verifies the certificate and logs in, within the deadline.
pub async fn login(settings: &ImapSettings) -> Result<Session, ImapError> {
    let key = settings.endpoint.key();
    tls::within(settings.deadline, silent(&key), login_now(settings)).await
}

/// The error for a server that did not answer in time.
pub fn silent(endpoint: &str) -> impl FnOnce(String) -> ImapError + '_ {
    move |detail| ImapError::Protocol {
        endpoint: endpoint.to_owned(),
        detail,
    }
}

async fn login_now(settings: &ImapSettings) -> Result<Session, ImapError> {
    let key = settings.endpoint.key();
    let (stream, _chain, _by) = tls::connect(&settings.endpoint, &settings.trust).await?;
    let mut client = async_imap::Client::new(stream);
    if settings.endpoint.security == Security::Tls {
        // The greeting (after STARTTLS the server does not greet again).
        client
            .read_response()
            .await
            .map_err(|e| ImapError::Protocol {
                endpoint: key.clone(),
                detail: e.to_string(),
            })?
            .ok_or_else(|| ImapError::Protocol {
                endpoint: key.clone(),
                detail: "closed before greeting".into(),
            })?;
    }
    client
        .login(&settings.username, settings.password.expose())
        .await
        .map_err(|(e, _)| ImapError::Auth {
            endpoint: key,
            detail: e.to_string(),
        })
}

fn proto(endpoint: &str) -> impl Fn(async_imap::error::Error) -> ImapError + '_ {
    move |e| ImapError::Protocol {
        endpoint: endpoint.to_owned(),
        detail: e.to_string(),
    }
}

/// Makes sure Conclave's folders exist, with the server's hierarchy delimiter.
pub async fn ensure_folders(session: &mut Session, endpoint: &str) -> Result<Folders, ImapError> {
    let delim = delimiter(session, endpoint).await?;
    let folders = Folders {
        processed: format!("Conclave{delim}Processed"),
        held: format!("Conclave{delim}Held"),
        rejected: format!("Conclave{delim}Rejected"),
        replay: format!("Conclave{delim}Replay"),
        bounces: format!("Conclave{delim}Bounces"),
    };
    let existing: Vec<String> = session
        .list(Some(""), Some("Conclave*"))
        .await
        .map_err(proto(endpoint))?
        .try_collect::<Vec<_>>()
        .await
        .map_err(proto(endpoint))?
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
    for f in [
        "Conclave".to_string(),
        folders.processed.clone(),
        folders.held.clone(),
        folders.rejected.clone(),
        folders.replay.clone(),
        folders.bounces.clone(),
    ] {
        if !existing.contains(&f) {
            // Another instance may create it at the same moment: a failed
            // CREATE is fine if the folder exists afterwards.
            let _ = session.create(&f).await;
        }
    }
    Ok(folders)
}

/// Runs one command and returns (untagged lines, the tagged status line
/// without its tag), reading the raw replies.
async fn raw_command(
    session: &mut Session,
    endpoint: &str,
    command: &str,
) -> Result<(Vec<String>, String), ImapError> {
    let id = session
        .run_command(command)
        .await
        .map_err(proto(endpoint))?;
    let tag = format!("{} ", id.0);
    let mut untagged = Vec::new();
    for _ in 0..100_000 {
        let resp = session
            .read_response()
            .await
            .map_err(|e| ImapError::Protocol {
                endpoint: endpoint.to_owned(),
                detail: e.to_string(),
            })?
            .ok_or_else(|| ImapError::Protocol {
                endpoint: endpoint.to_owned(),
                detail: "connection closed".into(),
            })?;
        let raw = String::from_utf8_lossy(resp.borrow_owner()).into_owned();
        if let Some(status) = raw.strip_prefix(&tag) {
            return Ok((untagged, status.trim().to_owned()));
        }
        untagged.push(raw);
    }
    Err(ImapError::Protocol {
        endpoint: endpoint.to_owned(),
        detail: format!("no reply to {command}"),
    })
}

/// The keyword that marks a post some Conclave instance has claimed.
pub const CLAIMED: &str = "$ConclaveClaimed";

/// Claims a post for this instance with a conditional store (CONDSTORE,
/// RFC 7162): the flag is set only if nobody changed the message since we
/// read its mod-sequence, so of two instances exactly one wins. Returns
/// false when another instance claimed it (or it is gone).
pub async fn try_claim(session: &mut Session, endpoint: &str, uid: u32) -> Result<bool, ImapError> {
    let (lines, status) = raw_command(
        session,
        endpoint,
        &format!("UID FETCH {uid} (FLAGS MODSEQ)"),
    )
    .await?;
    if !status.starts_with("OK") {
        return Ok(false);
    }
    // Only the FETCH line of this UID counts: the server may add unsolicited
    // FETCH lines for other messages (flags another session changed), whose
    // flags and mod-sequence say nothing about this one.
    let Some(line) = lines.iter().find(|l| fetch_uid(l) == Some(uid)) else {
        return Ok(false);
    };
    if fetch_flags(line).is_some_and(|flags| flags.iter().any(|f| f == CLAIMED)) {
        return Ok(false);
    }
    let Some(modseq) = fetch_number(line, "MODSEQ (") else {
        return Err(ImapError::Protocol {
            endpoint: endpoint.to_owned(),
            detail: "the server does not report MODSEQ (CONDSTORE is needed to claim posts safely)"
                .into(),
        });
    };
    // Not .SILENT: the server answers with a FETCH for each message the
    // store changed. A store on a UID that another instance has just moved
    // away changes nothing and still ends in OK: only that FETCH proves the
    // claim.
    let (lines, status) = raw_command(
        session,
        endpoint,
        &format!("UID STORE {uid} (UNCHANGEDSINCE {modseq}) +FLAGS ({CLAIMED})"),
    )
    .await?;
    let applied = lines.iter().any(|l| {
        fetch_uid(l) == Some(uid)
            && fetch_flags(l).is_some_and(|flags| flags.iter().any(|f| f == CLAIMED))
    });
    Ok(status.starts_with("OK") && !status.contains("[MODIFIED") && applied)
}

/// The data items of an untagged FETCH response (`* 3 FETCH (…)`): what is
/// inside the outer parentheses, or None for any other line.
fn fetch_items(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("* ")?;
    let (seq, rest) = rest.split_once(' ')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix("FETCH (")?;
    let end = rest.rfind(')')?;
    rest.get(..end)
}

/// The number after `name` among a FETCH response's items (`UID `,
/// `MODSEQ (`, `RFC822.SIZE `), matched only at the start of an item.
fn fetch_number(line: &str, name: &str) -> Option<u64> {
    let items = fetch_items(line)?;
    let mut from = 0;
    while let Some(at) = items.get(from..)?.find(name) {
        let start = from + at;
        let boundary = start == 0 || items.as_bytes().get(start - 1) == Some(&b' ');
        let rest = items.get(start + name.len()..)?;
        if boundary {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().ok();
        }
        from = start + name.len();
    }
    None
}

/// The UID in an untagged FETCH response, e.g. `* 3 FETCH (UID 17 FLAGS (…))`.
fn fetch_uid(line: &str) -> Option<u32> {
    fetch_number(line, "UID ").and_then(|n| u32::try_from(n).ok())
}

/// The flags in an untagged FETCH response.
fn fetch_flags(line: &str) -> Option<Vec<String>> {
    let items = fetch_items(line)?;
    let at = items
        .match_indices("FLAGS (")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || items.as_bytes().get(i - 1) == Some(&b' '))?;
    let rest = items.get(at + 7..)?;
    let end = rest.find(')')?;
    Some(
        rest.get(..end)?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// The size of each of these messages as the server counts it
/// (`RFC822.SIZE`), asked before anything is downloaded: (UID, size) for
/// those still there. Lines for other UIDs are ignored.
pub async fn sizes(
    session: &mut Session,
    endpoint: &str,
    uids: &[u32],
) -> Result<Vec<(u32, u64)>, ImapError> {
    let mut out = Vec::new();
    for chunk in uids.chunks(200) {
        let set = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let (lines, status) =
            raw_command(session, endpoint, &format!("UID FETCH {set} (RFC822.SIZE)")).await?;
        if !status.starts_with("OK") {
            return Err(ImapError::Protocol {
                endpoint: endpoint.to_owned(),
                detail: format!("cannot read the sizes of the posts: {status}"),
            });
        }
        for line in &lines {
            if let (Some(uid), Some(size)) = (fetch_uid(line), fetch_number(line, "RFC822.SIZE ")) {
                if chunk.contains(&uid) && !out.iter().any(|(u, _)| *u == uid) {
                    out.push((uid, size));
                }
            }
        }
    }
    Ok(out)
}

/// The UIDs a `UID SEARCH` finds, in order.
async fn search(session: &mut Session, endpoint: &str, query: &str) -> Result<Vec<u32>, ImapError> {
    let mut uids: Vec<u32> = session
        .uid_search(query)
        .await
        .map_err(proto(endpoint))?
        .into_iter()
        .collect();
    uids.sort_unstable();
    Ok(uids)
}

/// One item of the message with this UID (`BODY.PEEK[…]`), picked from its
/// FETCH by `pick`, without marking it seen; None if it is gone.
async fn fetch_item(
    session: &mut Session,
    endpoint: &str,
    uid: u32,
    item: &str,
    pick: fn(&async_imap::types::Fetch) -> Option<&[u8]>,
) -> Result<Option<Vec<u8>>, ImapError> {
    let fetches: Vec<_> = session
        .uid_fetch(uid.to_string(), item)
        .await
        .map_err(proto(endpoint))?
        .try_collect()
        .await
        .map_err(proto(endpoint))?;
    Ok(fetches
        .iter()
        .find(|f| f.uid == Some(uid))
        .and_then(pick)
        .map(<[u8]>::to_vec))
}

/// The header of the message with this UID (`BODY.PEEK[HEADER]`), without
/// marking it seen; None if it is gone.
pub async fn fetch_header(
    session: &mut Session,
    endpoint: &str,
    uid: u32,
) -> Result<Option<Vec<u8>>, ImapError> {
    fetch_item(session, endpoint, uid, "BODY.PEEK[HEADER]", |f| f.header()).await
}

/// Finds a message in the selected mailbox by its content, for when its
/// UID no longer means anything (UIDVALIDITY changed): the messages of
/// exactly `size` bytes are fetched (their header alone when `header_only`)
/// and compared with `content`. Returns its UID now, or None.
pub async fn find_by_content(
    session: &mut Session,
    endpoint: &str,
    size: u64,
    content: &[u8],
    header_only: bool,
) -> Result<Option<u32>, ImapError> {
    let larger = size.saturating_sub(1);
    let smaller = size.saturating_add(1);
    let candidates = search(
        session,
        endpoint,
        &format!("LARGER {larger} SMALLER {smaller}"),
    )
    .await?;
    for uid in candidates.into_iter().take(1000) {
        let bytes = if header_only {
            fetch_header(session, endpoint, uid).await?
        } else {
            fetch(session, endpoint, uid).await?
        };
        if bytes.as_deref() == Some(content) {
            return Ok(Some(uid));
        }
    }
    Ok(None)
}

/// The bodies of the oldest messages (ten at most) in `folder` whose
/// subject is `subject`, oldest first. Leaves `folder` selected (read-only).
pub async fn with_subject(
    session: &mut Session,
    endpoint: &str,
    folder: &str,
    subject: &str,
) -> Result<Vec<Vec<u8>>, ImapError> {
    session.examine(folder).await.map_err(proto(endpoint))?;
    let mut uids = search(session, endpoint, &format!("SUBJECT \"{subject}\"")).await?;
    uids.truncate(10);
    let mut bodies = Vec::new();
    for uid in uids {
        if let Some(text) =
            fetch_item(session, endpoint, uid, "BODY.PEEK[TEXT]", |f| f.text()).await?
        {
            bodies.push(text);
        }
    }
    Ok(bodies)
}

/// The bodies of the messages in `folder` after UID `after` (all of them if
/// its UIDVALIDITY is not `validity`), with the folder's UIDVALIDITY and
/// the last UID read. Leaves `folder` selected (read-only).
pub async fn read_after(
    session: &mut Session,
    endpoint: &str,
    folder: &str,
    validity: u32,
    after: u32,
) -> Result<(u32, u32, Vec<Vec<u8>>), ImapError> {
    let mb = session.examine(folder).await.map_err(proto(endpoint))?;
    let now = mb.uid_validity.unwrap_or(0);
    let after = if now == validity { after } else { 0 };
    let mut uids = search(
        session,
        endpoint,
        &format!("UID {}:*", after.saturating_add(1)),
    )
    .await?;
    uids.retain(|u| *u > after);
    let mut bodies = Vec::new();
    let mut last = after;
    for chunk in uids.chunks(200) {
        let set = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let fetches: Vec<_> = session
            .uid_fetch(set, "BODY.PEEK[TEXT]")
            .await
            .map_err(proto(endpoint))?
            .try_collect()
            .await
            .map_err(proto(endpoint))?;
        for f in &fetches {
            if let (Some(uid), Some(text)) = (f.uid, f.text()) {
                if chunk.contains(&uid) {
                    bodies.push(text.to_vec());
                    last = last.max(uid);
                }
            }
        }
    }
    Ok((now, last, bodies))
}

/// Selects INBOX again (after another folder was looked at).
pub async fn select_inbox(session: &mut Session, endpoint: &str) -> Result<(), ImapError> {
    session.select("INBOX").await.map_err(proto(endpoint))?;
    Ok(())
}

/// Leaves `message` in `folder` (APPEND), marked seen.
pub async fn append(
    session: &mut Session,
    endpoint: &str,
    folder: &str,
    message: &[u8],
) -> Result<(), ImapError> {
    session
        .append(folder, Some("(\\Seen)"), None, message)
        .await
        .map_err(proto(endpoint))
}

/// The hierarchy delimiter, from the raw reply to `LIST "" ""`
/// (`* LIST (\Noselect) "." ""`).
async fn delimiter(session: &mut Session, endpoint: &str) -> Result<String, ImapError> {
    let (lines, _) = raw_command(session, endpoint, "LIST \"\" \"\"").await?;
    // The delimiter is the first quoted string after the flags.
    let delim = lines
        .iter()
        .find(|l| l.starts_with("* LIST"))
        .and_then(|l| l.split('"').nth(1))
        .filter(|d| d.len() == 1);
    Ok(delim.unwrap_or("/").to_owned())
}

fn inbox_state(mb: &async_imap::types::Mailbox) -> InboxState {
    InboxState {
        uid_validity: mb.uid_validity.unwrap_or(0),
        uid_next: mb.uid_next.unwrap_or(0),
    }
}

/// Selects INBOX; returns its state and the UIDs of every message in it.
/// UIDNEXT is read before the search, so a message that arrives between
/// the two is seen again by the next wait ([`wait_for_mail`]).
pub async fn inbox(
    session: &mut Session,
    endpoint: &str,
) -> Result<(InboxState, Vec<u32>), ImapError> {
    let mb = session.select("INBOX").await.map_err(proto(endpoint))?;
    let uids = search(session, endpoint, "ALL").await?;
    Ok((inbox_state(&mb), uids))
}

/// The whole message with this UID, without marking it seen; None if it is gone.
pub async fn fetch(
    session: &mut Session,
    endpoint: &str,
    uid: u32,
) -> Result<Option<Vec<u8>>, ImapError> {
    fetch_item(session, endpoint, uid, "BODY.PEEK[]", |f| f.body()).await
}

/// Moves a claimed message into `folder`; returns its UID there (COPYUID),
/// or None when it is no longer in INBOX.
pub async fn move_claimed(
    session: &mut Session,
    endpoint: &str,
    uid: u32,
    folder: &str,
) -> Result<Option<u32>, ImapError> {
    let (lines, status) =
        raw_command(session, endpoint, &format!("UID MOVE {uid} \"{folder}\"")).await?;
    if status.starts_with("OK") {
        return Ok(lines
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(status.as_str()))
            .find_map(copyuid_dest));
    }
    if status.starts_with("NO [EXPUNGEISSUED]") || status.starts_with("NO [NONEXISTENT]") {
        return Ok(None);
    }
    Err(ImapError::Protocol {
        endpoint: endpoint.to_owned(),
        detail: format!("UID MOVE failed: {status}"),
    })
}

/// Moves a message between Conclave's folders (by its UID in `from`).
pub async fn refile(
    session: &mut Session,
    endpoint: &str,
    from: &str,
    uid: u32,
    to: &str,
) -> Result<(), ImapError> {
    session.select(from).await.map_err(proto(endpoint))?;
    session
        .uid_mv(uid.to_string(), to)
        .await
        .map_err(proto(endpoint))?;
    session.select("INBOX").await.map_err(proto(endpoint))?;
    Ok(())
}

/// The destination UID in a `[COPYUID validity src dst]` response code.
fn copyuid_dest(raw: &str) -> Option<u32> {
    let at = raw.find("[COPYUID ")?;
    let rest = raw.get(at + 9..)?;
    let end = rest.find(']')?;
    let dst = rest.get(..end)?.split_whitespace().nth(2)?;
    dst.parse().ok()
}

/// Waits until the server reports a change in INBOX (IDLE, re-issued by the
/// caller about every `timeout`), or for `timeout` when it lacks IDLE.
/// `seen` is INBOX as the last pass listed it: mail that arrived after that
/// listing and before this wait began raises no IDLE report, so when INBOX
/// has moved on since (a new UIDNEXT or UIDVALIDITY), the wait ends at once.
pub async fn wait_for_mail(
    settings: &ImapSettings,
    timeout: std::time::Duration,
    seen: Option<InboxState>,
) -> Result<(), ImapError> {
    let key = settings.endpoint.key();
    let deadline = settings.deadline;
    let mut session = login(settings).await?;
    let caps = tls::within(deadline, silent(&key), async {
        session.capabilities().await.map_err(proto(&key))
    })
    .await?;
    if !caps.has_str("IDLE") {
        let _ = tls::within(deadline, silent(&key), async {
            session.logout().await.map_err(proto(&key))
        })
        .await;
        tokio::time::sleep(timeout).await;
        return Ok(());
    }
    let mb = tls::within(deadline, silent(&key), async {
        session.select("INBOX").await.map_err(proto(&key))
    })
    .await?;
    let now = inbox_state(&mb);
    if seen.is_some_and(|seen| seen != now && now.uid_next != 0) {
        let _ = tls::within(deadline, silent(&key), async {
            session.logout().await.map_err(proto(&key))
        })
        .await;
        return Ok(());
    }
    let mut idle = session.idle();
    tls::within(deadline, silent(&key), async {
        idle.init().await.map_err(proto(&key))
    })
    .await?;
    // The wait itself is bounded by `timeout`; Dovecot and most servers
    // also send a keepalive line every few minutes.
    let (wait, _stop) = idle.wait_with_timeout(timeout);
    wait.await.map_err(proto(&key))?;
    let mut session = tls::within(deadline, silent(&key), async {
        idle.done().await.map_err(proto(&key))
    })
    .await?;
    let _ = tls::within(deadline, silent(&key), async {
        session.logout().await.map_err(proto(&key))
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_uid_of_a_fetch() {
        assert_eq!(
            fetch_uid("* 3 FETCH (UID 17 MODSEQ (9) FLAGS ($ConclaveClaimed))"),
            Some(17)
        );
        assert_eq!(fetch_uid("* 3 FETCH (FLAGS (\\Seen) UID 170)"), Some(170));
        assert_eq!(fetch_uid("* 3 EXISTS"), None);
        // A keyword ending in "UID" is not the UID item.
        assert_eq!(
            fetch_uid("* 3 FETCH (FLAGS ($NOUID 5) UID 8 MODSEQ (2))"),
            Some(8)
        );
    }

    #[test]
    fn reads_the_items_of_one_fetch_line() {
        let line =
            "* 2 FETCH (UID 9 RFC822.SIZE 31337 MODSEQ (12) FLAGS (\\Seen $ConclaveClaimed))";
        assert_eq!(fetch_number(line, "RFC822.SIZE "), Some(31337));
        assert_eq!(fetch_number(line, "MODSEQ ("), Some(12));
        assert_eq!(
            fetch_flags(line).unwrap(),
            vec!["\\Seen".to_string(), CLAIMED.to_string()]
        );
        assert_eq!(fetch_number("a1 OK done", "UID "), None);
        assert_eq!(fetch_flags("* 2 EXPUNGE"), None);
    }

    #[test]
    fn reads_copyuid() {
        assert_eq!(
            copyuid_dest("* OK [COPYUID 1700000000 12 7] Moved UIDs.\r\n"),
            Some(7)
        );
        assert_eq!(copyuid_dest("a3 OK [COPYUID 9 4:5 8:9] done"), None);
        assert_eq!(copyuid_dest("a3 OK No messages found"), None);
    }
}
