//! A TCP proxy on loopback that cuts connections in the middle of what they
//! carry, as a flaky network or a server that dies does. It forwards bytes
//! as they are (TLS stays end to end between Conclave and the real server)
//! and, for a share of the connections, closes both sides after a random
//! number of bytes in either direction: in the middle of a command, a
//! reply, or a message being submitted.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A small deterministic random source (xorshift64*), for reproducible runs.
#[derive(Debug)]
pub struct Rng(AtomicU64);

impl Rng {
    /// A source from `seed` (0 is replaced by a constant).
    pub fn new(seed: u64) -> Rng {
        Rng(AtomicU64::new(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        }))
    }

    /// The seed of a run: `CONCLAVE_CHAOS_SEED` if set, else the time.
    pub fn seed_from_env() -> u64 {
        std::env::var("CONCLAVE_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
    }

    /// The next number.
    pub fn next(&self) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    pub fn range(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next() % (hi - lo)
    }

    /// True with probability `percent` in 100.
    pub fn chance(&self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

/// A running proxy; it stops when dropped.
pub struct CutProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    cutting: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    turns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    /// Forwards a free port of 127.0.0.1 to `target`. Each connection is cut,
    /// with probability `percent` in 100, once a random number of bytes, up
    /// to `max_bytes`, has passed in either direction.
    pub fn start(target: SocketAddr, percent: u64, max_bytes: u64, rng: Arc<Rng>) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("proxy address").port();
        let cutting = Arc::new(AtomicBool::new(true));
        let cuts = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let turns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let proxy = CutProxy {
            port,
            cutting: cutting.clone(),
            cuts: cuts.clone(),
            connections: connections.clone(),
            turns: turns.clone(),
            stop: stop.clone(),
        };
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                connections.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nonblocking(false);
                let budget = if cutting.load(Ordering::Relaxed) && rng.chance(percent) {
                    rng.range(1, max_bytes.max(2))
                } else {
                    u64::MAX
                };
                forward(client, server, budget, cuts.clone(), turns.clone());
            }
        });
        proxy
    }

    /// Stops cutting: later connections are forwarded whole.
    pub fn stop_cutting(&self) {
        self.cutting.store(false, Ordering::Relaxed);
    }

    /// How many connections were cut so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::Relaxed)
    }

    /// How many times a client spoke after the server had: its round trips,
    /// over every connection so far. A client that waits for each reply
    /// before its next command takes one turn per command; one that
    /// pipelines sends several commands in one turn.
    pub fn turns(&self) -> usize {
        self.turns.load(Ordering::Relaxed)
    }

    /// How many connections went through so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies both ways until either side closes, or until `budget` bytes have
/// passed in all, when both sides are closed at once.
fn forward(
    client: TcpStream,
    server: TcpStream,
    budget: u64,
    cuts: Arc<AtomicUsize>,
    turns: Arc<AtomicUsize>,
) {
    let passed = Arc::new(AtomicU64::new(0));
    // Who spoke last on this connection: true for the server.
    let server_spoke = Arc::new(AtomicBool::new(true));
    let cut = Arc::new(AtomicBool::new(false));
    let pairs = [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ];
    for (from_server, (from, to)) in [false, true].into_iter().zip(pairs) {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            continue;
        };
        let (passed, cut, cuts) = (passed.clone(), cut.clone(), cuts.clone());
        let (turns, server_spoke) = (turns.clone(), server_spoke.clone());
        let (a, b) = (client.try_clone(), server.try_clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if server_spoke.swap(from_server, Ordering::SeqCst) && !from_server {
                    turns.fetch_add(1, Ordering::Relaxed);
                }
                let before = passed.fetch_add(n as u64, Ordering::Relaxed);
                let allowed = budget.saturating_sub(before).min(n as u64) as usize;
                if to
                    .write_all(buf.get(..allowed).unwrap_or_default())
                    .is_err()
                {
                    break;
                }
                if allowed < n {
                    if !cut.swap(true, Ordering::Relaxed) {
                        cuts.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
            }
            // Either side gone (or the cut): close both.
            for s in [a, b].into_iter().flatten() {
                let _ = s.shutdown(Shutdown::Both);
            }
        });
    }
}
