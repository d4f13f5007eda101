//! Keys over time, end to end on the loopback mail host: a subscriber whose
//! key expires soon is told once how to extend it (encrypted to that key,
//! signed by the list); a subscriber whose key expired or was revoked gets
//! "you missed a post" instead of the post (signed by the list, not a word
//! of the post), once a day; a subscriber who extends their expired key and
//! posts with it in an Autocrypt header (as Thunderbird does) is
//! distributed, their key updated without the owner, and receives again;
//! another key in an Autocrypt header is not taken; a revocation that
//! comes by mail is. Keys are made in the past with GnuPG's
//! `--faked-system-time` (an RNP subscriber's too, imported); where the list must
//! take a key that has since expired, it is opened in-process with its
//! clock set back. The mail host has the mailboxes alice, bob and carol;
//! other subscribers use their sub-addresses (`bob+dave@`).

use std::sync::{Arc, Mutex, MutexGuard};

use conclave_core::{List, ManualClock, Password};
use conclave_tests::mime::{all_text_plain, header};
use conclave_tests::{wait_until, Conclave, Engine, MailList, Mailhost, Post, Signing, Subscriber};

const LIST: &str = "list@example.test";
const DAY: u64 = 86_400;

/// The tests share the list mailbox: one at a time.
static MAILBOX: Mutex<()> = Mutex::new(());

struct Fixture {
    ml: MailList,
    _guard: MutexGuard<'static, ()>,
}

fn fixture() -> Fixture {
    let guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let ml = MailList::connected("Key Club");
    Fixture { ml, _guard: guard }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Fixture {
    fn list(&self) -> &Conclave {
        &self.ml.list
    }

    fn alice(&self) -> &Subscriber {
        &self.ml.subs[0]
    }

    /// The list opened in-process, its clock `days` days back.
    fn days_ago(&self, days: u64) -> List {
        let mut list = List::open(
            self.list().home.path(),
            Arc::new(ManualClock::at_unix(unix_now() - days * DAY)),
        )
        .unwrap();
        list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
            .unwrap();
        list
    }

    /// Subscribes `who` as the list was `days` days ago (their key may
    /// have expired since).
    fn subscribe_back_then(&self, who: &Subscriber, days: u64) {
        self.days_ago(days)
            .add_subscriber(who.address(), &who.public_key_armored())
            .unwrap();
        who.import_cert(&self.ml.cert).unwrap();
    }

    /// `post` from `who` to the list over SMTP, then one pass of the list;
    /// returns what the pass printed.
    fn post(&self, who: &Subscriber, post: &Post) -> String {
        self.send(who, LIST, post)
    }

    /// `post` from `who` to `to` (one of the list's addresses) over SMTP,
    /// then one pass of the list; returns what the pass printed.
    fn send(&self, who: &Subscriber, to: &str, post: &Post) -> String {
        let mh = Mailhost::get();
        mh.inject(who.address(), to, &who.compose(&self.ml.cert, to, post));
        assert!(
            wait_until(10, || mh.count("list", "") >= 1),
            "the post reaches the list mailbox"
        );
        self.list().run_ok(&["run", "--once"])
    }

    fn subscribers(&self) -> String {
        self.list().run_ok(&["subscriber", "list"])
    }

    /// The line of `subscriber list` for `address`.
    fn subscriber_line(&self, address: &str) -> String {
        self.subscribers()
            .lines()
            .find(|l| l.starts_with(&format!("{address} ")))
            .unwrap_or_else(|| panic!("{address} is not listed"))
            .to_string()
    }
}

/// Every message in `address`'s mailbox addressed to exactly that address:
/// (automatic replies, copies of posts).
fn mail_for(address: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let user = address.split(['+', '@']).next().unwrap();
    Mailhost::get()
        .inbox(user)
        .into_iter()
        .filter(|m| header(m, "To").is_some_and(|t| t.trim_matches(['<', '>', ' ']) == address))
        .partition(|m| header(m, "Auto-Submitted").as_deref() == Some("auto-replied"))
}

/// Waits until `address` has `replies` automatic replies and `copies`
/// copies, and a moment more, then returns them.
fn wait_for(address: &str, replies: usize, copies: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    wait_until(10, || {
        let (r, c) = mail_for(address);
        r.len() >= replies && c.len() >= copies
    });
    // Nothing more is on its way.
    std::thread::sleep(std::time::Duration::from_millis(500));
    mail_for(address)
}

/// A reply signed by the list and not encrypted: its signed text, after
/// `reader`'s engine checked the list signature.
fn verified_plain(reader: &Subscriber, eml: &[u8], list_cert: &[u8]) -> String {
    all_text_plain(&reader.verify_signed_mail(eml, list_cert)).join("\n")
}

/// A reply encrypted to `reader` and signed by the list: its text, after
/// `reader`'s engine decrypted it and checked the list signature.
fn verified_encrypted(reader: &Subscriber, eml: &[u8], list_cert: &[u8]) -> String {
    let d = reader
        .decrypt(eml)
        .unwrap_or_else(|e| panic!("{}: {e}", reader.address()));
    let (signed, sig) = d.split_signed().expect("signed by the list");
    reader
        .verify_detached(&signed, &sig, list_cert)
        .expect("the list's signature verifies");
    all_text_plain(&signed).join("\n")
}

#[test]
fn a_key_that_expires_soon_is_told_once_how_to_extend_it() {
    let f = fixture();
    // Made yesterday, for 10 days: it expires in 9, within the 14 days of
    // key_warning_days.
    let erin = Subscriber::made_ago(Engine::Gpg, "alice+erin@example.test", 1, "10d");
    f.list().add_subscriber(&erin);
    erin.import_cert(&f.ml.cert).unwrap();

    let out = f.list().run_ok(&["run", "--once"]);
    assert!(out.contains("alice+erin@example.test: key"), "{out}");
    let (replies, _) = wait_for(erin.address(), 1, 0);
    assert_eq!(replies.len(), 1, "one notice");
    assert_eq!(header(&replies[0], "Subject").as_deref(), Some("..."));
    let text = verified_encrypted(&erin, &replies[0], &f.ml.cert);
    let fpr = erin.fingerprint();
    let date = &conclave_core::clock::iso_date(
        conclave_tests::cert_expiry(&erin.public_key_armored()).unwrap(),
    );
    for words in [
        format!("Your OpenPGP key {fpr}"),
        format!("expires on {date}"),
        format!("gpg --quick-set-expire {fpr} 2y\r\n"),
        format!("gpg --quick-set-expire {fpr} 2y '*'"),
        "Thunderbird: Account Settings > End-To-End Encryption".to_string(),
        "list+request@example.test".to_string(),
    ] {
        assert!(text.contains(&words), "{words:?} in {text}");
    }
    // The owner sees it.
    let line = f.subscriber_line(erin.address());
    assert!(
        line.contains(&format!("[expires soon: {date}; told how to extend it]")),
        "{line}"
    );
    // Not again: neither the next pass (the check runs once a day) nor a
    // check asked for now (one notice per key and date).
    f.list().run_ok(&["run", "--once"]);
    let out = f.list().run_ok(&["subscriber", "check-keys"]);
    assert!(out.contains("told how to extend it"), "{out}");
    assert!(!out.contains("notices queued"), "{out}");
    f.list().run_ok(&["run", "--once"]);
    let (replies, _) = wait_for(erin.address(), 2, 0);
    assert_eq!(replies.len(), 1, "still one notice");
    // `my key` says until when the key serves.
    let out = f.send(
        &erin,
        "list+request@example.test",
        &Post::new("my key", "my key"),
    );
    assert!(
        out.contains("my key from alice+erin@example.test: answered"),
        "{out}"
    );
    let (replies, _) = wait_for(erin.address(), 2, 0);
    let text = replies
        .iter()
        .map(|r| verified_encrypted(&erin, r, &f.ml.cert))
        .find(|t| t.contains("You are subscribed"))
        .expect("the answer to my key");
    assert!(
        text.contains(&format!("It serves the list until {date}")),
        "{text}"
    );
    // Nobody else was told anything.
    for s in &f.ml.subs {
        assert!(mail_for(s.address()).0.is_empty(), "{}", s.address());
    }
}

#[test]
fn a_subscriber_without_a_usable_key_is_told_they_missed_a_post_once_a_day() {
    let f = fixture();
    // Expired: made 20 days ago for 10 days, subscribed 15 days ago.
    let dave = Subscriber::made_ago(Engine::Gpg, "bob+dave@example.test", 20, "10d");
    f.subscribe_back_then(&dave, 15);
    // Revoked since they joined.
    let frank = Subscriber::new(Engine::Gpg, "carol+frank@example.test");
    f.list().add_subscriber(&frank);
    frank.import_cert(&f.ml.cert).unwrap();
    let revoked = conclave_tests::pgp::parse_cert(&frank.revoked_public_key()).unwrap();
    f.days_ago(0)
        .update_subscriber_key(frank.address(), revoked, "a test")
        .unwrap()
        .expect("the revocation is new");

    let secret = "the meeting moves to the old mill";
    for subject in ["Plans for Tuesday", "Plans for Wednesday"] {
        let out = f.post(f.alice(), &Post::new(subject, secret));
        assert!(out.contains("distributed to 3"), "{out}");
    }
    // The others get both posts.
    for s in &f.ml.subs[1..] {
        let (_, copies) = wait_for(s.address(), 0, 2);
        assert_eq!(copies.len(), 2, "{}", s.address());
    }
    // Dave and Frank: one notice each, signed by the list, not a word of
    // the posts.
    for (who, why) in [(&dave, "it expired on"), (&frank, "it is revoked")] {
        let (replies, copies) = wait_for(who.address(), 2, 0);
        assert!(copies.is_empty(), "{}", who.address());
        assert_eq!(replies.len(), 1, "{}: one notice a day", who.address());
        let raw = String::from_utf8_lossy(&replies[0]);
        for word in ["Plans", "Tuesday", "mill", "meeting"] {
            assert!(!raw.contains(word), "{word} in the notice: {raw}");
        }
        assert_eq!(
            header(&replies[0], "Subject").as_deref(),
            Some("You missed a post on Key Club")
        );
        let text = verified_plain(who, &replies[0], &f.ml.cert);
        for words in [
            format!(
                "You missed a post on Key Club (list@example.test): your key {}",
                who.fingerprint()
            ),
            why.to_string(),
            format!("gpg --quick-set-expire {} 2y", who.fingerprint()),
        ] {
            assert!(text.contains(&words), "{words:?} in {text}");
        }
        // The owner sees who is not receiving, and the log names them.
        let line = f.subscriber_line(who.address());
        assert!(
            line.contains("[not receiving: missed 2 posts since"),
            "{line}"
        );
    }
    let log = f.list().run_ok(&["log"]);
    assert!(log.contains("no copy for bob+dave@example.test"), "{log}");
    assert!(!log.contains("mill"), "{log}");
}

/// A subscriber of `engine` whose key expired extends it and posts with it
/// in an Autocrypt header: distributed, the key updated without the owner,
/// and the next post reaches them.
fn an_expired_key_extended_and_posted_keeps_receiving(engine: Engine) {
    engine.require();
    let f = fixture();
    let mut dave = Subscriber::made_ago(engine, "bob+dave@example.test", 20, "10d");
    f.subscribe_back_then(&dave, 15);
    assert!(
        f.subscriber_line(dave.address()).contains("expired"),
        "{}",
        f.subscribers()
    );
    dave.extend_key("2y");
    let autocrypt = dave.autocrypt_header(&dave.public_key_armored());
    // Not from a message that does not verify as theirs (unsigned here).
    let out = f.post(
        &dave,
        &Post::new("Unsigned", "Not signed.")
            .signing(Signing::Unsigned)
            .header("Autocrypt", &autocrypt),
    );
    assert!(
        !out.contains("updated from") && !out.contains("distributed"),
        "{out}"
    );
    assert!(
        f.subscriber_line(dave.address()).contains("expired"),
        "{}",
        f.subscribers()
    );
    let out = f.post(
        &dave,
        &Post::new("Back again", "My key works again.").header("Autocrypt", &autocrypt),
    );
    assert!(out.contains("distributed to 4"), "{out}");
    assert!(
        out.contains(&format!(
            "notice: bob+dave@example.test: key {} updated from an Autocrypt header in message #",
            dave.fingerprint()
        )) && out.contains("the key now expires on"),
        "{out}"
    );
    let line = f.subscriber_line(dave.address());
    assert!(!line.contains("warning"), "{line}");
    let log = f.list().run_ok(&["log"]);
    assert!(log.contains("updated from an Autocrypt header"), "{log}");

    let out = f.post(f.alice(), &Post::new("Welcome back", "Good to see you."));
    assert!(out.contains("distributed to 4"), "{out}");
    // Their own post came back to them (deliver_selfsent), and Alice's.
    let (replies, copies) = wait_for(dave.address(), 0, 2);
    assert!(replies.is_empty(), "no notice: {replies:?}");
    assert_eq!(copies.len(), 2);
    let texts: Vec<String> = copies
        .iter()
        .map(|c| {
            let d = dave.decrypt(c).expect("dave reads the post");
            all_text_plain(&d.entity).join("\n")
        })
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("Good to see you.")),
        "{texts:?}"
    );
}

#[test]
fn a_gnupg_key_that_expired_extended_and_posted_with_autocrypt_keeps_receiving() {
    an_expired_key_extended_and_posted_keeps_receiving(Engine::Gpg);
}

#[test]
fn an_rnp_key_that_expired_extended_and_posted_with_autocrypt_keeps_receiving() {
    an_expired_key_extended_and_posted_keeps_receiving(Engine::Rnp);
}

#[test]
fn another_key_in_an_autocrypt_header_is_not_taken() {
    let f = fixture();
    let alice = f.alice();
    let other = Subscriber::new(Engine::Gpg, alice.address());
    let before = f.subscriber_line(alice.address());
    let out = f.post(
        alice,
        &Post::new("Hello", "Same as ever.").header(
            "Autocrypt",
            &other.autocrypt_header(&other.public_key_armored()),
        ),
    );
    assert!(out.contains("distributed to 3"), "{out}");
    assert!(!out.contains("updated from"), "{out}");
    assert_eq!(f.subscriber_line(alice.address()), before);
    assert!(before.contains(alice.fingerprint()), "{before}");
    let log = f.list().run_ok(&["log"]);
    assert!(!log.contains(other.fingerprint()), "{log}");
}

#[test]
fn a_revocation_that_comes_by_mail_is_taken_and_then_they_miss_posts() {
    let f = fixture();
    let carol = &f.ml.subs[2];
    let revoked = carol.revoked_public_key();
    // Her client still signs with the key; the header carries it revoked.
    let out = f.post(
        carol,
        &Post::new("Goodbye key", "I revoked my key.")
            .header("Autocrypt", &carol.autocrypt_header(&revoked)),
    );
    assert!(
        out.contains(&format!(
            "notice: carol@example.test: key {} updated from an Autocrypt header in message #",
            carol.fingerprint()
        )) && out.contains("the key is now revoked"),
        "{out}"
    );
    assert!(!out.contains("distributed"), "{out}");
    let line = f.subscriber_line(carol.address());
    assert!(line.contains("it is revoked"), "{line}");

    let out = f.post(f.alice(), &Post::new("News", "The garden opens."));
    assert!(out.contains("distributed to 2"), "{out}");
    let (replies, copies) = wait_for(carol.address(), 1, 0);
    assert!(copies.is_empty());
    let missed: Vec<_> = replies
        .iter()
        .filter(|m| header(m, "Subject").as_deref() == Some("You missed a post on Key Club"))
        .collect();
    assert_eq!(missed.len(), 1, "{replies:?}");
    let text = verified_plain(carol, missed[0], &f.ml.cert);
    assert!(text.contains("it is revoked"), "{text}");
}

#[test]
fn a_key_extended_and_attached_to_a_request_is_taken() {
    let f = fixture();
    let mut erin = Subscriber::made_ago(Engine::Gpg, "alice+erin@example.test", 1, "10d");
    f.list().add_subscriber(&erin);
    erin.import_cert(&f.ml.cert).unwrap();
    assert!(f.subscriber_line(erin.address()).contains("[expires soon:"));
    erin.extend_key("2y");
    let out = f.send(
        &erin,
        "list+request@example.test",
        &Post::new("my key", "my key").with_key(),
    );
    assert!(
        out.contains(&format!(
            "notice: alice+erin@example.test: key {} updated from a key sent with a request in message #",
            erin.fingerprint()
        )),
        "{out}"
    );
    let line = f.subscriber_line(erin.address());
    assert!(!line.contains("expires soon"), "{line}");
    // The answer goes to the key as it now is.
    let date = conclave_core::clock::iso_date(
        conclave_tests::cert_expiry(&erin.public_key_armored()).unwrap(),
    );
    let (replies, _) = wait_for(erin.address(), 1, 0);
    let text = replies
        .iter()
        .map(|r| verified_encrypted(&erin, r, &f.ml.cert))
        .find(|t| t.contains("You are subscribed"))
        .expect("the answer to my key");
    assert!(
        text.contains(&format!("It serves the list until {date}")),
        "{text}"
    );
}
