//! The relay at the edges of IMAP, against the real loopback Dovecot (behind
//! a TLS proxy where a server's misbehaviour has to be made to happen): a
//! post over the size limit is filed from its size and header without being
//! downloaded; an unsolicited FETCH for another message never decides a
//! claim; after INBOX's UIDVALIDITY changes a claimed post is found again by
//! its content; and the retention option purges old refused posts' bytes.

use std::sync::{Arc, Mutex};

use conclave_tests::{wait_until, ImapProxy, MailList, Mailhost, Misbehaviour, RawImap};

const LIST: &str = "list@example.test";

/// The tests share the list mailbox: one at a time.
static MAILBOX: Mutex<()> = Mutex::new(());

/// A list on the mail host, with the mailboxes emptied first; IMAP goes
/// through `proxy` when there is one.
fn fixture(proxy: Option<&ImapProxy>) -> MailList {
    Mailhost::get().clear();
    let f = MailList::new("Edges List");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    if let Some(p) = proxy {
        f.list.config_set("imap.port", &p.port.to_string());
    }
    f.server(
        "smtp",
        "MAILHOST_HOST",
        "MAILHOST_SUBMISSION_PORT",
        "starttls",
    );
    f
}

/// Text that does not compress, `kib` KiB of it.
fn noise(kib: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut out = String::with_capacity(kib * 1024);
    while out.len() < kib * 1024 {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(char::from(b'a' + (x % 26) as u8));
        }
        out.push('\n');
    }
    out
}

fn message_id(eml: &[u8]) -> String {
    conclave_tests::header(eml, "Message-ID")
        .unwrap()
        .trim()
        .to_owned()
}

/// A post over `max_message_size_kb` is judged from the size the server
/// reports and its header alone: it is never downloaded whole (the server
/// sends a small part of it), it is held or rejected with the size as the
/// reason, and the whole message stays in the mailbox, filed in
/// Conclave/Held or Conclave/Rejected. The store keeps its header, sealed.
#[test]
fn a_post_over_the_limit_is_filed_without_being_downloaded() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let proxy = ImapProxy::start(Misbehaviour::None);
    let f = fixture(Some(&proxy));
    f.list.config_set("max_message_size_kb", "64");
    f.list.config_set("max_message_size_action", "hold");
    let big = f.subs[0].compose_post(&f.cert, LIST, "...", &noise(300));
    assert!(big.len() > 200 * 1024, "{}", big.len());
    mh.inject("alice@example.test", LIST, &big);
    assert!(wait_until(10, || mh.count("list", "") == 1));

    let before = proxy.bytes_to_client();
    let out = f.list.run_ok(&["run", "--once"]);
    let sent = proxy.bytes_to_client() - before;
    assert!(
        out.contains("post #1: held: too large: ") && out.contains("the limit is 64 KiB"),
        "{out}"
    );
    assert!(
        sent < 64 * 1024,
        "the server sent {sent} bytes for a post of {}",
        big.len()
    );
    // The whole message is in Held at the host.
    assert_eq!(mh.count("list", ""), 0);
    assert_eq!(mh.count("list", "Held"), 1);
    let mut raw = RawImap::login();
    let held = raw.ok("STATUS Conclave.Held (MESSAGES)").join("");
    assert!(held.contains("MESSAGES 1"), "{held}");
    raw.select("Conclave.Held");
    let size: i64 = raw
        .ok("FETCH 1 (RFC822.SIZE)")
        .join("")
        .split("RFC822.SIZE ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(size > big.len() as i64, "{size}");
    // The owner sees it with its reason, and is told why it cannot be
    // opened here.
    let list = f.list.run_ok(&["held", "list"]);
    assert!(list.contains("too large: "), "{list}");
    let (_, err) = f.list.run_err(&["held", "show", "1"]);
    assert!(err.contains("too large to download"), "{err}");
    // Its store row: the size at the server, the header sealed.
    let store = conclave_core::store::Store::open(&f.list.home.path().join("list.db")).unwrap();
    let post = store.post(1).unwrap().unwrap();
    assert!(post.partial && post.sealed);
    assert_eq!(post.size, size, "the size at the server");
    assert!(post.raw.len() < 16 * 1024, "{}", post.raw.len());
    drop(store);

    // Rejected: the same, into Conclave/Rejected.
    f.list.config_set("max_message_size_action", "reject");
    let big = f.subs[1].compose_post(&f.cert, LIST, "...", &noise(200));
    mh.inject("bob@example.test", LIST, &big);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let before = proxy.bytes_to_client();
    let out = f.list.run_ok(&["run", "--once"]);
    let sent = proxy.bytes_to_client() - before;
    assert!(out.contains("post #2: rejected: too large: "), "{out}");
    assert!(sent < 64 * 1024, "the server sent {sent} bytes");
    assert_eq!(mh.count("list", "Rejected"), 1);
    assert_eq!(mh.count("list", ""), 0);

    // A post under the limit is downloaded and distributed as ever.
    let small = f.subs[0].compose_post(&f.cert, LIST, "...", "small enough");
    mh.inject("alice@example.test", LIST, &small);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("post #3: distributed to 3"), "{out}");
}

/// The claim reads the flags and mod-sequence from the FETCH line of the
/// UID it claims, never from an unsolicited FETCH the server slips into the
/// reply for another message (here one some instance has just claimed,
/// with a higher mod-sequence and a huge size): a post nobody claimed is
/// claimed and distributed, and a post another instance claimed (flagged,
/// not yet moved) stays theirs. The sizes asked before fetching ignore the
/// other message's line too.
#[test]
fn an_unsolicited_fetch_for_another_message_never_decides_a_claim() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let proxy = ImapProxy::start(Misbehaviour::UnsolicitedFetch);
    let f = fixture(Some(&proxy));
    let theirs = f.subs[0].compose_post(&f.cert, LIST, "...", "claimed by the other instance");
    let ours = f.subs[1].compose_post(&f.cert, LIST, "...", "nobody claimed this one");
    mh.inject("alice@example.test", LIST, &theirs);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    // The other instance claims the first one.
    let mut raw = RawImap::login();
    let (_, uids) = raw.select("INBOX");
    assert_eq!(uids.len(), 1);
    raw.ok(&format!("UID STORE {} +FLAGS ($ConclaveClaimed)", uids[0]));
    mh.inject("bob@example.test", LIST, &ours);
    assert!(wait_until(10, || mh.count("list", "") == 2));

    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("1 posts taken by another instance"), "{out}");
    assert!(out.contains(": distributed to 3"), "{out}");
    assert!(
        !out.contains("distributed to 3\npost"),
        "one post only: {out}"
    );
    // Theirs is still in INBOX for them; ours is in Processed.
    let inbox = mh.inbox("list");
    assert_eq!(inbox.len(), 1);
    assert_eq!(message_id(&inbox[0]), message_id(&theirs));
    assert_eq!(mh.count("list", "Processed"), 1);
}

/// A post this instance claimed (the relay stopped before moving it) is
/// found again by its content once INBOX's UIDVALIDITY has changed, and
/// moved by its new UID: its old UID, which now names another instance's
/// claimed post, is never used.
#[test]
fn a_claimed_post_is_found_by_its_content_after_uidvalidity_changes() {
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let mh = Mailhost::get();
    let proxy = ImapProxy::start(Misbehaviour::DropOnMove);
    let f = fixture(Some(&proxy));
    let ours = f.subs[0].compose_post(&f.cert, LIST, "...", "claimed before the change");
    mh.inject("alice@example.test", LIST, &ours);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    // Claimed, then the link is lost before the move.
    let (_, err) = f.list.run_err(&["run", "--once"]);
    assert!(!err.is_empty());
    let mut raw = RawImap::login();
    let (old_validity, uids) = raw.select("INBOX");
    assert_eq!(uids.len(), 1, "the claimed post is still in INBOX");
    let old_uid = uids[0];
    let flags = raw.ok(&format!("UID FETCH {old_uid} FLAGS")).join("");
    assert!(flags.contains("$ConclaveClaimed"), "{flags}");

    // INBOX is rebuilt under a new UIDVALIDITY: another instance's claimed
    // post comes first (taking the old UID), ours after it.
    let _ = raw.run("CREATE Park"); // left by an earlier run, perhaps
    raw.ok(&format!("UID MOVE {old_uid} Park"));
    raw.ok("LOGOUT");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let maildir = mh.dir.join("mail/list/Maildir");
    for entry in std::fs::read_dir(&maildir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "dovecot-uidlist" || name.starts_with("dovecot.index") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let theirs = f.subs[1].compose_post(&f.cert, LIST, "...", "another instance's claim");
    let mut raw = RawImap::login();
    // UIDs start again at 1: fillers, expunged, bring the next one to the
    // old UID.
    for n in 1..old_uid {
        let filler = format!("From: filler@example.test\r\nSubject: {n}\r\n\r\nfiller\r\n");
        raw.append("INBOX", "\\Deleted", filler.as_bytes());
    }
    raw.select("INBOX");
    raw.ok("EXPUNGE");
    raw.append("INBOX", "$ConclaveClaimed", &theirs);
    raw.select("Park");
    raw.ok("UID MOVE 1:* INBOX");
    let (new_validity, uids) = raw.select("INBOX");
    assert_ne!(new_validity, old_validity);
    assert_eq!(uids.len(), 2);
    let at_old = raw.ok(&format!(
        "UID FETCH {old_uid} BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
    ));
    assert!(
        at_old.join("").contains(&message_id(&theirs)),
        "the old UID names the other post now: {at_old:?}"
    );
    raw.ok("LOGOUT");

    // The relay, straight to the server now.
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("post #1: distributed to 3"), "{out}");
    // Ours is in Processed; theirs, untouched, in INBOX.
    let inbox = mh.inbox("list");
    assert_eq!(inbox.len(), 1);
    assert_eq!(message_id(&inbox[0]), message_id(&theirs));
    assert_eq!(mh.count("list", "Processed"), 1);
    let log = f.list.run_ok(&["log"]);
    assert!(log.contains("found again by its content"), "{log}");
}

/// `store.retention_days`: at each relay pass, the sealed bytes of rejected
/// and discarded posts decided longer ago than that are deleted, and the
/// log says so; held posts keep theirs, and so does everything while the
/// period has not passed. 0 keeps everything.
#[test]
fn retention_deletes_old_refused_posts_bytes_at_each_pass() {
    use conclave_core::{List, ManualClock, Outcome, Password};
    let _guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let f = fixture(None);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = Arc::new(ManualClock::at_unix(start));
    let mut list = List::open(f.list.home.path(), clock.clone()).unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    let plain = format!(
        "From: alice@example.test\r\nTo: {LIST}\r\nSubject: in clear\r\nMessage-ID: <clear-{}@example.test>\r\n\r\nnot encrypted\r\n",
        std::process::id()
    );
    let rejected = list.receive(plain.as_bytes()).unwrap();
    assert!(
        matches!(rejected, Outcome::Rejected { post: 1, .. }),
        "{rejected:?}"
    );
    let unsigned = f.subs[1].compose_unsigned_post(&f.cert, LIST, "unsigned", "hold me");
    let held = list.receive(&unsigned).unwrap();
    assert!(matches!(held, Outcome::Held { post: 2, .. }), "{held:?}");
    list.store()
        .config_set("store.retention_days", "0")
        .unwrap();
    let list = Mutex::new(list);
    let pass = || conclave_core::relay::intake::poll_mailbox(&list).unwrap();
    let purged = |id: i64| {
        let l = list.lock().unwrap();
        let p = l.store().post(id).unwrap().unwrap();
        assert_eq!(p.purged, p.raw.is_empty());
        p.purged
    };

    // 0: kept forever.
    clock.advance(400 * 86_400);
    pass();
    assert!(!purged(1) && !purged(2));
    // 30 days, and the post was refused 400 days ago: purged; held: kept.
    list.lock()
        .unwrap()
        .store()
        .config_set("store.retention_days", "30")
        .unwrap();
    pass();
    assert!(purged(1), "the rejected post's bytes are deleted");
    assert!(!purged(2), "a held post is never purged");
    {
        let mut l = list.lock().unwrap();
        let tail = l.store().audit_tail(20).unwrap();
        let line = tail
            .iter()
            .find(|e| e.event == "retention")
            .expect("a log line");
        assert!(
            line.detail.contains("1 rejected or discarded post"),
            "{}",
            line.detail
        );
        // Still listed with its reason; the held one still opens.
        let p = l.store().post(1).unwrap().unwrap();
        assert!(p.reason.contains("not encrypted"), "{}", p.reason);
        l.held_show(2).unwrap();
    }
    // A post refused just now is kept until its own period has passed.
    let again = list.lock().unwrap().receive(plain.as_bytes()).unwrap();
    let id = again.post();
    pass();
    assert!(!purged(id));
    clock.advance(31 * 86_400);
    pass();
    assert!(purged(id));
}
