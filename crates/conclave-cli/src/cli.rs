//! The command-line grammar, kept apart from the code that runs it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run an end-to-end encrypted mailing list from your own machine.
#[derive(Debug, Parser)]
#[command(
    name = "conclave",
    version,
    about,
    after_help = "Example:\n  conclave --home ~/lists/demo --passphrase-file pw init --address list@example.org --name Demo --generate-key"
)]
pub struct Cli {
    /// The list's home directory (default: $XDG_DATA_HOME/conclave).
    #[arg(long, global = true, env = "CONCLAVE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// A file holding the passphrase of the list key.
    #[arg(
        long,
        global = true,
        env = "CONCLAVE_PASSPHRASE_FILE",
        value_name = "F"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// A file (mode 0600) holding the user PIN of the list's OpenPGP card.
    #[arg(long, global = true, env = "CONCLAVE_PIN_FILE", value_name = "F")]
    pub pin_file: Option<PathBuf>,
    /// A file (mode 0600) holding the admin PIN of the OpenPGP card.
    #[arg(long, global = true, env = "CONCLAVE_ADMIN_PIN_FILE", value_name = "F")]
    pub admin_pin_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a list: its store and its key.
    #[command(
        after_help = "Examples:\n  conclave --home DIR init --address list@example.org --name Demo --generate-key --passphrase-file pw\n  conclave --home DIR init --address list@example.org --name Demo --import-key list-secret.asc --passphrase-file pw"
    )]
    Init(InitArgs),
    /// The list key.
    #[command(after_help = "Example:\n  conclave --home DIR key export > list.asc")]
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Subscribers' keys on the web: refresh them from WKD and the keyserver now.
    #[command(
        after_help = "Examples:\n  conclave --home DIR keys refresh\n  conclave --home DIR keys refresh --delay 0   # no pauses between lookups"
    )]
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Add, list and remove subscribers.
    #[command(
        after_help = "Examples:\n  conclave --home DIR subscriber add alice@example.org --key alice.asc\n  conclave --home DIR subscriber list\n  conclave --home DIR subscriber remove alice@example.org"
    )]
    Subscriber {
        #[command(subcommand)]
        cmd: SubscriberCmd,
    },
    /// Show and change the list's options.
    #[command(
        after_help = "Examples:\n  conclave --home DIR config show\n  conclave --home DIR config set receive_signed_only reject"
    )]
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Run messages (files, or - for standard input) through the list.
    #[command(
        after_help = "Prints one line per message: `distributed to N`, `held: REASON`, `rejected: REASON` or `discarded: REASON`.\n\nExample:\n  conclave --home DIR --passphrase-file pw process post.eml"
    )]
    Process {
        /// The messages, as .eml files; - reads one from standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// The copies waiting to be sent.
    #[command(after_help = "Example:\n  conclave --home DIR outbox export out/")]
    Outbox {
        #[command(subcommand)]
        cmd: OutboxCmd,
    },
    /// Posts held for moderation.
    #[command(
        after_help = "Examples:\n  conclave --home DIR held list\n  conclave --home DIR --passphrase-file pw held show 3\n  conclave --home DIR --passphrase-file pw held approve 3\n  conclave --home DIR held reject 3 --reason \"off topic\"\n  conclave --home DIR held discard 3"
    )]
    Held {
        #[command(subcommand)]
        cmd: HeldCmd,
    },
    /// Subscriptions and key changes asked by mail, waiting for a key proof or for the owner.
    #[command(
        after_help = "Examples:\n  conclave --home DIR requests list\n  conclave --home DIR --passphrase-file pw requests approve 2\n  conclave --home DIR --passphrase-file pw requests refuse 2 --reason \"unknown to us\""
    )]
    Requests {
        #[command(subcommand)]
        cmd: RequestsCmd,
    },
    /// Run the list: watch the mailbox over IMAP (IDLE), process posts, send copies over SMTP.
    #[command(
        after_help = "Examples:\n  conclave --home DIR --passphrase-file pw run --once   # one pass, then exit\n  conclave --home DIR --passphrase-file pw run          # until stopped"
    )]
    Run {
        /// Process the mailbox, drain the outbox, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Server certificates: show, accept (pin) and forget.
    #[command(
        after_help = "Examples:\n  conclave --home DIR certs show imap.example.org:993\n  conclave --home DIR certs accept imap.example.org:993 --sha256 3f1a...\n  conclave --home DIR certs list\n  conclave --home DIR certs forget imap.example.org:993"
    )]
    Certs {
        #[command(subcommand)]
        cmd: CertsCmd,
    },
    /// The list key on an OpenPGP card (YubiKey, Nitrokey, Gnuk…).
    #[command(
        after_help = "Examples:\n  conclave card list\n  conclave --home DIR --passphrase-file pw --admin-pin-file apin card import 000F:0000ABCD\n  conclave --home DIR --pin-file pin card use 000F:0000ABCD\n  conclave --home DIR --pin-file pin --admin-pin-file apin card generate 000F:0000ABCD"
    )]
    Card {
        #[command(subcommand)]
        cmd: CardCmd,
    },
    /// The invitation for a newcomer: the list and request addresses, the list key's fingerprint and a QR code of it; also as a vCard with the list key, and the QR code as SVG.
    #[command(
        after_help = "Examples:\n  conclave --home DIR invite\n  conclave --home DIR invite --vcard list.vcf --qr-svg list-qr.svg"
    )]
    Invite(InviteArgs),
    /// The bounces the list heard of: whose copy, how bad, how it came (verp,
    /// report, smtp) and what was done (counted, forged, unmatched…).
    #[command(after_help = "Example:\n  conclave --home DIR bounces --limit 20")]
    Bounces {
        /// How many entries to show.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// The audit log: what happened to each post, never its content.
    #[command(after_help = "Example:\n  conclave --home DIR log --limit 20")]
    Log {
        /// How many entries to show.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The list address.
    #[arg(long)]
    pub address: String,
    /// The list's display name.
    #[arg(long)]
    pub name: String,
    /// Generate a new list key (Ed25519 + Cv25519).
    #[arg(long, conflicts_with = "import_key")]
    pub generate_key: bool,
    /// Import this armored secret key as the list key.
    #[arg(long, value_name = "FILE")]
    pub import_key: Option<PathBuf>,
}

/// Arguments of `invite`.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// Also write the vCard (the list's name, address and public key) to FILE.
    #[arg(long, value_name = "FILE")]
    pub vcard: Option<PathBuf>,
    /// Also write the QR code as an SVG image to FILE.
    #[arg(long, value_name = "FILE")]
    pub qr_svg: Option<PathBuf>,
}

/// `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Print the list's armored public key.
    #[command(after_help = "Example:\n  conclave --home DIR key export > list.asc")]
    Export,
    /// Move the list key's expiry to YEARS years from now (signed with the list key, on its card too); then send subscribers the public key again.
    #[command(
        after_help = "Example:\n  conclave --home DIR key extend --years 2\n  conclave --home DIR key export > list.asc"
    )]
    Extend {
        /// Years from now (1 to 10).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=10))]
        years: u64,
    },
    /// Write an encrypted backup of the list's secret key (protected by the list passphrase, mode 0600) to FILE.
    #[command(
        after_help = "Example:\n  conclave --home DIR key backup /media/usb/list-key-backup.asc"
    )]
    Backup {
        /// The new file.
        file: PathBuf,
    },
    /// Write the list key's Web Key Directory files under DIR, for the owner's web server: both the direct and the advanced layout, with their policy files; prints the URL each must be served at.
    #[command(after_help = "Example:\n  conclave --home DIR key wkd /var/www/wkd")]
    Wkd {
        /// The folder to write into (created if missing).
        dir: PathBuf,
    },
    /// Upload the list key to the keyserver (keys.keyserver) and ask it to check the list address; the relay completes the check by itself when the server's mail arrives in the list mailbox.
    #[command(
        after_help = "Example:\n  conclave --home DIR key publish\n  conclave --home DIR --passphrase-file pw run"
    )]
    Publish,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Ask WKD and the keyserver (keys.wkd, keys.keyserver) for every subscriber's key now, in random order, and take only newer copies of the same keys (third-party certifications stripped); prints what changed.
    #[command(after_help = "Example:\n  conclave --home DIR keys refresh --delay 0")]
    Refresh {
        /// The longest random pause between two lookups, in seconds
        /// (default: keys.refresh_delay_seconds).
        #[arg(long, value_name = "SECONDS")]
        delay: Option<u64>,
    },
}

/// `subscriber` subcommands.
#[derive(Debug, Subcommand)]
pub enum SubscriberCmd {
    /// Add a subscriber (or refresh their key; a different key needs --replace).
    #[command(
        after_help = "Examples:\n  conclave --home DIR subscriber add alice@example.org --key alice.asc\n  conclave --home DIR subscriber add alice@example.org --key alice-new.asc --replace"
    )]
    Add {
        /// Their address; their key must carry it in a User ID.
        address: String,
        /// Their public key, armored or binary.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Replace the key of a subscriber who has another one (both
        /// fingerprints are printed and audited; copies still queued for
        /// the old key are dropped).
        #[arg(long)]
        replace: bool,
    },
    /// Subscribe many at once from a keyring: every address of every
    /// key's valid User IDs, or only the addresses a CSV file or a
    /// Schleuder list's subscriptions name. One line per key and address
    /// (added, updated, unchanged, refused, skipped: why), then a summary.
    #[command(
        after_help = "A key already subscribed for an address is refreshed; a different key for a subscribed address is skipped (`subscriber add --replace` replaces one on purpose). Keys that cannot be used (expired, revoked, no encryption subkey, no User ID for the address) are refused with the reason; the rest are imported. Exits non-zero only when no key could be read.\n\nThe CSV file: one address per line, or `address,fingerprint`; a header line and `#` comments are allowed.\n\nMoving a Schleuder list: on the Schleuder host, save the subscriptions and every key, then import both here in one step. Subscriptions whose delivery is disabled in Schleuder are imported with their copies stopped (`subscriber enable` starts them); admins are imported as subscribers and named (here the list has one owner).\n\nExamples:\n  conclave --home DIR subscriber import keys.asc\n  conclave --home DIR subscriber import keys.gpg --csv members.csv\n  schleuder-cli subscriptions list list@example.org > subscriptions.txt\n  schleuder-cli keys list list@example.org | while read fpr rest; do schleuder-cli keys export list@example.org \"$fpr\"; done > keys.asc\n  conclave --home DIR subscriber import keys.asc --schleuder subscriptions.txt"
    )]
    Import {
        /// The keyring: armored (one or many blocks) or binary; `-` reads
        /// standard input.
        #[arg(value_name = "KEYRING")]
        keyring: PathBuf,
        /// Subscribe only the addresses this CSV file names (`address` or
        /// `address,fingerprint` per line).
        #[arg(long, value_name = "FILE", conflicts_with = "schleuder")]
        csv: Option<PathBuf>,
        /// A Schleuder list's subscriptions: the output of `schleuder-cli
        /// subscriptions list LIST`, or the JSON of the Schleuder API's
        /// /subscriptions.json.
        #[arg(long, value_name = "FILE")]
        schleuder: Option<PathBuf>,
    },
    /// List subscribers, with warnings about their keys and how their
    /// copies fare (ok, bounce score, stopped; the last failure).
    #[command(
        after_help = "Sorted by address. Up to 500 subscribers are all listed; a longer list shows one page (--per-page, 100 by default) and says how to see the next. --all lists every one. The last line gives the total.\n\nExamples:\n  conclave --home DIR subscriber list\n  conclave --home DIR subscriber list --search example.org --page 2\n  conclave --home DIR subscriber list --search 'C0FF EE12'"
    )]
    List {
        /// Only subscribers whose address or key fingerprint contains this
        /// (case ignored; spaces in a fingerprint too).
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// Which page to show, from 1.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        page: Option<u64>,
        /// How many subscribers a page holds.
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        per_page: u64,
        /// Every matching subscriber, however many.
        #[arg(long, conflicts_with = "page")]
        all: bool,
    },
    /// Let copies go again to a subscriber whose delivery bounces stopped
    /// (bounce_action disable), and clear their bounce score.
    #[command(after_help = "Example:\n  conclave --home DIR subscriber enable alice@example.org")]
    Enable {
        /// Their address.
        address: String,
    },
    /// Check every subscriber's key now (the relay does it once a day): who is told their key expires soon, who receives nothing.
    #[command(
        after_help = "Prints one line per key that expires within key_warning_days or cannot be used, and the list key's alarm.\n\nExample:\n  conclave --home DIR --passphrase-file pw subscriber check-keys"
    )]
    CheckKeys,
    /// Remove a subscriber.
    #[command(after_help = "Example:\n  conclave --home DIR subscriber remove alice@example.org")]
    Remove {
        /// Their address.
        address: String,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Set an option.
    #[command(after_help = "Example:\n  conclave --home DIR config set max_message_size_kb 2048")]
    Set {
        /// The option.
        key: String,
        /// Its value.
        value: String,
    },
    /// Show every option with its value in force.
    #[command(after_help = "Example:\n  conclave --home DIR config show")]
    Show,
    /// Keep a server's password (read from standard input, one line) in the OS keyring, or with --file in a file of mode 0600 in the list's folder. Set the server's host, port and username first.
    #[command(
        after_help = "Example:\n  conclave --home DIR config password imap < imap-password.txt\n  conclave --home DIR config password smtp --file < smtp-password.txt\n  conclave --home DIR config password imap --show"
    )]
    Password {
        /// imap or smtp.
        #[arg(value_parser = ["imap", "smtp"])]
        server: String,
        /// Keep it in a file (mode 0600) instead of the OS keyring.
        #[arg(long)]
        file: bool,
        /// Only say where the password comes from.
        #[arg(long, conflicts_with = "file")]
        show: bool,
    },
}

/// `outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCmd {
    /// Submit every due copy over SMTP (settings smtp.*); a copy is marked sent once the server accepts it. With the passphrase, copies signed over an hour ago are signed again first.
    #[command(
        after_help = "Example:\n  conclave --home DIR config set smtp.host mail.example.org\n  conclave --home DIR config set smtp.username list@example.org\n  conclave --home DIR config set smtp.password_file ~/.config/conclave/smtp-password   # mode 0600\n  conclave --home DIR outbox send\n  conclave --home DIR outbox send --now   # deferred copies too, without waiting"
    )]
    Send {
        /// Send deferred copies now too, without waiting for their retry
        /// time (after the owner mended the server, say).
        #[arg(long)]
        now: bool,
    },
    /// Write each queued copy to OUTDIR as an .eml named after its recipient.
    #[command(after_help = "Example:\n  conclave --home DIR outbox export out/")]
    Export {
        /// Where to write the copies.
        outdir: PathBuf,
    },
}

/// `held` subcommands.
#[derive(Debug, Subcommand)]
pub enum HeldCmd {
    /// List held posts: id, date, sender, reason.
    #[command(after_help = "Example:\n  conclave --home DIR held list")]
    List,
    /// Decrypt a held post in memory and show it.
    #[command(after_help = "Example:\n  conclave --home DIR --passphrase-file pw held show 3")]
    Show {
        /// The post's id.
        id: i64,
    },
    /// Distribute a held post.
    #[command(after_help = "Example:\n  conclave --home DIR --passphrase-file pw held approve 3")]
    Approve {
        /// The post's id.
        id: i64,
    },
    /// Refuse a held post, with a reason.
    #[command(after_help = "Example:\n  conclave --home DIR held reject 3 --reason \"off topic\"")]
    Reject {
        /// The post's id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Drop a held post (its ciphertext stays in the store).
    #[command(after_help = "Example:\n  conclave --home DIR held discard 3")]
    Discard {
        /// The post's id.
        id: i64,
    },
}

/// `requests` subcommands.
#[derive(Debug, Subcommand)]
pub enum RequestsCmd {
    /// List open requests: id, kind, address, key, when asked, what they wait for.
    #[command(after_help = "Example:\n  conclave --home DIR requests list")]
    List,
    /// Carry out a request that waits for the owner; the requester is told.
    #[command(
        after_help = "Example:\n  conclave --home DIR --passphrase-file pw requests approve 2"
    )]
    Approve {
        /// The request's id.
        id: i64,
    },
    /// Refuse a request that waits for the owner; the requester is told.
    #[command(
        after_help = "Example:\n  conclave --home DIR --passphrase-file pw requests refuse 2 --reason \"unknown to us\""
    )]
    Refuse {
        /// The request's id.
        id: i64,
        /// Why (sent to the requester).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// How to reach a server for `certs` (default: from the configuration, or the port).
#[derive(Debug, Args)]
pub struct ReachArgs {
    /// Upgrade with STARTTLS first, speaking this protocol (imap or smtp).
    #[arg(long, value_name = "PROTOCOL", value_parser = ["imap", "smtp"], conflicts_with = "tls")]
    pub starttls: Option<String>,
    /// Use TLS from the first byte.
    #[arg(long)]
    pub tls: bool,
}

/// `certs` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCmd {
    /// The pinned certificates.
    #[command(after_help = "Example:\n  conclave --home DIR certs list")]
    List,
    /// Connect and show the certificate, its fingerprints and whether it is trusted. Sends no credential.
    #[command(
        after_help = "Examples:\n  conclave --home DIR certs show imap.example.org:993\n  conclave --home DIR certs show mail.example.org:587 --starttls smtp"
    )]
    Show {
        /// HOST:PORT
        endpoint: String,
        #[command(flatten)]
        reach: ReachArgs,
    },
    /// Pin the certificate the server presents, only if its SHA-256 matches.
    #[command(
        after_help = "Example:\n  conclave --home DIR certs accept imap.example.org:993 --sha256 3f1a0c...e9"
    )]
    Accept {
        /// HOST:PORT
        endpoint: String,
        /// The SHA-256 fingerprint you checked (colons and case do not matter).
        #[arg(long, value_name = "FPR")]
        sha256: String,
        #[command(flatten)]
        reach: ReachArgs,
    },
    /// Forget a pinned certificate.
    #[command(after_help = "Example:\n  conclave --home DIR certs forget imap.example.org:993")]
    Forget {
        /// HOST:PORT
        endpoint: String,
    },
}

/// `card` subcommands.
#[derive(Debug, Subcommand)]
pub enum CardCmd {
    /// Show the readers' OpenPGP cards: ident, manufacturer, serial, key slots, PIN tries left, signature counter.
    #[command(after_help = "Example:\n  conclave card list")]
    List,
    /// Keep the list key on the card IDENT, after checking that it holds the list's keys.
    #[command(
        after_help = "Example:\n  conclave --home DIR --pin-file pin card use 000F:0000ABCD"
    )]
    Use {
        /// The card, as MMMM:SSSSSSSS (see `card list`).
        ident: String,
    },
    /// Move the list's file key onto the card IDENT (admin PIN), then use the card. The key file is deleted unless --keep-file.
    #[command(
        after_help = "Example:\n  conclave --home DIR --passphrase-file pw --admin-pin-file apin card import 000F:0000ABCD"
    )]
    Import {
        /// The card, as MMMM:SSSSSSSS.
        ident: String,
        /// Keep the (passphrase-protected) key file as a backup.
        #[arg(long)]
        keep_file: bool,
    },
    /// Generate a new list key on the card IDENT (Ed25519 + Cv25519) and make it the list's key; the old key file is kept, renamed.
    #[command(
        after_help = "Example:\n  conclave --home DIR --pin-file pin --admin-pin-file apin card generate 000F:0000ABCD\n  conclave --home DIR key export > list.asc   # subscribers need the new key"
    )]
    Generate {
        /// The card, as MMMM:SSSSSSSS.
        ident: String,
    },
}
