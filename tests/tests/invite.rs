//! `conclave invite`: the invitation names the addresses and the list key's
//! fingerprint, its QR code reads back as that fingerprint and address, and
//! its vCard carries the list key in a form GnuPG imports.

use std::process::Command;

use base64::Engine as _;
use conclave_tests::{Conclave, Engine, Subscriber};

const LIST: &str = "list@example.test";
const NAME: &str = "Garden Club; roses, tulips";

/// The value of `key` in a URI fragment, percent-decoded.
fn fragment_param(uri: &str, key: &str) -> Option<String> {
    let fragment = uri.split_once('#')?.1;
    let raw = fragment
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{key}=")))?;
    let mut out = Vec::new();
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = [bytes.next()?, bytes.next()?]
                .iter()
                .map(|&c| char::from(c))
                .collect();
            out.push(u8::from_str_radix(&hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// A vCard's properties, unfolded (RFC 6350 §3.2), as (name, value).
fn vcard_properties(vcard: &str) -> Vec<(String, String)> {
    vcard
        .replace("\r\n ", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').expect("a property line");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn unescape_text(v: &str) -> String {
    v.replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\n", "\n")
        .replace("\\\\", "\\")
}

fn list(c: &Conclave) -> String {
    c.init(LIST, NAME);
    conclave_tests::cert_fingerprint(&c.list_cert()).unwrap()
}

fn grouped(fpr: &str) -> String {
    fpr.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_invitation_names_the_addresses_and_the_fingerprint() {
    let c = Conclave::new();
    let fpr = list(&c);
    let out = c.run_ok(&["invite"]);
    for needle in [
        LIST,
        "list+request@example.test",
        "list+owner@example.test",
        &grouped(&fpr),
        "subscribe",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    // The owner's address is an option.
    c.config_set("list.owner_address", "rosa@example.test");
    c.config_set("list.request_address", "garden-requests@example.test");
    let out = c.run_ok(&["invite"]);
    assert!(
        out.contains("owner of the list: rosa@example.test"),
        "{out}"
    );
    assert!(out.contains("garden-requests@example.test"), "{out}");
    assert!(!out.contains("list+owner@"), "{out}");
    let shown = c.run_ok(&["config", "show"]);
    assert!(shown.contains("rosa@example.test"), "{shown}");
}

#[test]
fn the_terminal_qr_code_reads_back_as_the_fingerprint_and_address() {
    let c = Conclave::new();
    let fpr = list(&c);
    let out = c.run_ok(&["invite"]);
    let qr = conclave_tests::qr::decode_terminal(&out).expect("a QR code in the output");
    assert!(qr.starts_with(&format!("OPENPGP4FPR:{fpr}#")), "{qr}");
    assert_eq!(fragment_param(&qr, "a").as_deref(), Some(LIST), "{qr}");
    assert_eq!(fragment_param(&qr, "n").as_deref(), Some(NAME), "{qr}");
    // The text shows what the code says.
    assert!(out.contains(&qr), "{out}");
}

#[test]
fn the_svg_qr_code_reads_back_the_same() {
    let c = Conclave::new();
    let fpr = list(&c);
    let file = c.write_aux("list-qr.svg", b"");
    c.run_ok(&["invite", "--qr-svg", file.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&file).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let qr = conclave_tests::qr::decode_svg(&svg).expect("a QR code in the SVG");
    assert!(
        qr.starts_with(&format!("OPENPGP4FPR:{fpr}#a={LIST}&")),
        "{qr}"
    );
}

#[test]
fn the_vcard_carries_the_list_key_and_gnupg_imports_it() {
    let c = Conclave::new();
    let fpr = list(&c);
    let file = c.write_aux("list.vcf", b"");
    c.run_ok(&["invite", "--vcard", file.to_str().unwrap()]);
    let vcard = std::fs::read_to_string(&file).unwrap();
    // Every line ends with CRLF and is folded to at most 75 octets.
    assert!(vcard.ends_with("\r\n"));
    assert!(!vcard.replace("\r\n", "").contains('\n'));
    for line in vcard.split("\r\n") {
        assert!(line.len() <= 75, "{line:?}");
    }
    let props = vcard_properties(&vcard);
    let get = |name: &str| {
        props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {vcard}"))
    };
    assert_eq!(props.first().unwrap(), &("BEGIN".into(), "VCARD".into()));
    assert_eq!(props.get(1).unwrap(), &("VERSION".into(), "4.0".into()));
    assert_eq!(props.last().unwrap(), &("END".into(), "VCARD".into()));
    assert_eq!(unescape_text(&get("FN")), NAME);
    assert_eq!(get("EMAIL"), LIST);
    let key = get("KEY");
    let b64 = key
        .strip_prefix("data:application/pgp-keys;base64,")
        .unwrap_or_else(|| panic!("KEY is not a pgp-keys data URI: {key}"));
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(conclave_tests::cert_fingerprint(&key).unwrap(), fpr);

    // GnuPG imports it as the list key, with the list address.
    let newcomer = Subscriber::new(Engine::Gpg, "newcomer@example.test");
    newcomer.import_cert(&key).unwrap();
    let listing = Command::new("gpg")
        .env("GNUPGHOME", newcomer.home())
        .args(["--batch", "--with-colons", "--list-keys", &fpr])
        .output()
        .unwrap();
    assert!(listing.status.success(), "{listing:?}");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(&format!("fpr:::::::::{fpr}:")),
        "{listing}"
    );
    assert!(
        listing.lines().any(|l| l.starts_with("uid:")
            && l.split(':')
                .nth(9)
                .is_some_and(|u| u.contains(&format!("<{LIST}>")))),
        "{listing}"
    );
    // Only the public key is handed out.
    use sequoia_openpgp::parse::Parse as _;
    assert!(!sequoia_openpgp::Cert::from_bytes(&key).unwrap().is_tsk());
}

#[test]
fn writing_to_a_folder_that_does_not_exist_fails_on_one_line() {
    let c = Conclave::new();
    list(&c);
    let (code, stderr) = c.run_err(&["invite", "--vcard", "/nonexistent/dir/list.vcf"]);
    assert_ne!(code, 0);
    assert!(
        stderr.starts_with("conclave: error: cannot write /nonexistent/dir/list.vcf"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
