//! A load generator for read-your-writes (issue 13): `conns` tasks, each with its own session
//! and a keep-alive connection to every node, send `GET <path>` as fast as answers come,
//! each to the session's node (`sticky`, by the route in its cookie) or to a random node
//! (`random`), carrying the `SHOALV` version-token cookie as a browser would. Prints one
//! `RESULT` line: requests per second, latency percentiles, non-200 answers. wrk cannot do
//! this (its threads cannot share sessions, so a session cannot move between nodes).
//!
//! No dependencies (one blocking thread per connection), so it builds with plain rustc:
//!
//! ```text
//! rustc -O --edition 2021 scripts/ryw-load.rs -o target/ryw-load
//! target/ryw-load node1=127.0.0.1:8081,node2=127.0.0.1:8082,node3=127.0.0.1:8083 \
//!     random /app/counter 32 10 3
//! ```
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Args {
    nodes: Vec<(String, String)>,
    random: bool,
    path: String,
    conns: usize,
    secs: u64,
    warmup: u64,
}

fn args() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: ryw_load name=host:port,... random|sticky PATH CONNS SECS WARMUP";
    if a.len() != 6 {
        return Err(usage.into());
    }
    let nodes = a[0]
        .split(',')
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("bad node {kv}: {usage}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let num = |s: &str| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    Ok(Args {
        nodes,
        random: match a[1].as_str() {
            "random" => true,
            "sticky" => false,
            o => return Err(format!("{o}: {usage}")),
        },
        path: a[2].clone(),
        conns: num(&a[3])? as usize,
        secs: num(&a[4])?,
        warmup: num(&a[5])?,
    })
}

/// One keep-alive HTTP/1.1 exchange; returns the status and the response head.
fn exchange(s: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> Result<(u16, String), String> {
    s.write_all(req).map_err(|e| e.to_string())?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed in body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, head))
}

/// `name=value` of the first `Set-Cookie` for `name` in `head`.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if !k.eq_ignore_ascii_case("set-cookie") {
            return None;
        }
        let pair = v.trim().split(';').next()?.trim();
        pair.starts_with(&format!("{name}=")).then(|| pair.to_owned())
    })
}

struct Tally {
    lat_us: Vec<u32>,
    bad: u64,
}

fn worker(seed: u64, a: &Args, measure_from: Instant, until: Instant) -> Tally {
    let mut rng = seed.max(1);
    let mut conns: Vec<Option<TcpStream>> = a.nodes.iter().map(|_| None).collect();
    let (mut session, mut token): (Option<String>, Option<String>) = (None, None);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut t = Tally {
        lat_us: Vec::new(),
        bad: 0,
    };
    while Instant::now() < until {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let route = session.as_deref().and_then(|c| c.rsplit_once('.')).map(|(_, r)| r);
        let n = match (a.random, route) {
            (false, Some(r)) => a.nodes.iter().position(|(name, _)| name == r),
            _ => None,
        }
        .unwrap_or((rng % a.nodes.len() as u64) as usize);
        let cookies: Vec<&str> = [session.as_deref(), token.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let cookie = if cookies.is_empty() {
            String::new()
        } else {
            format!("Cookie: {}\r\n", cookies.join("; "))
        };
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n{cookie}\r\n",
            a.path, a.nodes[n].1
        );
        if conns[n].is_none() {
            conns[n] = TcpStream::connect(&a.nodes[n].1).ok();
            if let Some(c) = &conns[n] {
                let _ = c.set_nodelay(true);
            }
        }
        let Some(stream) = conns[n].as_mut() else {
            t.bad += 1;
            continue;
        };
        let start = Instant::now();
        match exchange(stream, req.as_bytes(), &mut buf) {
            Ok((status, head)) => {
                if start >= measure_from {
                    t.lat_us.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    t.bad += u64::from(status != 200);
                }
                if let Some(c) = set_cookie(&head, "JSESSIONID") {
                    session = Some(c);
                }
                if let Some(c) = set_cookie(&head, "SHOALV") {
                    token = Some(c);
                }
            }
            Err(_) => {
                conns[n] = None;
                t.bad += 1;
            }
        }
    }
    t
}

fn main() {
    let a = match args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(a.warmup);
    let until = measure_from + Duration::from_secs(a.secs);
    let tasks: Vec<_> = (0..a.conns)
        .map(|i| {
            let a = a.clone();
            std::thread::spawn(move || worker(i as u64 * 7919 + 1, &a, measure_from, until))
        })
        .collect();
    let mut lat = Vec::new();
    let mut bad = 0;
    for t in tasks {
        if let Ok(t) = t.join() {
            lat.extend(t.lat_us);
            bad += t.bad;
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    println!(
        "RESULT mode={} path={} requests={} rps={:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} bad={bad}",
        if a.random { "random" } else { "sticky" },
        a.path,
        lat.len(),
        lat.len() as f64 / a.secs as f64,
        pct(0.50),
        pct(0.99),
        lat.last().map_or(0.0, |us| f64::from(*us) / 1000.0),
    );
}
