//! `conclave`: run an end-to-end encrypted mailing list from the command line.
//! Every engine feature is here, headless and scriptable.

mod cli;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use conclave_core::{KeySource, List, Password, SystemClock};

use cli::{
    CardCmd, CertsCmd, Cli, Command, ConfigCmd, HeldCmd, KeyCmd, OutboxCmd, ReachArgs,
    SubscriberCmd,
};
use conclave_core::crypto::card::{PinKind, PinRequest, PinSource};
use conclave_core::net::tls::{self, Protocol, Security};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        let mut line = format!("{e}");
        for cause in e.chain().skip(1) {
            let c = cause.to_string();
            if !line.contains(&c) {
                line.push_str(": ");
                line.push_str(&c);
            }
        }
        eprintln!("conclave: error: {}", line.replace('\n', " "));
        std::process::exit(1);
    }
}

fn home(cli: &Cli) -> Result<PathBuf> {
    if let Some(h) = &cli.home {
        return Ok(h.clone());
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("cannot find a home for the list: give --home DIR")?;
    Ok(base.join("conclave"))
}

/// Reads a passphrase file, dropping one trailing line break.
fn read_passphrase(path: &Path) -> Result<Password> {
    let mut bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the passphrase file {}", path.display()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        bail!("the passphrase file {} is empty", path.display());
    }
    Ok(Password::from(bytes))
}

fn passphrase(cli: &Cli) -> Result<Option<Password>> {
    match &cli.passphrase_file {
        Some(p) => Ok(Some(read_passphrase(p)?)),
        None => Ok(None),
    }
}

fn open(cli: &Cli) -> Result<List> {
    Ok(List::open(&home(cli)?, Arc::new(SystemClock))?)
}

/// Opens the list with its key usable: on its card (PINs from the PIN
/// files) or from the key file (the passphrase).
fn open_unlocked(cli: &Cli) -> Result<List> {
    let mut list = open(cli)?;
    if !unlock(&mut list, cli)? {
        return Err(conclave_core::Error::PassphraseRequired.into());
    }
    Ok(list)
}

/// Makes the list key usable if the command line allows: on its card (PINs
/// from the PIN files), or from the key file with the passphrase. Returns
/// whether it is usable.
fn unlock(list: &mut List, cli: &Cli) -> Result<bool> {
    if list.card_ident()?.is_some() {
        list.unlock_card(pins(cli)?)?;
    } else if let Some(pw) = passphrase(cli)? {
        list.unlock(&pw)?;
        if let Some(line) = list.key_renewal() {
            eprintln!("conclave: {line}");
        }
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// Answers the card's PIN requests from `--pin-file` / `--admin-pin-file`
/// (or `CONCLAVE_PIN` / `CONCLAVE_ADMIN_PIN`). The files are read now, so a
/// file with a loose mode is refused at once.
fn pins(cli: &Cli) -> Result<PinSource> {
    let read = |env: &str, file: &Option<PathBuf>| -> Result<Option<Password>> {
        let path = file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_empty() && std::env::var(env).map(|v| v.is_empty()).unwrap_or(true) {
            return Ok(None);
        }
        let pin = conclave_core::secrets::read_password(env, &path)?;
        Ok(Some(Password::from(pin)))
    };
    let user = read("CONCLAVE_PIN", &cli.pin_file)?;
    let admin = read("CONCLAVE_ADMIN_PIN", &cli.admin_pin_file)?;
    Ok(Arc::new(move |req: &PinRequest| match req.kind {
        PinKind::User => user.clone(),
        PinKind::Admin => admin.clone(),
    }))
}

/// When the list key had to be certified again (an old key with SHA-1
/// self-signatures), one line saying so, and the renewed public key in
/// `HOME/list-public-key.asc` for the subscribers.
fn renewal_line(out: &mut impl Write, list: &List, home: &std::path::Path) -> Result<()> {
    if let Some(line) = list.key_renewal() {
        let file = home.join("list-public-key.asc");
        std::fs::write(&file, list.export_public_key()?)
            .with_context(|| format!("cannot write {}", file.display()))?;
        writeln!(
            out,
            "{line}; renewed public key written to {}",
            file.display()
        )?;
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let out = std::io::stdout();
    let mut out = out.lock();
    match &cli.command {
        Command::Init(a) => {
            let pw = passphrase(&cli)?
                .context("init needs --passphrase-file F to protect the list key")?;
            let key = match (&a.import_key, a.generate_key) {
                (Some(f), false) => KeySource::Import(
                    std::fs::read(f)
                        .with_context(|| format!("cannot read the key file {}", f.display()))?,
                ),
                (None, true) => KeySource::Generate,
                _ => bail!("give exactly one of --generate-key and --import-key FILE"),
            };
            let home = home(&cli)?;
            let list = List::init(&home, &a.address, &a.name, key, &pw, Arc::new(SystemClock))?;
            writeln!(out, "created list {} in {}", list.address(), home.display())?;
            writeln!(out, "list key {}", list.cert().fingerprint())?;
            renewal_line(&mut out, &list, &home)?;
        }
        Command::Key { cmd } => match cmd {
            KeyCmd::Export => {
                let list = open(&cli)?;
                out.write_all(&list.export_public_key()?)?;
            }
            KeyCmd::Extend { years } => {
                let mut list = open_unlocked(&cli)?;
                list.extend_key_by_years(*years)?;
                let when = list
                    .key_expiry()?
                    .map(conclave_core::clock::rfc5322)
                    .unwrap_or_else(|| "never".into());
                writeln!(
                    out,
                    "list key {} now expires {when}",
                    list.cert().fingerprint()
                )?;
                writeln!(
                    out,
                    "send subscribers the public key again: conclave key export"
                )?;
            }
            KeyCmd::Backup { file } => {
                let list = open(&cli)?;
                list.backup_key(file)?;
                writeln!(
                    out,
                    "encrypted backup written to {} (it opens with the list passphrase)",
                    file.display()
                )?;
            }
        },
        Command::Subscriber { cmd } => {
            let mut list = open(&cli)?;
            match cmd {
                SubscriberCmd::Add { address, key } => {
                    let bytes = std::fs::read(key)
                        .with_context(|| format!("cannot read the key file {}", key.display()))?;
                    let s = list.add_subscriber(address, &bytes)?;
                    writeln!(out, "subscribed {} with key {}", s.address, s.fingerprint)?;
                }
                SubscriberCmd::List => {
                    for s in list.subscribers()? {
                        match s.warning {
                            Some(w) => {
                                writeln!(out, "{} {} (warning: {w})", s.address, s.fingerprint)?
                            }
                            None => writeln!(out, "{} {}", s.address, s.fingerprint)?,
                        }
                    }
                }
                SubscriberCmd::Remove { address } => {
                    list.remove_subscriber(address)?;
                    writeln!(out, "removed {address}")?;
                }
            }
        }
        Command::Config { cmd } => {
            let mut list = open(&cli)?;
            match cmd {
                ConfigCmd::Set { key, value } => {
                    list.config_set(key, value)?;
                    writeln!(out, "{key} = {value}")?;
                }
                ConfigCmd::Show => {
                    for (k, v) in list.config_show()? {
                        writeln!(out, "{k} = {v}")?;
                    }
                }
                ConfigCmd::Password { server, file, show } => {
                    if !*show {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        let password = line.trim_end_matches(['\n', '\r']);
                        list.set_server_password(server, password, *file)?;
                    }
                    writeln!(
                        out,
                        "the {server} password {} {}",
                        if *show { "comes from" } else { "is kept in" },
                        list.password_source(server)?
                    )?;
                }
            }
        }
        Command::Process { files } => {
            let mut list = open_unlocked(&cli)?;
            for f in files {
                let bytes = if f.as_os_str() == "-" {
                    let mut b = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut b)
                        .context("cannot read standard input")?;
                    b
                } else {
                    std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?
                };
                let outcome = list
                    .receive(&bytes)
                    .with_context(|| format!("cannot process {}", f.display()))?;
                writeln!(out, "{outcome}")?;
                out.flush()?;
            }
        }
        Command::Outbox {
            cmd: OutboxCmd::Send,
        } => {
            // With the key usable, copies gone stale are signed again first.
            let mut list = open(&cli)?;
            unlock(&mut list, &cli)?;
            let list = std::sync::Mutex::new(list);
            let r = conclave_core::relay::delivery::send_outbox(&list)?;
            let left: i64 = conclave_core::relay::lock(&list)
                .store()
                .outbox_counts()?
                .iter()
                .filter(|(s, _)| s == "queued")
                .map(|(_, n)| n)
                .sum();
            writeln!(
                out,
                "sent {}, failed {}, deferred {}, still queued {left}",
                r.sent, r.failed, r.deferred
            )?;
        }
        Command::Outbox {
            cmd: OutboxCmd::Export { outdir },
        } => {
            let list = open(&cli)?;
            let written = list.export_outbox(outdir)?;
            writeln!(
                out,
                "wrote {} copies to {}",
                written.len(),
                outdir.display()
            )?;
        }
        Command::Held { cmd } => {
            let needs_key = !matches!(
                cmd,
                HeldCmd::List | HeldCmd::Reject { .. } | HeldCmd::Discard { .. }
            );
            let mut list = if needs_key {
                open_unlocked(&cli)?
            } else {
                open(&cli)?
            };
            match cmd {
                HeldCmd::List => {
                    for p in list.held()? {
                        let from = if p.sender.is_empty() {
                            "(unknown sender)"
                        } else {
                            &p.sender
                        };
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{}",
                            p.id,
                            conclave_core::clock::rfc5322(unix(p.received_at)),
                            from,
                            p.reason
                        )?;
                    }
                }
                HeldCmd::Show { id } => {
                    let v = list.held_show(*id)?;
                    writeln!(
                        out,
                        "Post: #{}\nFrom: {}\nSubject: {}\nSignature: {}\nHeld because: {}\n\n{}",
                        v.id, v.sender, v.subject, v.signature, v.reason, v.text
                    )?;
                }
                HeldCmd::Approve { id } => writeln!(out, "{}", list.held_approve(*id)?)?,
                HeldCmd::Reject { id, reason } => {
                    writeln!(out, "{}", list.held_reject(*id, reason)?)?
                }
                HeldCmd::Discard { id } => writeln!(out, "{}", list.held_discard(*id)?)?,
            }
        }
        Command::Run { once } => {
            let list = open_unlocked(&cli)?;
            if *once {
                use conclave_core::relay::{delivery, intake};
                let list = std::sync::Mutex::new(list);
                // The intake's lines as soon as the posts are in the outbox,
                // then the delivery's.
                for l in intake_lines(&intake::poll_mailbox(&list)?) {
                    writeln!(out, "{l}")?;
                }
                out.flush()?;
                writeln!(out, "{}", delivery_line(&delivery::send_outbox(&list)?))?;
            } else {
                use conclave_core::relay::Engine;
                use conclave_core::Event;
                let engine = Engine::new(list);
                engine.subscribe(Arc::new(move |e: &Event| match e {
                    Event::Pass { intake, delivery } => {
                        for l in intake_lines(intake) {
                            println!("{l}");
                        }
                        println!("{}", delivery_line(delivery));
                    }
                    Event::Error {
                        message,
                        fatal: false,
                        ..
                    } => eprintln!("conclave: {message} (retrying)"),
                    Event::Notice { message } => eprintln!("conclave: {message}"),
                    _ => {}
                }));
                engine.run()?;
            }
        }
        Command::Card { cmd } => match cmd {
            CardCmd::List => {
                let cards = conclave_core::crypto::card::list_cards()?;
                if cards.is_empty() {
                    writeln!(out, "no OpenPGP card found")?;
                }
                for c in cards {
                    writeln!(out, "{}\t{}\tserial {}", c.ident, c.manufacturer, c.serial)?;
                    for (slot, fpr) in ["signature", "decryption", "authentication"]
                        .iter()
                        .zip(&c.slots)
                    {
                        writeln!(out, "  {slot:<14} {}", fpr.as_deref().unwrap_or("(empty)"))?;
                    }
                    writeln!(
                        out,
                        "  PIN tries left: user {}, reset code {}, admin {}",
                        c.retries.0, c.retries.1, c.retries.2
                    )?;
                    writeln!(out, "  signatures made: {}", c.signature_count)?;
                }
            }
            CardCmd::Use { ident } => {
                let mut list = open(&cli)?;
                list.card_use(ident, pins(&cli)?)?;
                writeln!(
                    out,
                    "the list key is used from the card {}",
                    ident.to_ascii_uppercase()
                )?;
                renewal_line(&mut out, &list, &home(&cli)?)?;
            }
            CardCmd::Import { ident, keep_file } => {
                let mut list = open(&cli)?;
                let pw = passphrase(&cli)?.ok_or(conclave_core::Error::PassphraseRequired)?;
                list.card_import(ident, &pw, pins(&cli)?, *keep_file)?;
                writeln!(
                    out,
                    "the list key is now on the card {}{}",
                    ident.to_ascii_uppercase(),
                    if *keep_file {
                        " (the key file is kept)"
                    } else {
                        "; the key file was deleted"
                    }
                )?;
            }
            CardCmd::Generate { ident } => {
                let mut list = open(&cli)?;
                let fpr = list.card_generate(ident, pins(&cli)?)?;
                writeln!(
                    out,
                    "new list key {fpr} on the card {}; give subscribers the new public key (conclave key export)",
                    ident.to_ascii_uppercase()
                )?;
            }
        },
        Command::Certs { cmd } => {
            let mut list = open(&cli)?;
            match cmd {
                CertsCmd::List => {
                    for (endpoint, sha, subject, at) in list.store().tls_pins()? {
                        writeln!(
                            out,
                            "{endpoint}\t{sha}\t{subject}\taccepted {}",
                            conclave_core::clock::rfc5322(unix(at))
                        )?;
                    }
                }
                CertsCmd::Show { endpoint, reach } => {
                    let ep = endpoint_arg(&list, endpoint, reach)?;
                    let report = list.certs_show(&ep)?;
                    writeln!(out, "endpoint {}", report.endpoint)?;
                    for (i, c) in report.chain.iter().enumerate() {
                        writeln!(
                            out,
                            "certificate {}{}",
                            i + 1,
                            if i == 0 { " (server)" } else { "" }
                        )?;
                        writeln!(out, "  subject:  {}", c.subject)?;
                        writeln!(out, "  issuer:   {}", c.issuer)?;
                        writeln!(out, "  valid:    {} to {}", c.not_before, c.not_after)?;
                        writeln!(out, "  names:    {}", c.names.join(", "))?;
                        writeln!(out, "  SHA-256:  {}", c.sha256)?;
                        writeln!(out, "  key SHA-256: {}", c.spki_sha256)?;
                    }
                    match report.verdict {
                        Ok(by) => writeln!(out, "trusted: yes, by {by}")?,
                        Err(e) => {
                            writeln!(out, "trusted: no")?;
                            if let (tls::TlsError::Untrusted { .. }, Some(c)) =
                                (&e, report.chain.first())
                            {
                                writeln!(out, "to accept exactly this certificate: conclave certs accept {} --sha256 {}", report.endpoint, c.sha256)?;
                            }
                            return Err(e.into());
                        }
                    }
                }
                CertsCmd::Accept {
                    endpoint,
                    sha256,
                    reach,
                } => {
                    let ep = endpoint_arg(&list, endpoint, reach)?;
                    let c = list.certs_accept(&ep, sha256)?;
                    writeln!(out, "pinned {} for {}", c.sha256, ep.key())?;
                }
                CertsCmd::Forget { endpoint } => {
                    let (host, port) = tls::parse_endpoint(endpoint)
                        .with_context(|| format!("{endpoint:?} is not HOST:PORT"))?;
                    list.certs_forget(&host, port)?;
                    writeln!(
                        out,
                        "forgot the certificate of {}",
                        tls::endpoint_key(&host, port)
                    )?;
                }
            }
        }
        Command::Log { limit } => {
            let list = open(&cli)?;
            for e in list.store().audit_tail(*limit)? {
                let post = e.post_id.map(|p| format!(" #{p}")).unwrap_or_default();
                writeln!(
                    out,
                    "{} {}{post}: {}",
                    conclave_core::clock::rfc5322(unix(e.at)),
                    e.event,
                    e.detail
                )?;
            }
        }
    }
    Ok(())
}

fn endpoint_arg(list: &List, endpoint: &str, reach: &ReachArgs) -> Result<tls::Endpoint> {
    let (host, port) =
        tls::parse_endpoint(endpoint).with_context(|| format!("{endpoint:?} is not HOST:PORT"))?;
    let force = match (&reach.starttls, reach.tls) {
        (Some(p), _) => Some((
            Security::StartTls,
            if p == "smtp" {
                Protocol::Smtp
            } else {
                Protocol::Imap
            },
        )),
        (None, true) => Some((Security::Tls, Protocol::Imap)),
        (None, false) => None,
    };
    Ok(list.endpoint_for(&host, port, force)?)
}

fn unix(secs: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// What `run` prints of a pass over the mailbox: a line per post.
fn intake_lines(r: &conclave_core::events::IntakeReport) -> Vec<String> {
    let mut lines: Vec<String> = r
        .outcomes
        .iter()
        .map(|o| format!("post #{}: {o}", o.post()))
        .collect();
    if r.taken_elsewhere > 0 {
        lines.push(format!(
            "{} posts taken by another instance",
            r.taken_elsewhere
        ));
    }
    lines
}

/// What `run` prints of a pass over the outbox.
fn delivery_line(r: &conclave_core::events::DeliveryReport) -> String {
    format!(
        "sent {}, failed {}, deferred {}",
        r.sent, r.failed, r.deferred
    )
}
