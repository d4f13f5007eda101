//! `conclave run`: run the list, one pass (`--once`) or until stopped, and
//! print what each pass did.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use conclave_core::events::{DeliveryReport, IntakeReport};
use conclave_core::relay::Engine;
use conclave_core::{Event, List, Unlocking};

use super::common::{home, open, passphrase, unlock};
use crate::cli::Cli;
use crate::inert::one_line;

/// Runs the relay with the list key usable.
pub fn dispatch(cli: &Cli, once: bool, out: &mut impl Write) -> Result<()> {
    // One pass with a key file: the key unlocks while the list opens and
    // the pass logs in (a list whose key is on a card drops it).
    let pass = if once { passphrase(cli)? } else { None };
    let early = match pass {
        Some(pw) => Some(Unlocking::start(&home(cli)?, pw)),
        None => None,
    };
    let mut list = open(cli)?;
    conclave_core::events::timing("list opened");
    let usable = if once && list.card_ident()?.is_none() {
        early.map(|u| list.unlock_with(u)).is_some()
    } else {
        unlock(&mut list, cli)?
    };
    if !usable {
        return Err(conclave_core::Error::PassphraseRequired.into());
    }
    if let Some(alarm) = list.list_key_alarm() {
        eprintln!("conclave: warning: {}", one_line(&alarm));
    }
    if once {
        run_once(list, out)
    } else {
        run_until_stopped(list)
    }
}

/// One pass over the mailbox and the outbox.
fn run_once(mut list: List, out: &mut impl Write) -> Result<()> {
    // What the owner should know (a subscriber's key updated from mail,
    // the key check, copies bouncing up to the threshold) is printed after
    // the lines of the step that raised it.
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    list.set_event_sink(Some(Arc::new(move |e: &Event| {
        if let Event::Notice { message } = e {
            if let Ok(mut n) = sink.lock() {
                n.push(message.clone());
            }
        }
    })));
    // The delivery pass runs beside the intake (`relay::pass`); the
    // intake's lines are printed as soon as the posts are in the outbox.
    let list = Mutex::new(list);
    let mut written = Ok(());
    let (_, delivered) = conclave_core::relay::pass(&list, &mut |intake| {
        if let Some(line) = conclave_core::relay::lock(&list).key_renewal() {
            eprintln!("conclave: {line}");
        }
        written = intake_lines_and_notices(intake, out, &notices);
    })?;
    written?;
    writeln!(out, "{}", delivery_line(&delivered))?;
    said(out, &notices)?;
    // A keyserver's verification link that came in the mail is opened.
    let said = std::cell::RefCell::new(Vec::new());
    conclave_core::relay::keys::open_verification_links(&list, &|l| {
        said.borrow_mut().push(one_line(l))
    })?;
    for l in said.into_inner() {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

/// The intake's lines, and what the owner should know from it and from the
/// key check.
fn intake_lines_and_notices(
    intake: &IntakeReport,
    out: &mut dyn Write,
    notices: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    for l in intake_lines(intake) {
        writeln!(out, "{l}")?;
    }
    said(out, notices)?;
    out.flush()
}

/// Prints the notices raised since the last time.
fn said(out: &mut dyn Write, notices: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let taken = notices
        .lock()
        .map(|mut n| std::mem::take(&mut *n))
        .unwrap_or_default();
    for n in taken {
        writeln!(out, "notice: {}", one_line(&n))?;
    }
    Ok(())
}

/// The relay on this thread, printing each pass, until it stops or meets an
/// error the owner must act on.
fn run_until_stopped(list: List) -> Result<()> {
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
        } => eprintln!("conclave: {} (retrying)", one_line(message)),
        Event::Notice { message } => eprintln!("conclave: {}", one_line(message)),
        _ => {}
    }));
    engine.run()?;
    Ok(())
}

/// What `run` prints of a pass over the mailbox: a line per post.
fn intake_lines(r: &IntakeReport) -> Vec<String> {
    let mut lines: Vec<String> = r
        .outcomes
        .iter()
        .map(|o| one_line(&format!("post #{}: {o}", o.post())))
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
fn delivery_line(r: &DeliveryReport) -> String {
    format!(
        "sent {}, failed {}, deferred {}",
        r.sent, r.failed, r.deferred
    )
}
