//! The engine as a front end holds it: the list behind a lock, the relay on
//! its own thread, and a stream of [`Event`]s. An [`Engine`] is a cheap clone
//! of an `Arc`; the desktop app keeps one, the CLI's `run` uses one too.
//!
//! The relay loop: a pass over the mailbox and the outbox (locking the list
//! for each step that touches it, never across a network round trip or a
//! PIN dialog), then waiting for new mail with IDLE (re-issued every five
//! minutes), so the owner's commands go through at any time. Errors the owner must act on (an untrusted or
//! changed certificate, a locked key, a PIN refused) stop the loop and are
//! reported; anything else is retried with backoff.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::events::{Event, EventSink};
use crate::list::List;
use crate::net::{imap, tls};

/// Asks a waiting relay to stop.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<StopInner>);

#[derive(Debug, Default)]
struct StopInner {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
}

impl StopSignal {
    /// Stops the relay at its next wait (or now, if it is waiting).
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.notify.notify_one();
    }

    /// Whether stop was asked.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    fn reset(&self) {
        self.0.stopped.store(false, Ordering::SeqCst);
    }

    /// Waits for `d`, or less if stop is asked.
    async fn sleep(&self, d: Duration) {
        if self.is_stopped() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.0.notify.notified() => {}
        }
    }
}

/// The engine: a list, its relay and its events.
#[derive(Clone)]
pub struct Engine(Arc<Inner>);

struct Inner {
    list: Mutex<List>,
    sinks: Mutex<Vec<EventSink>>,
    stop: StopSignal,
    /// Cuts the wait for mail short: the outbox has new copies.
    wake: tokio::sync::Notify,
    relay: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The refresh of the subscribers' keys, when one runs (on a thread of
    /// its own: its random pauses never hold up the relay).
    refresh: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// How long IDLE waits before it is re-issued.
const IDLE_RENEW: Duration = Duration::from_secs(300);
/// The longest wait between retries after an error.
const MAX_BACKOFF: u64 = 300;

impl Engine {
    /// Wraps an opened (and, to relay, unlocked) list.
    pub fn new(list: List) -> Engine {
        let engine = Engine(Arc::new(Inner {
            list: Mutex::new(list),
            sinks: Mutex::new(Vec::new()),
            stop: StopSignal::default(),
            wake: tokio::sync::Notify::new(),
            relay: Mutex::new(None),
            refresh: Mutex::new(None),
        }));
        let weak = Arc::downgrade(&engine.0);
        let sink: EventSink = Arc::new(move |e: &Event| {
            if let Some(inner) = weak.upgrade() {
                emit(&inner, e);
            }
        });
        engine.list().set_event_sink(Some(sink));
        engine
    }

    /// The list, for the owner's commands. Held only briefly by the relay.
    pub fn list(&self) -> MutexGuard<'_, List> {
        self.0.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a receiver of events.
    pub fn subscribe(&self, sink: EventSink) {
        self.0
            .sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sink);
    }

    /// Starts the relay on its own thread (if it is not running).
    pub fn start(&self) {
        let mut relay = self.0.relay.lock().unwrap_or_else(|e| e.into_inner());
        if relay.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.0.stop.reset();
        let engine = self.clone();
        *relay = Some(std::thread::spawn(move || {
            let _ = engine.run();
        }));
    }

    /// Stops the relay and waits for it: at once if it is waiting for mail,
    /// after the current pass otherwise.
    pub fn stop(&self) {
        self.0.stop.stop();
        let handle = self
            .0
            .relay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Starts the relay, or, if it is waiting for mail, makes it do a pass
    /// now: after the owner approved a post, say, its copies go out at once.
    pub fn wake(&self) {
        if self.is_running() {
            self.0.wake.notify_one();
        } else {
            self.start();
        }
    }

    /// Whether the relay thread is running.
    pub fn is_running(&self) -> bool {
        self.0
            .relay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }

    /// `key publish`: uploads the list key to the keyserver and asks it to
    /// check the list address, without holding the list during the
    /// requests; the relay completes the check when the mail arrives.
    pub fn publish_key(&self) -> Result<String, Error> {
        super::keys::publish_key(&self.0.list)
    }

    /// A handle that stops [`Engine::run`] from another thread (or a signal
    /// handler's thread).
    pub fn stop_signal(&self) -> StopSignal {
        self.0.stop.clone()
    }

    /// Runs the relay on this thread until it is stopped or meets an error
    /// the owner must act on, which it returns.
    pub fn run(&self) -> Result<(), Error> {
        let stop = &self.0.stop;
        emit(&self.0, &Event::Started);
        let mut backoff = 1u64;
        // Waits before the next try, twice as long each time, up to a limit.
        let retry = |backoff: &mut u64| {
            let _ = tls::block_on(stop.sleep(Duration::from_secs(*backoff)));
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
        };
        // An out-of-date list key (SHA-1 self-signatures, no AEAD
        // preferences) is certified again once, at the start: through the
        // card for a card-held key.
        if self.list().key_needs_renewal() {
            super::ask_pin_ahead(&self.0.list);
        }
        let renewed = self.list().renew_key();
        match renewed {
            Ok(Some(message)) => emit(&self.0, &Event::Notice { message }),
            Ok(None) => {}
            Err(e) => {
                let fatal = is_fatal(&e);
                report(&self.0, &e, fatal);
                if fatal {
                    emit(&self.0, &Event::Stopped);
                    return Err(e);
                }
            }
        }
        let result = loop {
            if stop.is_stopped() {
                break Ok(());
            }
            let pass = super::run_once(&self.0.list);
            let seen = match pass {
                Ok((intake, delivery)) => {
                    backoff = 1;
                    let seen = intake.inbox;
                    emit(&self.0, &Event::Pass { intake, delivery });
                    seen
                }
                Err(e) if is_fatal(&e) => {
                    report(&self.0, &e, true);
                    break Err(e);
                }
                Err(e) => {
                    report(&self.0, &e, false);
                    retry(&mut backoff);
                    continue;
                }
            };
            self.refresh_keys_if_due();
            let settings = match self.list().imap_settings() {
                Ok(s) => s,
                Err(e) => {
                    report(&self.0, &e, true);
                    break Err(e);
                }
            };
            let waited = tls::block_on(async {
                tokio::select! {
                    r = imap::wait_for_mail(&settings, IDLE_RENEW, seen) => r.map_err(Some),
                    _ = stop.sleep(IDLE_RENEW * 2) => Err(None),
                    _ = self.0.wake.notified() => Err(None),
                }
            });
            match waited {
                Ok(Ok(())) | Ok(Err(None)) => {}
                Ok(Err(Some(e))) => {
                    let e = super::intake::imap_error(e);
                    if is_fatal(&e) {
                        report(&self.0, &e, true);
                        break Err(e);
                    }
                    report(&self.0, &e, false);
                    retry(&mut backoff);
                }
                Err(e) => break Err(Error::io("start", "the network runtime", e)),
            }
        };
        emit(&self.0, &Event::Stopped);
        result
    }
}

impl Engine {
    /// Starts a refresh of the subscribers' keys on its own thread when one
    /// is due (`keys.refresh`, `keys.refresh_days`) and none is running.
    fn refresh_keys_if_due(&self) {
        let mut running = self.0.refresh.lock().unwrap_or_else(|e| e.into_inner());
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        match self.list().key_refresh_due() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                report(&self.0, &e, false);
                return;
            }
        }
        let engine = self.clone();
        *running = Some(std::thread::spawn(move || {
            let inner = &engine.0;
            let tell = |line: &str| {
                emit(
                    inner,
                    &Event::Notice {
                        message: line.to_string(),
                    },
                )
            };
            match super::keys::refresh_keys(&inner.list, None, Some(&inner.stop), &tell) {
                Ok(r) => tell(&r.summary()),
                Err(e) => report(inner, &e, false),
            }
        }));
    }
}

/// Errors only the owner can mend: the relay stops for them. A server that
/// cannot be reached (a TLS `Connect` error is `Network` too) is retried.
fn is_fatal(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UntrustedCertificate
            | ErrorKind::CertificateChanged
            | ErrorKind::NoStartTls
            | ErrorKind::PassphraseRequired
            | ErrorKind::BadPassphrase
            | ErrorKind::Pin
            | ErrorKind::Keyring
            | ErrorKind::InvalidInput
            | ErrorKind::NotInitialised
    )
}

fn report(inner: &Inner, e: &Error, fatal: bool) {
    if let Ok(list) = inner.list.lock() {
        let _ = list
            .store()
            .audit(list.unix(), None, "error", &e.to_string());
    }
    let tls = match e {
        Error::Tls(
            t @ (tls::TlsError::Untrusted { .. }
            | tls::TlsError::Changed { .. }
            | tls::TlsError::NoLongerVouched { .. }),
        ) => Some(t.clone()),
        _ => None,
    };
    emit(
        inner,
        &Event::Error {
            kind: e.kind(),
            message: e.to_string(),
            tls,
            fatal,
        },
    );
}

fn emit(inner: &Inner, e: &Event) {
    let sinks: Vec<EventSink> = inner.sinks.lock().map(|s| s.clone()).unwrap_or_default();
    for s in sinks {
        s(e);
    }
}
