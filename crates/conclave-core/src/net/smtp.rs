//! SMTP submission with lettre, over a TLS stream whose certificate our own
//! verifier checked (lettre cannot take a custom rustls verifier, so the
//! handshake, and STARTTLS before it, are ours; lettre gets the verified
//! stream through `AsyncSmtpConnection::connect_with_transport`). AUTH is
//! only ever sent on that verified stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tls::{self, Endpoint, TlsError, TlsStream, TrustSettings};

/// Where and how to submit.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The submission server.
    pub endpoint: Endpoint,
    /// What to trust besides public roots.
    pub trust: TrustSettings,
    /// The login.
    pub username: String,
    /// The password.
    pub password: crate::private::Secret,
    /// How long one operation may take ([`tls::within`]).
    pub deadline: std::time::Duration,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// TLS did not happen: nothing was sent.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The server refused the login.
    #[error("cannot log in to {endpoint}: {detail}")]
    Auth {
        /// `host:port`.
        endpoint: String,
        /// What the server said.
        detail: String,
    },
    /// A temporary refusal (4xx) or a broken connection: try again later.
    #[error("{0}")]
    Transient(String),
    /// A permanent refusal (5xx) for this recipient.
    #[error("{0}")]
    Permanent(String),
}

/// An open, authenticated submission session.
pub struct SmtpSession {
    conn: AsyncSmtpConnection,
    deadline: std::time::Duration,
}

impl std::fmt::Debug for SmtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSession").finish()
    }
}

/// lettre's view of our verified stream. lettre reads a greeting first; after
/// STARTTLS the server does not greet again (RFC 3207: the client sends EHLO),
/// so for STARTTLS the stream first serves lettre the greeting it expects.
#[derive(Debug)]
struct Verified {
    stream: TlsStream,
    greeting: Vec<u8>,
    served: usize,
}

impl AsyncRead for Verified {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.greeting.get(this.served..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            if let Some(chunk) = rest.get(..n) {
                buf.put_slice(chunk);
            }
            this.served += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Verified {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Verified {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.stream.get_ref().0.peer_addr()
    }
}

impl SmtpSession {
    /// Connects, verifies the certificate, greets and logs in, within the
    /// deadline.
    pub async fn open(settings: &SmtpSettings) -> Result<SmtpSession, SendError> {
        let key = settings.endpoint.key();
        tls::within(
            settings.deadline,
            |d| SendError::Transient(format!("{key}: {d}")),
            Self::open_now(settings),
        )
        .await
    }

    async fn open_now(settings: &SmtpSettings) -> Result<SmtpSession, SendError> {
        let (stream, _chain, _by) = tls::connect(&settings.endpoint, &settings.trust).await?;
        let key = settings.endpoint.key();
        let hello = ClientId::Domain("conclave.invalid".into());
        let greeting = match settings.endpoint.security {
            tls::Security::StartTls => b"220 STARTTLS done\r\n".to_vec(),
            tls::Security::Tls => Vec::new(),
        };
        let verified = Verified {
            stream,
            greeting,
            served: 0,
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(verified), &hello)
            .await
            .map_err(|e| SendError::Transient(format!("cannot greet {key}: {e}")))?;
        let credentials = Credentials::new(
            settings.username.clone(),
            settings.password.expose().to_owned(),
        );
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .await
            .map_err(|e| SendError::Auth {
                endpoint: key,
                detail: e.to_string(),
            })?;
        Ok(SmtpSession {
            conn,
            deadline: settings.deadline,
        })
    }

    /// Submits one message; Ok once the server accepted it.
    pub async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<(), SendError> {
        let envelope = Envelope::new(
            Some(
                from.parse()
                    .map_err(|e| SendError::Permanent(format!("bad sender address {from}: {e}")))?,
            ),
            vec![to
                .parse()
                .map_err(|e| SendError::Permanent(format!("bad recipient address {to}: {e}")))?],
        )
        .map_err(|e| SendError::Permanent(e.to_string()))?;
        match tokio::time::timeout(self.deadline, self.conn.send(&envelope, message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Ok(Err(e)) => Err(SendError::Transient(e.to_string())),
            Err(_) => {
                // A submission cut short leaves the connection in an unknown
                // state: it is marked broken, so the next copy takes a new one.
                let _ = tokio::time::timeout(self.deadline, self.conn.abort()).await;
                Err(SendError::Transient(format!(
                    "the server gave no answer within {} seconds",
                    self.deadline.as_secs()
                )))
            }
        }
    }

    /// True when the connection can no longer be used.
    pub fn is_broken(&self) -> bool {
        self.conn.has_broken()
    }

    /// Says goodbye.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.deadline, self.conn.quit()).await;
    }
}
