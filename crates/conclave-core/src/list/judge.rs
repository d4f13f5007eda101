//! The list's rules, as one pure function: [`judge`] takes what opening a
//! post found ([`Facts`]) and the options in force ([`Policy`]) and says
//! what becomes of it ([`Verdict`]). It reads nothing and writes nothing, so
//! the policy order of `docs/DECISIONS.md` is a table of unit tests here.
//!
//! The order, the first refusal winning: size (before anything is opened),
//! the message cannot be read, it is not encrypted, it cannot be decrypted,
//! the `From:` inside differs from the one outside, a signature by another
//! subscriber than the sender (forged) or one that does not verify, a replay
//! of a post seen before; then the options (`subscribers_only`,
//! `receive_signed_only`) together, the most severe action winning
//! (reject > discard > hold). An owner's approval is the same judgement
//! under [`Policy::approved`]: it lifts the options and the size limit,
//! never the checks before them.

use super::policy::{Action, Policy};

/// One signature found on a post, as opening it saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFact {
    /// A valid signature by a subscriber's key.
    Good {
        /// The signer's primary fingerprint.
        fingerprint: String,
        /// The subscribers holding that key (normally one).
        owners: Vec<String>,
    },
    /// A valid signature by a key no subscriber holds.
    UnknownKey {
        /// Who it claims to be by.
        issuer: String,
    },
    /// A signature that does not verify.
    Bad {
        /// Who it claims to be by.
        issuer: String,
        /// Why it failed.
        error: String,
    },
}

/// What opening a post found. Facts only: nothing here is a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The post's size as it arrived, in bytes.
    pub size: usize,
    /// Why the message could not be read at all, if it could not.
    pub unreadable: Option<String>,
    /// Whether it is encrypted (PGP/MIME or inline).
    pub encrypted: bool,
    /// Why its encryption could not be opened, if it could not.
    pub undecryptable: Option<String>,
    /// The sender's address in the outer `From:` (empty when none).
    pub from: String,
    /// The `From:` inside the encryption, when the post protects it.
    pub inner_from: Option<String>,
    /// Whether the sender is a subscriber.
    pub is_member: bool,
    /// Every signature found, in order.
    pub signatures: Vec<SignatureFact>,
    /// When the sender's signed content arrived before as another post:
    /// (that post's id, when, as Unix time).
    pub replay_of: Option<(i64, i64)>,
    /// Whether the post is known again by its decrypted content (it is not
    /// signed by its sender) rather than by the sender's signature.
    pub replay_by_content: bool,
    /// Why a signature the post seems to carry does not count (material
    /// outside what it signs), so that it is read as unsigned.
    pub unsigned_because: Option<String>,
    /// How old the sender's signature is, in seconds, when they signed it.
    pub signature_age: Option<u64>,
    /// The `To:` and `Cc:` addresses inside the data the sender signed,
    /// when it carries them.
    pub signed_to: Option<Vec<String>>,
}

/// Which rule stopped a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Too large.
    Size,
    /// Not a readable message.
    Parse,
    /// Not encrypted.
    Encryption,
    /// Its encryption cannot be opened.
    Decryption,
    /// The `From:` inside and outside differ.
    From,
    /// Forged, or a signature that does not verify.
    Signature,
    /// A replay.
    Replay,
    /// The list's options (subscribers only, signed only).
    Options,
}

/// What becomes of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Copies go out. `author` is the fingerprint of the sender's key when
    /// the sender signed it.
    Distribute {
        /// The verified author's fingerprint.
        author: Option<String>,
    },
    /// It stops here.
    Stop {
        /// Hold, discard or reject.
        action: Action,
        /// The rule that stopped it.
        stage: Stage,
        /// Why, in words for the owner and the log.
        reason: String,
        /// The verified author's fingerprint, if it got that far.
        author: Option<String>,
    },
}

impl Verdict {
    /// The verified author's fingerprint, if any.
    pub fn author(&self) -> Option<&str> {
        match self {
            Verdict::Distribute { author } | Verdict::Stop { author, .. } => author.as_deref(),
        }
    }

    /// Whether the post got past the replay check, so that its signed
    /// content is remembered against later replays.
    pub fn passed_replay_check(&self) -> bool {
        match self {
            Verdict::Distribute { .. } => true,
            Verdict::Stop { stage, .. } => *stage == Stage::Options,
        }
    }
}

/// The size check alone, which comes before a post is opened: a post too
/// large is not decrypted at all.
pub fn too_large(size: usize, policy: &Policy) -> Option<Verdict> {
    if size <= policy.max_size || policy.max_size_action == Action::Distribute {
        return None;
    }
    Some(Verdict::Stop {
        action: policy.max_size_action,
        stage: Stage::Size,
        reason: format!(
            "too large: {} KiB, the limit is {} KiB",
            size.div_ceil(1024),
            policy.max_size / 1024
        ),
        author: None,
    })
}

/// A duration in words: "3 hours", "12 days".
fn how_long(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s < 2 * 3600 => (s / 60, "minutes"),
        s if s < 2 * 86_400 => (s / 3600, "hours"),
        s => (s / 86_400, "days"),
    };
    format!("{n} {unit}")
}

/// Applies the list's rules to what opening a post found.
pub fn judge(facts: &Facts, policy: &Policy) -> Verdict {
    let stop =
        |action: Action, stage: Stage, reason: String, author: Option<String>| Verdict::Stop {
            action,
            stage,
            reason,
            author,
        };
    if let Some(v) = too_large(facts.size, policy) {
        return v;
    }
    if let Some(e) = &facts.unreadable {
        return stop(
            Action::Reject,
            Stage::Parse,
            format!("cannot read the message: {e}"),
            None,
        );
    }
    if !facts.encrypted && policy.encrypted_only != Action::Distribute {
        return stop(
            policy.encrypted_only,
            Stage::Encryption,
            "not encrypted: this list accepts encrypted posts only".into(),
            None,
        );
    }
    if let Some(e) = &facts.undecryptable {
        return stop(Action::Reject, Stage::Decryption, e.clone(), None);
    }
    let from = facts.from.as_str();
    if let Some(inner) = &facts.inner_from {
        if !from.is_empty() && inner != from {
            return stop(
                Action::Reject,
                Stage::From,
                format!(
                    "the From inside the encryption ({inner}) differs from the outer From ({from})"
                ),
                None,
            );
        }
    }
    // Who signed it? A valid signature by another subscriber's key than the
    // sender's is a forgery; one that does not verify is refused.
    let mut author = None;
    let mut unknown = Vec::new();
    for s in &facts.signatures {
        match s {
            SignatureFact::Good {
                fingerprint,
                owners,
            } => {
                if owners.iter().any(|o| o == from) {
                    author = Some(fingerprint.clone());
                } else {
                    let who = owners
                        .first()
                        .map(String::as_str)
                        .unwrap_or("a non-subscriber");
                    return stop(
                        Action::Reject,
                        Stage::Signature,
                        format!(
                            "signed by {who} (key {fingerprint}), but From: says {}",
                            if from.is_empty() { "nobody" } else { from }
                        ),
                        None,
                    );
                }
            }
            SignatureFact::Bad { issuer, error } => {
                return stop(
                    Action::Reject,
                    Stage::Signature,
                    format!("bad signature by key {issuer}: {error}"),
                    None,
                );
            }
            SignatureFact::UnknownKey { issuer } => {
                unknown.push(format!("signed by unknown key {issuer}"))
            }
        }
    }
    if let Some((first, at)) = facts.replay_of {
        let what = if facts.replay_by_content {
            "post (the same decrypted content)"
        } else {
            "signed post"
        };
        let when = crate::clock::rfc5322(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0)),
        );
        let reason = if first == 0 {
            format!("replayed: the same {what} was taken before by another instance of this list (seen {when})")
        } else {
            format!("replayed: the same {what} arrived before as post #{first} ({when})")
        };
        return stop(Action::Reject, Stage::Replay, reason, author);
    }
    let mut violations: Vec<(Action, String)> = Vec::new();
    if !facts.is_member && policy.subscribers_only != Action::Distribute {
        let who = if from.is_empty() { "the sender" } else { from };
        violations.push((
            policy.subscribers_only,
            format!("{who} is not a subscriber"),
        ));
    }
    if author.is_none() && policy.signed_only != Action::Distribute {
        let mut reason =
            "not signed by the sender's key: this list accepts signed posts only".to_string();
        let mut why = unknown;
        if let Some(u) = &facts.unsigned_because {
            why.insert(0, format!("a signature does not count: {u}"));
        }
        if !why.is_empty() {
            reason.push_str(&format!(" ({})", why.join("; ")));
        }
        violations.push((policy.signed_only, reason));
    }
    // A signature means "this subscriber wrote this, for this list,
    // recently": one made for other recipients, or long ago, may be a
    // signed mail of theirs that someone else sent on to the list.
    if author.is_some() {
        if let Some(to) = &facts.signed_to {
            let for_list = to
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&policy.list_address));
            if !for_list
                && !policy.list_address.is_empty()
                && policy.retargeted != Action::Distribute
            {
                let shown = if to.is_empty() {
                    "nobody".to_string()
                } else {
                    to.join(", ")
                };
                violations.push((
                    policy.retargeted,
                    format!("signed for someone else (To: {shown}), not for this list"),
                ));
            }
        }
        let limit = policy.max_signature_age_days.saturating_mul(86_400);
        match facts.signature_age {
            Some(age) if limit > 0 && age > limit && policy.retargeted != Action::Distribute => {
                violations.push((
                    policy.retargeted,
                    format!(
                        "signed {} ago; this list takes signatures up to {} days old",
                        how_long(age),
                        policy.max_signature_age_days
                    ),
                ))
            }
            _ => {}
        }
    }
    if let Some(worst) = violations.iter().map(|v| v.0).max() {
        let reason = violations
            .iter()
            .filter(|v| v.0 == worst)
            .map(|v| v.1.clone())
            .collect::<Vec<_>>()
            .join("; ");
        return stop(worst, Stage::Options, reason, author);
    }
    Verdict::Distribute { author }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::policy::SignatureMode;

    const ALICE: &str = "alice@example.test";

    fn policy() -> Policy {
        Policy {
            encrypted_only: Action::Reject,
            signed_only: Action::Hold,
            subscribers_only: Action::Hold,
            max_size: 10 * 1024 * 1024,
            max_size_action: Action::Reject,
            signature_mode: SignatureMode::Carry,
            keep_message_id: false,
            deliver_selfsent: true,
            outer_from_author: false,
            outer_references: false,
            list_address: "list@example.test".into(),
            retargeted: Action::Hold,
            max_signature_age_days: 7,
        }
    }

    /// An encrypted post, signed by its sender, a subscriber.
    fn good() -> Facts {
        Facts {
            size: 4096,
            encrypted: true,
            from: ALICE.into(),
            is_member: true,
            signatures: vec![SignatureFact::Good {
                fingerprint: "AAAA".into(),
                owners: vec![ALICE.into()],
            }],
            ..Facts::default()
        }
    }

    fn bob_signed() -> SignatureFact {
        SignatureFact::Good {
            fingerprint: "BBBB".into(),
            owners: vec!["bob@example.test".into()],
        }
    }

    /// (what, the facts, the options, the owner approved, what becomes of it)
    type Row = (
        &'static str,
        fn(&mut Facts),
        fn(&mut Policy),
        bool,
        Result<Option<&'static str>, (Action, Stage, &'static str)>,
    );

    /// The policy order of docs/DECISIONS.md, one row a rule and a row for
    /// each pair where two rules meet: the first refusal wins.
    const TABLE: &[Row] = &[
        ("a good post", |_| {}, |_| {}, false, Ok(Some("AAAA"))),
        ("too large", |f| f.size = 11 << 20, |_| {}, false, Err((Action::Reject, Stage::Size, "too large: 11264 KiB, the limit is 10240 KiB"))),
        ("too large, held", |f| f.size = 11 << 20, |p| p.max_size_action = Action::Hold, false, Err((Action::Hold, Stage::Size, "too large"))),
        ("too large, approved", |f| f.size = 11 << 20, |_| {}, true, Ok(Some("AAAA"))),
        ("too large and unreadable: size first", |f| { f.size = 11 << 20; f.unreadable = Some("x".into()) }, |_| {}, false, Err((Action::Reject, Stage::Size, "too large"))),
        ("unreadable", |f| f.unreadable = Some("no From".into()), |_| {}, false, Err((Action::Reject, Stage::Parse, "cannot read the message: no From"))),
        ("unreadable, approved", |f| f.unreadable = Some("no From".into()), |_| {}, true, Err((Action::Reject, Stage::Parse, "cannot read"))),
        ("not encrypted", |f| { f.encrypted = false; f.signatures.clear() }, |_| {}, false, Err((Action::Reject, Stage::Encryption, "not encrypted: this list accepts encrypted posts only"))),
        ("not encrypted, held", |f| f.encrypted = false, |p| p.encrypted_only = Action::Hold, false, Err((Action::Hold, Stage::Encryption, "not encrypted"))),
        ("not encrypted, allowed", |f| f.encrypted = false, |p| p.encrypted_only = Action::Distribute, false, Ok(Some("AAAA"))),
        ("not encrypted, approved", |f| f.encrypted = false, |_| {}, true, Ok(Some("AAAA"))),
        ("undecryptable", |f| f.undecryptable = Some("not encrypted to the list key".into()), |_| {}, false, Err((Action::Reject, Stage::Decryption, "not encrypted to the list key"))),
        ("undecryptable, approved", |f| f.undecryptable = Some("no MDC".into()), |_| {}, true, Err((Action::Reject, Stage::Decryption, "no MDC"))),
        ("inner From differs", |f| f.inner_from = Some("mallory@example.test".into()), |_| {}, false, Err((Action::Reject, Stage::From, "the From inside the encryption (mallory@example.test) differs from the outer From (alice@example.test)"))),
        ("inner From equal", |f| f.inner_from = Some(ALICE.into()), |_| {}, false, Ok(Some("AAAA"))),
        ("inner From differs, approved", |f| f.inner_from = Some("m@example.test".into()), |_| {}, true, Err((Action::Reject, Stage::From, "differs"))),
        ("forged: bob's signature on alice's post", |f| f.signatures = vec![bob_signed()], |_| {}, false, Err((Action::Reject, Stage::Signature, "signed by bob@example.test (key BBBB), but From: says alice@example.test"))),
        ("forged, approved", |f| f.signatures = vec![bob_signed()], |_| {}, true, Err((Action::Reject, Stage::Signature, "signed by bob"))),
        ("forged by a non-subscriber key", |f| f.signatures = vec![SignatureFact::Good { fingerprint: "CCCC".into(), owners: vec![] }], |_| {}, false, Err((Action::Reject, Stage::Signature, "signed by a non-subscriber (key CCCC)"))),
        ("a bad signature", |f| f.signatures.push(SignatureFact::Bad { issuer: "AAAA".into(), error: "checksum".into() }), |_| {}, false, Err((Action::Reject, Stage::Signature, "bad signature by key AAAA: checksum"))),
        ("replayed", |f| f.replay_of = Some((7, 0)), |_| {}, false, Err((Action::Reject, Stage::Replay, "replayed: the same signed post arrived before as post #7"))),
        ("replayed, approved", |f| f.replay_of = Some((7, 0)), |_| {}, true, Err((Action::Reject, Stage::Replay, "replayed"))),
        ("replayed at another instance", |f| f.replay_of = Some((0, 0)), |_| {}, false, Err((Action::Reject, Stage::Replay, "replayed: the same signed post was taken before by another instance of this list"))),
        ("unsigned, replayed", |f| { f.signatures.clear(); f.replay_of = Some((7, 0)); f.replay_by_content = true }, |_| {}, false, Err((Action::Reject, Stage::Replay, "replayed: the same post (the same decrypted content) arrived before as post #7"))),
        ("forged and replayed: the signature first", |f| { f.signatures = vec![bob_signed()]; f.replay_of = Some((7, 0)) }, |_| {}, false, Err((Action::Reject, Stage::Signature, "signed by bob"))),
        ("unsigned", |f| f.signatures.clear(), |_| {}, false, Err((Action::Hold, Stage::Options, "not signed by the sender's key: this list accepts signed posts only"))),
        ("signed by an unknown key", |f| f.signatures = vec![SignatureFact::UnknownKey { issuer: "DDDD".into() }], |_| {}, false, Err((Action::Hold, Stage::Options, "accepts signed posts only (signed by unknown key DDDD)"))),
        ("unsigned, rejected", |f| f.signatures.clear(), |p| p.signed_only = Action::Reject, false, Err((Action::Reject, Stage::Options, "not signed"))),
        ("unsigned, allowed", |f| f.signatures.clear(), |p| p.signed_only = Action::Distribute, false, Ok(None)),
        ("unsigned, approved", |f| f.signatures.clear(), |_| {}, true, Ok(None)),
        ("not a subscriber", |f| { f.is_member = false; f.from = "eve@example.test".into(); f.signatures.clear() }, |p| p.signed_only = Action::Distribute, false, Err((Action::Hold, Stage::Options, "eve@example.test is not a subscriber"))),
        ("no sender at all", |f| { f.is_member = false; f.from.clear(); f.signatures.clear() }, |p| p.signed_only = Action::Distribute, false, Err((Action::Hold, Stage::Options, "the sender is not a subscriber"))),
        ("both options, same action: both reasons", |f| { f.is_member = false; f.from = "eve@example.test".into(); f.signatures.clear() }, |_| {}, false, Err((Action::Hold, Stage::Options, "eve@example.test is not a subscriber; not signed by the sender's key"))),
        ("both options: the most severe wins", |f| { f.is_member = false; f.from = "eve@example.test".into(); f.signatures.clear() }, |p| p.subscribers_only = Action::Discard, false, Err((Action::Discard, Stage::Options, "eve@example.test is not a subscriber"))),
        ("reject beats discard", |f| { f.is_member = false; f.from = "eve@example.test".into(); f.signatures.clear() }, |p| { p.subscribers_only = Action::Discard; p.signed_only = Action::Reject }, false, Err((Action::Reject, Stage::Options, "not signed by the sender's key"))),
        ("not a subscriber, approved", |f| { f.is_member = false; f.from = "eve@example.test".into(); f.signatures.clear() }, |_| {}, true, Ok(None)),
        ("a signature that does not count, with its reason", |f| { f.signatures.clear(); f.unsigned_because = Some("its multipart/signed has 3 parts".into()) }, |_| {}, false, Err((Action::Hold, Stage::Options, "accepts signed posts only (a signature does not count: its multipart/signed has 3 parts)"))),
        ("signed for the list", |f| f.signed_to = Some(vec!["bob@example.test".into(), "LIST@example.test".into()]), |_| {}, false, Ok(Some("AAAA"))),
        ("signed for someone else", |f| f.signed_to = Some(vec!["bob@example.test".into()]), |_| {}, false, Err((Action::Hold, Stage::Options, "signed for someone else (To: bob@example.test), not for this list"))),
        ("signed for nobody", |f| f.signed_to = Some(vec![]), |_| {}, false, Err((Action::Hold, Stage::Options, "signed for someone else (To: nobody)"))),
        ("signed for someone else, approved", |f| f.signed_to = Some(vec!["bob@example.test".into()]), |_| {}, true, Ok(Some("AAAA"))),
        ("To of an unsigned post counts for nothing", |f| { f.signatures.clear(); f.signed_to = Some(vec!["bob@example.test".into()]) }, |p| p.signed_only = Action::Distribute, false, Ok(None)),
        ("signed a week ago", |f| f.signature_age = Some(7 * 86_400), |_| {}, false, Ok(Some("AAAA"))),
        ("signed too long ago", |f| f.signature_age = Some(12 * 86_400 + 5), |_| {}, false, Err((Action::Hold, Stage::Options, "signed 12 days ago; this list takes signatures up to 7 days old"))),
        ("signed long ago, any age allowed", |f| f.signature_age = Some(400 * 86_400), |p| p.max_signature_age_days = 0, false, Ok(Some("AAAA"))),
        ("signed long ago, approved", |f| f.signature_age = Some(400 * 86_400), |_| {}, true, Ok(Some("AAAA"))),
        ("signed long ago and replayed: the replay first", |f| { f.signature_age = Some(400 * 86_400); f.replay_of = Some((3, 0)) }, |_| {}, false, Err((Action::Reject, Stage::Replay, "replayed"))),
    ];

    #[test]
    fn the_policy_order_holds() {
        for (what, facts, options, approved, expected) in TABLE {
            let mut f = good();
            facts(&mut f);
            let mut p = policy();
            options(&mut p);
            let p = if *approved { p.approved() } else { p };
            let verdict = judge(&f, &p);
            match (expected, &verdict) {
                (Ok(author), Verdict::Distribute { author: got }) => {
                    assert_eq!(got.as_deref(), *author, "{what}")
                }
                (
                    Err((action, stage, reason)),
                    Verdict::Stop {
                        action: a,
                        stage: s,
                        reason: r,
                        ..
                    },
                ) => {
                    assert_eq!((a, s), (action, stage), "{what}: {r}");
                    assert!(r.contains(reason), "{what}: {r:?} lacks {reason:?}");
                }
                _ => panic!("{what}: expected {expected:?}, got {verdict:?}"),
            }
        }
    }

    #[test]
    fn the_size_is_judged_before_opening() {
        let p = policy();
        assert_eq!(too_large(10 << 20, &p), None);
        assert!(matches!(
            too_large((10 << 20) + 1, &p),
            Some(Verdict::Stop {
                stage: Stage::Size,
                action: Action::Reject,
                ..
            })
        ));
        assert_eq!(too_large(usize::MAX, &p.approved()), None);
    }

    #[test]
    fn only_posts_past_the_replay_check_are_remembered() {
        let mut f = good();
        assert!(judge(&f, &policy()).passed_replay_check());
        f.signatures.clear();
        f.is_member = false;
        assert!(
            judge(&f, &policy()).passed_replay_check(),
            "held by the options"
        );
        let mut f = good();
        f.replay_of = Some((1, 0));
        assert!(!judge(&f, &policy()).passed_replay_check());
        let mut f = good();
        f.signatures = vec![bob_signed()];
        assert!(!judge(&f, &policy()).passed_replay_check());
    }
}
