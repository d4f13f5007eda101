//! Locating and running the external programs the testkit drives.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Returns the full path of `name` if an executable file of that name is
/// found in one of the directories of `$PATH` (or if `name` itself is a
/// path to an executable file).
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_exe(p))
}

/// True if an executable called `name` is on `$PATH`.
pub fn find_program(name: &str) -> bool {
    which(name).is_some()
}

/// Panics (does *not* skip) with a clear message naming every program of
/// `names` that is not installed.  CI installs GnuPG, RNP and Sequoia `sq`,
/// so a missing program is a broken environment, not a reason to skip.
///
/// ```no_run
/// conclave_tests::require_programs(&["gpg", "gpgconf", "rnp", "rnpkeys", "sq"]);
/// ```
pub fn require_programs(names: &[&str]) {
    let missing: Vec<&str> = names.iter().copied().filter(|n| !find_program(n)).collect();
    if !missing.is_empty() {
        panic!(
            "required program(s) not found on PATH: {}.\n\
             The Conclave end-to-end tests drive the real GnuPG (gpg, gpgconf), \
             RNP (rnp, rnpkeys) and Sequoia sq 0.27; install them \
             (Debian/Ubuntu: apt-get install gnupg rnp sq). PATH={}",
            missing.join(", "),
            std::env::var("PATH").unwrap_or_default()
        );
    }
}

/// Panics unless every program the four engines need is installed, and
/// OpenPGP.js's package (`npm ci` in `tests/testbed/openpgpjs`).
pub fn require_all_engines() {
    require_programs(&["gpg", "gpgconf", "rnp", "rnpkeys", "sq", "node"]);
    let modules = crate::subscriber::openpgpjs_script().with_file_name("node_modules/openpgp");
    assert!(
        modules.exists(),
        "OpenPGP.js is not installed: run `npm ci` in {} (make test does)",
        modules
            .parent()
            .and_then(|p| p.parent())
            .unwrap_or(&modules)
            .display()
    );
}

/// Renders a command line for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(' ') {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs `cmd` to completion, feeding it `stdin` (or /dev/null) and capturing
/// stdout and stderr.  Errors only if the program cannot be started; the
/// exit status is left to the caller.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Output, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(cmd)))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            Some(std::thread::spawn(move || {
                // The program may legitimately stop reading early; ignore EPIPE.
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `{}`: {e}", describe(cmd)))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(out)
}

/// Runs `cmd` and returns its output if it exited with status 0, else an
/// error message containing the command line, exit status, stdout and stderr.
pub fn run_checked(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Output, String> {
    let out = run(cmd, stdin)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(failure_message(cmd, &out))
    }
}

/// Formats a failed run for an error message.
pub fn failure_message(cmd: &Command, out: &Output) -> String {
    format!(
        "`{}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Convenience: a `Command` for `program` with `args`.
pub fn command<I, S>(program: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(program);
    c.args(args);
    c
}
