//! The UI's commands: each converts its arguments, calls the core, and maps
//! the result. No list logic lives here.

use std::sync::Arc;

use conclave_core::clock::rfc5322;
use conclave_core::relay::Engine;
use conclave_core::relay::PasswordSource;
use conclave_core::{secrets, KeySource, List, Password, SystemClock};
use tauri::State;
use zeroize::Zeroizing;

use crate::dto::*;
use crate::App;

type Reply<T> = Result<T, Failure>;

fn when(unix: i64) -> String {
    rfc5322(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0)),
    )
}

fn invalid(message: &str) -> Failure {
    Failure {
        kind: "InvalidInput".into(),
        message: message.into(),
        certificate: None,
    }
}

/// The list's engine, or the failure the UI shows before setup.
fn engine(app: &App) -> Reply<Engine> {
    app.engine()
        .ok_or_else(|| invalid("there is no list yet: complete the setup first"))
}

/// Where the app stands.
#[tauri::command(async)]
pub fn status(app: State<'_, App>) -> Status {
    app.status()
}

/// The first-run wizard: creates the list, points it at its servers,
/// stores the credentials, and starts the relay.
#[tauri::command(async)]
pub fn setup(app: State<'_, App>, setup: Setup) -> Reply<Status> {
    let pw = Password::from(setup.passphrase.as_str());
    // Try the keyring before anything is created, so a desktop without one
    // stops the wizard with the reason, not a half-made list.
    if !setup.passwords_in_files {
        for (prefix, server) in [("imap", &setup.imap), ("smtp", &setup.smtp)] {
            let account = secrets::account(prefix, &server.username, &server.host, server.port);
            secrets::keyring_set(&account, &server.password)?;
        }
    }
    let key = match &setup.key {
        KeyChoice::Generate | KeyChoice::Card { .. } => KeySource::Generate,
        KeyChoice::Import { armored } => KeySource::Import(armored.as_bytes().to_vec()),
    };
    let mut list = List::init(
        &app.home,
        &setup.address,
        &setup.name,
        key,
        &pw,
        Arc::new(SystemClock),
    )?;
    for (prefix, server) in [("imap", &setup.imap), ("smtp", &setup.smtp)] {
        for (k, v) in [
            ("host", server.host.clone()),
            ("port", server.port.to_string()),
            ("security", server.security.clone()),
            ("username", server.username.clone()),
        ] {
            list.config_set(&format!("{prefix}.{k}"), &v)?;
        }
        list.set_server_password(prefix, &server.password, setup.passwords_in_files)?;
    }
    if !setup.ca_file.trim().is_empty() {
        list.config_set("tls.ca_file", setup.ca_file.trim())?;
    }
    if let KeyChoice::Card { ident } = &setup.key {
        // The list exists now; if the card refuses, the owner can move the
        // key later from the List key page.
        let pins = app.pin_source();
        list.card_import(ident, &pw, pins, false)?;
    }
    app.attach(Engine::new(list), true);
    Ok(app.status())
}

/// Unlocks the list key with its passphrase and starts the relay.
#[tauri::command(async)]
pub fn unlock(app: State<'_, App>, passphrase: String) -> Reply<Status> {
    let passphrase = Zeroizing::new(passphrase);
    let engine = engine(&app)?;
    engine.list().unlock(&Password::from(passphrase.as_str()))?;
    engine.start();
    Ok(app.status())
}

/// Starts the relay (after the owner accepted a certificate, say).
#[tauri::command(async)]
pub fn relay_start(app: State<'_, App>) -> Reply<Status> {
    engine(&app)?.start();
    Ok(app.status())
}

/// The dashboard's figures and the latest activity.
#[tauri::command(async)]
pub fn dashboard(app: State<'_, App>) -> Reply<Dashboard> {
    let engine = engine(&app)?;
    let list = engine.list();
    let counts = list.store().outbox_counts()?;
    let state = |s: &str| counts.iter().filter(|c| c.0 == s).map(|c| c.1).sum::<i64>();
    Ok(Dashboard {
        subscribers: u32::try_from(list.subscriber_page("", 0, 0)?.total).unwrap_or(u32::MAX),
        held: u32::try_from(list.held()?.len()).unwrap_or(0),
        requests: u32::try_from(list.requests()?.iter().filter(|r| r.awaiting_owner).count())
            .unwrap_or(0),
        queued: u32::try_from(state("queued")).unwrap_or(0),
        sent: u32::try_from(state("sent")).unwrap_or(0),
        recent: log_lines(&list, 12)?,
        list_key_alarm: list.list_key_alarm(),
        expiring: list
            .expiring_keys()?
            .into_iter()
            .map(|k| KeyNote {
                detail: format!(
                    "expires on {}{}",
                    conclave_core::clock::iso_date(k.expires),
                    if k.told {
                        "; told how to extend it"
                    } else {
                        ""
                    }
                ),
                address: k.address,
                fingerprint: k.fingerprint,
            })
            .collect(),
        not_receiving: list
            .not_receiving()?
            .into_iter()
            .map(|n| KeyNote {
                detail: match n.missed {
                    0 => n.why,
                    missed => format!("{}; missed {missed} posts", n.why),
                },
                address: n.address,
                fingerprint: n.fingerprint,
            })
            .collect(),
    })
}

fn log_lines(list: &List, n: i64) -> Reply<Vec<LogLine>> {
    Ok(list
        .store()
        .audit_tail(n)?
        .into_iter()
        .rev()
        .map(|a| LogLine {
            at: when(a.at),
            post: a.post_id,
            event: a.event,
            detail: a.detail,
        })
        .collect())
}

/// The activity log.
#[tauri::command(async)]
pub fn activity(app: State<'_, App>) -> Reply<Vec<LogLine>> {
    let engine = engine(&app)?;
    let list = engine.list();
    log_lines(&list, 200)
}

/// The posts waiting for the owner.
#[tauri::command(async)]
pub fn held_list(app: State<'_, App>) -> Reply<Vec<HeldItem>> {
    let engine = engine(&app)?;
    let list = engine.list();
    list.held()?
        .into_iter()
        .map(|p| {
            Ok(HeldItem {
                for_owner: for_owner(&list, p.id)?,
                id: p.id,
                sender: p.sender,
                reason: p.reason,
                received: when(p.received_at),
            })
        })
        .collect()
}

/// Whether a held message was written to the owner address (never sent on).
fn for_owner(list: &List, id: i64) -> Reply<bool> {
    Ok(list.store().post_kind(id)? == "owner")
}

/// Opens a held post in memory.
#[tauri::command(async)]
pub fn held_show(app: State<'_, App>, id: i64) -> Reply<HeldDetail> {
    let engine = engine(&app)?;
    let mut list = engine.list();
    let v = list.held_show(id)?;
    Ok(HeldDetail {
        for_owner: for_owner(&list, v.id)?,
        id: v.id,
        sender: v.sender,
        reason: v.reason,
        subject: v.subject,
        signature: v.signature,
        text: v.text,
        keys: v
            .keys
            .into_iter()
            .map(|k| HeldKey {
                fingerprint: k.fingerprint,
                addresses: k.addresses,
                armored: k.armored,
            })
            .collect(),
    })
}

/// Approves, rejects (with a reason) or discards a held post.
#[tauri::command(async)]
pub fn held_decide(app: State<'_, App>, id: i64, action: String, reason: String) -> Reply<String> {
    let engine = engine(&app)?;
    let outcome = {
        let mut list = engine.list();
        match action.as_str() {
            "approve" => list.held_approve(id)?,
            "reject" => list.held_reject(id, &reason)?,
            "discard" => list.held_discard(id)?,
            _ => return Err(invalid("the action is approve, reject or discard")),
        }
    };
    // Send the copies now rather than at the next pass.
    engine.wake();
    Ok(outcome.to_string())
}

/// The subscriptions, key changes and unsubscriptions asked by mail and
/// not yet decided.
#[tauri::command(async)]
pub fn requests(app: State<'_, App>) -> Reply<Vec<PendingRequest>> {
    let engine = engine(&app)?;
    let pending = engine.list().requests()?;
    Ok(pending
        .into_iter()
        .map(|r| PendingRequest {
            id: r.id,
            kind: r.kind.to_string(),
            address: r.address,
            key: r.key.into(),
            old_fingerprint: r.old_fingerprint,
            asked: when(r.asked_at),
            proven: r.proof_at.map(when),
            awaiting_owner: r.awaiting_owner,
            proof_until: when(r.expires_at),
        })
        .collect())
}

/// Approves a request waiting for the owner; the reply (signed with the
/// list key) goes out at once. Returns what was done.
#[tauri::command(async)]
pub fn request_approve(app: State<'_, App>, id: i64) -> Reply<String> {
    let engine = engine(&app)?;
    let done = engine.list().approve_request(id)?;
    engine.wake();
    Ok(done)
}

/// Refuses a request waiting for the owner, telling the requester `reason`.
#[tauri::command(async)]
pub fn request_refuse(app: State<'_, App>, id: i64, reason: String) -> Reply<()> {
    let engine = engine(&app)?;
    engine.list().refuse_request(id, &reason)?;
    engine.wake();
    Ok(())
}

/// One page of the subscribers whose address or fingerprint contains
/// `search` (every one when it is empty), `per_page` to a page, from page 1.
#[tauri::command(async)]
pub fn subscriber_page(
    app: State<'_, App>,
    search: String,
    page: u32,
    per_page: u32,
) -> Reply<SubscriberPage> {
    let engine = engine(&app)?;
    let per_page = per_page.clamp(1, 1000);
    let page = page.max(1);
    let offset = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
    let list = engine.list();
    let found = list.subscriber_page(&search, offset, per_page as usize)?;
    Ok(SubscriberPage {
        total: u32::try_from(found.total).unwrap_or(u32::MAX),
        page,
        per_page,
        subscribers: found
            .entries
            .into_iter()
            .map(|e| Subscriber::from(e.info))
            .collect(),
    })
}

/// The fingerprint of a subscriber's key, if the address is subscribed.
#[tauri::command(async)]
pub fn subscriber_fingerprint(app: State<'_, App>, address: String) -> Reply<Option<String>> {
    Ok(engine(&app)?.list().subscriber_fingerprint(&address)?)
}

/// Imports subscribers from the keyring at `keyring` (a full path): every
/// usable key's addresses, or only those the CSV file at `csv` or the
/// Schleuder subscriptions at `schleuder` name (empty: none given).
#[tauri::command(async)]
pub fn subscribers_import(
    app: State<'_, App>,
    keyring: String,
    csv: String,
    schleuder: String,
) -> Reply<ImportResult> {
    use conclave_core::list::import::{read_csv, read_schleuder, Selection};
    let read = |path: &str, what: &str| -> Reply<Vec<u8>> {
        let path = std::path::Path::new(path.trim());
        if !path.is_absolute() {
            return Err(invalid(&format!("give the {what}'s full path, from /")));
        }
        std::fs::read(path)
            .map_err(|e| invalid(&format!("cannot read the {what} {}: {e}", path.display())))
    };
    let text = |path: &str, what: &str| -> Reply<String> {
        String::from_utf8(read(path, what)?)
            .map_err(|_| invalid(&format!("the {what} is not UTF-8 text")))
    };
    let bytes = read(&keyring, "keyring")?;
    let selection = if !csv.trim().is_empty() {
        Selection::Listed(read_csv(&text(&csv, "CSV file")?)?)
    } else if !schleuder.trim().is_empty() {
        Selection::Listed(read_schleuder(&text(
            &schleuder,
            "Schleuder subscriptions file",
        )?)?)
    } else {
        Selection::UserIds
    };
    let engine = engine(&app)?;
    let report = engine
        .list()
        .import_subscribers(&bytes, &selection, keyring.trim())?;
    Ok(ImportResult {
        summary: report.summary(),
        lines: report.lines.iter().map(ImportedLine::from).collect(),
    })
}

/// Adds a subscriber with their key (armored).
#[tauri::command(async)]
pub fn subscriber_add(app: State<'_, App>, address: String, key: String) -> Reply<()> {
    let engine = engine(&app)?;
    engine.list().add_subscriber(&address, key.as_bytes())?;
    Ok(())
}

/// Replaces the key `old` (a fingerprint) of a subscriber with `key`
/// (armored): the owner's explicit act. Returns how many copies still
/// queued for the old key were dropped.
#[tauri::command(async)]
pub fn subscriber_replace_key(
    app: State<'_, App>,
    address: String,
    old: String,
    key: String,
) -> Reply<u32> {
    let engine = engine(&app)?;
    let (_, dropped) = engine
        .list()
        .replace_subscriber_key(&address, &old, key.as_bytes())?;
    Ok(u32::try_from(dropped).unwrap_or(u32::MAX))
}

/// The fingerprint of a public key (armored), to show before it is used.
#[tauri::command(async)]
pub fn key_fingerprint(key: String) -> Reply<String> {
    Ok(
        conclave_core::crypto::certs::parse_public_cert(key.as_bytes())?
            .fingerprint()
            .to_hex(),
    )
}

/// The invitation for a newcomer: text, QR code and vCard.
#[tauri::command(async)]
pub fn invitation(app: State<'_, App>) -> Reply<Invitation> {
    Ok(engine(&app)?.list().invitation()?.into())
}

/// Writes the invitation's vCard to `path` (a full path); returns it.
#[tauri::command(async)]
pub fn invitation_save_vcard(app: State<'_, App>, path: String) -> Reply<String> {
    let path = std::path::PathBuf::from(path.trim());
    if !path.is_absolute() {
        return Err(invalid("give the vCard's full path, from /"));
    }
    let vcard = engine(&app)?.list().invitation()?.vcard;
    std::fs::write(&path, vcard)
        .map_err(|e| invalid(&format!("cannot write {}: {e}", path.display())))?;
    Ok(path.display().to_string())
}

/// Lets copies go again to a subscriber the bounces stopped; clears their
/// bounce score.
#[tauri::command(async)]
pub fn subscriber_enable(app: State<'_, App>, address: String) -> Reply<()> {
    let engine = engine(&app)?;
    engine.list().enable_delivery(&address)?;
    Ok(())
}

/// Removes a subscriber.
#[tauri::command(async)]
pub fn subscriber_remove(app: State<'_, App>, address: String) -> Reply<()> {
    let engine = engine(&app)?;
    engine.list().remove_subscriber(&address)?;
    Ok(())
}

/// The pinned certificates.
#[tauri::command(async)]
pub fn certs(app: State<'_, App>) -> Reply<Vec<Pin>> {
    let engine = engine(&app)?;
    let pins = engine.list().store().tls_pins()?;
    Ok(pins
        .into_iter()
        .map(|(endpoint, sha256, subject, at)| Pin {
            endpoint,
            sha256,
            subject,
            accepted: when(at),
        })
        .collect())
}

/// Accepts (pins) the certificate the dialog showed, then starts the relay.
#[tauri::command(async)]
pub fn cert_accept(app: State<'_, App>, endpoint: String, sha256: String) -> Reply<Status> {
    let engine = engine(&app)?;
    // The core connects with its own runtime: not from this one's threads.
    std::thread::scope(|s| {
        s.spawn(|| engine.list().accept_certificate(&endpoint, &sha256))
            .join()
            .unwrap_or_else(|_| {
                Err(conclave_core::Error::Network(
                    "the connection thread failed".into(),
                    None,
                ))
            })
    })?;
    engine.start();
    Ok(app.status())
}

/// The list's options that the Settings screen shows: by group, the post
/// rules, the copies and delivery (the wizard and the server screens set
/// the others).
#[tauri::command(async)]
pub fn settings(app: State<'_, App>) -> Reply<Vec<Setting>> {
    let engine = engine(&app)?;
    let values = engine.list().config_show()?;
    Ok(conclave_core::list::settings::SETTINGS
        .iter()
        .filter(|s| s.group.in_settings_screen())
        .map(|s| Setting {
            key: s.key.to_string(),
            value: values
                .get(s.key)
                .cloned()
                .unwrap_or_else(|| s.default.to_string()),
            default: s.default.to_string(),
            help: s.help.to_string(),
        })
        .collect())
}

/// Changes one option.
#[tauri::command(async)]
pub fn setting_set(app: State<'_, App>, key: String, value: String) -> Reply<()> {
    on_settings_screen(&key)?;
    let engine = engine(&app)?;
    engine.list().config_set(&key, &value)?;
    Ok(())
}

/// Only an option the Settings screen shows can be changed from it: the
/// servers, the CA file and the password files have screens of their own
/// that check what they take.
fn on_settings_screen(key: &str) -> Reply<()> {
    match conclave_core::list::settings::find(key) {
        Some(s) if s.group.in_settings_screen() => Ok(()),
        _ => Err(invalid(&format!(
            "{key:?} is not an option of the Settings screen"
        ))),
    }
}

/// The list key: fingerprint, expiry, where it lives, the public key.
#[tauri::command(async)]
pub fn list_key(app: State<'_, App>) -> Reply<ListKey> {
    key_facts(&engine(&app)?.list())
}

fn key_facts(list: &List) -> Reply<ListKey> {
    let armored = String::from_utf8_lossy(&list.export_public_key()?).into_owned();
    Ok(ListKey {
        fingerprint: list.cert().fingerprint().to_hex(),
        expires: list.key_expiry()?.map(rfc5322),
        holder: list.card_ident()?.unwrap_or_else(|| "file".into()),
        armored,
    })
}

/// The owner's answer to a PIN request: the PIN, or nothing to refuse.
#[tauri::command(async)]
pub fn pin_answer(app: State<'_, App>, pin: Option<String>) {
    app.pins().answer(pin);
}

/// Moves the list key's expiry to `years` years from now.
#[tauri::command(async)]
pub fn key_extend(app: State<'_, App>, years: u64) -> Reply<ListKey> {
    let engine = engine(&app)?;
    let mut list = engine.list();
    list.extend_key_by_years(years)?;
    key_facts(&list)
}

/// Uploads the list key to the keyserver (`keys.keyserver`) and asks it to
/// check the list address; the relay completes the check by itself.
#[tauri::command(async)]
pub fn key_publish(app: State<'_, App>) -> Reply<String> {
    let engine = engine(&app)?;
    // The requests run on a runtime of their own, which cannot start on
    // the async runtime's thread this command runs on.
    let published = std::thread::spawn(move || engine.publish_key())
        .join()
        .map_err(|_| invalid("the upload stopped unexpectedly"))?;
    Ok(published?)
}

/// Writes an encrypted backup of the list key to `path`.
#[tauri::command(async)]
pub fn key_backup(app: State<'_, App>, path: String) -> Reply<String> {
    let path = std::path::PathBuf::from(path.trim());
    if !path.is_absolute() {
        return Err(invalid("give the backup's full path, from /"));
    }
    engine(&app)?.list().backup_key(&path)?;
    Ok(path.display().to_string())
}

/// Moves the list key from its file onto the card `ident`.
#[tauri::command(async)]
pub fn key_to_card(
    app: State<'_, App>,
    ident: String,
    passphrase: String,
    keep_file: bool,
) -> Reply<ListKey> {
    let passphrase = Zeroizing::new(passphrase);
    if ident.trim().is_empty() {
        return Err(invalid("choose the card"));
    }
    let engine = engine(&app)?;
    let pins = app.pin_source();
    let mut list = engine.list();
    list.card_import(
        &ident,
        &Password::from(passphrase.as_str()),
        pins,
        keep_file,
    )?;
    key_facts(&list)
}

/// The OpenPGP cards the readers see.
#[tauri::command(async)]
pub fn cards(app: State<'_, App>) -> Reply<Vec<Card>> {
    let ours = match app.engine() {
        Some(e) => e.list().card_ident()?,
        None => None,
    };
    Ok(conclave_core::crypto::card::list_cards()?
        .into_iter()
        .map(|c| Card {
            holds_list_key: ours.as_deref() == Some(c.ident.as_str()),
            ident: c.ident,
            manufacturer: c.manufacturer,
            serial: c.serial,
            slots: c.slots.to_vec(),
            user_pin_tries: c.retries.0,
            reset_code_tries: c.retries.1,
            admin_pin_tries: c.retries.2,
            signature_count: c.signature_count,
        })
        .collect())
}

/// Where the server passwords come from.
#[tauri::command(async)]
pub fn passwords(app: State<'_, App>) -> Reply<Vec<PasswordInfo>> {
    let engine = engine(&app)?;
    let list = engine.list();
    ["imap", "smtp"]
        .into_iter()
        .map(|server| {
            let source = list.password_source(server)?;
            let kind = match source {
                PasswordSource::Environment(_) => "environment",
                PasswordSource::File(_) => "file",
                PasswordSource::Keyring(_) => "keyring",
            };
            Ok(PasswordInfo {
                server: server.into(),
                source: source.to_string(),
                kind: kind.into(),
            })
        })
        .collect()
}

/// Changes a server password, kept in the OS keyring or (if `in_file`) a
/// 0600 file; wakes the relay so it tries the new one.
#[tauri::command(async)]
pub fn password_set(
    app: State<'_, App>,
    server: String,
    password: String,
    in_file: bool,
) -> Reply<String> {
    let password = Zeroizing::new(password);
    let engine = engine(&app)?;
    let source = engine
        .list()
        .set_server_password(&server, &password, in_file)?;
    engine.start();
    Ok(source.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_set_takes_only_the_settings_screen_options() {
        for key in ["receive_signed_only", "signature_mode", "smtp.connections"] {
            assert!(on_settings_screen(key).is_ok(), "{key}");
        }
        for key in [
            "imap.host",
            "smtp.password_file",
            "tls.ca_file",
            "list.address",
            "no.such.option",
        ] {
            let e = on_settings_screen(key).expect_err(key);
            assert_eq!(e.kind, "InvalidInput");
            assert!(e.message.contains("not an option of the Settings screen"));
        }
    }
}
