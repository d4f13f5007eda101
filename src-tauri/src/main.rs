//! Conclave's desktop app: a thin Tauri shell over `conclave-core`. The
//! engine runs inside the app; its events reach the UI as `conclave-event`.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod dto;
mod pin;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use conclave_core::relay::Engine;
use conclave_core::Event;
use conclave_core::{List, SystemClock};
use tauri::{Emitter, Manager};

/// The app's state: where the list lives, and its engine once there is one.
pub struct App {
    home: PathBuf,
    engine: Mutex<Option<Engine>>,
    handle: Mutex<Option<tauri::AppHandle>>,
    pins: Arc<pin::Pins>,
    last: Arc<Mutex<Option<dto::UiEvent>>>,
}

impl App {
    fn new(home: PathBuf) -> App {
        App {
            home,
            engine: Mutex::new(None),
            handle: Mutex::new(None),
            pins: Arc::new(pin::Pins::default()),
            last: Arc::default(),
        }
    }

    /// Where the card's PIN requests wait for the owner's answer.
    pub fn pins(&self) -> &pin::Pins {
        &self.pins
    }

    /// The engine, if a list exists.
    pub fn engine(&self) -> Option<Engine> {
        self.engine.lock().ok().and_then(|e| e.clone())
    }

    /// Adopts an engine: its events go to the UI; `start` starts the relay.
    pub fn attach(&self, engine: Engine, start: bool) {
        if let Some(handle) = self.handle.lock().ok().and_then(|h| h.clone()) {
            let last = self.last.clone();
            engine.subscribe(Arc::new(move |e: &Event| {
                if let Some(ui) = dto::UiEvent::from_event(e) {
                    if matches!(ui, dto::UiEvent::Pass { .. } | dto::UiEvent::Error { .. }) {
                        if let Ok(mut l) = last.lock() {
                            *l = Some(ui.clone());
                        }
                    }
                    if let dto::UiEvent::Post {
                        post,
                        outcome,
                        held: true,
                        ..
                    } = &ui
                    {
                        notify_held(&handle, *post, outcome);
                    }
                    let _ = handle.emit("conclave-event", ui);
                }
            }));
        }
        if start {
            engine.start();
        }
        if let Ok(mut slot) = self.engine.lock() {
            *slot = Some(engine);
        }
    }

    /// Where the app stands.
    pub fn status(&self) -> dto::Status {
        let engine = self.engine();
        let (address, name, unlocked) = match &engine {
            Some(e) => {
                let list = e.list();
                (
                    list.address().to_string(),
                    list.name().unwrap_or_default(),
                    list.is_unlocked(),
                )
            }
            None => (String::new(), String::new(), false),
        };
        dto::Status {
            initialised: engine.is_some(),
            unlocked,
            running: engine.as_ref().is_some_and(Engine::is_running),
            address,
            name,
            home: self.home.display().to_string(),
            last: self.last.lock().ok().and_then(|l| l.clone()),
        }
    }

    /// A `PinSource` that asks the owner in the PIN dialog.
    pub fn pin_source(&self) -> conclave_core::crypto::card::PinSource {
        match self.handle.lock().ok().and_then(|h| h.clone()) {
            Some(handle) => self.pins.source(handle),
            None => Arc::new(|_: &conclave_core::crypto::card::PinRequest| None),
        }
    }
}

/// The list's folder: `$CONCLAVE_HOME`, else `$XDG_DATA_HOME/conclave`,
/// else `~/.local/share/conclave`.
fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("CONCLAVE_HOME") {
        return PathBuf::from(h);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("conclave");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".local/share/conclave")
}

/// A desktop notification that a post waits for the owner: who sent it and
/// why it is held, never its content.
fn notify_held(handle: &tauri::AppHandle, post: i64, outcome: &str) {
    use tauri_plugin_notification::NotificationExt;
    let _ = handle
        .notification()
        .builder()
        .title(format!("Conclave: post #{post} is held"))
        .body(
            // The reason can carry a sender's text: no control characters
            // (notification daemons render some markup and line breaks).
            outcome
                .strip_prefix("held: ")
                .unwrap_or(outcome)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>(),
        )
        .show();
}

/// The tray icon, with a menu to bring the window back or quit.
fn tray(app: &tauri::AppHandle) -> tauri::Result<()> {
    use tauri::menu::{Menu, MenuItem};
    let show = MenuItem::with_id(app, "show", "Open Conclave", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit (stops the relay)", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let mut tray = tauri::tray::TrayIconBuilder::with_id("conclave")
        .tooltip("Conclave")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "show" => {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.show();
                    let _ = w.unminimize();
                    let _ = w.set_focus();
                }
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon().cloned() {
        tray = tray.icon(icon);
    }
    tray.build(app)?;
    Ok(())
}

fn main() {
    let app = App::new(home());
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .manage(app)
        .setup(|tauri_app| {
            let state = tauri_app.state::<App>();
            if let Ok(mut h) = state.handle.lock() {
                *h = Some(tauri_app.handle().clone());
            }
            // An existing list opens locked: the UI asks for the passphrase.
            // A list whose key is on a card starts at once; the card's PIN
            // is asked for in a dialog when the card first needs it.
            if let Ok(mut list) = List::open(&state.home, Arc::new(SystemClock)) {
                let on_card = matches!(list.card_ident(), Ok(Some(_)));
                let unlocked = on_card && list.unlock_card(state.pin_source()).is_ok();
                state.attach(Engine::new(list), unlocked);
            }
            // No tray on a desktop without one (or under Xvfb): that is fine.
            let _ = tray(tauri_app.handle());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::setup,
            commands::unlock,
            commands::relay_start,
            commands::dashboard,
            commands::activity,
            commands::held_list,
            commands::held_show,
            commands::held_decide,
            commands::requests,
            commands::request_approve,
            commands::request_refuse,
            commands::subscriber_page,
            commands::subscriber_fingerprint,
            commands::subscribers_import,
            commands::subscriber_add,
            commands::subscriber_replace_key,
            commands::key_fingerprint,
            commands::subscriber_remove,
            commands::subscriber_enable,
            commands::invitation,
            commands::invitation_save_vcard,
            commands::certs,
            commands::cert_accept,
            commands::settings,
            commands::setting_set,
            commands::list_key,
            commands::pin_answer,
            commands::key_extend,
            commands::key_backup,
            commands::key_publish,
            commands::key_to_card,
            commands::cards,
            commands::passwords,
            commands::password_set,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("conclave-app: {e}");
        std::process::exit(1);
    }
}
