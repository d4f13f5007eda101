//! The relay: the layer above the list that talks to the mail host. It
//! fetches posts from the list mailbox over IMAP and hands them to the list
//! ([`intake`]), submits the outbox over SMTP ([`delivery`]), knows the
//! list's servers and how to log in to them ([`servers`]), and runs the loop
//! that does both ([`Engine`]). It locks the list for each step that
//! touches it, never across a network round trip or a PIN dialog, so the
//! owner's commands answer while the relay works.

pub mod delivery;
mod engine;
pub mod intake;
pub mod keys;
pub mod servers;

use std::sync::{Mutex, MutexGuard};

pub use engine::{Engine, StopSignal};
pub use keys::{refresh_keys, RefreshReport};
pub use servers::{CertReport, PasswordSource};

use crate::error::Result;
use crate::events::{DeliveryReport, Event, IntakeReport};
use crate::list::{KeyCheck, List};

/// One pass of the relay loop ([`Engine`]): [`pass`], then the keyserver's
/// verification links that came in the mail.
pub fn run_once(list: &Mutex<List>) -> Result<(IntakeReport, DeliveryReport)> {
    let (intake, delivery) = pass(list, &mut |_| {})?;
    // The list key's address check at a keyserver, when its mail came in.
    keys::open_verification_links(list, &|message| {
        lock(list).emit(&crate::events::Event::Notice {
            message: message.to_string(),
        })
    })?;
    Ok((intake, delivery))
}

/// One pass over the mailbox and the outbox, with the delivery on a thread
/// of its own beside the intake ([`delivery::send_outbox_ahead`]): it opens
/// its connections as soon as the intake has mail to process, sends the
/// copies a fan-out queues while the fan-out goes on (the list's queued
/// hook tells it, [`List::set_queued_hook`], for the length of the pass),
/// and the rest once the intake, the key check and `between` are done.
/// `between` gets the intake's report while the copies go out (`run
/// --once` prints its lines then). When the intake fails, the copies queued
/// before the failure still go out, no others, and the intake's error is
/// returned.
pub fn pass(
    list: &Mutex<List>,
    between: &mut dyn FnMut(&IntakeReport),
) -> Result<(IntakeReport, DeliveryReport)> {
    use delivery::Ahead;
    let (tell, told) = delivery::ahead_channel();
    let fed = tell.clone();
    lock(list).set_queued_hook(Some(std::sync::Arc::new(move || fed.tell(Ahead::More))));
    std::thread::scope(|scope| {
        let sending = scope.spawn(move || delivery::send_outbox_ahead(list, told));
        let ahead = tell.clone();
        let intake = (|| -> Result<IntakeReport> {
            let intake = intake::poll_mailbox_with(list, &move || ahead.tell(Ahead::Open))?;
            // A key still unlocking (no post needed it) is waited for, so
            // that a wrong passphrase fails the pass all the same.
            with(list, |l| l.keystore_ready())?;
            key_check(list)?;
            between(&intake);
            Ok(intake)
        })();
        // The list lets go of its end of the channel: without the go (the
        // intake failed), the pass sends nothing more.
        lock(list).set_queued_hook(None);
        if intake.is_ok() {
            tell.tell(Ahead::Send);
        }
        drop(tell);
        let delivery = sending.join().unwrap_or_else(|_| {
            Err(crate::error::Error::Network(
                "the delivery pass stopped unexpectedly".into(),
                None,
            ))
        });
        Ok((intake?, delivery?))
    })
}

/// The daily key check, when it is due ([`List::check_keys_if_due`]):
/// after the intake, so its notices go out with the pass's copies. What it
/// found reaches the front ends as [`Event::Notice`]s.
pub fn key_check(list: &Mutex<List>) -> Result<Option<KeyCheck>> {
    let signs = {
        let l = lock(list);
        l.key_check_due()? && l.key_check_signs()?
    };
    // A notice is signed through the card: its PIN is asked first, without
    // holding the list.
    if signs {
        ask_pin_ahead(list);
    }
    with(list, |l| {
        let check = l.check_keys_if_due()?;
        for line in check.iter().flat_map(KeyCheck::lines) {
            l.emit(&Event::Notice { message: line });
        }
        Ok(check)
    })
}

/// The list, locked; a lock poisoned by a panic elsewhere is taken anyway
/// (the list's state is in its store, which a panic cannot leave half
/// written).
pub fn lock(list: &Mutex<List>) -> MutexGuard<'_, List> {
    list.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` with the list locked, for one step.
pub(crate) fn with<T>(list: &Mutex<List>, f: impl FnOnce(&mut List) -> Result<T>) -> Result<T> {
    f(&mut lock(list))
}

/// When the list key is on a card, asks for its PIN now, without holding
/// the list, so that the step that needs the card finds it at hand
/// ([`crate::crypto::card::ask_pin_ahead`]).
pub(crate) fn ask_pin_ahead(list: &Mutex<List>) {
    let pins = lock(list).card_pins();
    if let Some((ident, pins)) = pins {
        crate::crypto::card::ask_pin_ahead(&ident, &pins);
    }
}
