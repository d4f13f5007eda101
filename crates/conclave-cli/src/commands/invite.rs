//! `conclave invite`: the invitation for a newcomer, as text with a QR code
//! for the terminal, and on request as a vCard and an SVG file.

use std::io::Write;

use anyhow::{Context, Result};

use super::common::open;
use crate::cli::{Cli, InviteArgs};

/// Runs `invite`.
pub fn dispatch(cli: &Cli, args: &InviteArgs, out: &mut impl Write) -> Result<()> {
    let invitation = open(cli)?.invitation()?;
    writeln!(out, "{}", invitation.text)?;
    writeln!(
        out,
        "Scan to check the list key ({}):\n",
        invitation.qr_content
    )?;
    out.write_all(invitation.qr_terminal.as_bytes())?;
    if args.vcard.is_some() || args.qr_svg.is_some() {
        writeln!(out)?;
    }
    for (file, data, what) in [
        (&args.vcard, &invitation.vcard, "vCard"),
        (&args.qr_svg, &invitation.qr_svg, "QR code (SVG)"),
    ] {
        if let Some(path) = file {
            std::fs::write(path, data)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(out, "{what} written to {}", path.display())?;
        }
    }
    Ok(())
}
