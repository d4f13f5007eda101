//! The desktop app under Xvfb, driven over WebDriver: `tauri-driver` (which
//! starts `WebKitWebDriver` and the app) and a small W3C WebDriver client of
//! our own over plain HTTP/1.1 on loopback.
//!
//! One app at a time: hold [`Gui::lock`]. Each [`Gui`] has its own X
//! display, tauri-driver and list folder (`CONCLAVE_HOME`), and is torn down
//! when dropped. Screenshots go to `tests/artifacts/gui/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

static GUI: Mutex<()> = Mutex::new(());

/// The app's binary: `$CONCLAVE_APP_BIN`, else `target/debug/conclave-app`.
pub fn app_bin() -> PathBuf {
    std::env::var_os("CONCLAVE_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/debug/conclave-app"))
}

/// `tauri-driver`: `$TAURI_DRIVER`, else on `PATH`, else `~/.cargo/bin`.
fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    if crate::find_program("tauri-driver") {
        return PathBuf::from("tauri-driver");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cargo/bin/tauri-driver")
}

/// A running app and a WebDriver session on it.
pub struct Gui {
    /// The list folder the app uses.
    pub home: tempfile::TempDir,
    xvfb: Child,
    display: u32,
    driver: Child,
    port: u16,
    session: String,
}

impl Gui {
    /// Serialises the GUI tests.
    pub fn lock() -> MutexGuard<'static, ()> {
        GUI.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts Xvfb, tauri-driver and the app with an empty list folder.
    pub fn start() -> Gui {
        let home = tempfile::Builder::new()
            .prefix("ctk-app")
            .tempdir_in("/tmp")
            .expect("app home");
        Gui::start_in(home)
    }

    /// Like [`Gui::start`], with a list folder prepared by the test.
    pub fn start_in(home: tempfile::TempDir) -> Gui {
        let display = free_display();
        let xvfb = Command::new("Xvfb")
            .arg(format!(":{display}"))
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (Debian package xvfb)");
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
        assert!(
            crate::wait_until(10, || socket.exists()),
            "Xvfb :{display} did not start"
        );
        let port = free_port();
        let native = free_port();
        let driver = Command::new(tauri_driver())
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("DISPLAY", format!(":{display}"))
            .env("CONCLAVE_HOME", home.path())
            .env("NO_AT_BRIDGE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tauri-driver (cargo install tauri-driver --locked)");
        assert!(
            crate::wait_until(20, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "tauri-driver did not listen"
        );
        let mut gui = Gui {
            home,
            xvfb,
            display,
            driver,
            port,
            session: String::new(),
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": app_bin()}
        }}});
        // tauri-driver listens before WebKitWebDriver behind it is ready.
        let deadline = Instant::now() + Duration::from_secs(30);
        let v = loop {
            match gui.try_call("POST", "/session", Some(caps.clone())) {
                Some((status, v)) if status.contains(" 200") => break v,
                other if Instant::now() > deadline => panic!("no WebDriver session: {other:?}"),
                _ => std::thread::sleep(Duration::from_millis(250)),
            }
        };
        gui.session = v["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        gui
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        // tauri-driver now and then closes a connection without an answer;
        // ask again.
        let mut answer = None;
        for _ in 0..5 {
            answer = self.try_call(method, path, body.clone());
            if answer.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let (status, v) = answer.unwrap_or_else(|| panic!("WebDriver {method} {path}: no answer"));
        assert!(
            status.contains(" 200"),
            "WebDriver {method} {path}: {} {v}",
            status.trim()
        );
        v["value"].clone()
    }

    /// One request: the status line and the JSON body, or `None` when the
    /// connection closed without an answer.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Option<(String, Value)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).ok()?;
        if status.is_empty() {
            return None;
        }
        let mut length = None;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("a header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut data = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).expect("a chunk size");
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).expect("a chunk");
                data.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = length {
            data.resize(n, 0);
            r.read_exact(&mut data).expect("the body");
        } else {
            r.read_to_end(&mut data).expect("the body");
        }
        let v: Value = serde_json::from_slice(&data).unwrap_or(Value::Null);
        Some((status, v))
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Runs `script` in the page and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The first element matching `css`, if there is one now.
    pub fn find(&self, css: &str) -> Option<String> {
        let v = self.js(
            "return document.querySelector(arguments[0]) !== null",
            json!([css]),
        );
        if v != Value::Bool(true) {
            return None;
        }
        // The page may redraw in between: then there is nothing (yet).
        let (status, v) = self.try_call(
            "POST",
            &self.at("/element"),
            Some(json!({"using": "css selector", "value": css})),
        )?;
        if !status.contains(" 200") {
            return None;
        }
        v["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Waits up to `secs` for an element matching `css`.
    pub fn wait(&self, css: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            if Instant::now() > deadline {
                let page = self.js("return document.body.innerText", json!([]));
                panic!("no {css} after {secs} s; the page says:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the page's text contains `needle`.
    pub fn wait_text(&self, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.text("body");
            if text.contains(needle) {
                return;
            }
            if Instant::now() > deadline {
                panic!("{needle:?} did not appear in {secs} s; the page says:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element matching `css` (waiting for it).
    pub fn click(&self, css: &str) {
        // The page may redraw between finding and clicking: find it again.
        for _ in 0..10 {
            let e = self.wait(css, 20);
            let url = self.at(&format!("/element/{e}/click"));
            match self.try_call("POST", &url, Some(json!({}))) {
                Some((status, _)) if status.contains(" 200") => return,
                // A stale element, or tauri-driver dropped the connection.
                None => std::thread::sleep(Duration::from_millis(200)),
                Some((_, v)) if v.to_string().contains("stale element") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => panic!("WebDriver click on {css}: {other:?}"),
            }
        }
        panic!("{css} kept going stale");
    }

    /// Types `text` into the input matching `css`, replacing what was there.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.wait(css, 20);
        self.call(
            "POST",
            &self.at(&format!("/element/{e}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.at(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        );
    }

    /// Chooses `value` in the select matching `css`.
    pub fn select(&self, css: &str, value: &str) {
        self.wait(css, 20);
        self.js(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; s.dispatchEvent(new Event('change'));",
            json!([css, value]),
        );
    }

    /// The visible text of the element matching `css`.
    /// Read in the page in one step, so a redraw between finding the
    /// element and reading it cannot leave a stale reference.
    pub fn text(&self, css: &str) -> String {
        for _ in 0..5 {
            self.wait(css, 20);
            let v = self.js(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                json!([css]),
            );
            if let Some(t) = v.as_str() {
                return t.to_string();
            }
        }
        panic!("{css} keeps disappearing from the page")
    }

    /// Saves a screenshot of the window as `tests/artifacts/gui/NAME.png`,
    /// after letting the page paint.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        self.call(
            "POST",
            &self.at("/execute/async"),
            Some(json!({
                "script": "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": []
            })),
        );
        let v = self.call("GET", &self.at("/screenshot"), None);
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        let dir = crate::workspace_root().join("tests/artifacts/gui");
        std::fs::create_dir_all(&dir).expect("mkdir artifacts");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// The list folder.
    pub fn home(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for Gui {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let s = self.session.clone();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &format!("/session/{s}"), None)
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // SIGTERM, so Xvfb removes its lock file; and remove what a killed
        // one leaves, or the displays run out over many runs.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.xvfb.id().to_string())
            .status();
        if !crate::wait_until(5, || matches!(self.xvfb.try_wait(), Ok(Some(_)))) {
            let _ = self.xvfb.kill();
            let _ = self.xvfb.wait();
        }
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.display));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.display));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn free_display() -> u32 {
    (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display")
}
