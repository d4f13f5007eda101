//! `conclave card`: the list key on an OpenPGP card: list the cards, use
//! one, move the key onto one, or generate a new key on one.

use std::io::Write;

use anyhow::Result;

use super::common::{home, open, passphrase, pins, renewal_line};
use crate::cli::{CardCmd, Cli};

/// Runs a `card` subcommand.
pub fn dispatch(cli: &Cli, cmd: &CardCmd, out: &mut impl Write) -> Result<()> {
    match cmd {
        CardCmd::List => list(out)?,
        CardCmd::Use { ident } => {
            let mut list = open(cli)?;
            list.card_use(ident, pins(cli)?)?;
            writeln!(
                out,
                "the list key is used from the card {}",
                ident.to_ascii_uppercase()
            )?;
            renewal_line(out, &list, &home(cli)?)?;
        }
        CardCmd::Import { ident, keep_file } => {
            let mut list = open(cli)?;
            let pw = passphrase(cli)?.ok_or(conclave_core::Error::PassphraseRequired)?;
            list.card_import(ident, &pw, pins(cli)?, *keep_file)?;
            writeln!(
                out,
                "the list key is now on the card {}{}",
                ident.to_ascii_uppercase(),
                if *keep_file {
                    " (the key file is kept)"
                } else {
                    "; the key file was deleted"
                }
            )?;
        }
        CardCmd::Generate { ident } => {
            let mut list = open(cli)?;
            let fpr = list.card_generate(ident, pins(cli)?)?;
            writeln!(
                out,
                "new list key {fpr} on the card {}; give subscribers the new public key (conclave key export)",
                ident.to_ascii_uppercase()
            )?;
        }
    }
    Ok(())
}

/// The readers' OpenPGP cards, with their key slots, PIN tries and
/// signature counters. Needs no list.
fn list(out: &mut impl Write) -> Result<()> {
    let cards = conclave_core::crypto::card::list_cards()?;
    if cards.is_empty() {
        writeln!(out, "no OpenPGP card found")?;
    }
    for c in cards {
        writeln!(out, "{}\t{}\tserial {}", c.ident, c.manufacturer, c.serial)?;
        for (slot, fpr) in ["signature", "decryption", "authentication"]
            .iter()
            .zip(&c.slots)
        {
            writeln!(out, "  {slot:<14} {}", fpr.as_deref().unwrap_or("(empty)"))?;
        }
        writeln!(
            out,
            "  PIN tries left: user {}, reset code {}, admin {}",
            c.retries.0, c.retries.1, c.retries.2
        )?;
        writeln!(out, "  signatures made: {}", c.signature_count)?;
    }
    Ok(())
}
