//! `conclave`: run an end-to-end encrypted mailing list from the command line.
//! Every engine feature is here, headless and scriptable.
//!
//! The grammar is in `cli`, the code that runs each command in `commands`;
//! this file only reports the error, on one line, and sets the exit code.

mod cli;
mod commands;
mod inert;

use clap::Parser;

fn main() {
    // A panic (a bug, here or in a library) is reported on one line like
    // any other error, unless a backtrace was asked for.
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|info| {
            let text = info.to_string();
            eprintln!(
                "conclave: internal error: {}",
                inert::one_line(&text.split_whitespace().collect::<Vec<_>>().join(" "))
            );
        }));
    }
    conclave_core::events::timing("process started");
    let cli = cli::Cli::parse();
    if let Err(e) = commands::run(cli) {
        let mut line = format!("{e}");
        for cause in e.chain().skip(1) {
            // Causes are compared on one line, as the engine flattens them.
            let c = cause
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !line.contains(&c) {
                line.push_str(": ");
                line.push_str(&c);
            }
        }
        eprintln!(
            "conclave: error: {}",
            inert::one_line(&line.replace('\n', " "))
        );
        std::process::exit(1);
    }
}
