//! The network: TLS with verified certificates (and the owner's pins), and
//! the mail protocols built on it.

pub mod imap;
pub mod smtp;
pub mod tls;
