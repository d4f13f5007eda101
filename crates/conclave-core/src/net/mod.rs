//! The network: TLS with verified certificates (and the owner's pins), and
//! the mail protocols built on it, and HTTPS for key lookups (WKD, VKS).

pub mod http;
pub mod imap;
pub mod smtp;
pub mod tls;
pub mod wkd;
