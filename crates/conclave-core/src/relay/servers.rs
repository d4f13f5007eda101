//! The owner's decisions about server certificates: show what a server
//! presents, pin exactly the certificate the owner accepted, forget a pin.

use crate::error::{Error, Result};
use crate::net::tls::{self, CertInfo, Endpoint, Protocol, Security, TrustSettings};

use super::List;

/// What `certs show` found.
#[derive(Debug, Clone)]
pub struct CertReport {
    /// `host:port`.
    pub endpoint: String,
    /// The chain presented, end entity first.
    pub chain: Vec<CertInfo>,
    /// What trusts it, or the error that says why nothing does.
    pub verdict: std::result::Result<&'static str, tls::TlsError>,
    /// The pinned fingerprint, if any.
    pub pin: Option<String>,
}

impl List {
    /// The endpoint for `host:port`: the configured IMAP or SMTP server if it
    /// is one of them, else guessed from the port (993, 143, 465, 587, 25),
    /// unless `security` and `protocol` are given.
    pub fn endpoint_for(
        &self,
        host: &str,
        port: u16,
        force: Option<(Security, Protocol)>,
    ) -> Result<Endpoint> {
        let host = host.to_ascii_lowercase();
        if let Some((security, protocol)) = force {
            return Ok(Endpoint {
                host,
                port,
                security,
                protocol,
            });
        }
        for (prefix, protocol) in [("imap", Protocol::Imap), ("smtp", Protocol::Smtp)] {
            let h = self
                .store
                .config_get(&format!("{prefix}.host"))?
                .unwrap_or_default()
                .to_ascii_lowercase();
            let p = self
                .config_value(&format!("{prefix}.port"))?
                .parse::<u16>()
                .unwrap_or(0);
            if h == host && p == port {
                let security = Security::parse(&self.config_value(&format!("{prefix}.security"))?)
                    .unwrap_or(Security::Tls);
                return Ok(Endpoint {
                    host,
                    port,
                    security,
                    protocol,
                });
            }
        }
        let (security, protocol) = match port {
            143 => (Security::StartTls, Protocol::Imap),
            465 => (Security::Tls, Protocol::Smtp),
            587 | 25 => (Security::StartTls, Protocol::Smtp),
            _ => (Security::Tls, Protocol::Imap),
        };
        Ok(Endpoint {
            host,
            port,
            security,
            protocol,
        })
    }

    /// What the owner trusts for `endpoint`: the extra CA file and the pin.
    pub fn trust_for(&self, endpoint: &Endpoint) -> Result<TrustSettings> {
        let ca = self.config_value("tls.ca_file")?;
        Ok(TrustSettings {
            ca_file: if ca.is_empty() { None } else { Some(ca.into()) },
            pin: self.store.tls_pin(&endpoint.key())?,
        })
    }

    /// Connects to `endpoint` and reports the certificate it presents and
    /// whether it is trusted. Sends no credential.
    pub fn certs_show(&self, endpoint: &Endpoint) -> Result<CertReport> {
        let trust = self.trust_for(endpoint)?;
        let pin = trust.pin.clone();
        let result = tls::block_on(async {
            tls::connect(endpoint, &trust)
                .await
                .map(|(_stream, chain, by)| (chain, by))
        })
        .map_err(|e| Error::io("start", "the network runtime", e))?;
        match result {
            Ok((chain, by)) => Ok(CertReport {
                endpoint: endpoint.key(),
                chain,
                verdict: Ok(by),
                pin,
            }),
            Err(e @ tls::TlsError::Untrusted { .. }) | Err(e @ tls::TlsError::Changed { .. }) => {
                let chain = match &e {
                    tls::TlsError::Untrusted { chain, .. }
                    | tls::TlsError::Changed { chain, .. } => chain.clone(),
                    _ => Vec::new(),
                };
                Ok(CertReport {
                    endpoint: endpoint.key(),
                    chain,
                    verdict: Err(e),
                    pin,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Pins the certificate `endpoint` presents, but only if its SHA-256 is
    /// `sha256`: the owner accepts exactly the certificate they checked.
    pub fn certs_accept(&mut self, endpoint: &Endpoint, sha256: &str) -> Result<CertInfo> {
        let wanted = tls::normalise_fingerprint(sha256);
        if wanted.len() != 64 {
            return Err(Error::InvalidInput(format!(
                "{sha256:?} is not a SHA-256 fingerprint (64 hex digits)"
            )));
        }
        let report = self.certs_show(endpoint)?;
        let presented = report.chain.first().cloned().ok_or_else(|| {
            Error::InvalidInput(format!("{} presented no certificate", endpoint.key()))
        })?;
        if presented.sha256 != wanted {
            return Err(Error::InvalidInput(format!(
                "{} presents a certificate with SHA-256 {}, not {wanted}; nothing was pinned",
                endpoint.key(),
                presented.sha256
            )));
        }
        self.store.set_tls_pin(
            &endpoint.key(),
            &presented.sha256,
            &presented.subject,
            self.clock.unix(),
        )?;
        self.store.audit(
            self.clock.unix(),
            None,
            "certificate",
            &format!(
                "accepted the certificate of {} (SHA-256 {})",
                endpoint.key(),
                presented.sha256
            ),
        )?;
        Ok(presented)
    }

    /// Accepts the certificate that the list's IMAP or SMTP server at
    /// `endpoint` (`host:port`) presents, if its SHA-256 is `sha256`: what
    /// the app's dialog does when the owner clicks Accept.
    pub fn accept_certificate(&mut self, endpoint: &str, sha256: &str) -> Result<CertInfo> {
        for (prefix, protocol) in [("imap", Protocol::Imap), ("smtp", Protocol::Smtp)] {
            let Ok(ep) = self.configured_endpoint(prefix, protocol) else {
                continue;
            };
            if ep.key() == endpoint {
                return self.certs_accept(&ep, sha256);
            }
        }
        Err(Error::InvalidInput(format!(
            "{endpoint} is neither the list's IMAP nor its SMTP server"
        )))
    }

    /// Forgets the pin of `host:port`.
    pub fn certs_forget(&mut self, host: &str, port: u16) -> Result<()> {
        let key = tls::endpoint_key(host, port);
        if !self.store.remove_tls_pin(&key)? {
            return Err(Error::NotFound(format!(
                "no certificate is pinned for {key}"
            )));
        }
        self.store.audit(
            self.clock.unix(),
            None,
            "certificate",
            &format!("forgot the pinned certificate of {key}"),
        )
    }

    /// A configuration value, or its default.
    pub(crate) fn config_value(&self, key: &str) -> Result<String> {
        let default = super::policy::OPTIONS
            .iter()
            .find(|o| o.0 == key)
            .map(|o| o.1)
            .unwrap_or("");
        Ok(self
            .store
            .config_get(key)?
            .unwrap_or_else(|| default.to_owned()))
    }
}
