//! `conclave certs`: the servers' TLS certificates: show one, accept (pin)
//! it, list the pinned ones, forget one.

use std::io::Write;

use anyhow::{Context, Result};
use conclave_core::net::tls::{self, Protocol, Security};
use conclave_core::List;

use super::common::{open, unix};
use crate::cli::{CertsCmd, Cli, ReachArgs};

/// Runs a `certs` subcommand.
pub fn dispatch(cli: &Cli, cmd: &CertsCmd, out: &mut impl Write) -> Result<()> {
    let mut list = open(cli)?;
    match cmd {
        CertsCmd::List => {
            for (endpoint, sha, subject, at) in list.store().tls_pins()? {
                writeln!(
                    out,
                    "{endpoint}\t{sha}\t{subject}\taccepted {}",
                    conclave_core::clock::rfc5322(unix(at))
                )?;
            }
        }
        CertsCmd::Show { endpoint, reach } => show(&list, endpoint, reach, out)?,
        CertsCmd::Accept {
            endpoint,
            sha256,
            reach,
        } => {
            let ep = endpoint_arg(&list, endpoint, reach)?;
            let c = list.certs_accept(&ep, sha256)?;
            writeln!(out, "pinned {} for {}", c.sha256, ep.key())?;
        }
        CertsCmd::Forget { endpoint } => {
            let (host, port) = tls::parse_endpoint(endpoint)
                .with_context(|| format!("{endpoint:?} is not HOST:PORT"))?;
            list.certs_forget(&host, port)?;
            writeln!(
                out,
                "forgot the certificate of {}",
                tls::endpoint_key(&host, port)
            )?;
        }
    }
    Ok(())
}

/// Prints the chain the server presents and whether it is trusted; fails
/// when it is not, after saying how to accept it.
fn show(list: &List, endpoint: &str, reach: &ReachArgs, out: &mut impl Write) -> Result<()> {
    let ep = endpoint_arg(list, endpoint, reach)?;
    let report = list.certs_show(&ep)?;
    writeln!(out, "endpoint {}", report.endpoint)?;
    for (i, c) in report.chain.iter().enumerate() {
        writeln!(
            out,
            "certificate {}{}",
            i + 1,
            if i == 0 { " (server)" } else { "" }
        )?;
        writeln!(out, "  subject:  {}", c.subject)?;
        writeln!(out, "  issuer:   {}", c.issuer)?;
        writeln!(out, "  valid:    {} to {}", c.not_before, c.not_after)?;
        writeln!(out, "  names:    {}", c.names.join(", "))?;
        writeln!(out, "  SHA-256:  {}", c.sha256)?;
        writeln!(out, "  key SHA-256: {}", c.spki_sha256)?;
    }
    match report.verdict {
        Ok(by) => writeln!(out, "trusted: yes, by {by}")?,
        Err(e) => {
            writeln!(out, "trusted: no")?;
            if let (tls::TlsError::Untrusted { .. }, Some(c)) = (&e, report.chain.first()) {
                writeln!(
                    out,
                    "to accept exactly this certificate: conclave certs accept {} --sha256 {}",
                    report.endpoint, c.sha256
                )?;
            }
            if let tls::TlsError::NoLongerVouched { .. } = &e {
                writeln!(
                    out,
                    "a certificate authority vouched for this server before: find out why it changed before anything else; only then, to accept another certificate: conclave certs forget {}",
                    report.endpoint
                )?;
            }
            return Err(e.into());
        }
    }
    Ok(())
}

/// The endpoint HOST:PORT, reached as the configuration says, or as
/// `--starttls` / `--tls` force.
fn endpoint_arg(list: &List, endpoint: &str, reach: &ReachArgs) -> Result<tls::Endpoint> {
    let (host, port) =
        tls::parse_endpoint(endpoint).with_context(|| format!("{endpoint:?} is not HOST:PORT"))?;
    let force = match (&reach.starttls, reach.tls) {
        (Some(p), _) => Some((
            Security::StartTls,
            if p == "smtp" {
                Protocol::Smtp
            } else {
                Protocol::Imap
            },
        )),
        (None, true) => Some((Security::Tls, Protocol::Imap)),
        (None, false) => None,
    };
    Ok(list.endpoint_for(&host, port, force)?)
}
