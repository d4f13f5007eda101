//! The desktop app in its real webview under Xvfb, driven over WebDriver
//! (tauri-driver + WebKitWebDriver), against the loopback mail host.
//! Screenshots of each screen land in tests/artifacts/gui/.

use conclave_tests::webdriver::Gui;
use conclave_tests::Mailhost;

/// Fills the wizard for the list mailbox of the mail host, with `imap` as
/// the incoming server (host key, port key), and creates the list.
fn complete_wizard(gui: &Gui, imap: (&str, &str)) {
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
    gui.screenshot("03-wizard-key");
    gui.click("#wiz-finish");
}

/// The wizard, with the test CA for the trusted host: the list is created,
/// the relay starts and both servers answer.
#[test]
fn the_wizard_sets_up_a_list_that_relays() {
    let _guard = Gui::lock();
    let mh = Mailhost::get();
    mh.clear();
    let gui = Gui::start();
    complete_wizard(&gui, ("MAILHOST_HOST", "MAILHOST_IMAPS_PORT"));
    gui.wait("#nav-dashboard", 30);
    gui.wait_text("connected; last pass", 30);
    assert!(gui.text("#connection").contains("Relay running"));
    assert!(gui.home().join("list.db").exists());
    gui.screenshot("04-dashboard");
    for screen in ["moderation", "subscribers", "certificates", "activity"] {
        gui.click(&format!("#nav-{screen}"));
        gui.wait(&format!("#nav-{screen}.active"), 10);
        gui.screenshot(&format!("05-{screen}"));
    }
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
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(mh.var("MAILHOST_SELFSIGNED_CERT"))
        .output()
        .unwrap();
    let expected: String = String::from_utf8_lossy(&out.stdout)
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .replace(':', "");
    let shown: String = gui.text("#cert-sha256").split_whitespace().collect();
    assert_eq!(shown.to_ascii_uppercase(), expected.to_ascii_uppercase());
    gui.screenshot("06-certificate-dialog");
    gui.click("#cert-accept");
    gui.wait_text("connected; last pass", 30);
    gui.click("#nav-certificates");
    gui.wait_text(&mh.var("MAILHOST_UNTRUSTED_IMAPS_PORT"), 10);
    gui.screenshot("07-certificates-pinned");
}
