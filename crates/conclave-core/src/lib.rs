//! Conclave's engine: it takes an encrypted post to the list as bytes, opens
//! it with the list key, checks who signed it, applies the list's policy, and
//! queues one encrypted, list-signed copy per subscriber in the outbox.
//!
//! The engine does no network I/O and never prompts: posts come in through
//! [`List::receive`], copies go out through the outbox, and passphrases are
//! handed to it by the caller.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::panic
    )
)]

pub mod clock;
pub mod crypto;
pub mod error;
pub mod events;
pub mod hex;
pub mod list;
pub mod mime;
pub mod net;
pub mod private;
pub mod relay;
pub mod secrets;
pub mod store;
pub mod text;

pub use clock::{Clock, FixedClock, ManualClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use events::{Event, Outcome};
pub use list::{AttachedKey, HeldView, KeySource, List, SubscriberInfo, Unlocking};

/// Re-exported so front ends can build passphrases without naming sequoia.
pub use sequoia_openpgp::crypto::Password;
