//! The desktop app in its real webview under Xvfb, driven over WebDriver
//! (tauri-driver + WebKitWebDriver), against the loopback mail host.
//! Screenshots of each screen land in tests/artifacts/gui/.

use conclave_tests::webdriver::Gui;
use conclave_tests::Mailhost;

/// Fills the wizard for the list mailbox of the mail host, with `imap` as
/// the incoming server (host key, port key), and creates the list.
fn complete_wizard(gui: &Gui, imap: (&str, &str)) {
    complete_wizard_with(gui, imap, None);
}

/// As [`complete_wizard`]; with `card`, the new key goes onto that card.
fn complete_wizard_with(gui: &Gui, imap: (&str, &str), card: Option<&str>) {
    let mh = Mailhost::get();
    gui.wait("#wizard", 30);
    gui.screenshot("01-wizard-list");
    gui.fill("#wiz-address", "list@example.test");
    gui.fill("#wiz-name", "Garden Club");
    gui.click("#wiz-next");
    for (kind, host, port) in [
        ("imap", imap.0, imap.1),
        ("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT"),
    ] {
        gui.fill(&format!("#wiz-{kind}-host"), &mh.var(host));
        gui.select(&format!("#wiz-{kind}-security"), "tls");
        gui.fill(&format!("#wiz-{kind}-port"), &mh.var(port));
        gui.fill(&format!("#wiz-{kind}-user"), "list");
        gui.fill(
            &format!("#wiz-{kind}-password"),
            &mh.var("MAILHOST_PASSWORD"),
        );
    }
    gui.fill("#wiz-ca-file", &mh.var("MAILHOST_CA_CERT"));
    gui.screenshot("02-wizard-servers");
    gui.click("#wiz-next");
    gui.fill("#wiz-passphrase", "correct horse battery");
    gui.fill("#wiz-passphrase2", "correct horse battery");
    if let Some(ident) = card {
        gui.click("#wiz-key-card");
        gui.wait(&format!("#wiz-card option[value='{ident}']"), 20);
        gui.select("#wiz-card", ident);
    }
    gui.screenshot(if card.is_some() {
        "03-wizard-key-card"
    } else {
        "03-wizard-key"
    });
    gui.click("#wiz-finish");
}

/// The wizard, with the test CA for the trusted host: the list is created,
/// the relay starts and both servers answer.
#[test]
fn the_wizard_sets_up_a_list_that_relays() {
    let _guard = Gui::lock();
    conclave_tests::keyring_bus();
    let mh = Mailhost::get();
    mh.clear();
    let gui = Gui::start();
    complete_wizard(&gui, ("MAILHOST_HOST", "MAILHOST_IMAPS_PORT"));
    gui.wait("#nav-dashboard", 30);
    gui.wait_text("connected; last pass", 30);
    assert!(gui.text("#connection").contains("Relay running"));
    assert!(gui.home().join("list.db").exists());
    gui.screenshot("04-dashboard");
    for screen in [
        "moderation",
        "requests",
        "subscribers",
        "key",
        "card",
        "certificates",
        "settings",
        "activity",
    ] {
        gui.click(&format!("#nav-{screen}"));
        gui.wait(&format!("#nav-{screen}.active"), 10);
        gui.screenshot(&format!("05-{screen}"));
    }
    // The List key screen shows the key the wizard made.
    gui.click("#nav-key");
    let shown: String = gui.text("#key-fingerprint").split_whitespace().collect();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(conclave_tests::conclave_bin())
            .arg("--home")
            .arg(gui.home())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let cert = cli(&["key", "export"]);
    assert_eq!(
        Some(shown),
        conclave_tests::cert_fingerprint(cert.as_bytes()).ok()
    );
    // The passwords went to the OS keyring, not to files.
    for server in ["imap", "smtp"] {
        let out = cli(&["config", "password", server, "--show"]);
        assert!(
            out.contains(&format!(
                "comes from the OS keyring (Conclave/{server}://list@"
            )),
            "{out}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(gui.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("password")), "{names:?}");
    // The expiry moves five years out, signed by the list key.
    gui.select("#key-years", "5");
    gui.click("#key-extend");
    gui.wait_text("The list key now expires", 10);
    let expires = conclave_tests::cert_expiry(cli(&["key", "export"]).as_bytes()).unwrap();
    let five = std::time::SystemTime::now() + std::time::Duration::from_secs(5 * 365 * 24 * 3600);
    assert!(expires > five - std::time::Duration::from_secs(3 * 24 * 3600));
    // The screen shows the new date.
    let date = conclave_core::clock::rfc5322(expires);
    let year = date.split_whitespace().nth(3).unwrap().to_string();
    assert!(
        conclave_tests::wait_until(10, || gui.text("#key-expires").contains(&year)),
        "{} (want {year})",
        gui.text("#key-expires")
    );
    // An encrypted backup, where the owner says.
    let backup = gui.home().join("backup.asc");
    gui.fill("#key-backup-path", backup.to_str().unwrap());
    gui.click("#key-backup");
    gui.wait_text("Backup written to", 10);
    let saved = std::fs::read_to_string(&backup).unwrap();
    assert!(saved.contains("BEGIN PGP PRIVATE KEY BLOCK"));
    gui.screenshot("05-key-after-extension");
    // A setting changed on the Settings screen is the list's setting.
    gui.click("#nav-settings");
    gui.wait("#pw-imap-source", 10);
    assert!(gui.text("#pw-imap-source").contains("OS keyring"));
    gui.select("#set-receive_signed_only", "reject");
    gui.wait_text("receive_signed_only is now reject", 10);
    assert!(cli(&["config", "show"])
        .lines()
        .any(|l| l.trim() == "receive_signed_only = reject"));
}

/// A self-signed server: the dialog shows its SHA-256; accepting it pins it
/// and the relay connects.
#[test]
fn an_untrusted_certificate_is_shown_and_can_be_accepted() {
    let _guard = Gui::lock();
    let mh = Mailhost::get();
    mh.clear();
    let gui = Gui::start();
    complete_wizard(
        &gui,
        ("MAILHOST_UNTRUSTED_HOST", "MAILHOST_UNTRUSTED_IMAPS_PORT"),
    );
    gui.wait("#cert-dialog", 30);
    let expected = mh.var("MAILHOST_SELFSIGNED_CERT_SHA256");
    let shown: String = gui.text("#cert-sha256").split_whitespace().collect();
    assert_eq!(shown.to_ascii_uppercase(), expected.to_ascii_uppercase());
    gui.screenshot("06-certificate-dialog");
    gui.click("#cert-accept");
    gui.wait_text("connected; last pass", 30);
    gui.click("#nav-certificates");
    gui.wait_text(&mh.var("MAILHOST_UNTRUSTED_IMAPS_PORT"), 10);
    gui.screenshot("07-certificates-pinned");
}

/// Waits up to 30 s for a message in `user`'s mailbox that `reader`
/// decrypts and that contains `needle`.
fn reads(user: &str, reader: &conclave_tests::Subscriber, needle: &str) -> bool {
    conclave_tests::wait_until(30, || {
        Mailhost::get().inbox(user).iter().any(|m| {
            reader.decrypt(m).is_ok_and(|d| {
                conclave_tests::mime::all_text_plain(&d.entity)
                    .join("")
                    .contains(needle)
            })
        })
    })
}

/// A list made beforehand on the mail host's trusted servers (implicit TLS),
/// with alice, bob and carol; the mail host starts empty.
fn garden_club() -> conclave_tests::MailList {
    Mailhost::get().clear();
    let f = conclave_tests::MailList::new("Garden Club");
    f.server("imap", "MAILHOST_HOST", "MAILHOST_IMAPS_PORT", "tls");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    f
}

/// A copy of the folder of a list made beforehand, for the app to open.
fn copy_home(f: &conclave_tests::MailList) -> tempfile::TempDir {
    f.list.copy_home()
}

/// The app opened on a list made beforehand (alice, bob and carol, the
/// mail host's servers): the unlock screen takes the passphrase.
fn open_prepared(f: &conclave_tests::MailList) -> Gui {
    let home = copy_home(f);
    let gui = Gui::start_in(home);
    gui.wait("#unlock", 30);
    gui.fill("#unlock-passphrase", conclave_tests::TEST_PASSPHRASE);
    gui.screenshot("08-unlock");
    gui.click("#unlock-button");
    gui.wait("#nav-dashboard", 30);
    gui
}

/// The dashboard names the subscriber keys that expire soon (made
/// yesterday for ten days) and the subscribers who receive no posts (a key
/// that expired since they joined).
#[test]
fn the_dashboard_names_keys_that_expire_soon_and_who_receives_nothing() {
    use conclave_tests::{Engine, Subscriber};
    let _guard = Gui::lock();
    let f = garden_club();
    let erin = Subscriber::made_ago(Engine::Gpg, "alice+erin@example.test", 1, "10d");
    f.list.add_subscriber(&erin);
    let dave = Subscriber::made_ago(Engine::Gpg, "bob+dave@example.test", 20, "10d");
    let fifteen_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 15 * 86_400;
    let mut list = conclave_core::List::open(
        f.list.home.path(),
        std::sync::Arc::new(conclave_core::ManualClock::at_unix(fifteen_days_ago)),
    )
    .unwrap();
    list.add_subscriber(dave.address(), &dave.public_key_armored())
        .unwrap();
    drop(list);
    let gui = open_prepared(&f);
    gui.wait("#keys-expiring", 30);
    let expiring = gui.text("#keys-expiring");
    assert!(
        expiring.contains("1 subscriber key expires soon")
            && expiring.contains("alice+erin@example.test"),
        "{expiring}"
    );
    let silent = gui.text("#keys-not-receiving");
    assert!(
        silent.contains("1 subscriber receives no posts")
            && silent.contains("bob+dave@example.test")
            && silent.contains("expired"),
        "{silent}"
    );
    assert!(gui.find("#list-key-alarm").is_none());
    gui.screenshot("11-dashboard-keys");
}

/// An unsigned post to a signed-only list waits under Moderation; the owner
/// reads it, approves it, and alice's GnuPG decrypts her copy.
#[test]
fn a_held_post_is_approved_from_the_moderation_screen() {
    let _guard = Gui::lock();
    let mh = Mailhost::get();
    let f = garden_club();
    let gui = open_prepared(&f);
    gui.wait_text("connected; last pass", 30);
    let needle = format!("HELD-IN-GUI-{}", std::process::id());
    mh.inject(
        "bob@example.test",
        "list@example.test",
        &f.subs[1].compose_unsigned_post(&f.cert, "list@example.test", "Seed swap", &needle),
    );
    gui.wait_text("A post is waiting for you", 30);
    gui.click("#nav-moderation");
    gui.click(".held-row");
    gui.wait("#held-approve", 20);
    assert!(gui.text("#held-text").contains(&needle));
    assert!(gui.text("#held-signature").contains("not signed"));
    gui.screenshot("09-moderation");
    gui.click("#held-approve");
    gui.wait("#held-empty", 20);
    let alice = &f.subs[0];
    let delivered = reads("alice", alice, &needle);
    assert!(delivered, "alice did not get a copy she can decrypt");
    gui.click("#nav-dashboard");
    gui.wait_text("copies sent", 10);
    gui.screenshot("10-dashboard-after-approval");

    // A newcomer writes with their key attached: held, and subscribed from
    // that key in one click.
    let dave = conclave_tests::Subscriber::new(conclave_tests::Engine::Gpg, "dave@example.test");
    let post = conclave_tests::Post::new("...", "please let me join").with_key();
    mh.inject(
        "dave@example.test",
        "list@example.test",
        &dave.compose(&f.cert, "list@example.test", &post),
    );
    // The toast of the first held post may still show: look at the list.
    let listed = conclave_tests::wait_until(30, || {
        gui.click("#nav-moderation");
        std::thread::sleep(std::time::Duration::from_millis(300));
        gui.find(".held-row").is_some()
    });
    assert!(listed, "dave's post is not under Moderation");
    gui.click(".held-row");
    gui.wait("#held-key-add-0", 20);
    assert!(gui.text("#held-detail").contains("dave@example.test"));
    gui.screenshot("11-moderation-attached-key");
    gui.click("#held-key-add-0");
    gui.wait_text("dave@example.test is now a subscriber", 10);
    gui.click("#nav-subscribers");
    gui.wait_text("User IDs: dave@example.test", 10);
    gui.screenshot("05-subscribers-with-dave");
    // Now a subscriber, dave's first post goes out.
    gui.click("#nav-moderation");
    gui.click(".held-row");
    gui.wait("#held-approve", 20);
    gui.click("#held-approve");
    gui.wait("#held-empty", 20);

    // Later a post from dave's address arrives with another key attached
    // (and signed with it): the app never swaps keys in passing; it offers
    // the replacement as an act of its own, in red, with both fingerprints.
    let other = conclave_tests::Subscriber::new(conclave_tests::Engine::Gpg, "dave@example.test");
    let post = conclave_tests::Post::new("...", "my new key").with_key();
    mh.inject(
        "dave@example.test",
        "list@example.test",
        &other.compose(&f.cert, "list@example.test", &post),
    );
    let listed = conclave_tests::wait_until(30, || {
        gui.click("#nav-moderation");
        std::thread::sleep(std::time::Duration::from_millis(300));
        gui.find(".held-row").is_some()
    });
    assert!(listed, "dave's second post is not under Moderation");
    gui.click(".held-row");
    gui.wait("#held-key-replace-0", 20);
    assert!(
        gui.find("#held-key-add-0").is_none(),
        "offered to add dave twice"
    );
    let label = gui.text("#held-key-replace-0");
    let spaced = |f: &str| {
        f.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        label.contains(&spaced(dave.fingerprint())) && label.contains(&spaced(other.fingerprint())),
        "{label}"
    );
    gui.screenshot("12-moderation-replace-key");
    gui.click("#held-key-replace-0");
    gui.wait_text("dave@example.test's key was replaced", 10);
    gui.click("#nav-subscribers");
    gui.wait_text(&spaced(other.fingerprint()), 10);
}

/// A pinned certificate that changed raises the alarm, which offers no way
/// to accept the new one in passing.
#[test]
fn a_changed_certificate_shows_the_alarm() {
    let _guard = Gui::lock();
    let mh = Mailhost::get();
    mh.clear();
    let f = conclave_tests::MailList::new("Garden Club");
    f.server(
        "imap",
        "MAILHOST_UNTRUSTED_HOST",
        "MAILHOST_UNTRUSTED_IMAPS_PORT",
        "tls",
    );
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    // The owner accepted a certificate in the past; the server now shows
    // another one.
    let ep = mh.endpoint("MAILHOST_UNTRUSTED_HOST", "MAILHOST_UNTRUSTED_IMAPS_PORT");
    let store = conclave_core::store::Store::open(&f.list.home.path().join("list.db")).unwrap();
    store
        .set_tls_pin(&ep, &"5".repeat(64), "O=untrusted, CN=mail.example.test", 0)
        .unwrap();
    drop(store);
    let gui = open_prepared(&f);
    gui.wait("#cert-alarm", 30);
    assert!(gui.find("#cert-accept").is_none());
    assert!(gui.text("#cert-alarm").contains("CHANGED"));
    let shown: String = gui.text("#cert-sha256").split_whitespace().collect();
    assert_eq!(
        shown.to_ascii_lowercase(),
        mh.var("MAILHOST_SELFSIGNED_CERT_SHA256")
            .to_ascii_lowercase()
    );
    let pinned: String = gui.text("#cert-pinned").split_whitespace().collect();
    assert_eq!(pinned, "5".repeat(64));
    gui.screenshot("11-certificate-changed-alarm");
}

/// A list whose key is on the OpenPGP card: the app starts the relay, and
/// when a post needs the card it asks for the PIN in a dialog, once; the
/// post goes out and bob's GnuPG reads his copy.
#[test]
fn the_card_pin_is_asked_in_a_dialog() {
    use conclave_tests::card::{pin_flags, ADMIN_PIN, USER_PIN};
    use conclave_tests::VirtualCard;
    let _guard = Gui::lock();
    let _card = VirtualCard::lock();
    let (_, ident) = VirtualCard::fresh();
    let mh = Mailhost::get();
    let f = garden_club();
    let flags = pin_flags(&f.list, USER_PIN, ADMIN_PIN);
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["card", "import", &ident]);
    f.list.run_ok(&args);
    let home = copy_home(&f);
    let gui = Gui::start_in(home);
    // The relay starts with the app, before the page listens for events:
    // the page still learns that both servers answered.
    gui.wait_text("connected; last pass", 30);
    let needle = format!("CARD-IN-GUI-{}", std::process::id());
    mh.inject(
        "alice@example.test",
        "list@example.test",
        &f.subs[0].compose_post(&f.cert, "list@example.test", "...", &needle),
    );
    gui.wait("#pin-dialog", 30);
    assert!(gui.text("#pin-dialog").contains(&ident));
    assert!(gui.text("#pin-dialog").contains("3 tries are left"));
    gui.screenshot("12-card-pin");
    gui.fill("#pin-input", USER_PIN);
    gui.click("#pin-ok");
    gui.wait_text("last pass sent 3", 30);
    let bob = &f.subs[1];
    let read = reads("bob", bob, &needle);
    assert!(read, "bob reads the post");
    // The PIN was asked once for the post (decryption and signature).
    assert!(gui.find("#pin-dialog").is_none());
}

/// The owner moves the list key from its file onto a card from the List key
/// screen; the admin PIN is asked for in the dialog; the Card screen then
/// shows the card holding the list key.
#[test]
fn the_list_key_moves_to_a_card_from_the_key_screen() {
    use conclave_tests::card::ADMIN_PIN;
    use conclave_tests::VirtualCard;
    let _guard = Gui::lock();
    let _card = VirtualCard::lock();
    let (_, ident) = VirtualCard::fresh();
    let f = garden_club();
    let gui = open_prepared(&f);
    gui.click("#nav-key");
    gui.wait(&format!("#key-card option[value='{ident}']"), 20);
    gui.select("#key-card", &ident);
    gui.fill("#key-card-passphrase", conclave_tests::TEST_PASSPHRASE);
    gui.click("#key-to-card");
    gui.wait("#pin-dialog", 30);
    assert!(gui.text("#pin-dialog").to_lowercase().contains("admin"));
    gui.fill("#pin-input", ADMIN_PIN);
    gui.click("#pin-ok");
    gui.wait_text(&format!("on the OpenPGP card {ident}"), 60);
    assert!(!gui.home().join("list-key.asc").exists());
    gui.click("#nav-card");
    let id = format!("#card-{}", ident.replace(':', "-"));
    gui.wait(&id, 20);
    let text = gui.text(&id);
    assert!(text.contains("holds the list key"), "{text}");
    assert!(text.contains("user PIN 3, reset code"), "{text}");
    gui.screenshot("13-card");
}

/// The wizard's third choice of key: a new key, moved at once onto a card
/// (the admin PIN is asked in the dialog); no key file stays behind, and the
/// relay runs with the card.
#[test]
fn the_wizard_puts_a_new_key_on_a_card() {
    use conclave_tests::card::ADMIN_PIN;
    use conclave_tests::VirtualCard;
    let _guard = Gui::lock();
    let _card = VirtualCard::lock();
    let (_, ident) = VirtualCard::fresh();
    conclave_tests::keyring_bus();
    Mailhost::get().clear();
    let gui = Gui::start();
    complete_wizard_with(&gui, ("MAILHOST_HOST", "MAILHOST_IMAPS_PORT"), Some(&ident));
    gui.wait("#pin-dialog", 60);
    assert!(gui.text("#pin-dialog").to_lowercase().contains("admin"));
    gui.fill("#pin-input", ADMIN_PIN);
    gui.click("#pin-ok");
    gui.wait("#nav-dashboard", 60);
    gui.wait_text("connected; last pass", 30);
    assert!(!gui.home().join("list-key.asc").exists());
    gui.click("#nav-key");
    gui.wait_text(&format!("on the OpenPGP card {ident}"), 20);
}

/// The Invite dialog on the Subscribers screen shows the list key's
/// fingerprint and a QR code that reads back as it, and saves the vCard.
#[test]
fn the_invite_dialog_shows_the_fingerprint_and_its_qr_code() {
    let _guard = Gui::lock();
    let f = garden_club();
    let fpr = conclave_tests::cert_fingerprint(&f.cert).unwrap();
    let gui = open_prepared(&f);
    gui.click("#nav-subscribers");
    gui.click("#sub-invite");
    gui.wait("#invite-dialog", 20);
    let shown: String = gui.text("#invite-fingerprint").split_whitespace().collect();
    assert_eq!(shown, fpr);
    assert!(gui.text("#invite-address").contains("list@example.test"));
    // The QR code on screen, read from the screenshot as a phone would.
    let shot = gui.screenshot("14-invite");
    let codes = conclave_tests::qr::decode_png(&std::fs::read(&shot).unwrap());
    assert!(
        codes
            .iter()
            .any(|c| c.starts_with(&format!("OPENPGP4FPR:{fpr}#a=list@example.test&"))),
        "no QR code of the list key on screen: {codes:?}"
    );
    // The vCard is saved where the owner says, with the list key in it.
    let vcf = gui.home().join("garden-club.vcf");
    gui.click("#invite-save-vcard");
    gui.fill("#invite-vcard-path", vcf.to_str().unwrap());
    gui.click("#invite-vcard-write");
    gui.wait_text("vCard written to", 10);
    let vcard = std::fs::read_to_string(&vcf).unwrap();
    assert!(
        vcard.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"),
        "{vcard}"
    );
    assert!(vcard.contains("KEY:data:application/pgp-keys;base64,"));
    gui.click("#invite-close");
    assert!(gui.find("#invite-dialog").is_none());
}

/// A subscriber whose copies bounced until the list stopped them shows as
/// stopped, with the last failure, on the Subscribers screen; Re-enable
/// lets their copies go again.
#[test]
fn a_subscriber_stopped_by_bounces_is_shown_and_re_enabled() {
    let _guard = Gui::lock();
    let f = garden_club();
    {
        let store = conclave_core::store::Store::open(&f.list.home.path().join("list.db")).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        store
            .set_bounce_score("bob@example.test", 5.0, now)
            .unwrap();
        store
            .note_delivery_failure("bob@example.test", now, "5.1.1", "mailbox unavailable")
            .unwrap();
        store
            .set_delivery_disabled("bob@example.test", true)
            .unwrap();
    }
    let gui = open_prepared(&f);
    gui.click("#nav-subscribers");
    gui.wait_text("stopped after bounces (score 5)", 20);
    let shown = gui.text(".subs");
    assert!(
        shown.contains("last failure:") && shown.contains("5.1.1 mailbox unavailable"),
        "{shown}"
    );
    gui.screenshot("15-subscribers-bounces");
    gui.click(".sub-enable");
    let enabled = conclave_tests::wait_until(20, || gui.find(".sub-enable").is_none());
    assert!(enabled, "the Re-enable button stays");
    assert!(!gui.text(".subs").contains("stopped after bounces"));
    let store = conclave_core::store::Store::open(&gui.home().join("list.db")).unwrap();
    assert!(store.delivery_disabled().unwrap().is_empty());
    let bob = store.delivery_health("bob@example.test").unwrap().unwrap();
    assert_eq!(bob.score, 0.0);
}

/// This year, as RFC 5322 dates write it.
fn this_year() -> String {
    let now = conclave_core::clock::rfc5322(std::time::SystemTime::now());
    now.split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string()
}

/// The confirmation token (`confirm-` and 32 hex digits) in a text.
fn token_in(text: &str) -> Option<String> {
    text.match_indices("confirm-").find_map(|(at, _)| {
        let token = text.get(at..at + "confirm-".len() + 32)?;
        token["confirm-".len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| token.to_string())
    })
}

/// A newcomer asks by mail to join (GnuPG, their key attached), proves the
/// key by answering the list's token, signed and encrypted; the request then
/// waits on the Requests screen, where the owner approves it, after which
/// the newcomer's GnuPG reads the next post. A message to the owner address
/// waits under Moderation as "For the owner", with no Approve.
#[test]
fn a_subscription_asked_by_mail_is_approved_from_the_requests_screen() {
    use conclave_tests::{Engine, Post, Subscriber};
    let _guard = Gui::lock();
    let mh = Mailhost::get();
    let f = garden_club();
    let request = "list+request@example.test";
    // The mail host has mailboxes for list, alice, bob and carol only: the
    // newcomer's address is a plus address of alice's mailbox, with a key
    // of its own.
    let newcomer = Subscriber::new(Engine::Gpg, "alice+newcomer@example.test");
    newcomer.import_cert(&f.cert).unwrap();
    let delivered = |to: &str, eml: Vec<u8>| {
        let mut m = format!("Delivered-To: {to}\r\n").into_bytes();
        m.extend(eml);
        m
    };
    // Asks to join by mail, before the app opens the list; returns the
    // token the list sent back, encrypted to the key that asked.
    let ask_to_join = |s: &Subscriber| {
        let ask = Post::new("subscribe", "subscribe").with_key();
        let out = f
            .list
            .process(&delivered(request, s.compose(&f.cert, request, &ask)));
        assert!(out.contains("a token was sent"), "{out}");
        f.list
            .export_outbox()
            .values()
            .filter_map(|m| s.decrypt(m).ok())
            .find_map(|d| token_in(&conclave_tests::mime::all_text_plain(&d.entity).join("\n")))
            .expect("the requester reads a confirmation token")
    };
    let proof = |s: &Subscriber, token: &str| {
        let answer = Post::new("Re: Confirm your subscription", &format!("> {token}\n"));
        s.compose(&f.cert, request, &answer)
    };
    let token = ask_to_join(&newcomer);
    let out = f
        .list
        .process(&delivered(request, proof(&newcomer, &token)));
    assert!(out.contains("key proven, waiting for the owner"), "{out}");
    // A second one asks too; their proof comes later, while the app runs.
    let stranger = Subscriber::new(Engine::Gpg, "bob+stranger@example.test");
    stranger.import_cert(&f.cert).unwrap();
    let stranger_token = ask_to_join(&stranger);
    let owner = "list+owner@example.test";
    let out = f.list.process(&delivered(
        owner,
        f.subs[2].compose_post(&f.cert, owner, "A word", "OWNER-NOTE"),
    ));
    assert!(out.starts_with("held: a message for the owner"), "{out}");

    let gui = open_prepared(&f);
    gui.wait_text("connected; last pass", 30);
    assert_eq!(gui.text("#count-requests strong"), "1");
    gui.click("#nav-requests");
    gui.wait(".request-approve", 20);
    let shown = gui.text(".request");
    for fact in [
        "subscribe: alice+newcomer@example.test",
        "EdDSA",
        "does not expire",
    ] {
        assert!(shown.contains(fact), "{fact:?} not in {shown}");
    }
    let fingerprint: String = gui
        .text(".request-fingerprint")
        .split_whitespace()
        .collect();
    assert_eq!(fingerprint, newcomer.fingerprint());
    assert_eq!(gui.text(".request-waits"), "you");
    let proven = gui.text(".request-proven");
    assert!(proven.contains(&this_year()), "{proven}");
    gui.screenshot("14-requests");
    gui.click(".request-approve");
    gui.wait("#requests-empty", 20);
    assert!(gui.text("body").contains("bob+stranger@example.test"));
    assert!(gui.find(".request-approve").is_none());

    // The stranger's proof arrives by mail while the screen is open: their
    // request shows up by itself, and the owner refuses it with a reason,
    // which the stranger reads.
    mh.inject(
        "bob+stranger@example.test",
        request,
        &proof(&stranger, &stranger_token),
    );
    gui.wait(".request-approve", 30);
    assert!(gui.text(".request").contains("bob+stranger@example.test"));
    gui.fill(".request-reason", "the list is for club members");
    gui.click(".request-refuse");
    gui.wait_text("was refused; they are told", 20);
    assert!(
        gui.find(".request").is_none(),
        "the refused request still shows"
    );
    assert!(
        reads("bob", &stranger, "the list is for club members"),
        "the stranger is not told why"
    );
    gui.click("#nav-subscribers");
    gui.wait_text("User IDs: alice+newcomer@example.test", 10);

    // bob's next post reaches the newcomer, who reads it with GnuPG.
    let needle = format!("FIRST-POST-FOR-NEWCOMER-{}", std::process::id());
    mh.inject(
        "bob@example.test",
        "list@example.test",
        &f.subs[1].compose_post(&f.cert, "list@example.test", "Welcome", &needle),
    );
    let read = reads("alice", &newcomer, &needle);
    assert!(read, "the newcomer did not get a copy they can decrypt");

    // The message to the owner address is read, never approved.
    gui.click("#nav-moderation");
    gui.wait_text("For the owner", 10);
    gui.click(".held-row");
    gui.wait("#held-for-owner", 20);
    assert!(gui.text("#held-text").contains("OWNER-NOTE"));
    assert!(gui.find("#held-approve").is_none(), "an Approve button");
    assert!(gui.find("#held-discard").is_some());
    gui.screenshot("15-moderation-for-the-owner");
}

/// Publish on the List key screen uploads the key to the keyserver; the
/// relay in the app completes the keyserver's address check by itself when
/// the verification mail arrives, and says so.
#[test]
fn the_list_key_is_published_from_the_key_screen() {
    let _guard = Gui::lock();
    let ks = conclave_tests::Keyserver::start();
    let f = garden_club();
    f.list.config_set("net.resolve", &ks.resolve());
    f.list.config_set("keys.keyserver", &ks.base());
    let gui = open_prepared(&f);
    gui.wait_text("connected; last pass", 30);
    gui.click("#nav-key");
    gui.wait("#key-publish", 10);
    gui.click("#key-publish");
    let said = conclave_tests::wait_until(20, || {
        gui.text("body")
            .contains("is uploaded to https://keys.example.test")
    });
    assert!(said, "{:?}\n{}", ks.seen(), gui.text("body"));
    gui.screenshot("13-key-published");
    let fpr = conclave_tests::cert_fingerprint(&f.cert).unwrap();
    assert!(
        conclave_tests::wait_until(60, || ks.has_fingerprint(&fpr)),
        "the relay did not open the verification link: {:?}",
        ks.seen()
    );
    assert_eq!(ks.verified(), vec!["list@example.test".to_string()]);
    gui.wait_text("confirmed the list address", 20);
}

/// The owner imports a keyring from the Subscribers screen, pages through
/// the list and finds one member by search; then moves a Schleuder list's
/// export in, where keys that clash with subscribers' own are named, not
/// taken.
#[test]
fn subscribers_are_imported_paged_and_searched_in_the_app() {
    use sequoia_openpgp::serialize::SerializeInto;
    let _guard = Gui::lock();
    let f = garden_club();
    let addresses: Vec<String> = (0..120)
        .map(|i| format!("member{i:04}@example.test"))
        .collect();
    let certs = conclave_tests::bench::generate_certs(
        &addresses,
        sequoia_openpgp::cert::CipherSuite::Cv25519,
    );
    let ring: Vec<u8> = certs.iter().flat_map(|c| c.to_vec().unwrap()).collect();
    let keyring = f.list.write_aux("members.gpg", &ring);

    let gui = open_prepared(&f);
    gui.click("#nav-subscribers");
    gui.wait_text("3 subscribers", 20);
    gui.click("#sub-import-open");
    gui.fill("#sub-import-keyring", keyring.to_str().unwrap());
    gui.click("#sub-import-run");
    gui.wait_text("imported: 120 added (120 keys read)", 60);
    // What went well is folded away, counted.
    assert_eq!(
        gui.text("#sub-import-fine summary"),
        "120 subscribed as asked"
    );
    assert_eq!(gui.text("#sub-total"), "1–50 of 123");
    let first = gui.text(".subs");
    assert!(
        first.contains("alice@example.test") && first.contains("member0046@example.test"),
        "{first}"
    );
    assert!(!first.contains("member0047@example.test"), "{first}");
    let prev_disabled = |gui: &Gui| {
        gui.js(
            "return document.querySelector('#sub-prev').disabled;",
            serde_json::json!([]),
        )
        .as_bool()
        .unwrap()
    };
    assert!(prev_disabled(&gui));
    gui.click("#sub-next");
    gui.wait_text("51–100 of 123", 20);
    gui.click("#sub-next");
    gui.wait_text("101–123 of 123", 20);
    assert!(gui.text(".subs").contains("member0119@example.test"));
    assert!(gui
        .js(
            "return document.querySelector('#sub-next').disabled;",
            serde_json::json!([])
        )
        .as_bool()
        .unwrap());
    assert!(!prev_disabled(&gui));

    // Search by address, then by a piece of a fingerprint.
    gui.fill("#sub-search", "MEMBER0077");
    gui.wait_text("1 subscriber matching “MEMBER0077”", 20);
    let found = gui.text(".subs");
    assert!(
        found.contains("member0077@example.test") && !found.contains("member0076"),
        "{found}"
    );
    let fpr = certs[33].fingerprint().to_hex();
    gui.fill("#sub-search", &fpr[4..16].to_lowercase());
    gui.wait_text("member0033@example.test", 20);
    gui.js(
        "document.querySelector('.screen-head').scrollIntoView();",
        serde_json::json!([]),
    );
    gui.screenshot("16-subscribers-search");
    // A blank search is no search.
    gui.fill("#sub-search", " ");
    gui.wait_text("1–50 of 123", 20);

    // A Schleuder list's export: alice and bob are subscribed here with
    // their own keys, which stay; dave's key does not carry his address.
    let data = conclave_tests::workspace_root().join("tests/data/schleuder");
    gui.click("#sub-import-open");
    gui.fill(
        "#sub-import-keyring",
        data.join("keys.asc").to_str().unwrap(),
    );
    gui.fill(
        "#sub-import-schleuder",
        data.join("subscriptions.txt").to_str().unwrap(),
    );
    gui.click("#sub-import-run");
    gui.wait_text("imported: 1 added, 1 refused, 3 skipped (5 keys read)", 60);
    let report = gui.text("#sub-import-result");
    assert!(
        report.contains("dave@example.test") && report.contains("dave@old.example.test"),
        "{report}"
    );
    assert!(report.contains("subscribed with another key"), "{report}");
    assert!(
        report.contains("an admin of the Schleuder list"),
        "{report}"
    );
    assert!(report.contains("1 subscribed as asked"), "{report}");
    assert_eq!(gui.text("#sub-total"), "1–50 of 124");
    gui.js(
        "document.querySelector('#sub-import-fine').open = true;",
        serde_json::json!([]),
    );
    gui.js(
        "document.querySelector('.screen-head').scrollIntoView();",
        serde_json::json!([]),
    );
    gui.screenshot("17-subscribers-import");
    gui.click("#sub-import-close");
    assert!(conclave_tests::wait_until(10, || gui
        .find("#sub-import-result")
        .is_none()));
}

/// A long send shows on the dashboard as it goes: a bar counting the copies
/// the server took, here paced by the provider's limit (`smtp.rate_per_minute`,
/// twenty a second: some three seconds for 63 copies), then the pass's line.
#[test]
fn a_long_send_shows_its_progress_on_the_dashboard() {
    use sequoia_openpgp::serialize::SerializeInto;
    let _guard = Gui::lock();
    let mh = Mailhost::get();
    let f = garden_club();
    let addresses: Vec<String> = (0..60)
        .map(|i| format!("p{i:03}@{}", mh.var("MAILHOST_SINK_DOMAIN")))
        .collect();
    let certs = conclave_tests::bench::generate_certs(
        &addresses,
        sequoia_openpgp::cert::CipherSuite::Cv25519,
    );
    let ring: Vec<u8> = certs.iter().flat_map(|c| c.to_vec().unwrap()).collect();
    let keyring = f.list.write_aux("members.gpg", &ring);
    f.list
        .run_ok(&["subscriber", "import", keyring.to_str().unwrap()]);
    f.list.config_set("smtp.rate_per_minute", "1200");
    let gui = open_prepared(&f);
    gui.wait_text("connected; last pass", 30);
    let needle = format!("PROGRESS-{}", std::process::id());
    mh.inject(
        "alice@example.test",
        "list@example.test",
        &f.subs[0].compose_post(&f.cert, "list@example.test", "...", &needle),
    );
    // Part of the way: some copies sent, not all.
    let mut seen = Vec::new();
    let midway = conclave_tests::wait_until(60, || {
        let shown = gui.js(
            "const p = document.querySelector('#progress'); \
             return p ? [p.textContent, p.querySelector('progress').value, \
             p.querySelector('progress').max] : null;",
            serde_json::json!([]),
        );
        let Some([text, done, total]) = shown.as_array().map(|a| a.as_slice()) else {
            return false;
        };
        let (done, total) = (done.as_f64().unwrap_or(0.0), total.as_f64().unwrap_or(0.0));
        seen.push(text.as_str().unwrap_or_default().to_string());
        total == 63.0 && done > 0.0 && done < total
    });
    assert!(midway, "no send under way was shown: {seen:?}");
    let text = seen.last().unwrap();
    assert!(text.trim().ends_with("of 63 copies sent"), "{text}");
    gui.screenshot("17-dashboard-progress");
    // Then the pass's line, and the bar is gone.
    gui.wait_text("last pass sent 63, failed 0, deferred 0", 60);
    assert!(gui.find("#progress").is_none());
    assert!(conclave_tests::wait_until(20, || reads(
        "alice", &f.subs[0], &needle
    )));
}
