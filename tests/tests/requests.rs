//! The list answers mail, end to end on the loopback mail host: every
//! message goes over SMTP to one of the list's sub-addresses, reaches the
//! list mailbox, is read over IMAP by `conclave run --once`, and the answer
//! goes back over SMTP to the sender's own mailbox, where their engine
//! (GnuPG, RNP, sq or OpenPGP.js) reads it. Subscribe with key proof, key
//! change signed by the old key, signed and unsigned unsubscribe, help, the
//! list key, my key, key sign, the owner address, notices to senders, and
//! the rules every automatic reply follows. The mail host has the mailboxes
//! alice, bob and carol; newcomers use sub-addresses (`carol+dave@`), which
//! it delivers to those. Where the list's clock must move (an expired
//! token, an old signature), the list is opened in-process instead.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

use conclave_core::{List, ManualClock, Password};
use conclave_tests::mime::{header, text_plain_entity, with_key_attached};
use conclave_tests::{wait_until, Conclave, Engine, JsKey, MailList, Mailhost, Post, Subscriber};

const LIST: &str = "list@example.test";
const REQUEST: &str = "list+request@example.test";

/// The tests share the list mailbox: one at a time.
static MAILBOX: Mutex<()> = Mutex::new(());

struct Fixture {
    ml: MailList,
    /// The replies already read, so each step reads the new ones.
    seen: RefCell<Vec<Vec<u8>>>,
    _guard: MutexGuard<'static, ()>,
}

/// A list on the mail host with alice, bob and carol (GnuPG) subscribed,
/// joining by `policy`.
fn fixture(policy: &str) -> Fixture {
    let guard = MAILBOX.lock().unwrap_or_else(|e| e.into_inner());
    let ml = MailList::connected("Garden Club");
    ml.list.config_set("subscription_policy", policy);
    Fixture {
        ml,
        seen: RefCell::new(Vec::new()),
        _guard: guard,
    }
}

impl Fixture {
    fn list(&self) -> &Conclave {
        &self.ml.list
    }

    fn cert(&self) -> &[u8] {
        &self.ml.cert
    }

    fn alice(&self) -> &Subscriber {
        &self.ml.subs[0]
    }

    fn bob(&self) -> &Subscriber {
        &self.ml.subs[1]
    }

    fn carol(&self) -> &Subscriber {
        &self.ml.subs[2]
    }

    /// Sends `eml` from `from` to `to` over SMTP and runs one pass of the
    /// list; returns what the pass printed.
    fn send(&self, from: &str, to: &str, eml: &[u8]) -> String {
        let mh = Mailhost::get();
        mh.inject(from, to, eml);
        assert!(
            wait_until(10, || mh.count("list", "") >= 1),
            "the message reaches the list mailbox"
        );
        self.list().run_ok(&["run", "--once"])
    }

    /// A command from `who`, signed and encrypted to the list key, sent to
    /// the request address.
    fn command(&self, who: &Subscriber, post: &Post) -> String {
        self.send(
            who.address(),
            REQUEST,
            &who.compose(self.cert(), REQUEST, post),
        )
    }

    /// A message in clear from `who` to `to`.
    fn clear(&self, who: &Subscriber, to: &str, subject: &str, body: &str, extra: &str) -> String {
        self.send(
            who.address(),
            to,
            &clear(who.address(), to, subject, body, extra),
        )
    }

    /// Every automatic reply in `address`'s mailbox.
    fn replies(&self, address: &str) -> Vec<Vec<u8>> {
        let user = address.split(['+', '@']).next().unwrap();
        Mailhost::get()
            .inbox(user)
            .into_iter()
            .filter(|m| header(m, "Auto-Submitted").as_deref() == Some("auto-replied"))
            .filter(|m| header(m, "To").is_some_and(|t| t.trim_matches(['<', '>', ' ']) == address))
            .collect()
    }

    /// The next reply to `address` (waiting for it to arrive).
    fn next_reply_raw(&self, address: &str) -> Vec<u8> {
        let mut found = None;
        let arrived = wait_until(10, || {
            found = self
                .replies(address)
                .into_iter()
                .find(|m| !self.seen.borrow().contains(m));
            found.is_some()
        });
        assert!(arrived, "a reply to {address} arrives");
        let m = found.unwrap();
        self.seen.borrow_mut().push(m.clone());
        m
    }

    /// The text of the next reply to `who`, decrypted by their engine.
    fn next_reply(&self, who: &Subscriber) -> String {
        let eml = self.next_reply_raw(who.address());
        let d = who
            .decrypt(&eml)
            .unwrap_or_else(|e| panic!("{}: {e}", who.address()));
        conclave_tests::mime::all_text_plain(&d.entity).join("\n")
    }

    fn subscribers(&self) -> String {
        self.list().run_ok(&["subscriber", "list"])
    }

    /// Subscribes `who` by mail: `subscribe` with their key, then the
    /// token back, signed and encrypted. Returns what the second pass said.
    fn join(&self, who: &Subscriber) -> String {
        who.import_cert(self.cert()).unwrap();
        let out = self.command(who, &Post::new("subscribe", "subscribe").with_key());
        assert!(out.contains("a token was sent"), "{}: {out}", who.address());
        let text = self.next_reply(who);
        assert!(
            text.contains("reply to this message, signed and encrypted"),
            "{text}"
        );
        let t = token(&text);
        self.command(
            who,
            &Post::new(
                "Re: Confirm your subscription",
                &format!("Yes, that is me.\n\n> {t}\n"),
            ),
        )
    }

    /// The list opened in-process, its clock `days` ahead.
    fn days_later(&self, days: u64) -> List {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut list = List::open(
            self.list().home.path(),
            Arc::new(ManualClock::at_unix(now + days * 86_400)),
        )
        .unwrap();
        list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
            .unwrap();
        list
    }
}

/// A message in clear from `from` to `to`.
fn clear(from: &str, to: &str, subject: &str, body: &str, extra: &str) -> Vec<u8> {
    let mut out = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\n{extra}",
        conclave_tests::mime::rfc2822_now(),
        conclave_tests::mime::new_message_id(from),
    )
    .into_bytes();
    out.extend_from_slice(&text_plain_entity(body));
    out
}

/// The token in a reply.
fn token(text: &str) -> String {
    let at = text
        .find("confirm-")
        .unwrap_or_else(|| panic!("no token in {text}"));
    text[at..at + 8 + 32].to_string()
}

/// A reply signed by the list and not encrypted: its signed part, after
/// checking the list signature with `reader`'s engine.
fn verified_plain(reader: &Subscriber, eml: &[u8], list_cert: &[u8]) -> String {
    String::from_utf8_lossy(&reader.verify_signed_mail(eml, list_cert)).into_owned()
}

#[test]
fn subscribe_with_key_proof_in_every_engine() {
    conclave_tests::require_all_engines();
    let f = fixture("confirm");
    let newcomers = [
        Subscriber::new(Engine::Gpg, "carol+gpg@example.test"),
        Subscriber::new(Engine::Rnp, "carol+rnp@example.test"),
        Subscriber::new(Engine::Sq, "carol+sq@example.test"),
        Subscriber::openpgpjs("carol+js@example.test", JsKey::Cv25519),
    ];
    for n in &newcomers {
        let out = f.join(n);
        assert!(
            out.contains(&format!(
                "subscribe from {}: subscribed with key",
                n.address()
            )),
            "{}: {out}",
            n.address()
        );
        assert!(f.subscribers().contains(n.address()));
        // The welcome, encrypted to them, carries the list key.
        let eml = f.next_reply_raw(n.address());
        let d = n.decrypt(&eml).unwrap();
        let entity = String::from_utf8_lossy(&d.entity);
        assert!(entity.contains("Welcome to Garden Club"), "{entity}");
        assert!(entity.contains("application/pgp-keys"), "{entity}");
    }
    // The next post reaches each of them, in their own mailbox.
    let post = f
        .alice()
        .compose_post(f.cert(), LIST, "...", "FIRST-POST-FOR-NEWCOMERS");
    let out = f.send(f.alice().address(), LIST, &post);
    assert!(out.contains("distributed to 7"), "{out}");
    for n in &newcomers {
        assert!(
            wait_until(10, || Mailhost::get()
                .inbox("carol")
                .iter()
                .filter(|m| header(m, "To").is_some_and(|t| t.contains(n.address())))
                .filter_map(|m| n.decrypt(m).ok())
                .any(
                    |d| String::from_utf8_lossy(&d.entity).contains("FIRST-POST-FOR-NEWCOMERS")
                )),
            "{} reads the post",
            n.address()
        );
    }
    // Requests are filed with the posts the list took: nothing in Held.
    assert_eq!(Mailhost::get().count("list", "Held"), 0);
}

#[test]
fn the_owner_approves_after_the_key_proof_or_refuses() {
    let f = fixture("confirm+moderate");
    let dave = Subscriber::new(Engine::Gpg, "carol+dave@example.test");
    let out = f.join(&dave);
    assert!(out.contains("key proven, waiting for the owner"), "{out}");
    assert!(f.next_reply(&dave).contains("The list owner decides"));
    assert!(!f.subscribers().contains("carol+dave@"));
    let pending = f.list().run_ok(&["requests", "list"]);
    assert!(
        pending.contains("subscribe\tcarol+dave@example.test"),
        "{pending}"
    );
    assert!(pending.contains(dave.fingerprint()), "{pending}");
    assert!(
        pending.contains("waiting for the owner (key proven"),
        "{pending}"
    );
    let id = pending.split('\t').next().unwrap().trim().to_string();
    let done = f.list().run_ok(&["requests", "approve", &id]);
    assert!(done.contains("subscribed with key"), "{done}");
    assert!(f.subscribers().contains("carol+dave@example.test"));
    f.list().run_ok(&["outbox", "send"]);
    assert!(f.next_reply(&dave).contains("Welcome to Garden Club"));
    assert_eq!(f.list().run_ok(&["requests", "list"]).trim(), "");

    // A refusal tells the requester.
    let erin = Subscriber::new(Engine::Gpg, "carol+erin@example.test");
    f.join(&erin);
    f.next_reply(&erin);
    let pending = f.list().run_ok(&["requests", "list"]);
    let id = pending.split('\t').next().unwrap().trim().to_string();
    f.list()
        .run_ok(&["requests", "refuse", &id, "--reason", "we do not know you"]);
    f.list().run_ok(&["outbox", "send"]);
    assert!(f
        .next_reply(&erin)
        .contains("declined your request (subscribe): we do not know you"));
    assert!(!f.subscribers().contains("carol+erin@"));
    let log = f.list().run_ok(&["log"]);
    assert!(
        log.contains("refused by the owner: we do not know you"),
        "{log}"
    );
}

#[test]
fn a_wrong_a_replayed_an_expired_token_or_another_key_does_nothing() {
    let f = fixture("confirm");
    let dave = Subscriber::new(Engine::Gpg, "carol+dave@example.test");
    dave.import_cert(f.cert()).unwrap();
    // A token nobody was sent.
    let wrong = f.command(
        &dave,
        &Post::new("Re: confirm", "confirm-0123456789abcdef0123456789abcdef"),
    );
    assert!(wrong.contains("no request has that token"), "{wrong}");
    assert!(wrong.contains("sent 0,"), "no reply to a stranger: {wrong}");
    // The token signed by another key for the same address.
    f.command(&dave, &Post::new("subscribe", "subscribe").with_key());
    let t = token(&f.next_reply(&dave));
    // The log names the confirmation, never its token.
    let log = f.list().run_ok(&["log"]);
    assert!(
        log.contains("Confirm your subscription to Garden Club (confirm-…)"),
        "{log}"
    );
    assert!(!log.contains(&t), "{log}");
    let impostor = Subscriber::new(Engine::Gpg, "carol+dave@example.test");
    impostor.import_cert(f.cert()).unwrap();
    let out = f.command(&impostor, &Post::new("Re: confirm", &t));
    assert!(
        out.contains("not signed by the key that asked to join"),
        "{out}"
    );
    f.next_reply(&dave);
    assert!(!f.subscribers().contains("carol+dave@"));
    // The real one, then the same message again.
    let confirmation = dave.compose(f.cert(), REQUEST, &Post::new("Re: confirm", &t));
    let out = f.send(dave.address(), REQUEST, &confirmation);
    assert!(out.contains("subscribed with key"), "{out}");
    let again = f.send(dave.address(), REQUEST, &confirmation);
    assert!(again.contains("that token was used already"), "{again}");

    // Eight days later, a token good for seven is not.
    let erin = Subscriber::new(Engine::Gpg, "carol+erin@example.test");
    erin.import_cert(f.cert()).unwrap();
    f.command(&erin, &Post::new("subscribe", "subscribe").with_key());
    let t = token(&f.next_reply(&erin));
    let late = erin.compose(f.cert(), REQUEST, &Post::new("Re: confirm", &t));
    let mut late_delivered = format!("Delivered-To: {REQUEST}\r\n").into_bytes();
    late_delivered.extend_from_slice(&late);
    let mut list = f.days_later(8);
    let outcome = format!("{:?}", list.receive(&late_delivered).unwrap());
    assert!(outcome.contains("the token had expired"), "{outcome}");
    drop(list);
    assert!(!f.subscribers().contains("carol+erin@"));
    f.list().run_ok(&["outbox", "send"]);
    assert!(f
        .next_reply(&erin)
        .contains("send your request (subscribe) again"));
}

#[test]
fn a_key_change_takes_the_old_key_and_the_new_one() {
    let f = fixture("confirm");
    let old = f.alice();
    let new = Subscriber::new(Engine::Gpg, "alice@example.test");
    new.import_cert(f.cert()).unwrap();
    let ask = |signer: &Subscriber| {
        f.command(
            signer,
            &Post::new(
                "key change",
                &format!(
                    "key change\n\n{}",
                    String::from_utf8_lossy(&new.public_key_armored())
                ),
            ),
        )
    };
    // Asked with the new key alone: refused, the old key stays.
    let out = ask(&new);
    assert!(
        out.contains("refused: it was not signed by the key alice@example.test is subscribed with"),
        "{out}"
    );
    assert!(f.subscribers().contains(old.fingerprint()));

    // Asked with the old key: the token goes to the new key only.
    let out = ask(old);
    assert!(
        out.contains("a token was sent, encrypted to the new key"),
        "{out}"
    );
    let eml = f.next_reply_raw(old.address());
    assert!(
        old.decrypt(&eml).is_err(),
        "the old key cannot read the token"
    );
    let text = conclave_tests::mime::all_text_plain(&new.decrypt(&eml).unwrap().entity).join("\n");
    let t = token(&text);
    // Sent back signed by the new key: refused.
    let out = f.command(&new, &Post::new("Re: confirm", &t));
    assert!(out.contains("not signed by the old key"), "{out}");
    assert!(f.subscribers().contains(old.fingerprint()));
    // Sent back signed by the old key: changed.
    let out = f.command(old, &Post::new("Re: confirm", &t));
    assert!(out.contains("replaced with"), "{out}");
    let list = f.subscribers();
    assert!(
        list.contains(new.fingerprint()) && !list.contains(old.fingerprint()),
        "{list}"
    );
    let log = f.list().run_ok(&["log"]);
    assert!(
        log.contains(&format!(
            "key {} replaced with {}",
            old.fingerprint(),
            new.fingerprint()
        )),
        "{log}"
    );
    // The next post reaches alice's new key.
    let post = f
        .bob()
        .compose_post(f.cert(), LIST, "...", "TO-THE-NEW-KEY");
    let out = f.send(f.bob().address(), LIST, &post);
    assert!(out.contains("distributed to 3"), "{out}");
    assert!(wait_until(10, || Mailhost::get()
        .inbox("alice")
        .iter()
        .filter_map(|m| new.decrypt(m).ok())
        .any(
            |d| String::from_utf8_lossy(&d.entity).contains("TO-THE-NEW-KEY")
        )));
}

#[test]
fn unsubscribe_signed_at_once_unsigned_after_a_token() {
    let f = fixture("confirm");
    let out = f.command(f.bob(), &Post::new("unsubscribe", "unsubscribe"));
    assert!(
        out.contains("unsubscribe from bob@example.test: signed, done"),
        "{out}"
    );
    assert!(!f.subscribers().contains("bob@"));
    assert!(f.next_reply(f.bob()).contains("You have left Garden Club"));

    // A List-Unsubscribe button: a message in clear, no signature.
    let out = f.clear(f.carol(), REQUEST, "unsubscribe", "", "");
    assert!(
        out.contains("a token was sent, encrypted to their key"),
        "{out}"
    );
    assert!(f.subscribers().contains("carol@"));
    let t = token(&f.next_reply(f.carol()));
    let out = f.clear(f.carol(), REQUEST, "Re: Confirm", &format!("> {t}"), "");
    assert!(out.contains("confirmed, done"), "{out}");
    assert!(!f.subscribers().contains("carol@"));
    // Someone who is not subscribed gets nothing back.
    let out = f.send(
        "alice+stranger@example.test",
        REQUEST,
        &clear(
            "alice+stranger@example.test",
            REQUEST,
            "unsubscribe",
            "",
            "",
        ),
    );
    assert!(out.contains("not subscribed; not answered"), "{out}");
    assert!(out.contains("sent 0,"), "{out}");
}

#[test]
fn help_and_the_list_key_for_anyone_my_key_for_subscribers() {
    let f = fixture("confirm");
    let stranger = "bob+stranger@example.test";
    let out = f.send(stranger, REQUEST, &clear(stranger, REQUEST, "help", "", ""));
    assert!(
        out.contains(&format!("help from {stranger}: answered")),
        "{out}"
    );
    // No key for a stranger: signed by the list, not encrypted.
    let text = verified_plain(f.bob(), &f.next_reply_raw(stranger), f.cert());
    assert!(
        text.contains("Commands go to list+request@example.test"),
        "{text}"
    );

    // LIST+key@ answers anyone with the list key, signed.
    let key = "list+key@example.test";
    let out = f.send(stranger, key, &clear(stranger, key, "key please", "", ""));
    assert!(
        out.contains(&format!("the list key asked by {stranger}: sent")),
        "{out}"
    );
    let text = verified_plain(f.bob(), &f.next_reply_raw(stranger), f.cert());
    let fpr = conclave_tests::pgp::cert_fingerprint(f.cert()).unwrap();
    assert!(text.contains(&conclave_core::hex::grouped(&fpr)), "{text}");
    assert!(text.contains("BEGIN PGP PUBLIC KEY BLOCK"), "{text}");

    // my key, signed by a subscriber.
    let out = f.command(f.alice(), &Post::new("my key", "my key"));
    assert!(
        out.contains("my key from alice@example.test: answered"),
        "{out}"
    );
    let text = f.next_reply(f.alice());
    assert!(
        text.contains(&conclave_core::hex::grouped(f.alice().fingerprint())),
        "{text}"
    );
}

#[test]
fn commands_from_strangers_for_other_lists_old_or_twice_are_refused() {
    let f = fixture("confirm");
    // From someone who is not subscribed: refused, not answered.
    let stranger = Subscriber::new(Engine::Gpg, "bob+stranger@example.test");
    stranger.import_cert(f.cert()).unwrap();
    let out = f.command(&stranger, &Post::new("my key", "my key"));
    assert!(
        out.contains("refused: bob+stranger@example.test is not subscribed"),
        "{out}"
    );
    assert!(out.contains("sent 0,"), "{out}");
    // Signed for another list (its signed To: names that list), then sent
    // here: refused, and the subscriber is told why.
    let other = f.alice().compose(
        f.cert(),
        "other-list@example.test",
        &Post::new("my key", "my key"),
    );
    let out = f.send(f.alice().address(), REQUEST, &other);
    assert!(out.contains("does not name this list"), "{out}");
    assert!(f.next_reply(f.alice()).contains("was not carried out"));
    // Unencrypted, though signed.
    let signed = f.alice().clearsign("my key").unwrap();
    let out = f.clear(
        f.alice(),
        REQUEST,
        "my key",
        &String::from_utf8_lossy(&signed),
        "",
    );
    assert!(out.contains("not encrypted to the list key"), "{out}");
    // A signature in clear mail is not read: nobody proved to be alice,
    // so nobody is answered.
    assert!(out.contains("sent 0,"), "{out}");
    // The same signed command twice is carried out once.
    let twice = f
        .alice()
        .compose(f.cert(), REQUEST, &Post::new("my key", "my key"));
    assert!(f
        .send(f.alice().address(), REQUEST, &twice)
        .contains("answered"));
    f.next_reply(f.alice());
    let out = f.send(f.alice().address(), REQUEST, &twice);
    assert!(out.contains("came before"), "{out}");
    // Read ten days after it was signed.
    let old = f
        .alice()
        .compose(f.cert(), REQUEST, &Post::new("my key", "my key"));
    let mut delivered = format!("Delivered-To: {REQUEST}\r\n").into_bytes();
    delivered.extend_from_slice(&old);
    let mut list = f.days_later(10);
    let out = format!("{:?}", list.receive(&delivered).unwrap());
    assert!(out.contains("signed 10 days ago"), "{out}");
}

#[test]
fn machines_are_never_answered_and_replies_are_limited() {
    let f = fixture("confirm");
    let someone = "bob+someone@example.test";
    for (extra, why) in [
        (
            "Auto-Submitted: auto-replied\r\n",
            "it is marked Auto-Submitted: auto-replied",
        ),
        ("Precedence: bulk\r\n", "it is marked Precedence: bulk"),
        (
            "List-Id: Garden Club <list.example.test>\r\n",
            "it carries this list's List-Id",
        ),
    ] {
        let out = f.send(
            someone,
            REQUEST,
            &clear(someone, REQUEST, "help", "", extra),
        );
        assert!(out.contains(&format!("not answered: {why}")), "{out}");
        assert!(out.contains("sent 0,"), "{out}");
    }
    let daemon = "MAILER-DAEMON@example.test";
    let out = f.send(daemon, REQUEST, &clear(daemon, REQUEST, "help", "", ""));
    // Postfix gives it an empty Return-Path; either way, no answer.
    assert!(
        out.contains("not answered: it is from mailer-daemon")
            || out.contains("not answered: it has an empty Return-Path"),
        "{out}"
    );
    assert!(out.contains("sent 0,"), "{out}");
    assert!(f.replies(someone).is_empty());

    f.list().config_set("request_reply_limit", "3");
    for _ in 0..5 {
        f.send(someone, REQUEST, &clear(someone, REQUEST, "help", "", ""));
    }
    assert!(wait_until(10, || f.replies(someone).len() == 3));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(f.replies(someone).len(), 3);
    let log = f.list().run_ok(&["log"]);
    assert!(
        log.contains("3 replies went to that address in the last hour"),
        "{log}"
    );
}

#[test]
fn owner_mail_reaches_the_owner_and_no_subscriber() {
    let f = fixture("confirm");
    let owner = "list+owner@example.test";
    let someone = "bob+someone@example.test";
    let out = f.send(
        someone,
        owner,
        &clear(
            someone,
            owner,
            "A word with the owner",
            "FOR-THE-OWNER-ONLY",
            "",
        ),
    );
    assert!(out.contains("held: a message for the owner"), "{out}");
    assert!(out.contains("sent 0,"), "nothing goes out: {out}");
    let held = f.list().run_ok(&["held", "list"]);
    let id = held.split('\t').next().unwrap().trim().to_string();
    let shown = f.list().run_ok(&["held", "show", &id]);
    assert!(shown.contains("FOR-THE-OWNER-ONLY"), "{shown}");
    let (_, err) = f.list().run_err(&["held", "approve", &id]);
    assert!(err.contains("never sent to subscribers"), "{err}");
    // No subscriber's mailbox holds it.
    for user in ["alice", "bob", "carol"] {
        assert!(Mailhost::get()
            .inbox(user)
            .iter()
            .all(|m| !String::from_utf8_lossy(m).contains("FOR-THE-OWNER-ONLY")));
    }
}

#[test]
fn a_subscriber_is_told_why_their_post_was_refused_and_a_stranger_is_not() {
    let f = fixture("confirm");
    // Not encrypted: rejected by default, and alice is told, encrypted.
    let out = f.clear(f.alice(), LIST, "plain", "in clear", "");
    assert!(out.contains("rejected: not encrypted"), "{out}");
    let text = f.next_reply(f.alice());
    assert!(text.contains("was rejected"), "{text}");
    // A stranger's post: no notice.
    let stranger = "bob+stranger@example.test";
    let out = f.send(
        stranger,
        LIST,
        &clear(stranger, LIST, "plain", "in clear", ""),
    );
    assert!(out.contains("rejected:"), "{out}");
    assert!(out.contains("sent 0,"), "{out}");
    // Off: nobody is told.
    f.list().config_set("notify_senders", "off");
    let out = f.clear(f.alice(), LIST, "plain", "again", "");
    assert!(out.contains("sent 0,"), "{out}");
}

#[test]
fn copies_point_to_addresses_that_answer() {
    let f = fixture("confirm");
    let post = f
        .alice()
        .compose_post(f.cert(), LIST, "...", "list headers");
    f.send(f.alice().address(), LIST, &post);
    let mut copy = None;
    assert!(wait_until(10, || {
        copy = Mailhost::get()
            .inbox("bob")
            .into_iter()
            .find(|m| header(m, "List-Id").is_some());
        copy.is_some()
    }));
    let copy = copy.unwrap();
    for (name, value) in [
        (
            "List-Subscribe",
            "<mailto:list+request@example.test?subject=subscribe>",
        ),
        (
            "List-Unsubscribe",
            "<mailto:list+request@example.test?subject=unsubscribe>",
        ),
        ("List-Owner", "<mailto:list+owner@example.test>"),
        (
            "List-Help",
            "<mailto:list+request@example.test?subject=help>",
        ),
    ] {
        assert_eq!(header(&copy, name).as_deref(), Some(value), "{name}");
    }
}

/// `key sign`: a subscriber's certification of the list key, made with
/// GnuPG, is published with the list key (`key export`); with
/// `key_signing` off it is refused.
#[test]
fn a_subscribers_certification_of_the_list_key_is_published() {
    let f = fixture("confirm");
    let list_fpr = conclave_tests::pgp::cert_fingerprint(f.cert()).unwrap();
    let certified = f.alice().certify(&list_fpr);
    let body = format!("key sign\n\n{}", String::from_utf8_lossy(&certified));
    let out = f.command(f.alice(), &Post::new("key sign", &body));
    assert!(
        out.contains("key sign from alice@example.test: certification added"),
        "{out}"
    );
    // GnuPG sees alice's certification on the exported list key.
    let exported = f.list().run_ok(&["key", "export"]);
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    reader.import_cert(&f.alice().public_key_armored()).unwrap();
    reader.import_cert(exported.as_bytes()).unwrap();
    let sigs = std::process::Command::new("gpg")
        .env("GNUPGHOME", reader.home())
        .args(["--batch", "--with-colons", "--check-sigs", &list_fpr])
        .output()
        .unwrap();
    let sigs = String::from_utf8_lossy(&sigs.stdout);
    let alice_keyid = &f.alice().fingerprint()[24..];
    assert!(
        sigs.lines()
            .any(|l| l.starts_with("sig:!") && l.contains(alice_keyid)),
        "{sigs}"
    );
    // Off: refused.
    f.list().config_set("key_signing", "off");
    let certified = f.bob().certify(&list_fpr);
    let body = format!("key sign\n\n{}", String::from_utf8_lossy(&certified));
    let out = f.command(f.bob(), &Post::new("key sign", &body));
    assert!(out.contains("key_signing is off"), "{out}");
}

/// A client that sends its key in the Autocrypt header (Delta Chat, K-9)
/// may ask to join without attaching it; and the key attached to a clear
/// message (no list key yet) works too.
#[test]
fn a_key_in_the_autocrypt_header_or_attached_in_clear_can_join() {
    use base64::Engine as _;
    use sequoia_openpgp::serialize::Serialize;
    let f = fixture("confirm");
    let dave = Subscriber::new(Engine::Gpg, "carol+dave@example.test");
    let cert = conclave_tests::pgp::parse_cert(&dave.public_key_armored()).unwrap();
    let mut binary = Vec::new();
    cert.serialize(&mut binary).unwrap();
    let keydata = base64::engine::general_purpose::STANDARD.encode(binary);
    let autocrypt = format!("Autocrypt: addr={}; keydata={keydata}\r\n", dave.address());
    let out = f.clear(&dave, REQUEST, "subscribe", "", &autocrypt);
    assert!(
        out.contains("a token was sent, encrypted to that key"),
        "{out}"
    );
    assert!(f
        .next_reply(&dave)
        .contains(&conclave_core::hex::grouped(dave.fingerprint())));

    let erin = Subscriber::new(Engine::Gpg, "carol+erin@example.test");
    let fpr = erin.fingerprint().to_string();
    let entity = with_key_attached(
        &text_plain_entity("subscribe"),
        &erin.public_key_armored(),
        &fpr[fpr.len() - 16..],
    );
    let mut eml = format!(
        "From: {0}\r\nTo: {REQUEST}\r\nSubject: subscribe\r\nMessage-ID: {1}\r\nMIME-Version: 1.0\r\n",
        erin.address(),
        conclave_tests::mime::new_message_id(erin.address())
    )
    .into_bytes();
    eml.extend_from_slice(&entity);
    let out = f.send(erin.address(), REQUEST, &eml);
    assert!(
        out.contains("a token was sent, encrypted to that key"),
        "{out}"
    );
    assert!(f
        .next_reply(&erin)
        .contains(&conclave_core::hex::grouped(&fpr)));
}
