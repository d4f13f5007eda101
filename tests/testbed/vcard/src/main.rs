//! conclave-vcard: a virtual OpenPGP card for Conclave's card tests.
//!
//! The card application is Nitrokey's `opcard`, running on a software Trussed
//! platform (trussed's `virt` storage, file-backed so keys, PINs and counters
//! survive a restart). APDUs reach it from pcscd through vsmartcard's `vpcd`
//! driver, spoken to with the `vpicc` crate.
//!
//! Layers, bottom up:
//! - `Platform`: randomness (seeded from the OS), storage, a user interface
//!   that always confirms presence.
//! - `Dispatch`: routes Trussed requests to the backends opcard needs: PIN
//!   handling (trussed-auth-backend), key wrapping and chunked file I/O
//!   (trussed-staging), software RSA (trussed-rsa-alloc) and Trussed's core.
//! - `Reader`: turns the raw APDUs from vpcd into complete commands for
//!   `opcard::Card::handle` (command chaining, GET RESPONSE).

use std::{
    io::Read as _,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use rand_chacha::{rand_core::SeedableRng as _, ChaCha8Rng};
use trussed::{
    backend::{Backend as _, BackendId},
    pipe::TrussedChannel,
    serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl},
    service::ServiceResources,
    types::{Context, CoreContext},
    virt::{self, Runner, StorageConfig, StoreConfig},
    ClientImplementation,
};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::{
    api::{reply, request, Reply, Request},
    types::Location,
    Error,
};
use trussed_rsa_alloc::SoftwareRsa;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// Largest command and response opcard announces (Extended Length Information: 0x1DB9).
const MAX_APDU: usize = 7609;

// ---------------------------------------------------------------------------
// Command line

struct Args {
    state: Option<PathBuf>,
    port: u16,
    serial: [u8; 4],
    manufacturer: [u8; 2],
    /// Give up after this long without a vpcd connection (0: never).
    reconnect: Duration,
    verbose: bool,
}

const USAGE: &str = "usage: conclave-vcard [--state DIR] [--port N] [--serial HEX8] [--manufacturer HEX4] [--verbose]

  --state DIR          keep the card's storage in DIR (internal.bin, external.bin);
                       without it the card lives in RAM and is lost on exit
  --port N             vpcd port on 127.0.0.1 (default 35963, reader \"Virtual PCD 00 00\")
  --serial HEX8        card serial number in the AID (default 00000001)
  --manufacturer HEX4  manufacturer id in the AID (default FFFF, \"test card\")
  --reconnect-secs N   keep trying to reach vpcd for N seconds, at start and after
                       pcscd went away, then exit with status 1 (default 30; 0: forever)
  --verbose            log every command to stderr";

fn parse_hex<const N: usize>(name: &str, text: &str) -> Result<[u8; N], String> {
    let text = text.trim_start_matches("0x");
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{name}: expected {} hex digits, got {text:?}",
            2 * N
        ));
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        state: None,
        port: vpicc::DEFAULT_PORT,
        serial: [0, 0, 0, 1],
        manufacturer: [0xff, 0xff],
        reconnect: Duration::from_secs(30),
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--state" => args.state = Some(PathBuf::from(value()?)),
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--serial" => args.serial = parse_hex("--serial", &value()?)?,
            "--manufacturer" => args.manufacturer = parse_hex("--manufacturer", &value()?)?,
            "--reconnect-secs" => {
                args.reconnect = Duration::from_secs(
                    value()?
                        .parse()
                        .map_err(|e| format!("--reconnect-secs: {e}"))?,
                )
            }
            "--verbose" | "-v" => args.verbose = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------
// Logging: opcard and trussed log through the `log` facade.

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

// ---------------------------------------------------------------------------
// Trussed platform

struct Platform<'a> {
    rng: ChaCha8Rng,
    store: virt::Store<'a>,
    ui: virt::UserInterface,
}

impl<'a> trussed::Platform for Platform<'a> {
    type R = ChaCha8Rng;
    type S = virt::Store<'a>;
    type UI = virt::UserInterface;

    fn rng(&mut self) -> &mut Self::R {
        &mut self.rng
    }
    fn store(&self) -> Self::S {
        self.store
    }
    fn user_interface(&mut self) -> &mut Self::UI {
        &mut self.ui
    }
}

/// trussed's own virt platform seeds its generator with a constant, so every
/// fresh card would generate the same keys. Seed ours from the OS instead.
fn os_rng() -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .expect("cannot read /dev/urandom");
    ChaCha8Rng::from_seed(seed)
}

// ---------------------------------------------------------------------------
// Backend dispatch

enum BackendIds {
    Auth,
    Staging,
    Rsa,
}

enum ExtensionIds {
    Auth,
    Chunked,
    WrapKeyToFile,
}

impl From<ExtensionIds> for u8 {
    fn from(id: ExtensionIds) -> u8 {
        match id {
            ExtensionIds::Auth => 0,
            ExtensionIds::Chunked => 1,
            ExtensionIds::WrapKeyToFile => 2,
        }
    }
}

impl TryFrom<u8> for ExtensionIds {
    type Error = Error;
    fn try_from(id: u8) -> Result<Self, Error> {
        match id {
            0 => Ok(Self::Auth),
            1 => Ok(Self::Chunked),
            2 => Ok(Self::WrapKeyToFile),
            _ => Err(Error::FunctionNotSupported),
        }
    }
}

#[derive(Default)]
struct BackendContexts {
    auth: AuthContext,
    staging: StagingContext,
}

struct Dispatcher {
    auth: AuthBackend,
    staging: StagingBackend,
}

impl Dispatcher {
    fn new() -> Self {
        Self {
            // PIN records live in internal storage (file-backed with --state).
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
            staging: StagingBackend::new(),
        }
    }
}

/// The backends the card's client may use, tried in this order.
const BACKENDS: &[BackendId<BackendIds>] = &[
    BackendId::Custom(BackendIds::Auth),
    BackendId::Custom(BackendIds::Staging),
    BackendId::Custom(BackendIds::Rsa),
    BackendId::Core,
];

impl ExtensionId<AuthExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Auth;
}
impl ExtensionId<ChunkedExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Chunked;
}
impl ExtensionId<WrapKeyToFileExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::WrapKeyToFile;
}

impl ExtensionDispatch for Dispatcher {
    type BackendId = BackendIds;
    type Context = BackendContexts;
    type ExtensionId = ExtensionIds;

    fn core_request<P: trussed::Platform>(
        &mut self,
        backend: &BackendIds,
        ctx: &mut Context<BackendContexts>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        let core: &mut CoreContext = &mut ctx.core;
        match backend {
            BackendIds::Auth => self
                .auth
                .request(core, &mut ctx.backends.auth, request, resources),
            BackendIds::Staging => {
                self.staging
                    .request(core, &mut ctx.backends.staging, request, resources)
            }
            BackendIds::Rsa => SoftwareRsa.request(core, &mut (), request, resources),
        }
    }

    fn extension_request<P: trussed::Platform>(
        &mut self,
        backend: &BackendIds,
        extension: &ExtensionIds,
        ctx: &mut Context<BackendContexts>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        match (backend, extension) {
            (BackendIds::Auth, ExtensionIds::Auth) => {
                ExtensionImpl::<AuthExtension>::extension_request_serialized(
                    &mut self.auth,
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::Chunked) => {
                ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::WrapKeyToFile) => {
                ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

type Client<'a> = ClientImplementation<'a, virt::Syscall, Dispatcher>;

// ---------------------------------------------------------------------------
// APDU transport between vpcd and opcard

/// Builds a T=1 ATR carrying opcard's historical bytes (Nitrokey Pro's).
fn atr() -> Vec<u8> {
    const HISTORICAL: [u8; 10] = [0x00, 0x31, 0xF5, 0x73, 0xC0, 0x01, 0x60, 0x00, 0x90, 0x00];
    // TS, T0 (TD1 follows, K historical bytes), TD1 (TD2 follows, T=0), TD2 (T=1)
    let mut atr = vec![0x3B, 0x80 | HISTORICAL.len() as u8, 0x80, 0x01];
    atr.extend_from_slice(&HISTORICAL);
    let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

struct Reader<'a> {
    card: opcard::Card<Client<'a>>,
    atr: Vec<u8>,
    /// Data of a chained command received so far (CLA bit 0x10).
    chain: Option<iso7816::Command<MAX_APDU>>,
    /// Response bytes still to be fetched with GET RESPONSE.
    pending: Vec<u8>,
    reply: heapless::Vec<u8, MAX_APDU>,
}

fn sw(status: iso7816::Status) -> [u8; 2] {
    u16::from(status).to_be_bytes()
}

impl Reader<'_> {
    fn clear(&mut self) {
        self.chain = None;
        self.pending.clear();
    }

    /// Returns up to `le` bytes of `pending`, with 61xx if more remain.
    fn respond_from_pending(&mut self, le: usize) -> Vec<u8> {
        let n = le.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..n).collect();
        match self.pending.len() {
            0 => out.extend_from_slice(&[0x90, 0x00]),
            rest => out.extend_from_slice(&[0x61, rest.min(255) as u8]),
        }
        out
    }

    fn run(&mut self, command: iso7816::command::CommandView<'_>) -> Vec<u8> {
        self.reply.clear();
        match self.card.handle(command, self.reply.as_mut_view()) {
            Ok(()) => {
                self.pending = self.reply.to_vec();
                self.respond_from_pending(command.expected())
            }
            Err(status) => sw(status).to_vec(),
        }
    }
}

impl vpicc::VSmartCard for Reader<'_> {
    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn power_on(&mut self) {
        self.clear();
    }

    fn power_off(&mut self) {
        self.clear();
        self.card.reset();
    }

    fn reset(&mut self) {
        self.clear();
        self.card.reset();
    }

    fn execute(&mut self, apdu: &[u8]) -> Vec<u8> {
        use iso7816::{command::CommandView, Instruction, Status};

        let command = match CommandView::try_from(apdu) {
            Ok(command) => command,
            Err(err) => {
                log::warn!("unparsable APDU {apdu:02x?}: {err:?}");
                self.clear();
                return sw(Status::WrongLength).to_vec();
            }
        };

        if command.instruction() == Instruction::GetResponse {
            if self.pending.is_empty() {
                return sw(Status::ConditionsOfUseNotSatisfied).to_vec();
            }
            return self.respond_from_pending(command.expected());
        }
        self.pending.clear();

        let not_last = command.class().chain().not_the_last();
        if not_last || self.chain.is_some() {
            let appended = match &mut self.chain {
                Some(chain) => chain.extend_from_command_view(command).is_ok(),
                None => match command.to_owned::<MAX_APDU>() {
                    Ok(first) => {
                        self.chain = Some(first);
                        true
                    }
                    Err(_) => false,
                },
            };
            if !appended {
                self.chain = None;
                return sw(Status::WrongLength).to_vec();
            }
            if not_last {
                return sw(Status::Success).to_vec();
            }
            let whole = self.chain.take().expect("chain present");
            return self.run(whole.as_view());
        }
        self.run(command)
    }
}

// ---------------------------------------------------------------------------

/// Attaches the card to vpcd and serves it; reconnects when pcscd restarts.
/// Returns only when vpcd stayed unreachable for `patience`.
fn serve(mut reader: Reader<'_>, addr: SocketAddr, patience: Duration) -> String {
    let mut unreachable_since: Option<Instant> = None;
    loop {
        match vpicc::connect_socket(addr) {
            Ok(connection) => {
                eprintln!("conclave-vcard: connected to vpcd on {addr}");
                unreachable_since = None;
                // `run` returns only when the connection breaks (pcscd stopped).
                let err = connection.run(&mut reader).unwrap_err();
                eprintln!("conclave-vcard: vpcd connection lost ({err})");
                reader.clear();
                reader.card.reset();
            }
            Err(err) => {
                let since = *unreachable_since.get_or_insert_with(|| {
                    eprintln!("conclave-vcard: waiting for vpcd on {addr} ({err})");
                    Instant::now()
                });
                if !patience.is_zero() && since.elapsed() >= patience {
                    return format!("vpcd on {addr} unreachable for {patience:?}: {err}");
                }
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("conclave-vcard: {msg}");
            return ExitCode::from(2);
        }
    };
    if args.verbose {
        log::set_logger(&LOGGER).expect("logger set once");
        log::set_max_level(log::LevelFilter::Info);
    }

    let mut store = match &args.state {
        Some(dir) => {
            if let Err(err) = std::fs::create_dir_all(dir) {
                eprintln!("conclave-vcard: cannot create {}: {err}", dir.display());
                return ExitCode::FAILURE;
            }
            StoreConfig {
                internal: StorageConfig::filesystem(dir.join("internal.bin")),
                external: StorageConfig::filesystem(dir.join("external.bin")),
                volatile: StorageConfig::ram(),
            }
        }
        None => StoreConfig::ram(),
    };

    let mut options = opcard::Options::default();
    options.serial = args.serial;
    options.manufacturer = args.manufacturer;
    // Only what this platform's backends implement (opcard's defaults also list
    // secp256k1, which Trussed's core backend does not provide).
    use opcard::AllowedAlgorithms as A;
    let common = A::P_256 | A::P_384 | A::P_521 | A::X_25519 | A::ED_25519 | A::RSA_2048;
    options.allowed_generation = common;
    options.allowed_imports = common | A::RSA_3072 | A::RSA_4096;
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), args.port);

    eprintln!(
        "conclave-vcard: card {:02X}{:02X}:{:02X}{:02X}{:02X}{:02X}, state {}, vpcd port {}",
        args.manufacturer[0],
        args.manufacturer[1],
        args.serial[0],
        args.serial[1],
        args.serial[2],
        args.serial[3],
        args.state
            .as_ref()
            .map_or_else(|| "in RAM".to_owned(), |d| d.display().to_string()),
        args.port
    );

    let failure = store.with_store(|store| {
        let platform = Platform {
            rng: os_rng(),
            store,
            ui: virt::UserInterface::new(),
        };
        let channel = TrussedChannel::new();
        let (requester, responder) = channel.split().expect("fresh channel");
        let mut runner = Runner::new();
        runner.add_endpoint(responder, "opcard", BACKENDS);
        let client: Client<'_> = ClientImplementation::new(requester, runner.syscall(), None);
        runner.run(platform, Dispatcher::new(), move || {
            let reader = Reader {
                card: opcard::Card::new(client, options),
                atr: atr(),
                chain: None,
                pending: Vec::new(),
                reply: heapless::Vec::new(),
            };
            serve(reader, addr, args.reconnect)
        })
    });
    eprintln!("conclave-vcard: {failure}");
    ExitCode::FAILURE
}
