//! Balancer overhead: wrk req/s through the balancer vs straight to one backend.
//!
//! `cargo run --release -p shoal-balancer --example bench -- [SECONDS] [CONNECTIONS] [WORK_US]`
//!
//! Starts, in this process, one fake node (answers `/app/counter`-sized bodies; WORK_US
//! microseconds of CPU per request emulate a real node's work, 0 = none) and a balancer in
//! front of it, then runs `wrk` 3 times against each, alternating, and prints the medians
//! and their ratio. If `haproxy` is on PATH, the same is measured through HAProxy (one
//! server, no checks) as a reference for what a mature proxy costs here. Requests carry a sticky `JSESSIONID=<id>.node1` cookie so the routed
//! path is what is measured. Needs `wrk` on PATH (apt-get install wrk).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use shoal_balancer::{Backend, Balancer, BalancerConfig};
use tokio::net::TcpListener;

const ROUNDS: usize = 3;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |a| {
            a.parse()
                .map_err(|e| format!("argument {} ({a:?}): {e}", i + 1))
        })
    };
    let (seconds, connections, work_us) = (arg(0, 3)?, arg(1, 32)?, arg(2, 0)?);
    if Command::new("wrk").arg("--version").output().is_err() {
        return Err("wrk not found on PATH; install it with `apt-get install -y wrk`".into());
    }
    // The node gets a runtime of its own, and the balancer runs its proxy threads (config
    // `threads`, set by SHOAL_BENCH_LB_THREADS) as in the `shoal balancer` process.
    let lb_threads: usize = match std::env::var("SHOAL_BENCH_LB_THREADS") {
        Ok(v) => v
            .parse()
            .map_err(|e| format!("SHOAL_BENCH_LB_THREADS={v:?}: {e}"))?,
        Err(_) => 1,
    };
    let node_rt = runtime(1)?;
    let lb_rt = runtime(1)?;
    let direct = node_rt.block_on(start_node(work_us))?;
    let via = lb_rt.block_on(start_balancer(direct, lb_threads))?;
    let cookie = "Cookie: JSESSIONID=0123456789ABCDEF.node1";
    let haproxy = Haproxy::start(direct);
    let (mut direct_rps, mut via_rps, mut hap_rps) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        direct_rps.push(wrk(direct, seconds, connections, cookie)?);
        via_rps.push(wrk(via, seconds, connections, cookie)?);
        if let Some(h) = &haproxy {
            hap_rps.push(wrk(h.addr, seconds, connections, cookie)?);
        }
        let hap = hap_rps
            .last()
            .map_or(String::new(), |r| format!(", haproxy {r:.0} req/s"));
        let (d, v) = (direct_rps[round - 1], via_rps[round - 1]);
        println!("round {round}: direct {d:.0} req/s, balancer {v:.0} req/s{hap}");
    }
    let (d, v) = (median(&mut direct_rps), median(&mut via_rps));
    let hap = match hap_rps.is_empty() {
        true => " (haproxy not on PATH: no reference)".to_string(),
        false => {
            let h = median(&mut hap_rps);
            format!(", through haproxy {h:.0} req/s = {:.0}%", 100.0 * h / d)
        }
    };
    println!(
        "median of {ROUNDS} x {seconds}s, {connections} connections, backend work {work_us} us: \
         direct {d:.0} req/s, through balancer {v:.0} req/s = {:.0}%{hap}",
        100.0 * v / d
    );
    Ok(())
}

/// A reference HAProxy in front of the same node, killed (by its pid) when dropped.
struct Haproxy {
    child: std::process::Child,
    addr: SocketAddr,
    cfg: std::path::PathBuf,
}

impl Haproxy {
    fn start(node: SocketAddr) -> Option<Haproxy> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let cfg =
            std::env::temp_dir().join(format!("shoal-bench-haproxy-{}.cfg", std::process::id()));
        let text = format!(
            "global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  \
             timeout server 30s\nfrontend f\n  bind {addr}\n  default_backend b\nbackend b\n  \
             http-response set-header X-Shoal-Backend %s\n  server node1 {node}\n"
        );
        std::fs::write(&cfg, text).ok()?;
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let h = Haproxy { child, addr, cfg };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(h)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.cfg);
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Starts the fake node; returns its address.
async fn start_node(work_us: u64) -> Result<SocketAddr, String> {
    let node = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let node_addr = node.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = node.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(req, work_us));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(node_addr)
}

/// Starts the balancer in front of `node_addr`; returns its address.
async fn start_balancer(node_addr: SocketAddr, threads: usize) -> Result<SocketAddr, String> {
    let config = BalancerConfig {
        backends: vec![Backend::new("node1", node_addr.to_string())],
        threads,
        ..BalancerConfig::default()
    };
    let balancer = Balancer::new(config).map_err(|e| e.to_string())?;
    let lb = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let lb_addr = lb.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { balancer.serve(lb, std::future::pending()).await });
    Ok(lb_addr)
}

async fn answer(
    _req: Request<hyper::body::Incoming>,
    work_us: u64,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if work_us > 0 {
        // Busy CPU, like a node running the app, rather than a sleep that costs nothing.
        let until = Instant::now() + Duration::from_micros(work_us);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
    let body = "counter=1 session=0123456789ABCDEF.node1 node=node1";
    Ok(Response::new(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))))
}

/// Runs wrk once and returns its Requests/sec.
fn wrk(addr: SocketAddr, seconds: u64, connections: u64, header: &str) -> Result<f64, String> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-H",
            header,
        ])
        .arg(format!("http://{addr}/app/counter"))
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(format!("wrk saw errors against {addr}:\n{text}"));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}
