//! `conclave`: run an end-to-end encrypted mailing list from the command line.
//! Every engine feature is here, headless and scriptable.
//!
//! The grammar is in `cli`, the code that runs each command in `commands`;
//! this file only reports the error, on one line, and sets the exit code.

mod cli;
mod commands;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = commands::run(cli) {
        let mut line = format!("{e}");
        for cause in e.chain().skip(1) {
            let c = cause.to_string();
            if !line.contains(&c) {
                line.push_str(": ");
                line.push_str(&c);
            }
        }
        eprintln!("conclave: error: {}", line.replace('\n', " "));
        std::process::exit(1);
    }
}
