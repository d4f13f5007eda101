//! Running the real `conclave` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::programs::{describe, run};
use crate::subscriber::Subscriber;

/// The passphrase written to [`Conclave::passphrase_file`] (no trailing
/// newline).
pub const TEST_PASSPHRASE: &str = "conclave testkit passphrase";

/// Path of the `conclave` binary: `$CONCLAVE_BIN` if set, else
/// `$CARGO_TARGET_DIR/debug/conclave` if that variable is set at run time,
/// else `<workspace>/target/debug/conclave` (workspace =
/// `CARGO_MANIFEST_DIR/..`).  Panics with a hint if the file does not exist.
pub fn conclave_bin() -> PathBuf {
    let p = if let Some(p) = std::env::var_os("CONCLAVE_BIN") {
        PathBuf::from(p)
    } else if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        let t = if t.is_relative() {
            workspace_root().join(t)
        } else {
            t
        };
        t.join("debug").join("conclave")
    } else {
        workspace_root()
            .join("target")
            .join("debug")
            .join("conclave")
    };
    if !p.is_file() {
        panic!(
            "conclave binary not found at {} — build it first with \
             `cargo build -p conclave-cli`, or point CONCLAVE_BIN at it",
            p.display()
        );
    }
    p
}

/// The cargo workspace root (`CARGO_MANIFEST_DIR/..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// One Conclave list instance with its own state directory.
pub struct Conclave {
    /// The `--home` directory (created empty).
    pub home: TempDir,
    /// A file holding [`TEST_PASSPHRASE`], passed via
    /// `CONCLAVE_PASSPHRASE_FILE`.
    pub passphrase_file: PathBuf,
    /// Directory for the passphrase file, inputs and exports (outside
    /// `home`).
    pub aux: TempDir,
    bin: PathBuf,
}

impl std::fmt::Debug for Conclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conclave")
            .field("home", &self.home.path())
            .field("bin", &self.bin)
            .finish()
    }
}

impl Default for Conclave {
    fn default() -> Self {
        Self::new()
    }
}

impl Conclave {
    /// A fresh, not yet initialised instance.  Panics if the binary is
    /// missing.
    pub fn new() -> Conclave {
        let bin = conclave_bin();
        let home = tempfile::Builder::new()
            .prefix("ctk-home")
            .tempdir_in("/tmp")
            .expect("create conclave home");
        let aux = tempfile::Builder::new()
            .prefix("ctk-aux")
            .tempdir_in("/tmp")
            .expect("create aux dir");
        let passphrase_file = aux.path().join("passphrase");
        write_private(&passphrase_file, TEST_PASSPHRASE.as_bytes());
        Conclave {
            home,
            passphrase_file,
            aux,
            bin,
        }
    }

    /// A `Command` for `conclave --home HOME` with
    /// `CONCLAVE_PASSPHRASE_FILE` set; add the subcommand and arguments.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("CONCLAVE_PASSPHRASE_FILE", &self.passphrase_file)
            .arg("--home")
            .arg(self.home.path());
        c
    }

    /// Runs `conclave --home HOME ARGS…` (stdin = /dev/null).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    /// Runs with `stdin` fed to the process (e.g. for `process -`).
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut c = self.cmd();
        c.args(args);
        run(&mut c, stdin).unwrap_or_else(|e| panic!("{e}"))
    }

    fn describe(&self, args: &[&str]) -> String {
        let mut c = self.cmd();
        c.args(args);
        describe(&c)
    }

    /// Runs and asserts exit status 0; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        self.check_ok(args, out)
    }

    /// Like [`Self::run_ok`] with `stdin`.
    pub fn run_ok_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.run_with_stdin(args, Some(stdin));
        self.check_ok(args, out)
    }

    fn check_ok(&self, args: &[&str], out: Output) -> String {
        if !out.status.success() {
            panic!(
                "`{}` failed ({}), expected success\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.describe(args),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts a non-zero exit status; returns (exit code, stderr).
    /// The code is -1 if the process was killed by a signal.
    pub fn run_err(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        if out.status.success() {
            panic!(
                "`{}` succeeded, expected failure\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.describe(args),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    // -- conveniences over the CLI contract ---------------------------------

    /// `init --address ADDR --name NAME --generate-key --passphrase-file F`.
    pub fn init(&self, address: &str, name: &str) -> String {
        let pf = self.passphrase_file.to_string_lossy().into_owned();
        self.run_ok(&[
            "init",
            "--address",
            address,
            "--name",
            name,
            "--generate-key",
            "--passphrase-file",
            &pf,
        ])
    }

    /// `init … --import-key FILE` with an armored secret key.
    pub fn init_import(&self, address: &str, name: &str, secret_key: &[u8]) -> String {
        let kf = self.write_aux("list-key.asc", secret_key);
        let pf = self.passphrase_file.to_string_lossy().into_owned();
        self.run_ok(&[
            "init",
            "--address",
            address,
            "--name",
            name,
            "--import-key",
            &kf.to_string_lossy(),
            "--passphrase-file",
            &pf,
        ])
    }

    /// `key export`: the list's armored public key.
    pub fn list_cert(&self) -> Vec<u8> {
        self.run_ok(&["key", "export"]).into_bytes()
    }

    /// `subscriber add ADDR --key FILE` for a testkit subscriber.
    pub fn add_subscriber(&self, s: &Subscriber) -> String {
        let f = s.public_key_file();
        self.run_ok(&[
            "subscriber",
            "add",
            s.address(),
            "--key",
            &f.to_string_lossy(),
        ])
    }

    /// `conclave run` in the background, its output discarded: the relay,
    /// until it is killed.
    pub fn spawn_relay(&self) -> std::process::Child {
        self.cmd()
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start conclave run")
    }

    /// A co-owner's copy of the list's folder (key, subscribers, settings),
    /// in a new temporary folder, run with the same passphrase file.
    pub fn copy_home(&self) -> TempDir {
        let home = tempfile::Builder::new()
            .prefix("ctk-home2")
            .tempdir_in("/tmp")
            .unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.home.path().display()))
            .arg(home.path())
            .status()
            .unwrap();
        assert!(status.success(), "copying {}", self.home.path().display());
        home
    }

    /// `config set KEY VALUE`.
    pub fn config_set(&self, key: &str, value: &str) -> String {
        self.run_ok(&["config", "set", key, value])
    }

    /// Writes `data` to a fresh file in the aux directory.
    pub fn write_aux(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.aux.path().join(name);
        write_private(&p, data);
        p
    }

    /// `process FILE` for one message (written to the aux dir); returns the
    /// trimmed result line (`distributed to N`, `held: …`, …).
    pub fn process(&self, eml: &[u8]) -> String {
        let n = std::fs::read_dir(self.aux.path())
            .map(|d| d.count())
            .unwrap_or(0);
        let f = self.write_aux(&format!("in-{n}.eml"), eml);
        self.run_ok(&["process", &f.to_string_lossy()])
            .trim()
            .to_string()
    }

    /// `outbox export OUTDIR` into a fresh directory; returns the .eml files
    /// keyed by file stem (the subscriber address).
    pub fn export_outbox(&self) -> BTreeMap<String, Vec<u8>> {
        let n = std::fs::read_dir(self.aux.path())
            .map(|d| d.count())
            .unwrap_or(0);
        let dir = self.aux.path().join(format!("out-{n}"));
        std::fs::create_dir(&dir).expect("create outbox dir");
        self.run_ok(&["outbox", "export", &dir.to_string_lossy()]);
        read_eml_dir(&dir)
    }
}

impl Conclave {
    /// [`Conclave::export_outbox`] without the list's automatic replies
    /// (notices, answers to requests): the copies of posts alone.
    pub fn export_copies(&self) -> BTreeMap<String, Vec<u8>> {
        self.export_outbox()
            .into_iter()
            .filter(|(_, eml)| crate::mime::header(eml, "Auto-Submitted").is_none())
            .collect()
    }
}

/// Reads every `*.eml` in `dir`, keyed by file stem.
pub fn read_eml_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.extension().and_then(|x| x.to_str()) == Some("eml") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(stem, std::fs::read(&p).expect("read .eml"));
        }
    }
    out
}

/// Writes `data` to a new file of mode 0600, as the owner keeps a
/// passphrase, PIN or password file (Conclave refuses looser ones).
fn write_private(path: &std::path::Path, data: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
