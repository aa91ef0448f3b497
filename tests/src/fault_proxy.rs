//! A TCP forwarder that makes one link slow, jittery or dead, changed at run time: what
//! `tc netem` would do if the kernel here had it (issue #12). [`netns::Lab::proxy_links`]
//! puts one in front of every directed link of a lab.
//!
//! Each accepted connection gets its own connection to the upstream address and two pumps,
//! one per direction. A pump reads what arrives and hands each chunk on after `delay ±
//! jitter` (drawn per chunk). Within one connection bytes keep their order (TCP would not
//! deliver them otherwise: a chunk never overtakes the one before it), but connections are
//! independent, so messages on different connections overtake each other (reordering
//! between connections, as between a node's channel and its failure detector's probe).
//!
//! [`FaultProxy::cut`] makes the link a black hole: bytes are read and thrown away, new
//! connections are accepted and never answered, as when packets are dropped (no reset).
//! [`FaultProxy::heal`] forwards again; the connections that lived through the cut are
//! closed (their bytes were lost, so TCP could not have carried them on either), new ones
//! work. Packet loss is not this proxy's: [`netns::Lab::loss`] drops packets with nftables.
//!
//! [`netns::Lab::proxy_links`]: crate::netns::Lab::proxy_links
//! [`netns::Lab::loss`]: crate::netns::Lab::loss
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What the link does now; read by every pump for every chunk.
#[derive(Default)]
struct Faults {
    delay_us: AtomicU64,
    jitter_us: AtomicU64,
    cut: AtomicBool,
    /// Bumped by every heal: connections older than the current epoch are closed.
    epoch: AtomicU64,
    stop: AtomicBool,
    /// Connections accepted (for tests of the proxy itself).
    accepted: AtomicU64,
}

/// A running proxy; stops (and closes its connections) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    faults: Arc<Faults>,
}

impl FaultProxy {
    /// Listens on `listen` (port 0: any) and forwards every connection to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind(listen)
            .unwrap_or_else(|e| panic!("fault proxy: cannot listen on {listen}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fault proxy on {listen}: {e}"));
        // Non-blocking accept with a short sleep, so that drop can stop the thread.
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("fault proxy on {addr}: {e}"));
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        thread::Builder::new()
            .name(format!("proxy-{addr}"))
            .spawn(move || accept_loop(listener, upstream, f))
            .unwrap_or_else(|e| panic!("fault proxy thread: {e}"));
        FaultProxy {
            addr,
            upstream,
            faults,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Every chunk, each way, is handed on after `delay ± jitter` (uniform).
    pub fn set_delay(&self, delay: Duration, jitter: Duration) {
        assert!(jitter <= delay, "jitter larger than the delay");
        self.faults
            .delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
        self.faults
            .jitter_us
            .store(jitter.as_micros() as u64, Ordering::Relaxed);
    }

    /// Black-holes the link (see the module doc).
    pub fn cut(&self) {
        self.faults.cut.store(true, Ordering::SeqCst);
    }

    /// Forwards again; connections that lived through the cut are closed.
    pub fn heal(&self) {
        self.faults.epoch.fetch_add(1, Ordering::SeqCst);
        self.faults.cut.store(false, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.faults.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.faults.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, faults: Arc<Faults>) {
    let mut seed = u64::from(upstream.port()) | 1;
    while !faults.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                faults.accepted.fetch_add(1, Ordering::Relaxed);
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let f = faults.clone();
                let _ = thread::Builder::new()
                    .name("proxy-conn".into())
                    .spawn(move || connection(client, upstream, f, seed));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// One proxied connection: connect upstream (unless cut), then pump both ways.
fn connection(client: TcpStream, upstream: SocketAddr, faults: Arc<Faults>, seed: u64) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let epoch = faults.epoch.load(Ordering::SeqCst);
    // A cut link answers nothing: hold the client until the heal closes it.
    while faults.cut.load(Ordering::SeqCst) {
        if faults.stop.load(Ordering::SeqCst) || faults.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
        return; // dropping the client closes it, as a refused connect would
    };
    let _ = server.set_nodelay(true);
    let epoch = faults.epoch.load(Ordering::SeqCst);
    let (c2, s2) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        _ => return,
    };
    let f = faults.clone();
    let up = thread::Builder::new()
        .name("proxy-up".into())
        .spawn(move || pump(client, server, f, epoch, seed));
    pump(s2, c2, faults, epoch, seed ^ 0x9e37_79b9_7f4a_7c15);
    if let Ok(h) = up {
        let _ = h.join();
    }
}

/// Reads from `from`, writes to `to` after the delay; ends (closing both) at EOF, an error,
/// a heal after a cut, or the proxy's stop. The end reaches `to` after the same delay as the
/// bytes before it (a dead peer's close is not faster than its data).
fn pump(mut from: TcpStream, to: TcpStream, faults: Arc<Faults>, epoch: u64, seed: u64) {
    // An empty chunk marks the end of the stream.
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let f = faults.clone();
    let mut out = to;
    let writer = thread::Builder::new()
        .name("proxy-write".into())
        .spawn(move || {
            for (due, chunk) in rx {
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                if chunk.is_empty()
                    || f.stop.load(Ordering::SeqCst)
                    || out.write_all(&chunk).is_err()
                {
                    break;
                }
            }
            let _ = out.shutdown(Shutdown::Both);
        });
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut rng = seed;
    let mut last_due = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if faults.stop.load(Ordering::SeqCst) || faults.epoch.load(Ordering::SeqCst) != epoch {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => 0,
        };
        if n > 0 && faults.cut.load(Ordering::SeqCst) {
            continue; // the black hole
        }
        // In order within the connection: never before the chunk ahead of it.
        let due = (Instant::now() + delay_of(&faults, &mut rng)).max(last_due);
        last_due = due;
        if tx.send((due, buf[..n].to_vec())).is_err() || n == 0 {
            break;
        }
    }
    drop(tx);
    if let Ok(h) = writer {
        let _ = h.join();
    }
    let _ = from.shutdown(Shutdown::Both);
}

/// `delay ± jitter` (uniform) for the next chunk; `rng` is a xorshift state.
fn delay_of(faults: &Faults, rng: &mut u64) -> Duration {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let delay = faults.delay_us.load(Ordering::Relaxed);
    let jitter = faults.jitter_us.load(Ordering::Relaxed);
    let spread = if jitter == 0 {
        0
    } else {
        *rng % (2 * jitter + 1)
    };
    Duration::from_micros((delay + spread).saturating_sub(jitter))
}
