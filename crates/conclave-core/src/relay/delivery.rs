//! Delivery: submitting the outbox over SMTP. A copy is marked sent only once
//! the server accepted it; a temporary refusal (4xx) is retried later with
//! backoff; a permanent one (5xx) fails that copy and tells the owner. The
//! list signature is made at fan-out time, so copies go out promptly.

use std::time::Duration;

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::events::{timing, DeliveryReport};
use crate::list::fanout::Assembler;
use crate::list::List;
use crate::net::smtp::{SendError, SmtpSession, SmtpSettings};
use crate::net::tls;
use crate::store::{OutboxCopy, Store};

use super::{ask_pin_ahead, with};

/// The first retry waits this long; each further one twice as long, up to an hour.
const FIRST_RETRY: i64 = 60;

/// Submits every copy that is due, over `smtp.connections` connections
/// side by side (one when `smtp.rate_per_minute` is set), after signing
/// stale ones again ([`List::refresh_stale_copies`]). Fails before sending
/// anything when the server cannot be trusted or the login is refused. The
/// connections take copies from one queue, each the next when the server
/// has answered its last. A connection that breaks and cannot be reopened
/// leaves the copies to the others (its copy in hand stays queued for the
/// next pass), and the error is returned once they have finished.
///
/// The list is locked only to read the settings and to sign stale copies
/// again; the copies go out through a store connection of the relay's own,
/// so the owner's commands never wait for the mail server.
pub fn send_outbox(list: &Mutex<List>) -> Result<DeliveryReport> {
    let pass = Pass::new(list)?;
    let runtime = runtime()?;
    pass.send(list, &runtime, None, None)
}

/// What a delivery pass that runs beside the intake is told
/// ([`send_outbox_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ahead {
    /// A post is on its way into the outbox: open the connections now.
    Open,
    /// A fan-out has queued more copies ([`List::set_queued_hook`]): send
    /// them while it goes on.
    More,
    /// The intake is done, and the outbox is ready: send what is due.
    Send,
}

/// The intake's end of the channel to a delivery pass beside it.
#[derive(Debug, Clone)]
pub struct Tell(tokio::sync::mpsc::UnboundedSender<Ahead>);

impl Tell {
    /// Tells the pass (which may have stopped already).
    pub fn tell(&self, what: Ahead) {
        let _ = self.0.send(what);
    }
}

/// The delivery pass's end ([`send_outbox_ahead`]).
#[derive(Debug)]
pub struct Told(tokio::sync::mpsc::UnboundedReceiver<Ahead>);

/// A channel from the intake to a delivery pass beside it.
pub fn ahead_channel() -> (Tell, Told) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Tell(tx), Told(rx))
}

/// Connections opened ahead that waited longer than this are not trusted
/// to be open still (a server closes an idle one after a few minutes, and
/// the copy in hand would wait for a retry): new ones are opened.
const AHEAD_FRESH: Duration = Duration::from_secs(15);

/// [`send_outbox`], on a thread of its own beside the intake: told
/// [`Ahead::Open`], it opens its connections (TLS handshakes and logins)
/// while the post is still being fetched and decrypted; told
/// [`Ahead::More`], it sends the copies queued so far while the fan-out
/// goes on, and takes more as they come; told [`Ahead::Send`], it sends
/// what is left and ends when the outbox is empty. A pass told `Send`
/// without `Open` opens them then, as [`send_outbox`]. When the channel
/// closes without `Send` (the intake failed), the pass sends what was
/// queued before, and no more; without a `More` either, nothing, and it
/// says goodbye to the connections it opened. A connection that fails to
/// open ahead is tried again when there is something to send, so the
/// errors are those of [`send_outbox`].
///
/// Copies that must be signed again first (queued over an hour ago) are
/// signed at `Send`, as [`send_outbox`] does, and then nothing goes out
/// before it: signing them needs the list, which the intake holds while it
/// fans out.
pub fn send_outbox_ahead(list: &Mutex<List>, mut told: Told) -> Result<DeliveryReport> {
    let Some(first) = told.0.blocking_recv() else {
        return Ok(DeliveryReport::default());
    };
    let pass = Pass::new(list)?;
    let runtime = runtime()?;
    if first == Ahead::Send {
        return pass.send(list, &runtime, None, None);
    }
    let stale = with(list, |l| l.has_stale_copies())?;
    let wanted = pass.connections;
    let opened = runtime.block_on(open_sessions(&pass.settings, wanted));
    let since = std::time::Instant::now();
    // The first word after the connections are open.
    let next = loop {
        match told.0.blocking_recv() {
            Some(Ahead::More) if stale => {}
            Some(Ahead::Open) => {}
            other => break other,
        }
    };
    let ahead = match opened {
        Ok(sessions) if next.is_none() || since.elapsed() > AHEAD_FRESH => {
            runtime.block_on(close_all(sessions));
            None
        }
        Ok(opened) => Some(opened),
        Err(_) => None,
    };
    match next {
        None => Ok(DeliveryReport::default()),
        Some(Ahead::Send) => pass.send(list, &runtime, ahead, None),
        Some(_) => pass.send(list, &runtime, ahead, Some(told)),
    }
}

/// The runtime a pass's connections live on ([`tls::runtime`]).
fn runtime() -> Result<tokio::runtime::Runtime> {
    tls::runtime().map_err(|e| Error::io("start", "the network runtime", e))
}

/// Opens up to `wanted` connections side by side. The first proves the
/// server and the login (no credential goes out before each connection's
/// certificate is verified); the others are a bonus (a server may cap
/// connections per client).
async fn open_sessions(
    settings: &SmtpSettings,
    wanted: usize,
) -> std::result::Result<Vec<SmtpSession>, SendError> {
    let mut opened =
        futures::future::join_all((0..wanted.max(1)).map(|_| SmtpSession::open(settings)))
            .await
            .into_iter();
    let first = opened
        .next()
        .unwrap_or_else(|| Err(SendError::Transient("no connection was opened".into())))?;
    let mut sessions = vec![first];
    sessions.extend(opened.flatten());
    timing("smtp connections logged in");
    Ok(sessions)
}

async fn close_all(sessions: Vec<SmtpSession>) {
    futures::future::join_all(sessions.into_iter().map(SmtpSession::close)).await;
}

/// One delivery pass: what it read from the list before going out.
struct Pass {
    settings: SmtpSettings,
    pause: Duration,
    connections: usize,
    from: String,
    db: std::path::PathBuf,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    events: Option<crate::events::EventSink>,
}

impl Pass {
    fn new(list: &Mutex<List>) -> Result<Pass> {
        with(list, |l| {
            let settings = l.smtp_settings()?;
            let rate: u32 = l.config_value("smtp.rate_per_minute")?.parse().unwrap_or(0);
            let (pause, connections) = if rate == 0 {
                let n: usize = l.config_value("smtp.connections")?.parse().unwrap_or(4);
                (Duration::ZERO, n.clamp(1, 16))
            } else {
                (Duration::from_millis(60_000 / u64::from(rate)), 1)
            };
            Ok(Pass {
                settings,
                pause,
                connections,
                from: l.address().to_string(),
                db: l.db_path(),
                clock: l.clock(),
                events: l.event_sink(),
            })
        })
    }

    /// Signs stale copies again, then sends what is due, over `ahead`'s
    /// connections when they were opened already. With `more`, the intake
    /// is still fanning out: the copies it queues are sent as it says so,
    /// until it says [`Ahead::Send`] (stale copies were looked for before).
    fn send(
        self,
        list: &Mutex<List>,
        runtime: &tokio::runtime::Runtime,
        ahead: Option<Vec<SmtpSession>>,
        mut more: Option<Told>,
    ) -> Result<DeliveryReport> {
        if more.is_none() && with(list, |l| l.has_stale_copies())? {
            ask_pin_ahead(list);
            with(list, |l| l.refresh_stale_copies())?;
        }
        let Pass {
            settings,
            pause,
            connections,
            from,
            db,
            clock,
            events,
        } = self;
        let store = &Store::open(&db)?;
        let clock = &clock;
        let from = from.as_str();
        let events = &events;
        runtime.block_on(async {
            timing("delivery started");
            let feed = &Feed::default();
            feed.read(store, clock.unix())?;
            if more.is_none() {
                feed.end();
            }
            timing("outbox read");
            let mut report = DeliveryReport::default();
            if feed.ended.get() && feed.is_empty() {
                if let Some(sessions) = ahead {
                    close_all(sessions).await;
                }
                return Ok(report);
            }
            let secret = store.bounce_secret()?;
            let wanted = if feed.ended.get() {
                connections.min(feed.total.get())
            } else {
                connections
            };
            let mut sessions = match ahead {
                Some(opened) => opened,
                None => open_sessions(&settings, wanted).await.map_err(send_error)?,
            };
            super::servers::note_vouched(store, &settings.endpoint, &settings.trust, clock.unix())?;
            // Opened ahead for more copies than there are: the rest say
            // goodbye.
            if sessions.len() > wanted {
                close_all(sessions.split_off(wanted)).await;
            }
            let done = std::cell::Cell::new(0usize);
            let tick = || {
                done.set(done.get() + 1);
                if let Some(sink) = events {
                    sink(&crate::events::Event::Progress {
                        done: done.get(),
                        total: feed.total.get(),
                    });
                }
            };
            // What the intake queues while the copies go out.
            let feeder = async {
                let fed = async {
                    let Some(told) = more.as_mut() else {
                        return Ok(());
                    };
                    while let Some(what) = told.0.recv().await {
                        if what != Ahead::Open {
                            feed.read(store, clock.unix())?;
                            feed.more.notify_waiters();
                        }
                        if what == Ahead::Send {
                            break;
                        }
                    }
                    Ok::<(), Error>(())
                }
                .await;
                feed.end();
                fed
            };
            // One queue for every connection: each takes the next copy when the
            // server has taken its last, so a slower connection takes fewer.
            let marks = Marks::new(pause);
            let marks = &marks;
            let workers = sessions.into_iter().map(|session| {
                let job = Job {
                    store,
                    clock: clock.as_ref(),
                    settings: &settings,
                    from,
                    secret: &secret,
                    events,
                    pause,
                    tick: &tick,
                    marks,
                };
                submit(job, session, feed)
            });
            let (fed, parts) =
                futures::future::join(feeder, futures::future::join_all(workers)).await;
            marks.flush(store)?;
            timing("every copy answered");
            let mut first_error = fed.err();
            for (part, error) in parts {
                report.sent += part.sent;
                report.failed += part.failed;
                report.deferred += part.deferred;
                if first_error.is_none() {
                    first_error = error;
                }
            }
            store.audit(
                clock.unix(),
                None,
                "delivery",
                &format!(
                    "{} sent, {} failed, {} deferred",
                    report.sent, report.failed, report.deferred
                ),
            )?;
            match first_error {
                Some(e) => Err(e),
                None => Ok(report),
            }
        })
    }
}

/// The copies a pass sends: those due when it starts, and those a fan-out
/// beside it queues while they go out ([`Ahead::More`]).
#[derive(Default)]
struct Feed {
    queue: std::cell::RefCell<std::collections::VecDeque<OutboxCopy>>,
    /// The last copy read (row ids grow).
    last: std::cell::Cell<i64>,
    /// Copies read in all (the progress bar's total).
    total: std::cell::Cell<usize>,
    /// No more will come.
    ended: std::cell::Cell<bool>,
    /// Woken when copies came or no more will.
    more: tokio::sync::Notify,
}

impl Feed {
    /// Reads the copies due at `now` that were queued since the last read.
    fn read(&self, store: &Store, now: i64) -> Result<()> {
        let copies = store.due_copies_after(now, self.last.get())?;
        if let Some(last) = copies.last() {
            self.last.set(last.id);
        }
        self.total.set(self.total.get() + copies.len());
        self.queue.borrow_mut().extend(copies);
        Ok(())
    }

    fn next(&self) -> Option<OutboxCopy> {
        self.queue.borrow_mut().pop_front()
    }

    fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    fn end(&self) {
        self.ended.set(true);
        self.more.notify_waiters();
    }

    /// Waits until there is a copy to take (true), or none will come
    /// (false).
    async fn wait(&self) -> bool {
        loop {
            // Made before looking, so a wake-up in between is not missed.
            let woken = self.more.notified();
            if !self.is_empty() {
                return true;
            }
            if self.ended.get() {
                return false;
            }
            woken.await;
        }
    }
}

/// What every connection of a delivery pass shares.
#[derive(Clone, Copy)]
struct Job<'a> {
    store: &'a crate::store::Store,
    clock: &'a dyn crate::clock::Clock,
    settings: &'a SmtpSettings,
    from: &'a str,
    /// The list's VERP secret: each copy's envelope sender names it.
    secret: &'a [u8],
    events: &'a Option<crate::events::EventSink>,
    pause: Duration,
    /// Called once a copy has its answer.
    tick: &'a dyn Fn(),
    /// Copies accepted, not yet marked in the store.
    marks: &'a Marks,
}

/// The copies the server accepted, marked sent in the store a few at a
/// time: a transaction per copy cost more than its submission's share of
/// the machine. A copy answered [`Marks::MOST_AGE`] or more after the last
/// write is written at once with those pending, as are [`Marks::MOST`]
/// pending, and what is left at the end of the pass; a crash before that
/// sends those copies again, under the same Message-ID. Paced copies
/// (`smtp.rate_per_minute`) are written one by one.
struct Marks {
    pending: std::cell::RefCell<Vec<(i64, i64)>>,
    /// When they were last written.
    written: std::cell::Cell<std::time::Instant>,
    each: bool,
}

impl Marks {
    const MOST: usize = 64;
    const MOST_AGE: Duration = Duration::from_millis(20);

    fn new(pause: Duration) -> Self {
        Marks {
            pending: std::cell::RefCell::new(Vec::new()),
            written: std::cell::Cell::new(std::time::Instant::now()),
            each: !pause.is_zero(),
        }
    }

    /// Copy `id` was accepted at `at`.
    fn sent(&self, store: &Store, id: i64, at: i64) -> Result<()> {
        let count = {
            let mut pending = self.pending.borrow_mut();
            pending.push((id, at));
            pending.len()
        };
        // A copy answered after a quiet spell is written at once; in a
        // steady stream, every 20 ms.
        if self.each || count >= Self::MOST || self.written.get().elapsed() >= Self::MOST_AGE {
            self.flush(store)?;
        }
        Ok(())
    }

    /// Writes what is pending.
    fn flush(&self, store: &Store) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        self.written.set(std::time::Instant::now());
        if pending.is_empty() {
            return Ok(());
        }
        store.mark_sent_all(&pending)
    }
}

/// One connection's share of a delivery pass: submits the copies it takes
/// from `feed` in turn and records each answer (opening a new connection
/// when one breaks), waiting for more while the feed has not ended.
/// Returns what it did and the error that stopped it early, if one did.
async fn submit(
    job: Job<'_>,
    mut session: SmtpSession,
    feed: &Feed,
) -> (DeliveryReport, Option<Error>) {
    let settings = job.settings;
    let pause = job.pause;
    let mut calls = Answers {
        assembler: Assembler::new(job.store),
        job,
        report: DeliveryReport::default(),
    };
    let mut copies = std::iter::from_fn(|| feed.next());
    let mut given_back = None;
    let mut error = None;
    loop {
        if given_back.is_none() && !feed.wait().await {
            break;
        }
        if session.is_broken() {
            match SmtpSession::open(settings).await {
                Ok(s) => session = s,
                Err(e) => {
                    error = Some(send_error(e));
                    break;
                }
            }
        }
        match session
            .send_each(given_back.take(), &mut copies, pause, &mut calls)
            .await
        {
            Err(e) => {
                error = Some(e);
                break;
            }
            Ok(back) => given_back = back,
        }
    }
    session.close().await;
    (calls.report, error)
}

/// What a connection does with each copy and its answer.
struct Answers<'j> {
    job: Job<'j>,
    assembler: Assembler<'j>,
    report: DeliveryReport,
}

impl crate::net::smtp::SendCalls<OutboxCopy, Error> for Answers<'_> {
    fn envelope(&mut self, copy: &OutboxCopy) -> (String, String) {
        // The envelope sender names this copy: a bounce comes back to it.
        let sender = crate::list::bounces::verp_sender(self.job.from, self.job.secret, copy.id);
        (sender, copy.recipient.clone())
    }

    fn message(&mut self, copy: &OutboxCopy) -> Result<Vec<u8>> {
        self.assembler.assemble(copy)
    }

    fn answered(
        &mut self,
        copy: OutboxCopy,
        result: std::result::Result<(), SendError>,
    ) -> Result<()> {
        let Job {
            store,
            clock,
            events,
            tick,
            marks,
            ..
        } = self.job;
        let now = clock.unix();
        match result {
            Ok(()) => {
                marks.sent(store, copy.id, now)?;
                self.report.sent += 1;
            }
            Err(SendError::Permanent(e)) => {
                store.mark_failed(copy.id, &e)?;
                store.audit(
                    now,
                    Some(copy.post_id),
                    "not-delivered",
                    &format!("{} refused for good: {e}", copy.recipient),
                )?;
                // A refusal at submission is a bounce of that copy.
                let said = e.to_string();
                if let Some(alert) =
                    crate::list::bounces::count_refusal(store, now, copy.id, &said)?
                {
                    if let Some(sink) = events {
                        sink(&crate::events::Event::Notice { message: alert });
                    }
                }
                self.report.failed += 1;
            }
            Err(e) => {
                let wait = FIRST_RETRY
                    .saturating_mul(1 << copy.attempts.clamp(0, 6))
                    .min(3600);
                store.mark_retry(copy.id, &e.to_string(), now + wait)?;
                self.report.deferred += 1;
            }
        }
        tick();
        Ok(())
    }
}

fn send_error(e: SendError) -> Error {
    match e {
        SendError::Tls(t) => Error::Tls(t),
        other => Error::network(other),
    }
}
