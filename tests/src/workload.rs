//! Clients driving logical sessions against a cluster and recording every operation for the
//! history checker ([`crate::history`]).
//!
//! Each client thread owns its sessions (so a session is used by one client at a time) and
//! sends `GET /app/counter` for them in turn, each to a node chosen by [`Routing`]: at random
//! (a balancer that spreads requests, a client that reconnects elsewhere) or by the route in
//! the session cookie (a sticky balancer). Every load is bounded by a request count.
use crate::history::{History, Kind, Op, Outcome, Recorder};
use shoal_testkit::{get_blocking, Reply};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// How a request picks its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Any node, at random (seeded).
    Random,
    /// The node named by the cookie's route (`<id>.<route>`); a new session goes anywhere.
    Sticky,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Workload {
    pub clients: usize,
    pub sessions_per_client: usize,
    /// Requests per client, over all its sessions.
    pub requests_per_client: usize,
    pub routing: Routing,
    pub seed: u64,
}

/// A small seeded generator (xorshift64*): the node choices of a run are reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// The version token header (read-your-writes in async mode): sent back as received, like
/// a browser sends back the `SHOALV` cookie.
pub const VERSION_HEADER: &str = "X-Shoal-Version";

/// How the answer of one `GET /app/counter` ended, for the checker.
fn outcome(reply: Result<Reply, String>) -> (Outcome, Option<String>) {
    let r = match reply {
        Ok(r) => r,
        Err(e) => return (Outcome::Unknown(e), None),
    };
    match r.status {
        200 => {
            let value = r.field("counter").and_then(|v| v.parse::<u64>().ok());
            // `<id>` or `<id>.<route>`: the id is what identifies the session.
            let session = r
                .field("session")
                .map(|s| s.split('.').next().unwrap_or(s).to_owned());
            match (value, session) {
                (Some(value), Some(session)) => (Outcome::Ok { value, session }, r.cookie),
                _ => (
                    Outcome::Unknown(format!("200 without counter/session: {}", r.body)),
                    None,
                ),
            }
        }
        // A failed synchronous replication is applied on the node that answered (and maybe
        // on some replicas): it may or may not survive, so it is not "not applied".
        503 if r.body.starts_with("error=replication-failed") => {
            (Outcome::Unknown(format!("503: {}", r.body.trim())), None)
        }
        409 | 503 if r.header("retry-after").is_some() => (Outcome::NotApplied, None),
        s => (Outcome::Unknown(format!("{s}: {}", r.body.trim())), None),
    }
}

/// Runs `w` against `nodes` (route name → `host:port`) and returns what happened.
pub fn run(nodes: &BTreeMap<String, String>, w: &Workload) -> History {
    let recorder = Recorder::new();
    run_into(nodes, w, &recorder, &AtomicBool::new(false));
    recorder.history()
}

/// [`run`], recording into `recorder` as it goes (a test injects faults meanwhile, watching
/// [`Recorder::len`]); each client also stops early once `stop` is set.
pub fn run_into(
    nodes: &BTreeMap<String, String>,
    w: &Workload,
    recorder: &Recorder,
    stop: &AtomicBool,
) {
    assert!(!nodes.is_empty(), "a workload needs nodes");
    let addrs: Vec<(String, String)> = nodes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    std::thread::scope(|scope| {
        for c in 0..w.clients {
            let (recorder, addrs) = (recorder.clone(), &addrs);
            scope.spawn(move || {
                let mut rng = Rng::new(w.seed.wrapping_add(c as u64 * 7919));
                let mut cookies: Vec<Option<String>> = vec![None; w.sessions_per_client];
                let mut tokens: Vec<Option<String>> = vec![None; w.sessions_per_client];
                for i in 0..w.requests_per_client {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let slot = i % w.sessions_per_client;
                    let session = c * w.sessions_per_client + slot;
                    let cookie = cookies[slot].clone();
                    let route = cookie
                        .as_deref()
                        .and_then(|k| k.rsplit_once('.'))
                        .map(|(_, r)| r.to_owned());
                    let node = match (w.routing, route) {
                        (Routing::Sticky, Some(r)) => addrs
                            .iter()
                            .position(|(name, _)| *name == r)
                            .unwrap_or_else(|| rng.below(addrs.len())),
                        _ => rng.below(addrs.len()),
                    };
                    let (name, addr) = &addrs[node];
                    let start = Instant::now();
                    let token = tokens[slot].clone();
                    let headers: Vec<(&str, &str)> = token
                        .as_deref()
                        .map(|t| (VERSION_HEADER, t))
                        .into_iter()
                        .collect();
                    let reply = get_blocking(addr, "/app/counter", cookie.as_deref(), &headers);
                    let end = Instant::now();
                    if let Some(t) = reply.as_ref().ok().and_then(|r| r.header(VERSION_HEADER)) {
                        tokens[slot] = Some(t.to_owned());
                    }
                    let (outcome, set) = outcome(reply);
                    if let Some(set) = set {
                        cookies[slot] = Some(set);
                    }
                    recorder.record(Op {
                        session,
                        kind: Kind::Increment,
                        node: name.clone(),
                        start,
                        end,
                        outcome,
                    });
                }
            });
        }
    });
}
