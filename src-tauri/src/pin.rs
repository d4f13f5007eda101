//! The card's PIN, asked of the owner in a dialog. The engine calls the
//! `PinSource` on its relay thread; the request goes to the UI as a
//! `pin_needed` event and the thread waits for `pin_answer`. A PIN that
//! worked is kept in memory for the session; it is forgotten as soon as the
//! card reports fewer tries than when it was given (it was wrong), so a
//! wrong PIN is never sent twice.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::crypto::card::{PinKind, PinRequest, PinSource};
use conclave_core::Password;
use tauri::Emitter;

use crate::dto::UiEvent;

/// How long a PIN request waits for the owner.
const WAIT: Duration = Duration::from_secs(600);

/// The pending request and the PINs given this session.
#[derive(Default)]
pub struct Pins {
    waiting: Mutex<Option<Sender<Option<String>>>>,
    /// (kind, PIN, tries left when it was given).
    given: Mutex<Vec<(PinKind, Password, u8)>>,
}

impl Pins {
    /// A `PinSource` that asks through the UI of `handle`.
    pub fn source(self: &Arc<Self>, handle: tauri::AppHandle) -> PinSource {
        let pins = self.clone();
        Arc::new(move |req: &PinRequest| pins.ask(&handle, req))
    }

    fn ask(&self, handle: &tauri::AppHandle, req: &PinRequest) -> Option<Password> {
        if let Ok(mut given) = self.given.lock() {
            given.retain(|(kind, _, tries)| *kind != req.kind || req.tries_left >= *tries);
            if let Some((_, pin, _)) = given.iter().find(|(kind, _, _)| *kind == req.kind) {
                return Some(pin.clone());
            }
        }
        let (tx, rx) = channel();
        if let Ok(mut w) = self.waiting.lock() {
            *w = Some(tx);
        }
        let kind = match req.kind {
            PinKind::User => "user",
            PinKind::Admin => "admin",
        };
        let _ = handle.emit(
            "conclave-event",
            UiEvent::PinNeeded {
                ident: req.ident.clone(),
                kind: kind.into(),
                tries_left: req.tries_left,
            },
        );
        let pin = Password::from(rx.recv_timeout(WAIT).ok().flatten()?);
        if let Ok(mut given) = self.given.lock() {
            given.push((req.kind, pin.clone(), req.tries_left));
        }
        Some(pin)
    }

    /// The owner's answer to the pending request.
    pub fn answer(&self, pin: Option<String>) {
        if let Some(tx) = self.waiting.lock().ok().and_then(|mut w| w.take()) {
            let _ = tx.send(pin);
        }
    }
}
