//! The list answers mail: subscribe with key proof (GnuPG, RNP, sq and
//! OpenPGP.js), key change signed by the old key, signed and unsigned
//! unsubscribe, help, the list key, my key, the owner address, notices to
//! senders, and the rules every automatic reply follows (subscribers only,
//! bound to the list, recent, once, no reply to machines, a rate limit).
//! Messages go through `conclave process`, the replies come out of the
//! outbox and are read by each subscriber's own engine; the last test runs
//! the whole subscription over SMTP and IMAP on the loopback mail host.

use std::sync::Arc;

use conclave_core::{List, ManualClock, Password};
use conclave_tests::mime::{header, split_multipart_signed, text_plain_entity, with_key_attached};
use conclave_tests::{Conclave, Engine, JsKey, Post, Subscriber};

const LIST: &str = "list@example.test";
const REQUEST: &str = "list+request@example.test";

struct Fixture {
    list: Conclave,
    cert: Vec<u8>,
    alice: Subscriber,
}

/// A list with alice (GnuPG) subscribed, joining by `policy`.
fn fixture(policy: &str) -> Fixture {
    conclave_tests::require_programs(&["gpg"]);
    let list = Conclave::new();
    list.init(LIST, "Garden Club");
    list.config_set("subscription_policy", policy);
    let cert = list.list_cert();
    let alice = Subscriber::new(Engine::Gpg, "alice@example.test");
    list.add_subscriber(&alice);
    alice.import_cert(&cert).unwrap();
    Fixture { list, cert, alice }
}

/// `eml` as the host delivers it to `to`.
fn delivered(to: &str, eml: &[u8]) -> Vec<u8> {
    let mut out = format!("Delivered-To: {to}\r\n").into_bytes();
    out.extend_from_slice(eml);
    out
}

/// A message in clear from `who` to `to`, with their key attached if `key`.
fn clear(who: &Subscriber, to: &str, subject: &str, body: &str, key: bool, extra: &str) -> Vec<u8> {
    let mut entity = text_plain_entity(body);
    if key {
        let fpr = who.fingerprint();
        entity = with_key_attached(&entity, &who.public_key_armored(), &fpr[fpr.len() - 16..]);
    }
    let mut out = format!(
        "Delivered-To: {to}\r\nFrom: {}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\n{extra}",
        who.address(),
        conclave_tests::mime::rfc2822_now(),
        conclave_tests::mime::new_message_id(who.address()),
    )
    .into_bytes();
    out.extend_from_slice(&entity);
    out
}

/// A command from `who`, signed and encrypted to the list, to the request
/// address.
fn command(f: &Fixture, who: &Subscriber, post: &Post) -> Vec<u8> {
    delivered(REQUEST, &who.compose(&f.cert, REQUEST, post))
}

/// Every automatic reply queued for `address`, oldest first.
fn replies(list: &Conclave, address: &str) -> Vec<Vec<u8>> {
    let mut found: Vec<(u32, Vec<u8>)> = list
        .export_outbox()
        .into_iter()
        .filter_map(|(stem, eml)| {
            let n = if stem == address {
                1
            } else {
                stem.strip_prefix(&format!("{address}."))?.parse().ok()?
            };
            Some((n, eml))
        })
        .filter(|(_, eml)| header(eml, "Auto-Submitted").as_deref() == Some("auto-replied"))
        .collect();
    found.sort_by_key(|(n, _)| *n);
    found.into_iter().map(|(_, eml)| eml).collect()
}

/// The text of the last reply to `who`, decrypted by their engine.
fn last_reply(list: &Conclave, who: &Subscriber) -> String {
    let all = replies(list, who.address());
    let eml = all
        .last()
        .unwrap_or_else(|| panic!("no reply to {}", who.address()));
    let d = who
        .decrypt(eml)
        .unwrap_or_else(|e| panic!("{}: {e}", who.address()));
    conclave_tests::mime::all_text_plain(&d.entity).join("\n")
}

/// The token in a reply.
fn token(text: &str) -> String {
    let at = text
        .find("confirm-")
        .unwrap_or_else(|| panic!("no token in {text}"));
    text[at..at + 8 + 32].to_string()
}

/// The list opened in-process, its clock `days` ahead.
fn days_later(f: &Fixture, days: u64) -> List {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut list = List::open(
        f.list.home.path(),
        Arc::new(ManualClock::at_unix(now + days * 86_400)),
    )
    .unwrap();
    list.unlock(&Password::from(conclave_tests::TEST_PASSPHRASE))
        .unwrap();
    list
}

fn subscribers(list: &Conclave) -> String {
    list.run_ok(&["subscriber", "list"])
}

/// Subscribes `who` by mail: `subscribe` with their key, then the token
/// back, signed and encrypted. Returns the result line of the confirmation.
fn join(f: &Fixture, who: &Subscriber) -> String {
    who.import_cert(&f.cert).unwrap();
    let out = f.list.process(&command(
        f,
        who,
        &Post::new("subscribe", "subscribe").with_key(),
    ));
    assert!(out.contains("a token was sent"), "{}: {out}", who.address());
    let text = last_reply(&f.list, who);
    assert!(
        text.contains("reply to this message, signed and encrypted"),
        "{text}"
    );
    let t = token(&text);
    f.list.process(&command(
        f,
        who,
        &Post::new(
            "Re: Confirm your subscription",
            &format!("Yes, that is me.\n\n> {t}\n"),
        ),
    ))
}

#[test]
fn subscribe_with_key_proof_in_every_engine() {
    conclave_tests::require_all_engines();
    let f = fixture("confirm");
    let newcomers = [
        Subscriber::new(Engine::Gpg, "gpg.user@example.test"),
        Subscriber::new(Engine::Rnp, "rnp.user@example.test"),
        Subscriber::new(Engine::Sq, "sq.user@example.test"),
        Subscriber::openpgpjs("js.user@example.test", JsKey::Cv25519),
    ];
    for n in &newcomers {
        let out = join(&f, n);
        assert!(
            out.contains(&format!(
                "subscribe from {}: subscribed with key",
                n.address()
            )),
            "{}: {out}",
            n.address()
        );
        assert!(subscribers(&f.list).contains(n.address()));
        // The welcome, encrypted to them, carries the list key.
        let welcome = last_reply(&f.list, n);
        assert!(welcome.contains("Welcome to Garden Club"), "{welcome}");
        let eml = replies(&f.list, n.address()).pop().unwrap();
        let d = n.decrypt(&eml).unwrap();
        assert!(String::from_utf8_lossy(&d.entity).contains("application/pgp-keys"));
    }
    // The next post reaches each of them.
    let post = f
        .alice
        .compose_post(&f.cert, LIST, "Hello", "FIRST-POST-FOR-NEWCOMERS");
    assert_eq!(f.list.process(&post), "distributed to 5");
    let out = f.list.export_outbox();
    for n in &newcomers {
        let copy = out
            .iter()
            .filter(|(k, _)| k.starts_with(n.address()))
            .map(|(_, v)| v)
            .find(|eml| header(eml, "Auto-Submitted").is_none())
            .unwrap();
        let d = n.decrypt(copy).unwrap();
        assert!(String::from_utf8_lossy(&d.entity).contains("FIRST-POST-FOR-NEWCOMERS"));
    }
}

#[test]
fn the_owner_approves_after_the_key_proof() {
    let f = fixture("confirm+moderate");
    let dave = Subscriber::new(Engine::Gpg, "dave@example.test");
    let out = join(&f, &dave);
    assert!(out.contains("key proven, waiting for the owner"), "{out}");
    assert!(!subscribers(&f.list).contains("dave@"));
    let pending = f.list.run_ok(&["requests", "list"]);
    assert!(
        pending.contains("subscribe\tdave@example.test"),
        "{pending}"
    );
    assert!(pending.contains(dave.fingerprint()), "{pending}");
    assert!(
        pending.contains("waiting for the owner (key proven"),
        "{pending}"
    );
    let id = pending.split('\t').next().unwrap().trim().to_string();
    let done = f.list.run_ok(&["requests", "approve", &id]);
    assert!(done.contains("subscribed with key"), "{done}");
    assert!(subscribers(&f.list).contains("dave@example.test"));
    assert!(last_reply(&f.list, &dave).contains("Welcome to Garden Club"));
    assert_eq!(f.list.run_ok(&["requests", "list"]).trim(), "");
    // A refusal tells the requester.
    let erin = Subscriber::new(Engine::Gpg, "erin@example.test");
    join(&f, &erin);
    let pending = f.list.run_ok(&["requests", "list"]);
    let id = pending.split('\t').next().unwrap().trim().to_string();
    f.list
        .run_ok(&["requests", "refuse", &id, "--reason", "we do not know you"]);
    assert!(last_reply(&f.list, &erin)
        .contains("declined your request (subscribe): we do not know you"));
    assert!(!subscribers(&f.list).contains("erin@"));
    let log = f.list.run_ok(&["log"]);
    assert!(
        log.contains("refused by the owner: we do not know you"),
        "{log}"
    );
}

#[test]
fn a_wrong_a_replayed_an_expired_token_or_another_key_does_nothing() {
    let f = fixture("confirm");
    let dave = Subscriber::new(Engine::Gpg, "dave@example.test");
    dave.import_cert(&f.cert).unwrap();
    // A token nobody was sent.
    let wrong = f.list.process(&command(
        &f,
        &dave,
        &Post::new("Re: confirm", "confirm-0123456789abcdef0123456789abcdef"),
    ));
    assert!(wrong.contains("no request has that token"), "{wrong}");
    // The token signed by another key for the same address.
    f.list.process(&command(
        &f,
        &dave,
        &Post::new("subscribe", "subscribe").with_key(),
    ));
    let t = token(&last_reply(&f.list, &dave));
    let impostor = Subscriber::new(Engine::Gpg, "dave@example.test");
    impostor.import_cert(&f.cert).unwrap();
    let out = f
        .list
        .process(&command(&f, &impostor, &Post::new("Re: confirm", &t)));
    assert!(
        out.contains("not signed by the key that asked to join"),
        "{out}"
    );
    assert!(!subscribers(&f.list).contains("dave@"));
    // The real one, then the same message again.
    let confirmation = command(&f, &dave, &Post::new("Re: confirm", &t));
    assert!(f
        .list
        .process(&confirmation)
        .contains("subscribed with key"));
    let again = f.list.process(&confirmation);
    assert!(again.contains("that token was used already"), "{again}");

    // Eight days later, a token of seven days is no good.
    let erin = Subscriber::new(Engine::Gpg, "erin@example.test");
    erin.import_cert(&f.cert).unwrap();
    f.list.process(&command(
        &f,
        &erin,
        &Post::new("subscribe", "subscribe").with_key(),
    ));
    let t = token(&last_reply(&f.list, &erin));
    let late = command(&f, &erin, &Post::new("Re: confirm", &t));
    let mut list = days_later(&f, 8);
    let outcome = format!("{:?}", list.receive(&late).unwrap());
    assert!(outcome.contains("the token had expired"), "{outcome}");
    drop(list);
    assert!(!subscribers(&f.list).contains("erin@"));
    assert!(last_reply(&f.list, &erin).contains("send your request (subscribe) again"));
}

#[test]
fn a_key_change_takes_the_old_key_and_the_new_one() {
    let f = fixture("confirm");
    let old = &f.alice;
    let new = Subscriber::new(Engine::Gpg, "alice@example.test");
    new.import_cert(&f.cert).unwrap();
    let ask = |signer: &Subscriber| {
        command(
            &f,
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
    let out = f.list.process(&ask(&new));
    assert!(
        out.contains("refused: it was not signed by the key alice@example.test is subscribed with"),
        "{out}"
    );
    assert!(subscribers(&f.list).contains(old.fingerprint()));

    // Asked with the old key: the token goes to the new key only.
    let out = f.list.process(&ask(old));
    assert!(
        out.contains("a token was sent, encrypted to the new key"),
        "{out}"
    );
    let eml = replies(&f.list, old.address()).pop().unwrap();
    assert!(
        old.decrypt(&eml).is_err(),
        "the old key cannot read the token"
    );
    let t = token(&last_reply(&f.list, &new));
    // Sent back signed by the new key: refused.
    let out = f
        .list
        .process(&command(&f, &new, &Post::new("Re: confirm", &t)));
    assert!(out.contains("not signed by the old key"), "{out}");
    assert!(subscribers(&f.list).contains(old.fingerprint()));
    // Sent back signed by the old key: changed.
    let out = f
        .list
        .process(&command(&f, old, &Post::new("Re: confirm", &t)));
    assert!(out.contains("replaced with"), "{out}");
    let list = subscribers(&f.list);
    assert!(
        list.contains(new.fingerprint()) && !list.contains(old.fingerprint()),
        "{list}"
    );
    let log = f.list.run_ok(&["log"]);
    assert!(
        log.contains(&format!(
            "key {} replaced with {}",
            old.fingerprint(),
            new.fingerprint()
        )),
        "{log}"
    );
    // The next post reaches the new key.
    let bob = Subscriber::new(Engine::Gpg, "bob@example.test");
    f.list.add_subscriber(&bob);
    bob.import_cert(&f.cert).unwrap();
    let post = bob.compose_post(&f.cert, LIST, "Hi", "TO-THE-NEW-KEY");
    assert_eq!(f.list.process(&post), "distributed to 2");
    let copy = f.list.export_outbox().remove("alice@example.test").unwrap();
    assert!(new.decrypt(&copy).is_ok());
}

#[test]
fn unsubscribe_signed_at_once_unsigned_after_a_token() {
    let f = fixture("confirm");
    let bob = Subscriber::new(Engine::Gpg, "bob@example.test");
    let carol = Subscriber::new(Engine::Gpg, "carol@example.test");
    for s in [&bob, &carol] {
        f.list.add_subscriber(s);
        s.import_cert(&f.cert).unwrap();
    }
    let out = f
        .list
        .process(&command(&f, &bob, &Post::new("unsubscribe", "unsubscribe")));
    assert!(
        out.contains("unsubscribe from bob@example.test: signed, done"),
        "{out}"
    );
    assert!(!subscribers(&f.list).contains("bob@"));
    assert!(last_reply(&f.list, &bob).contains("You have left Garden Club"));

    // A List-Unsubscribe button: a message in clear, no signature.
    let out = f
        .list
        .process(&clear(&carol, REQUEST, "unsubscribe", "", false, ""));
    assert!(
        out.contains("a token was sent, encrypted to their key"),
        "{out}"
    );
    assert!(subscribers(&f.list).contains("carol@"));
    let t = token(&last_reply(&f.list, &carol));
    let out = f.list.process(&clear(
        &carol,
        REQUEST,
        "Re: Confirm",
        &format!("> {t}"),
        false,
        "",
    ));
    assert!(out.contains("confirmed, done"), "{out}");
    assert!(!subscribers(&f.list).contains("carol@"));
    // Someone who is not subscribed gets nothing back.
    let stranger = Subscriber::new(Engine::Gpg, "stranger@example.test");
    let out = f
        .list
        .process(&clear(&stranger, REQUEST, "unsubscribe", "", false, ""));
    assert!(out.contains("not subscribed; not answered"), "{out}");
    assert!(replies(&f.list, stranger.address()).is_empty());
}

#[test]
fn help_and_the_list_key_for_anyone_my_key_for_subscribers() {
    let f = fixture("confirm");
    let stranger = Subscriber::new(Engine::Gpg, "stranger@example.test");
    let out = f
        .list
        .process(&clear(&stranger, REQUEST, "help", "", false, ""));
    assert!(
        out.contains("help from stranger@example.test: answered"),
        "{out}"
    );
    // No key for a stranger: signed by the list, not encrypted.
    let eml = replies(&f.list, stranger.address()).pop().unwrap();
    let (signed, sig) = split_multipart_signed(
        &eml[eml.windows(13).position(|w| w == b"Content-Type:").unwrap()..],
    )
    .unwrap();
    stranger.verify_detached(&signed, &sig, &f.cert).unwrap();
    let text = String::from_utf8_lossy(&signed);
    assert!(
        text.contains("Commands go to list+request@example.test"),
        "{text}"
    );

    // LIST+key@ answers anyone with the list key, signed.
    let key_mail = clear(
        &stranger,
        "list+key@example.test",
        "key please",
        "",
        false,
        "",
    );
    let out = f.list.process(&key_mail);
    assert!(
        out.contains("the list key asked by stranger@example.test: sent"),
        "{out}"
    );
    let eml = replies(&f.list, stranger.address()).pop().unwrap();
    let (signed, sig) = split_multipart_signed(
        &eml[eml.windows(13).position(|w| w == b"Content-Type:").unwrap()..],
    )
    .unwrap();
    stranger.verify_detached(&signed, &sig, &f.cert).unwrap();
    let fpr = conclave_tests::pgp::cert_fingerprint(&f.cert).unwrap();
    assert!(String::from_utf8_lossy(&signed).contains(&fpr[..4]));
    assert!(String::from_utf8_lossy(&signed).contains("BEGIN PGP PUBLIC KEY BLOCK"));

    // my key, signed by a subscriber.
    let out = f
        .list
        .process(&command(&f, &f.alice, &Post::new("my key", "my key")));
    assert!(
        out.contains("my key from alice@example.test: answered"),
        "{out}"
    );
    let text = last_reply(&f.list, &f.alice);
    let spaced: String = f
        .alice
        .fingerprint()
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains(&spaced), "{text}");
}

#[test]
fn commands_from_strangers_for_other_lists_or_old_are_refused() {
    let f = fixture("confirm");
    // From someone who is not subscribed.
    let stranger = Subscriber::new(Engine::Gpg, "stranger@example.test");
    stranger.import_cert(&f.cert).unwrap();
    let out = f
        .list
        .process(&command(&f, &stranger, &Post::new("my key", "my key")));
    assert!(
        out.contains("refused: stranger@example.test is not subscribed"),
        "{out}"
    );
    assert!(replies(&f.list, stranger.address()).is_empty());
    // Signed for another list (its signed To: names that list), then
    // delivered here.
    let other = delivered(
        REQUEST,
        &f.alice.compose(
            &f.cert,
            "other-list@example.test",
            &Post::new("my key", "my key"),
        ),
    );
    let out = f.list.process(&other);
    assert!(out.contains("does not name this list"), "{out}");
    // Read ten days after it was signed.
    let old = command(&f, &f.alice, &Post::new("my key", "my key"));
    let mut list = days_later(&f, 10);
    let out = format!("{:?}", list.receive(&old).unwrap());
    assert!(out.contains("signed 10 days ago"), "{out}");
    drop(list);
    // Unencrypted, though signed.
    let signed = f.alice.clearsign("my key").unwrap();
    let out = f.list.process(&clear(
        &f.alice,
        REQUEST,
        "my key",
        &String::from_utf8_lossy(&signed),
        false,
        "",
    ));
    assert!(out.contains("not encrypted to the list key"), "{out}");
    // The same signed command twice is carried out once.
    let twice = command(&f, &f.alice, &Post::new("my key", "my key"));
    assert!(f.list.process(&twice).contains("answered"));
    let out = f.list.process(&twice);
    assert!(out.contains("came before"), "{out}");
}

#[test]
fn machines_are_never_answered_and_replies_are_limited() {
    let f = fixture("confirm");
    let s = Subscriber::new(Engine::Gpg, "someone@example.test");
    for (extra, why) in [
        (
            "Auto-Submitted: auto-replied\r\n",
            "Auto-Submitted: auto-replied",
        ),
        ("Precedence: bulk\r\n", "Precedence: bulk"),
        (
            "List-Id: Garden Club <list.example.test>\r\n",
            "this list's List-Id",
        ),
    ] {
        let out = f
            .list
            .process(&clear(&s, REQUEST, "help", "", false, extra));
        assert!(
            out.contains(&format!("not answered: it is marked {why}")) || out.contains(why),
            "{out}"
        );
    }
    let daemon = clear(&s, REQUEST, "help", "", false, "")
        .replace_from("someone@example.test", "MAILER-DAEMON@example.test");
    let out = f.list.process(&daemon);
    assert!(
        out.contains("not answered: it is from mailer-daemon"),
        "{out}"
    );
    assert!(replies(&f.list, s.address()).is_empty());

    f.list.config_set("request_reply_limit", "3");
    for _ in 0..5 {
        f.list.process(&clear(&s, REQUEST, "help", "", false, ""));
    }
    assert_eq!(replies(&f.list, s.address()).len(), 3);
    let log = f.list.run_ok(&["log"]);
    assert!(
        log.contains("3 replies went to that address in the last hour"),
        "{log}"
    );
}

#[test]
fn owner_mail_reaches_the_owner_and_no_subscriber() {
    let f = fixture("confirm");
    let s = Subscriber::new(Engine::Gpg, "someone@example.test");
    let out = f.list.process(&clear(
        &s,
        "list+owner@example.test",
        "A word with the owner",
        "FOR-THE-OWNER-ONLY",
        false,
        "",
    ));
    assert!(out.starts_with("held: a message for the owner"), "{out}");
    assert!(f.list.export_outbox().is_empty(), "nothing goes out");
    let held = f.list.run_ok(&["held", "list"]);
    let id = held.split('\t').next().unwrap().trim().to_string();
    let shown = f.list.run_ok(&["held", "show", &id]);
    assert!(shown.contains("FOR-THE-OWNER-ONLY"), "{shown}");
    let (_, err) = f.list.run_err(&["held", "approve", &id]);
    assert!(err.contains("never sent to subscribers"), "{err}");
}

#[test]
fn a_subscriber_is_told_why_their_post_was_refused_and_a_stranger_is_not() {
    let f = fixture("confirm");
    // Not encrypted: rejected by default.
    let out = f
        .list
        .process(&clear(&f.alice, LIST, "plain", "in clear", false, ""));
    assert!(out.starts_with("rejected:"), "{out}");
    let text = last_reply(&f.list, &f.alice);
    assert!(text.contains("was rejected"), "{text}");
    let stranger = Subscriber::new(Engine::Gpg, "stranger@example.test");
    let out = f
        .list
        .process(&clear(&stranger, LIST, "plain", "in clear", false, ""));
    assert!(out.starts_with("rejected:"), "{out}");
    assert!(replies(&f.list, stranger.address()).is_empty());
    // Off: nobody is told.
    f.list.config_set("notify_senders", "off");
    let before = replies(&f.list, f.alice.address()).len();
    f.list
        .process(&clear(&f.alice, LIST, "plain", "again", false, ""));
    assert_eq!(replies(&f.list, f.alice.address()).len(), before);
}

#[test]
fn copies_point_to_addresses_that_answer() {
    let f = fixture("confirm");
    let post = f.alice.compose_post(&f.cert, LIST, "Hi", "list headers");
    f.list.process(&post);
    let copy = f.list.export_outbox().remove("alice@example.test").unwrap();
    assert_eq!(
        header(&copy, "List-Subscribe").as_deref(),
        Some("<mailto:list+request@example.test?subject=subscribe>")
    );
    assert_eq!(
        header(&copy, "List-Unsubscribe").as_deref(),
        Some("<mailto:list+request@example.test?subject=unsubscribe>")
    );
    assert_eq!(
        header(&copy, "List-Owner").as_deref(),
        Some("<mailto:list+owner@example.test>")
    );
    assert_eq!(
        header(&copy, "List-Help").as_deref(),
        Some("<mailto:list+request@example.test?subject=help>")
    );
}

trait ReplaceFrom {
    fn replace_from(self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceFrom for Vec<u8> {
    fn replace_from(self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace(from, to)
            .into_bytes()
    }
}

/// The whole subscription over the mail host: `subscribe` sent over SMTP
/// to the request address reaches the list mailbox (the host delivers the
/// sub-address there), the relay answers over SMTP, the newcomer reads the
/// token in their own mailbox and sends it back, and the next post reaches
/// them.
#[test]
fn a_newcomer_joins_over_smtp_and_imap() {
    use conclave_tests::{wait_until, MailList, Mailhost};
    let mh = Mailhost::get();
    mh.clear();
    let f = MailList::new("Garden Club");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server(
        "smtp",
        "MAILHOST_HOST",
        "MAILHOST_SUBMISSION_PORT",
        "starttls",
    );
    f.list.config_set("subscription_policy", "confirm");
    f.list
        .run_ok(&["subscriber", "remove", "carol@example.test"]);
    let (alice, carol) = (&f.subs[0], &f.subs[2]);
    let replies_to_carol = || -> Vec<Vec<u8>> {
        mh.inbox("carol")
            .into_iter()
            .filter(|m| header(m, "Auto-Submitted").as_deref() == Some("auto-replied"))
            .collect()
    };

    let ask = carol.compose(
        &f.cert,
        REQUEST,
        &Post::new("subscribe", "subscribe").with_key(),
    );
    mh.inject(carol.address(), REQUEST, &ask);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(
        out.contains("request: subscribe from carol@example.test"),
        "{out}"
    );
    assert!(
        wait_until(10, || replies_to_carol().len() == 1),
        "the token arrives"
    );
    let d = carol.decrypt(&replies_to_carol()[0]).unwrap();
    let t = token(&conclave_tests::mime::all_text_plain(&d.entity).join("\n"));

    let answer = carol.compose(
        &f.cert,
        REQUEST,
        &Post::new("Re: Confirm", &format!("> {t}")),
    );
    mh.inject(carol.address(), REQUEST, &answer);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("subscribed with key"), "{out}");
    assert!(
        wait_until(10, || replies_to_carol().len() == 2),
        "the welcome arrives"
    );

    let post = alice.compose_post(&f.cert, LIST, "...", "WELCOME-CAROL");
    mh.inject(alice.address(), LIST, &post);
    assert!(wait_until(10, || mh.count("list", "") == 1));
    let out = f.list.run_ok(&["run", "--once"]);
    assert!(out.contains("distributed to 3"), "{out}");
    assert!(wait_until(10, || mh
        .inbox("carol")
        .iter()
        .filter_map(|m| carol.decrypt(m).ok())
        .any(
            |d| String::from_utf8_lossy(&d.entity).contains("WELCOME-CAROL")
        )));
    // Requests are filed with the posts the list took: nothing in Held.
    assert_eq!(mh.count("list", "Held"), 0);
}

/// `key sign`: a subscriber's certification of the list key, made with
/// GnuPG, is published with the list key (`key export`), once; one by a
/// key that is not the sender's is not.
#[test]
fn a_subscribers_certification_of_the_list_key_is_published() {
    let f = fixture("confirm");
    let list_fpr = conclave_tests::pgp::cert_fingerprint(&f.cert).unwrap();
    let certified = f.alice.certify(&list_fpr);
    let ask = command(
        &f,
        &f.alice,
        &Post::new(
            "key sign",
            &format!("key sign\n\n{}", String::from_utf8_lossy(&certified)),
        ),
    );
    let out = f.list.process(&ask);
    assert!(
        out.contains("key sign from alice@example.test: certification added"),
        "{out}"
    );
    // GnuPG sees alice's certification on the exported list key.
    let exported = f.list.run_ok(&["key", "export"]);
    let reader = Subscriber::new(Engine::Gpg, "reader@example.test");
    reader
        .import_cert(f.alice.public_key_armored().as_slice())
        .unwrap();
    reader.import_cert(exported.as_bytes()).unwrap();
    let sigs = std::process::Command::new("gpg")
        .env("GNUPGHOME", reader.home())
        .args(["--batch", "--with-colons", "--check-sigs", &list_fpr])
        .output()
        .unwrap();
    let sigs = String::from_utf8_lossy(&sigs.stdout);
    let alice_keyid = &f.alice.fingerprint()[24..];
    assert!(
        sigs.lines()
            .any(|l| l.starts_with("sig:!") && l.contains(alice_keyid)),
        "{sigs}"
    );
    // Off: refused, and the key stays as it is.
    f.list.config_set("key_signing", "off");
    let bob = Subscriber::new(Engine::Gpg, "bob@example.test");
    f.list.add_subscriber(&bob);
    bob.import_cert(&f.cert).unwrap();
    let certified = bob.certify(&list_fpr);
    let out = f.list.process(&command(
        &f,
        &bob,
        &Post::new(
            "key sign",
            &format!("key sign\n\n{}", String::from_utf8_lossy(&certified)),
        ),
    ));
    assert!(out.contains("key_signing is off"), "{out}");
}

/// A client that sends its key in the Autocrypt header (Delta Chat, K-9)
/// may ask to join without attaching it.
#[test]
fn a_key_in_the_autocrypt_header_can_join() {
    use base64::Engine as _;
    let f = fixture("confirm");
    let dave = Subscriber::new(Engine::Gpg, "dave@example.test");
    let binary = {
        use sequoia_openpgp::serialize::Serialize;
        let cert = conclave_tests::pgp::parse_cert(&dave.public_key_armored()).unwrap();
        let mut out = Vec::new();
        cert.serialize(&mut out).unwrap();
        out
    };
    let keydata = base64::engine::general_purpose::STANDARD.encode(binary);
    let autocrypt = format!("Autocrypt: addr=dave@example.test; keydata={keydata}\r\n");
    let out = f
        .list
        .process(&clear(&dave, REQUEST, "subscribe", "", false, &autocrypt));
    assert!(
        out.contains("a token was sent, encrypted to that key"),
        "{out}"
    );
    assert!(last_reply(&f.list, &dave).contains(
        dave.fingerprint()
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
            .as_str()
    ));
}
