//! Fan-out: build the entity the list signs, sign it once, encrypt it once
//! per SEIPD version, and queue one copy per subscriber holding only that
//! subscriber's recipient packets. Work is spread over the machine's cores.

use std::collections::HashSet;
use std::time::SystemTime;

use base64::Engine as _;
use openpgp::armor;
use openpgp::serialize::Serialize;
use sequoia_openpgp as openpgp;

use crate::crypto::certs;
use crate::crypto::decrypt;
use crate::crypto::seal::{self, SealedBody};
use crate::error::{Error, Result};
use crate::mime::build::{self, ProtectedHeaders};
use crate::mime::parse::Content;
use crate::store::{CopyRef, OutboxCopy, RecipientCopy, RecipientRow};

use super::open::Opened;
use super::{List, SignatureMode};

impl List {
    /// Builds the list-signed entity for an opened post and fans it out.
    pub(crate) fn distribute(&mut self, post_id: i64, post: &Opened) -> Result<usize> {
        self.distribute_to(post_id, post, None)
    }

    /// Like [`List::distribute`]; with `replacing`, the post is signed anew
    /// and only the queued copies listed, (copy id, recipient), are replaced
    /// with fresh ones, in one transaction.
    pub(crate) fn distribute_to(
        &mut self,
        post_id: i64,
        post: &Opened,
        replacing: Option<&[CopyRef]>,
    ) -> Result<usize> {
        let policy = super::Policy::load(&self.store)?;
        let now = self.now();
        let name = self.name()?;
        let address = self.address.clone();
        let domain = address
            .split_once('@')
            .map(|d| d.1)
            .unwrap_or("localhost")
            .to_owned();
        let from = post.incoming.from.clone().unwrap_or_default();
        // The name a copy shows comes from the verified subscriber's key
        // (its User ID for the address), never from the sender's headers,
        // which anyone who can put mail in the mailbox controls; an
        // unverified post shows the address alone.
        let author_name = match &post.author {
            Some((addr, _)) => self
                .store
                .subscriber(addr)?
                .and_then(|(_, cert)| certs::parse_public_cert(&cert).ok())
                .and_then(|cert| certs::name_for(&cert, addr, now))
                .unwrap_or_else(|| addr.clone()),
            None => build::clean(&from),
        };

        // Who wrote the post is shown in every mode: Mutt, for one, reads
        // only the protected Subject, and would show the author nowhere.
        let statement = statement(post, &author_name, &from);
        let parts = match policy.signature_mode {
            SignatureMode::Carry => {
                let mut parts = vec![statement];
                parts.extend(carried_parts(post)?);
                parts
            }
            SignatureMode::Replace => vec![statement, replaced_content(post)],
        };
        // Headers from inside the encryption (from inside the signed data,
        // for a signed post) are the author's; the outer ones are the mail
        // host's to change, and never go out as the author's.
        let subject = match inside_subject(post) {
            Some(s) => s,
            None => match post.incoming.subject.as_deref().map(build::clean) {
                Some(s) if !s.is_empty() && s != "..." => format!("{UNVERIFIED_SUBJECT}{s}"),
                _ => String::new(),
            },
        };
        // Every copy of a post carries one Message-ID outside (the host can
        // link the copies by their shared body anyway) and one inside: the
        // author's own when they signed it and no other post had it, so the
        // author's client knows its post; anyone can make a post carry the
        // ID of an earlier one, which clients would show as the same message.
        let outer_id = format!("{}@{domain}", short_hash(&post.digest, ""));
        let authors_id = post
            .protected
            .message_id
            .as_deref()
            .and_then(message_id_ok)
            .filter(|id| policy.keep_message_id && post.author.is_some() && !ours(id, &domain));
        let message_id = match authors_id {
            Some(id) => match self.store.message_id_post(&id)? {
                Some(other) if other != post_id => outer_id.clone(),
                _ => id,
            },
            None => outer_id.clone(),
        };
        let threads = self.threading(post, &domain)?;
        let headers = ProtectedHeaders {
            from: build::mailbox(Some(&format!("{author_name} via {name}")), &address),
            sender: build::mailbox(Some(&name), &address),
            to: build::mailbox(Some(&name), &address),
            reply_to: build::mailbox(None, &address),
            subject,
            date: crate::clock::rfc5322(now),
            message_id: message_id.clone(),
            in_reply_to: joined(&threads.inner_in_reply_to),
            references: joined(&threads.inner_references),
            outer: vec![
                ("Subject".into(), "...".into()),
                ("From".into(), build::mailbox(Some(&name), &address)),
            ],
        };
        let entity = build::protected_entity(&headers, &parts, &boundary("mixed", &post.digest));

        // What the copies show outside: the list, or the author on request;
        // the threading headers only on request (the host learns the thread).
        let mut plan = CopyPlan {
            from_name: policy
                .outer_from_author
                .then(|| format!("{author_name} via {name}")),
            ..CopyPlan::default()
        };
        if policy.outer_references {
            for (field, ids) in [
                ("In-Reply-To", &threads.outer_in_reply_to),
                ("References", &threads.outer_references),
            ] {
                if let Some(v) = joined(ids) {
                    build::header_to(&mut plan.extra_headers, field, &v);
                }
            }
        }
        if !policy.deliver_selfsent {
            plan.skip = Some(match &post.author {
                Some((addr, _)) => addr.clone(),
                None => post.from.clone(),
            });
        }
        let queued = self.fan_out_to(post_id, &post.digest, &entity, now, replacing, &plan)?;

        // Every ID a copy carried or the author gave the post, so a reply
        // that names any of them is placed under it.
        let mut ids = vec![("inner", message_id.as_str()), ("outer", outer_id.as_str())];
        let author_ids: Vec<String> = [&post.protected.message_id, &post.incoming.message_id]
            .into_iter()
            .filter_map(|id| id.as_deref().and_then(message_id_ok))
            .collect();
        ids.extend(author_ids.iter().map(|id| ("author", id.as_str())));
        self.store.remember_message_ids(post_id, &ids)?;
        Ok(queued)
    }

    /// The threading of a post's copies: every ID the post names that
    /// belongs to one of the list's posts becomes the IDs each subscriber
    /// received for that post (outside and inside); other IDs the author
    /// wrote inside the encryption are kept inside as they are; other IDs
    /// from outside are dropped, except the list's own (`HASH@DOMAIN`).
    fn threading(&self, post: &Opened, domain: &str) -> Result<Threads> {
        let inside = post.protected.in_reply_to.is_some() || post.protected.references.is_some();
        let (in_reply_to, references) = if inside {
            (&post.protected.in_reply_to, &post.protected.references)
        } else {
            (&post.incoming.in_reply_to, &post.incoming.references)
        };
        let mut t = Threads::default();
        for (value, is_reply) in [(in_reply_to, true), (references, false)] {
            let Some(value) = value else { continue };
            let (mut inner, mut outer) = (Vec::new(), Vec::new());
            for id in parse_ids(value) {
                let known = match self.store.message_id_post(&id)? {
                    Some(p) => Some((
                        self.store.post_message_id(p, "outer")?,
                        self.store.post_message_id(p, "inner")?,
                    )),
                    None => None,
                };
                match known {
                    Some((o, i)) => {
                        // Outside first, then inside: the last is the
                        // parent, and the inside ID is the post's own.
                        for id in o.iter().chain(i.iter()) {
                            push_unique(&mut inner, id);
                        }
                        if let Some(o) = o {
                            push_unique(&mut outer, &o);
                        }
                    }
                    None if inside => push_unique(&mut inner, &id),
                    None if ours(&id, domain) => {
                        push_unique(&mut inner, &id);
                        push_unique(&mut outer, &id);
                    }
                    None => {}
                }
            }
            if is_reply {
                t.inner_in_reply_to = inner.pop().into_iter().collect();
                t.outer_in_reply_to = outer.pop().into_iter().collect();
            } else {
                t.inner_references = last_n(inner, 20);
                t.outer_references = last_n(outer, 20);
            }
        }
        Ok(t)
    }

    /// Signs `entity` once with the list key and queues one encrypted copy per
    /// subscriber. Returns the number of copies queued. This is the whole
    /// per-post cost of a fan-out, and what the benchmark measures.
    pub fn fan_out(
        &mut self,
        post_id: i64,
        post_digest: &str,
        entity: &[u8],
        now: SystemTime,
    ) -> Result<usize> {
        self.fan_out_to(
            post_id,
            post_digest,
            entity,
            now,
            None,
            &CopyPlan::default(),
        )
    }

    fn fan_out_to(
        &mut self,
        post_id: i64,
        post_digest: &str,
        entity: &[u8],
        now: SystemTime,
        replacing: Option<&[CopyRef]>,
        plan: &CopyPlan,
    ) -> Result<usize> {
        let signer = self.keystore()?.signer()?;
        let signature = match seal::sign_detached(signer, entity, now) {
            Ok(s) => s,
            Err(e) => return Err(self.keystore()?.take_failure().unwrap_or(e)),
        };
        let payload = build::signed_entity(
            entity,
            &signature,
            "pgp-sha256",
            &boundary("signed", post_digest),
        );
        drop(signature);

        let name = self.name()?;
        let address = self.address.clone();
        let request = self.request_address()?;
        let domain = address
            .split_once('@')
            .map(|d| d.1)
            .unwrap_or("localhost")
            .to_owned();
        let keydata = certs::autocrypt_keydata(&self.cert, &address, now)?;
        let owner = self.owner_address()?;
        let common = common_headers(&name, &address, &request, &owner, &domain, &keydata);

        // Copies are only replaced for people still subscribed; any other
        // stays as it was signed.
        let mut still = Vec::new();
        for copy in replacing.unwrap_or_default() {
            if self.store.is_subscriber(&copy.1)? {
                still.push(copy.clone());
            }
        }
        let replacing = replacing.map(|_| still);
        // Subscribers whose delivery the bounces stopped get no copy.
        let stopped: HashSet<String> = self.store.delivery_disabled()?.into_iter().collect();
        let from = build::mailbox(Some(plan.from_name.as_deref().unwrap_or(&name)), &address);
        let message_id = format!("{}@{domain}", short_hash(post_digest, ""));
        // What every copy shows outside but its `To:`, kept once with the body.
        let shared = format!(
            "From: {from}\r\nSubject: ...\r\nDate: {}\r\nMessage-ID: <{message_id}>\r\n{}{common}",
            crate::clock::rfc5322(now),
            plan.extra_headers,
        );
        let at = crate::clock::unix(now);
        let mut queued = 0;
        let mut skipped = Vec::new();
        let ts = self.unix();
        // A fresh fan-out commits its copies as they are made, and says so
        // (a delivery pass beside it sends the first while the rest are
        // encrypted); after a crash the post is processed again, and the
        // copies queued already are not queued twice (one per post and
        // subscriber). Copies signed anew replace the old ones in one
        // transaction: the old go only with the new in.
        let whole = replacing.is_some();
        let fed = self.queued_hook.clone().filter(|_| !whole);
        let told = || {
            if let Some(hook) = &fed {
                hook();
            }
        };
        let run = |store: &crate::store::Store| -> Result<()> {
            let only: Option<HashSet<String>> = match &replacing {
                Some(copies) => Some(
                    store
                        .drop_queued_unlocked(post_id, copies)?
                        .into_iter()
                        .collect(),
                ),
                None => None,
            };
            // Both bodies are sealed before the copies; the signed payload
            // goes, so a large post is not held three times meanwhile.
            let bodies = [
                SealedBody::new(&payload, false)?,
                SealedBody::new(&payload, true)?,
            ];
            drop(payload);
            let body_ids = committed(store, whole, |store| {
                Ok([
                    store.insert_body_unlocked(post_id, &bodies[0].seipd, &shared, ts)?,
                    store.insert_body_unlocked(post_id, &bodies[1].seipd, &shared, ts)?,
                ])
            })?;
            let wanted = |a: &str| {
                plan.skip.as_deref() != Some(a)
                    && !stopped.contains(a)
                    && only.as_ref().is_none_or(|o| o.contains(a))
            };
            // Keys whose derived state is missing or no longer holds are
            // read again, after the others.
            let mut again = Vec::new();
            let mut take = |done: Vec<Encrypted>| -> Result<()> {
                let (mut v1_rows, mut v2_rows) = (Vec::new(), Vec::new());
                for e in done {
                    match e.result {
                        Ok((v2, pkesks)) => {
                            if v2 { &mut v2_rows } else { &mut v1_rows }.push(RecipientCopy {
                                recipient: e.address,
                                pkesks,
                            })
                        }
                        Err(why) => skipped.push((e.address, why)),
                    }
                }
                if v1_rows.is_empty() && v2_rows.is_empty() {
                    return Ok(());
                }
                queued += committed(store, whole, |store| {
                    let mut added = 0;
                    for (rows, body_id) in [v1_rows, v2_rows].iter().zip(body_ids) {
                        if !rows.is_empty() {
                            added += store.insert_copies_unlocked(
                                post_id,
                                body_id,
                                &message_id,
                                rows,
                                ts,
                            )?;
                        }
                    }
                    Ok(added)
                })?;
                told();
                Ok(())
            };
            let work = |jobs: Vec<Job>| -> Vec<Encrypted> {
                jobs.into_iter()
                    .map(|job| encrypt_copy(job, &bodies))
                    .collect()
            };
            pipeline(
                |hand: &mut dyn FnMut(Vec<Job>) -> Result<()>| {
                    // The first jobs are small, so the first copies are
                    // queued (and can go out) soon.
                    let mut size = FIRST_CHUNK;
                    let mut chunk = Vec::with_capacity(size);
                    store.each_recipient(|r| {
                        if !wanted(&r.address) {
                            return Ok(());
                        }
                        match r.recipient {
                            Some(recipient) if recipient.holds_at(at) => {
                                chunk.push(Job {
                                    address: r.address,
                                    recipient,
                                });
                                if chunk.len() == size {
                                    size = (size * 2).min(CHUNK);
                                    hand(std::mem::replace(&mut chunk, Vec::with_capacity(size)))?;
                                }
                            }
                            _ => again.push(r.address),
                        }
                        Ok(())
                    })?;
                    if !chunk.is_empty() {
                        hand(chunk)?;
                    }
                    Ok(())
                },
                &work,
                &mut take,
            )?;
            let mut jobs = Vec::new();
            let mut unreadable = Vec::new();
            for address in again {
                match committed(store, whole, |store| rederive(store, &address, now)) {
                    Ok(recipient) => jobs.push(Job { address, recipient }),
                    Err(e) => unreadable.push((address, e.to_string())),
                }
            }
            take(work(jobs))?;
            skipped.extend(unreadable);
            committed(store, whole, |store| {
                store.drop_unused_bodies_unlocked(post_id)
            })
        };
        if whole {
            self.store.transaction(run)?;
        } else {
            run(&self.store)?;
        }
        for (address, why) in &skipped {
            self.store.audit(
                ts,
                Some(post_id),
                "not-sent",
                &format!("no copy for {address}: {why}"),
            )?;
        }
        // Who has no usable key is told so instead (not again when the
        // copies are only signed anew).
        if replacing.is_none() {
            for (address, _) in skipped {
                let Some((_, stored)) = self.store.subscriber(&address)? else {
                    continue;
                };
                let Ok(cert) = certs::parse_public_cert(&stored) else {
                    continue;
                };
                if certs::encryption_keys(&cert, now).is_ok() {
                    continue;
                }
                let why = certs::refusal(&cert, "", now);
                if let Err(e) = self.missed_post(post_id, &address, &cert, &why) {
                    self.store.audit(
                        ts,
                        Some(post_id),
                        "not-answered",
                        &format!("{address} was not told they missed the post: {e}"),
                    )?;
                }
            }
        }
        if replacing.is_none() {
            for s in &stopped {
                if self.store.is_subscriber(s)? {
                    self.store.audit(
                        ts,
                        Some(post_id),
                        "not-sent",
                        &format!("no copy for {s}: delivery stopped after bounces (conclave subscriber enable {s})"),
                    )?;
                }
            }
        }
        Ok(queued)
    }
}

/// How many subscribers one job of the fan-out's workers holds: the
/// first holds [`FIRST_CHUNK`], each next twice as many, up to this.
const CHUNK: usize = 256;
const FIRST_CHUNK: usize = 32;

/// Runs `f` in a transaction of its own, unless the caller holds one
/// (`held`).
fn committed<T>(
    store: &crate::store::Store,
    held: bool,
    f: impl FnOnce(&crate::store::Store) -> Result<T>,
) -> Result<T> {
    if held {
        f(store)
    } else {
        store.transaction(f)
    }
}

/// One subscriber to encrypt a copy for.
struct Job {
    address: String,
    recipient: RecipientRow,
}

/// A subscriber's copy: whether it takes the SEIPDv2 body, and its
/// recipient packets; or why there is none.
struct Encrypted {
    address: String,
    result: std::result::Result<(bool, Vec<u8>), String>,
}

/// The recipient packets of one copy, from the subscriber's derived keys.
fn encrypt_copy(job: Job, bodies: &[SealedBody; 2]) -> Encrypted {
    let v2 = job.recipient.seipd_v2;
    let run = || -> Result<Vec<u8>> {
        let [v1_body, v2_body] = bodies;
        if v2 { v2_body } else { v1_body }.pkesks_for_kept(&job.recipient.keys)
    };
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(pkesks)) => Ok((v2, pkesks)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!(
            "encrypting the copy failed: {}",
            decrypt::panic_text(&*panic)
        )),
    };
    Encrypted {
        address: job.address,
        result,
    }
}

/// Derives a subscriber's recipient state from their certificate again,
/// and keeps it.
fn rederive(store: &crate::store::Store, address: &str, now: SystemTime) -> Result<RecipientRow> {
    let (_, stored) = store
        .subscriber(address)?
        .ok_or_else(|| Error::NotFound(format!("{address} is not a subscriber")))?;
    let cert = certs::parse_public_cert(&stored)?;
    let recipient = super::members::row(certs::recipient(&cert, now)?);
    store.set_recipient(address, &recipient, &certs::key_ids(&cert))?;
    Ok(recipient)
}

/// Runs `work` over the jobs `produce` hands out, on every core, while
/// this thread keeps producing and gives each result to `consume` as it
/// comes (in no particular order). The workers run at a lower priority
/// ([`yield_to_others`]).
fn pipeline<J: Send, R: Send>(
    produce: impl FnOnce(&mut dyn FnMut(J) -> Result<()>) -> Result<()>,
    work: &(impl Fn(J) -> R + Sync),
    consume: &mut dyn FnMut(R) -> Result<()>,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads <= 1 {
        return produce(&mut |job| consume(work(job)));
    }
    let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<J>(threads * 2);
    let job_rx = std::sync::Mutex::new(job_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<R>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let job_rx = &job_rx;
            scope.spawn(move || {
                yield_to_others();
                loop {
                    let next = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok(job) = next else { break };
                    if done_tx.send(work(job)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut outcome = produce(&mut |job| {
            while let Ok(done) = done_rx.try_recv() {
                consume(done)?;
            }
            job_tx
                .send(job)
                .map_err(|_| Error::crypto("encrypt the copies", "the workers stopped"))
        });
        drop(job_tx);
        for done in done_rx {
            if outcome.is_ok() {
                outcome = consume(done);
            }
        }
        outcome
    })
}

/// The nice value of a fan-out worker.
const WORKER_NICE: i32 = 10;

/// Lowers this thread's priority to [`WORKER_NICE`] (never raises it): a
/// fan-out's workers take what the cores have to spare. The copies go out
/// while the fan-out still runs (the delivery pass beside it, and on the
/// same machine, often, the mail host), and its workers, one per core, at
/// the same priority as the sending took a share of the cores that the
/// TLS handshakes and the submissions waited for; the fan-out stays far
/// ahead of the sending all the same (it makes copies many times faster
/// than they are submitted). The owner's desktop stays responsive through
/// a long fan-out too. Linux keeps a nice value per thread; elsewhere the
/// call would lower the whole process, so it is not made.
fn yield_to_others() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        if let Ok(now) = getpriority_process(None) {
            if now < WORKER_NICE {
                let _ = setpriority_process(None, WORKER_NICE);
            }
        }
    }
}

/// What a subject taken from outside the encryption starts with in a copy.
pub const UNVERIFIED_SUBJECT: &str = "[unverified subject] ";

/// The subject inside the encryption, if the post carries one (`...` is the
/// placeholder clients put outside, not a subject).
fn inside_subject(post: &Opened) -> Option<String> {
    post.protected
        .subject
        .as_deref()
        .map(build::clean)
        .filter(|s| !s.is_empty() && s != "...")
}

/// A Message-ID fit for a header: `local@domain` of visible ASCII, without
/// angle brackets, at most 250 characters.
pub(super) fn message_id_ok(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let visible = id.bytes().all(|b| {
        b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\' | b'(' | b')' | b',' | b';')
    });
    (visible
        && id.len() <= 250
        && id.split('@').count() == 2
        && !id.starts_with('@')
        && !id.ends_with('@'))
    .then(|| id.to_owned())
}

/// The IDs in a threading header, each fit for a header, in order.
fn parse_ids(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == '<' || c == '>' || c.is_whitespace() || c == ',')
        .filter_map(message_id_ok)
        .take(100)
        .collect()
}

/// Whether `id` is one of the list's own (`HASH@DOMAIN`), which places a
/// post in one of the list's threads and claims nothing for the author.
fn ours(id: &str, domain: &str) -> bool {
    id.split_once('@').is_some_and(|(local, d)| {
        d.eq_ignore_ascii_case(domain)
            && local.len() == 32
            && local.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn push_unique(ids: &mut Vec<String>, id: &str) {
    ids.retain(|i| i != id);
    ids.push(id.to_owned());
}

/// The last `n` of `ids`, which matter most for threading.
fn last_n(mut ids: Vec<String>, n: usize) -> Vec<String> {
    ids.drain(..ids.len().saturating_sub(n));
    ids
}

/// IDs written for a header: `<a> <b>`, or None for none.
fn joined(ids: &[String]) -> Option<String> {
    (!ids.is_empty()).then(|| {
        ids.iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The threading headers of a post's copies, inside and outside.
#[derive(Debug, Default)]
struct Threads {
    inner_in_reply_to: Vec<String>,
    inner_references: Vec<String>,
    outer_in_reply_to: Vec<String>,
    outer_references: Vec<String>,
}

/// What the copies of a post show outside the encryption beyond the
/// common headers, and who gets none.
#[derive(Debug, Default)]
struct CopyPlan {
    /// The display name of the outer `From:` (the list's name if None).
    from_name: Option<String>,
    /// Header lines to add, CRLF-terminated.
    extra_headers: String,
    /// The subscriber who gets no copy (the author, without deliver_selfsent).
    skip: Option<String>,
}

/// The parts that carry the author's signed original.
fn carried_parts(post: &Opened) -> Result<Vec<Vec<u8>>> {
    Ok(match &post.content {
        Content::MimeSigned { entity, .. } => vec![build::content_only(entity)],
        Content::Mime { entity } if post.author.is_some() && !post.sig_packets.is_empty() => {
            // Signed inside the encryption (RFC 1847 encapsulation): rebuild
            // the multipart/signed the author's signature fits, when it
            // fits the entity as it travels (CRLF, or a text signature).
            let verbatim = crate::mime::to_crlf(&post.plaintext) == post.plaintext;
            if verbatim || decrypt::all_text_mode(&post.sig_packets) {
                let micalg = micalg(&post.sig_packets);
                vec![build::signed_entity(
                    entity,
                    &armored_sigs(&post.sig_packets)?,
                    &micalg,
                    &boundary("author", &post.digest),
                )]
            } else {
                // A binary signature over LF lines (`gpg -se`, Mutt) fits
                // no MIME entity: the author's signed message travels as
                // it is, which `gpg --verify` checks.
                vec![
                    build::content_only(entity),
                    build::signed_message_part(&signed_message(post)?),
                ]
            }
        }
        Content::Mime { entity } => vec![build::content_only(entity)],
        Content::Text { text } if post.cleartext_signed || post.sig_packets.is_empty() => {
            vec![build::text_part(text)]
        }
        Content::Text { text } => vec![
            build::text_part(text),
            build::signed_message_part(&signed_message(post)?),
        ],
    })
}

/// The author's signed OpenPGP message (one-pass signatures, the literal
/// data as it was signed, the signatures), armored: what the author's
/// client signed, without the encryption.
fn signed_message(post: &Opened) -> Result<Vec<u8>> {
    crate::crypto::seal::signed_message(&post.plaintext, &post.sig_packets)
}

/// The statement of who wrote a post, the first part of every copy.
fn statement(post: &Opened, author_name: &str, from: &str) -> Vec<u8> {
    let text = match &post.author {
        Some((addr, fpr)) => format!(
            "-- The list verified this post --\r\nFrom: {author_name} <{addr}>\r\nSigned by: {addr}, key {}\r\n",
            crate::hex::grouped(fpr)
        ),
        None => format!(
            "-- The list could not verify this post --\r\nFrom: {author_name} <{}>\r\nNot signed by the sender's key.\r\n",
            build::clean(from)
        ),
    };
    build::text_part(text.as_bytes())
}

/// The content alone, for `signature_mode replace`.
fn replaced_content(post: &Opened) -> Vec<u8> {
    match &post.content {
        Content::MimeSigned { signed, .. } => build::content_only(signed),
        Content::Mime { entity } => build::content_only(entity),
        Content::Text { text } => build::text_part(text),
    }
}

pub(super) fn armored_sigs(sigs: &[openpgp::packet::Signature]) -> Result<Vec<u8>> {
    if sigs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    {
        let mut w = armor::Writer::new(&mut out, armor::Kind::Signature)
            .map_err(|e| Error::crypto("carry the signature", e))?;
        for s in sigs {
            openpgp::Packet::from(s.clone())
                .serialize(&mut w)
                .map_err(|e| Error::crypto("carry the signature", e))?;
        }
        w.finalize()
            .map_err(|e| Error::crypto("carry the signature", e))?;
    }
    Ok(out)
}

fn micalg(sigs: &[openpgp::packet::Signature]) -> String {
    use openpgp::types::HashAlgorithm::*;
    match sigs.first().map(|s| s.hash_algo()) {
        Some(SHA1) => "pgp-sha1",
        Some(SHA224) => "pgp-sha224",
        Some(SHA384) => "pgp-sha384",
        Some(SHA512) => "pgp-sha512",
        _ => "pgp-sha256",
    }
    .to_owned()
}

/// Headers every copy of a post shares: the list headers and Autocrypt.
fn common_headers(
    name: &str,
    address: &str,
    request: &str,
    owner: &str,
    domain: &str,
    keydata: &[u8],
) -> String {
    let local = address.split_once('@').map(|p| p.0).unwrap_or(address);
    let mut s = String::new();
    s.push_str(&format!(
        "List-Id: {} <{local}.{domain}>\r\n",
        build::encode_text(name)
    ));
    s.push_str(&format!("List-Post: <mailto:{address}>\r\n"));
    s.push_str(&format!("List-Help: <mailto:{request}?subject=help>\r\n"));
    s.push_str(&format!(
        "List-Unsubscribe: <mailto:{request}?subject=unsubscribe>\r\n"
    ));
    s.push_str(&format!(
        "List-Subscribe: <mailto:{request}?subject=subscribe>\r\n"
    ));
    s.push_str(&format!("List-Owner: <mailto:{owner}>\r\n"));
    let kd = base64::engine::general_purpose::STANDARD.encode(keydata);
    s.push_str(&format!(
        "Autocrypt: addr={address}; prefer-encrypt=mutual; keydata="
    ));
    let mut first = true;
    for chunk in kd.as_bytes().chunks(72) {
        if !first {
            s.push_str("\r\n ");
        }
        s.push_str(&String::from_utf8_lossy(chunk));
        first = false;
    }
    s.push_str("\r\n");
    s
}

/// Puts whole copies together from their outbox rows. Rows come in order,
/// grouped by post, so each shared body (and the headers its copies share)
/// is read from the store once.
pub struct Assembler<'a> {
    store: &'a crate::store::Store,
    /// The body in hand: its id, its armorer, the headers its copies share.
    body: Option<(i64, seal::BodyArmor, String)>,
}

impl<'a> Assembler<'a> {
    /// An assembler reading bodies from `store`.
    pub fn new(store: &'a crate::store::Store) -> Self {
        Assembler { store, body: None }
    }

    /// The complete message for one copy.
    pub fn assemble(&mut self, copy: &OutboxCopy) -> Result<Vec<u8>> {
        let body = match self.body.take() {
            Some(b) if b.0 == copy.body_id => b,
            _ => {
                let (seipd, headers) = self.store.body_and_headers(copy.body_id)?;
                (copy.body_id, seal::BodyArmor::new(seipd), headers)
            }
        };
        let (_, armorer, shared) = self.body.insert(body);
        if copy.plain {
            return Ok(build::signed_message(&copy.headers, armorer.body()));
        }
        // A post's copy keeps only its recipient; the list's answers keep
        // their own headers.
        let headers = if copy.headers.is_empty() {
            format!("To: <{}>\r\n{shared}", copy.recipient)
        } else {
            copy.headers.clone()
        };
        let armored = armorer.armor(&copy.pkesks);
        Ok(build::encrypted_message(
            &headers,
            &copy.message_id,
            &armored,
        ))
    }
}

pub(super) fn short_hash(digest: &str, extra: &str) -> String {
    let h = crate::hex::sha256_hex(format!("{digest}\0{extra}").as_bytes()).to_ascii_lowercase();
    h.get(..32).unwrap_or(&h).to_owned()
}

pub(super) fn boundary(kind: &str, digest: &str) -> String {
    let mut r = [0u8; 12];
    let _ = openpgp::crypto::random(&mut r);
    format!(
        "conclave-{kind}-{}-{}",
        digest.get(..8).unwrap_or("0"),
        crate::hex::hex(&r).to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    /// The workers run at nice 10 or lower priority; the thread that asked
    /// for the fan-out keeps its own.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_workers_yield_to_the_sending() {
        use rustix::process::getpriority_process;
        let caller = getpriority_process(None).unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut seen = Vec::new();
        super::pipeline(
            |give| (0..64).try_for_each(give),
            &|_: i32| getpriority_process(None).unwrap(),
            &mut |nice| {
                seen.push(nice);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 64);
        if cores > 1 {
            assert!(
                seen.iter().all(|n| *n >= super::WORKER_NICE.max(caller)),
                "{seen:?}"
            );
        }
        assert_eq!(getpriority_process(None).unwrap(), caller);
    }
}
