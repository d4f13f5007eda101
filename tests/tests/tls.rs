//! Certificates against the real loopback mail host: public/CA trust, refusal
//! of unknown certificates before anything is sent, pinning by fingerprint,
//! the "certificate changed" alarm, STARTTLS that is not offered, and no TLS
//! session resumption across ports.

use conclave_core::net::tls::{self, Endpoint, Protocol, Security, TrustSettings};
use conclave_core::store::Store;
use conclave_tests::{Conclave, Mailhost};

fn list() -> Conclave {
    let c = Conclave::new();
    c.init("list@example.test", "TLS");
    c
}

#[test]
fn trusted_endpoints_work_with_the_ca_file() {
    let mh = Mailhost::get();
    let c = list();
    // Without the test CA, nothing trusts the server.
    let ep = mh.endpoint("MAILHOST_HOST", "MAILHOST_IMAPS_PORT");
    let (code, err) = c.run_err(&["certs", "show", &ep]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot trust the certificate") && err.contains("unknown issuer"),
        "{err}"
    );
    c.config_set("tls.ca_file", &mh.var("MAILHOST_CA_CERT"));
    for (ep, extra) in [
        (mh.endpoint("MAILHOST_HOST", "MAILHOST_IMAPS_PORT"), vec![]),
        (mh.endpoint("MAILHOST_HOST", "MAILHOST_SMTPS_PORT"), vec![]),
        (
            mh.endpoint("MAILHOST_HOST", "MAILHOST_IMAP_PORT"),
            vec!["--starttls", "imap"],
        ),
        (
            mh.endpoint("MAILHOST_HOST", "MAILHOST_SUBMISSION_PORT"),
            vec!["--starttls", "smtp"],
        ),
    ] {
        let mut args = vec!["certs", "show", ep.as_str()];
        args.extend(extra);
        let out = c.run_ok(&args);
        assert!(
            out.contains("trusted: yes, by a public or configured CA"),
            "{ep}: {out}"
        );
        assert!(
            out.contains(&format!(
                "SHA-256:  {}",
                mh.var("MAILHOST_SERVER_CERT_SHA256")
            )),
            "{out}"
        );
    }
}

#[test]
fn self_signed_is_refused_then_pinned_by_fingerprint() {
    let mh = Mailhost::get();
    let c = list();
    c.config_set("tls.ca_file", &mh.var("MAILHOST_CA_CERT"));
    let sha = mh.var("MAILHOST_SELFSIGNED_CERT_SHA256");
    for (ep, extra) in [
        (
            mh.endpoint("MAILHOST_UNTRUSTED_HOST", "MAILHOST_UNTRUSTED_IMAPS_PORT"),
            vec![],
        ),
        (
            mh.endpoint(
                "MAILHOST_UNTRUSTED_HOST",
                "MAILHOST_UNTRUSTED_SUBMISSION_PORT",
            ),
            vec!["--starttls", "smtp"],
        ),
    ] {
        let mut show = vec!["certs", "show", ep.as_str()];
        show.extend(extra.iter().copied());
        let (code, err) = c.run_err(&show);
        assert_eq!(code, 1, "{ep}");
        assert!(
            err.contains(&format!("cannot trust the certificate of {ep}")) && err.contains(&sha),
            "{err}"
        );
        // A wrong fingerprint pins nothing.
        let mut wrong = vec![
            "certs",
            "accept",
            ep.as_str(),
            "--sha256",
            "00000000000000000000000000000000000000000000000000000000000000aa",
        ];
        wrong.extend(extra.iter().copied());
        let (code, err) = c.run_err(&wrong);
        assert_ne!(code, 0);
        assert!(err.contains("nothing was pinned"), "{err}");
        // The right one, written with colons in upper case, pins it.
        let colons: String = sha
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let mut accept = vec!["certs", "accept", ep.as_str(), "--sha256", colons.as_str()];
        accept.extend(extra.iter().copied());
        assert!(c
            .run_ok(&accept)
            .contains(&format!("pinned {sha} for {ep}")));
        let out = c.run_ok(&show);
        assert!(out.contains("trusted: yes, by the owner's pin"), "{out}");
    }
    let pins = c.run_ok(&["certs", "list"]);
    assert_eq!(pins.lines().count(), 2, "{pins}");
    let ep = mh.endpoint("MAILHOST_UNTRUSTED_HOST", "MAILHOST_UNTRUSTED_IMAPS_PORT");
    c.run_ok(&["certs", "forget", &ep]);
    assert!(c
        .run_err(&["certs", "show", &ep])
        .1
        .contains("cannot trust"));
    assert_eq!(c.run_ok(&["certs", "list"]).lines().count(), 1);
}

#[test]
fn a_changed_certificate_raises_the_alarm() {
    let mh = Mailhost::get();
    let c = list();
    let ep = mh.endpoint("MAILHOST_UNTRUSTED_HOST", "MAILHOST_UNTRUSTED_IMAPS_PORT");
    c.run_ok(&[
        "certs",
        "accept",
        &ep,
        "--sha256",
        &mh.var("MAILHOST_SELFSIGNED_CERT_SHA256"),
    ]);
    // The server now presents another certificate than the one pinned: here
    // the pin is replaced by the fingerprint of a certificate of the past.
    let store = Store::open(&c.home.path().join("list.db")).unwrap();
    let old = "5".repeat(64);
    store
        .set_tls_pin(&ep, &old, "O=untrusted, CN=mail.example.test", 0)
        .unwrap();
    drop(store);
    let (code, err) = c.run_err(&["certs", "show", &ep]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "the certificate of {ep} changed: pinned SHA-256 {old}, presented {}",
            mh.var("MAILHOST_SELFSIGNED_CERT_SHA256")
        )),
        "{err}"
    );
    // A CA-trusted certificate does not silence the alarm either.
    let trusted = mh.endpoint("MAILHOST_HOST", "MAILHOST_IMAPS_PORT");
    let store = Store::open(&c.home.path().join("list.db")).unwrap();
    store.set_tls_pin(&trusted, &old, "", 0).unwrap();
    drop(store);
    c.config_set("tls.ca_file", &mh.var("MAILHOST_CA_CERT"));
    assert!(c
        .run_err(&["certs", "show", &trusted])
        .1
        .contains("changed"));
    // The pin is still the old one: nothing re-pinned it.
    assert!(c.run_ok(&["certs", "list"]).contains(&old));
}

#[test]
fn a_server_without_starttls_is_refused() {
    let mh = Mailhost::get();
    let c = list();
    for (ep, proto) in [
        (
            mh.endpoint("MAILHOST_PLAIN_HOST", "MAILHOST_PLAIN_IMAP_PORT"),
            "imap",
        ),
        (
            mh.endpoint("MAILHOST_PLAIN_HOST", "MAILHOST_PLAIN_SUBMISSION_PORT"),
            "smtp",
        ),
    ] {
        let (code, err) = c.run_err(&["certs", "show", &ep, "--starttls", proto]);
        assert_eq!(code, 1);
        assert!(
            err.contains(&format!(
                "{ep} does not offer STARTTLS; refusing to continue without TLS"
            )),
            "{err}"
        );
    }
}

/// All the mail host's Postfix ports share TLS session tickets: a client that
/// resumed a session from a trusted port on an untrusted one would skip
/// verification. Each connection here has resumption off.
#[test]
fn no_session_resumption_across_ports() {
    let mh = Mailhost::get();
    let trust = TrustSettings {
        ca_file: Some(mh.var("MAILHOST_CA_CERT").into()),
        pin: None,
        vouched: false,
    };
    let trusted = Endpoint {
        host: mh.var("MAILHOST_HOST"),
        port: mh.port("MAILHOST_SMTPS_PORT"),
        security: Security::Tls,
        protocol: Protocol::Smtp,
    };
    let untrusted = Endpoint {
        host: mh.var("MAILHOST_UNTRUSTED_HOST"),
        port: mh.port("MAILHOST_UNTRUSTED_SMTPS_PORT"),
        security: Security::Tls,
        protocol: Protocol::Smtp,
    };
    for _ in 0..3 {
        tls::block_on(tls::connect(&trusted, &trust))
            .unwrap()
            .expect("the trusted port works");
        match tls::block_on(tls::connect(&untrusted, &trust)).unwrap() {
            Err(tls::TlsError::Untrusted { .. }) => {}
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("the untrusted port must never be accepted"),
        }
    }
}

/// `certs accept` never replaces a pin that differs from the certificate
/// presented: the owner forgets the old one on purpose first.
#[test]
fn certs_accept_never_replaces_another_pin() {
    let mh = Mailhost::get();
    let c = list();
    let sha = mh.var("MAILHOST_SELFSIGNED_CERT_SHA256");
    let ep = mh.endpoint("MAILHOST_UNTRUSTED_HOST", "MAILHOST_UNTRUSTED_IMAPS_PORT");
    // Another certificate was pinned for this server before.
    let other = "11".repeat(32);
    let store = conclave_core::store::Store::open(&c.home.path().join("list.db")).unwrap();
    store.set_tls_pin(&ep, &other, "CN=before", 0).unwrap();
    drop(store);
    let (code, err) = c.run_err(&["certs", "accept", ep.as_str(), "--sha256", &sha]);
    assert_ne!(code, 0);
    assert!(
        err.contains("has another certificate pinned") && err.contains(&other),
        "{err}"
    );
    c.run_ok(&["certs", "forget", ep.as_str()]);
    c.run_ok(&["certs", "accept", ep.as_str(), "--sha256", &sha]);
}

/// A TCP relay on loopback that forwards each connection to whichever of the
/// mail host's servers it points at now: the network path to a server that
/// changes under the owner, with the real servers at both ends.
struct Path {
    port: u16,
    to: std::sync::Arc<std::sync::Mutex<(String, u16)>>,
}

impl Path {
    fn to(host: String, port: u16) -> Path {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap().port();
        let to = std::sync::Arc::new(std::sync::Mutex::new((host, port)));
        let target = to.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (host, port) = target.lock().unwrap().clone();
                let Ok(server) = TcpStream::connect((host.as_str(), port)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Path { port: local, to }
    }

    fn switch(&self, host: String, port: u16) {
        *self.to.lock().unwrap() = (host, port);
    }
}

/// Trust does not step down: a server a certificate authority vouched for
/// that now shows a self-signed certificate gets the alarm of a changed
/// pin, with no way to accept it but forgetting first, on purpose.
#[test]
fn a_vouched_server_that_turns_self_signed_raises_the_alarm() {
    let mh = Mailhost::get();
    let c = list();
    c.config_set("tls.ca_file", &mh.var("MAILHOST_CA_CERT"));
    let path = Path::to(mh.var("MAILHOST_HOST"), mh.port("MAILHOST_IMAPS_PORT"));
    let ep = format!("127.0.0.1:{}", path.port);
    let out = c.run_ok(&["certs", "show", &ep, "--tls"]);
    assert!(
        out.contains("trusted: yes, by a public or configured CA"),
        "{out}"
    );
    // The same server now shows the self-signed certificate.
    path.switch(
        mh.var("MAILHOST_UNTRUSTED_HOST"),
        mh.port("MAILHOST_UNTRUSTED_IMAPS_PORT"),
    );
    let sha = mh.var("MAILHOST_SELFSIGNED_CERT_SHA256");
    let (code, err) = c.run_err(&["certs", "show", &ep, "--tls"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "the certificate of {ep} changed: this server was vouched for by a certificate authority and now shows a self-signed certificate (SHA-256 {sha})"
        )),
        "{err}"
    );
    // No friendly Accept: accepting exactly that certificate pins nothing.
    let (code, err) = c.run_err(&["certs", "accept", &ep, "--tls", "--sha256", &sha]);
    assert_ne!(code, 0);
    assert!(
        err.contains("nothing was pinned") && err.contains(&format!("conclave certs forget {ep}")),
        "{err}"
    );
    assert_eq!(c.run_ok(&["certs", "list"]), "");
    // Forgetting on purpose brings back the question, and accepting works.
    c.run_ok(&["certs", "forget", &ep]);
    let (_, err) = c.run_err(&["certs", "show", &ep, "--tls"]);
    assert!(
        err.contains(&format!("cannot trust the certificate of {ep}")),
        "{err}"
    );
    assert!(c
        .run_ok(&["certs", "accept", &ep, "--tls", "--sha256", &sha])
        .contains(&format!("pinned {sha} for {ep}")));
}

/// A server the configured CA vouched for, whose certificate no authority
/// vouches for any more (the CA file names another authority now), is the
/// alarm too.
#[test]
fn a_vouched_server_no_authority_vouches_for_raises_the_alarm() {
    let mh = Mailhost::get();
    let c = list();
    let ep = mh.endpoint("MAILHOST_HOST", "MAILHOST_SMTPS_PORT");
    c.config_set("tls.ca_file", &mh.var("MAILHOST_CA_CERT"));
    c.run_ok(&["certs", "show", &ep]);
    c.config_set("tls.ca_file", &mh.var("MAILHOST_SELFSIGNED_CERT"));
    let (code, err) = c.run_err(&["certs", "show", &ep]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "the certificate of {ep} changed: this server was vouched for by a certificate authority and now shows a certificate that no certificate authority vouches for (it is signed by an unknown issuer"
        )),
        "{err}"
    );
    let sha = mh.var("MAILHOST_SERVER_CERT_SHA256");
    let (_, err) = c.run_err(&["certs", "accept", &ep, "--sha256", &sha]);
    assert!(err.contains("nothing was pinned"), "{err}");
}

/// The relay remembers that an authority vouched for its SMTP server when
/// it sends, and stops with the alarm, sending nothing, once the server on
/// that path shows a self-signed certificate.
#[test]
fn the_relay_stops_when_its_vouched_server_turns_self_signed() {
    let mh = Mailhost::get();
    let f = conclave_tests::MailList::new("Step down");
    f.server("smtp", "MAILHOST_HOST", "MAILHOST_SMTPS_PORT", "tls");
    let path = Path::to(mh.var("MAILHOST_HOST"), mh.port("MAILHOST_SMTPS_PORT"));
    f.list.config_set("smtp.host", "127.0.0.1");
    f.list.config_set("smtp.port", &path.port.to_string());
    let post = |subject: &str| {
        f.list
            .process(&f.subs[0].compose_post(&f.cert, "list@example.test", subject, subject))
    };
    assert_eq!(post("first"), "distributed to 3");
    let out = f.list.run_ok(&["outbox", "send"]);
    assert!(out.contains("sent 3, failed 0"), "{out}");
    assert_eq!(post("second"), "distributed to 3");
    path.switch(
        mh.var("MAILHOST_UNTRUSTED_HOST"),
        mh.port("MAILHOST_UNTRUSTED_SMTPS_PORT"),
    );
    let (code, err) = f.list.run_err(&["outbox", "send"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "the certificate of 127.0.0.1:{} changed: this server was vouched for by a certificate authority and now shows a self-signed certificate",
            path.port
        )),
        "{err}"
    );
}
