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

/// `run --once`: one pass over the mailbox, then the outbox.
pub fn run_once(list: &Mutex<List>) -> Result<(IntakeReport, DeliveryReport)> {
    let intake = intake::poll_mailbox(list)?;
    key_check(list)?;
    let delivery = delivery::send_outbox(list)?;
    // The list key's address check at a keyserver, when its mail came in.
    keys::open_verification_links(list, &|message| {
        lock(list).emit(&crate::events::Event::Notice {
            message: message.to_string(),
        })
    })?;
    Ok((intake, delivery))
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
