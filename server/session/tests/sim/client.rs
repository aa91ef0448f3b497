//! Simulated clients: one session each, a counter incremented per request, failover to a
//! live node when theirs is down; a write counts as acknowledged when every sync ack came.
use super::*;

impl Sim {
    pub(super) fn client_request(&mut self, c: usize) {
        let now = self.now;
        // A request waiting for a fetch stays on its node (the runtime waits there).
        if self.cfg.random_routing && self.clients[c].started == 0 {
            self.clients[c].node = self.rng.gen_range(0..self.nodes.len());
        }
        let mut n = self.clients[c].node;
        if !self.nodes[n].alive || !self.nodes[n].mgr.is_ready() {
            let live: Vec<usize> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].alive && self.nodes[*i].mgr.is_ready())
                .collect();
            if live.is_empty() {
                return self.at(50, Ev::Client(c));
            }
            n = live[self.rng.gen_range(0..live.len())];
            self.clients[c].node = n;
        }
        if !self.serves(n) {
            // 503 no-quorum before the session is looked up: the client tries another node.
            self.report.refused += 1;
            self.clients[c].node = self.rng.gen_range(0..self.nodes.len());
            return self.at(10, Ev::Client(c));
        }
        if self.clients[c].started == 0 {
            self.clients[c].started = now;
            self.report.requests += 1;
        }
        let node_id = self.nodes[n].id;
        let (id, value) = match self.clients[c].session.clone() {
            None => {
                let s = self.nodes[n].mgr.create(now);
                self.clients[c].session = Some(s.id.clone());
                (s.id, 0)
            }
            Some(id) => match self.nodes[n].mgr.find(&id, now) {
                Lookup::Found(s) => (id, counter(&s.attributes.get("counter").cloned())),
                Lookup::Pending(out) => {
                    self.send(node_id, out, None);
                    return self.retry_or_fail(c);
                }
                Lookup::Missing if self.cfg.majority && self.clients[c].acked > 0 => {
                    // The runtime answers from a new session for an id nobody knows.
                    let old = (id, self.clients[c].acked);
                    self.clients[c].replaced = Some(old);
                    let s = self.nodes[n].mgr.create(now);
                    self.clients[c].session = Some(s.id.clone());
                    self.clients[c].acked = 0;
                    (s.id, 0)
                }
                Lookup::Missing => return self.retry_or_fail(c),
            },
        };
        let acked = self.clients[c].acked;
        if std::env::var("SHOAL_SIM_TRACE").is_ok_and(|p| format!("{id:?}").contains(&p)) {
            self.note(&format!(
                "client {c} request on node{}: reads {value}",
                n + 1
            ));
        }
        // Under `majority` a node that has not noticed the cut yet may read an old copy;
        // what it answers is only what its write acknowledges (see `maybe_finish`).
        if self.cfg.mode == ReplicationMode::Sync && value < acked && !self.cfg.majority {
            self.report.violations.push(format!(
                "t={} client {c} read counter {value} of {id:?} on node{} but {acked} was acknowledged",
                now,
                n + 1
            ));
        }
        let ops = vec![DeltaOp::Set(
            "counter".into(),
            AttrValue::Json((value + 1).to_string()),
        )];
        let end = RequestEnd {
            id: Some(id),
            ops,
            accessed: true,
            replicate: true,
            invalidate: false,
        };
        self.clients[c].started = 0;
        match self.nodes[n].mgr.end_request(end, now) {
            Err(_) => self.done(c, false),
            Ok(out) => {
                let w = self.next_write;
                self.next_write += 1;
                let waits: BTreeSet<MemberId> = out
                    .iter()
                    .filter(|o| o.sync)
                    .flat_map(|o| o.to.iter().copied())
                    .collect();
                self.clients[c].inflight = Some((value + 1, n, waits, true));
                self.writes.insert(w, c);
                self.send(node_id, out, Some(w));
                self.check_versions(n);
                self.maybe_finish(c, w);
            }
        }
    }

    pub(super) fn retry_or_fail(&mut self, c: usize) {
        if self.now - self.clients[c].started > 3000 {
            let acked = self.clients[c].acked;
            if self.cfg.mode == ReplicationMode::Sync && acked > 0 {
                let sid = self.clients[c].session.clone();
                let holders = sid.as_ref().map(|s| self.holders(s)).unwrap_or_default();
                self.report.violations.push(format!(
                    "t={} client {c}: session {sid:?} with {acked} acknowledged not found for 3 s on node{}; holders {holders:?}",
                    self.now,
                    self.clients[c].node + 1
                ));
            }
            // Never acknowledged (or async): the session may legitimately be gone; start over.
            self.clients[c].session = None;
            self.clients[c].acked = 0;
            self.clients[c].started = 0;
            return self.at(100, Ev::Client(c));
        }
        self.at(10, Ev::Client(c));
    }

    pub(super) fn on_ack(&mut self, _to: MemberId, write: u64, from: MemberId, ok: bool) {
        let Some(&c) = self.writes.get(&write) else {
            return;
        };
        let writer = self.clients[c].inflight.as_ref().map(|f| f.1);
        // Not under `majority`: a member that vanished may be alive on the other side.
        let out_of_view = !self.cfg.majority
            && writer.is_some_and(|w| self.nodes[w].alive && !self.nodes[w].sees.contains(&from));
        if let Some((_, _, set, all_ok)) = self.clients[c].inflight.as_mut() {
            // A failure from a member that is gone does not count (its copy went with it).
            let gone = out_of_view || !self.nodes.iter().any(|n| n.id == from && n.alive);
            if !ok && !gone {
                *all_ok = false;
            }
            set.remove(&from);
        }
        self.maybe_finish(c, write);
    }

    pub(super) fn maybe_finish(&mut self, c: usize, write: u64) {
        let Some((value, node, set, ok)) = self.clients[c].inflight.as_ref() else {
            return;
        };
        if !set.is_empty() {
            return;
        }
        let (value, node, mut ok) = (*value, *node, *ok);
        if self.cfg.majority && self.nodes[node].alive && !self.has_majority(node) {
            // The write left its node without a majority: nobody may hold it.
            ok = false;
        }
        self.writes.remove(&write);
        self.clients[c].inflight = None;
        match self.clients[c].replaced.take() {
            Some((old, acked)) if ok => self.report.violations.push(format!(
                "t={} client {c}: session {old:?} with {acked} acknowledged lost: node{} answered from a new one (holders {:?})",
                self.now,
                node + 1,
                self.holders(&old)
            )),
            // Not acknowledged: the client keeps its session.
            Some((old, acked)) => {
                self.clients[c].session = Some(old);
                self.clients[c].acked = acked;
            }
            None => {}
        }
        if ok && self.cfg.majority && value <= self.clients[c].acked {
            self.report.violations.push(format!(
                "t={} client {c}: {value} of {:?} acknowledged on node{} after {} was (built on a stale copy)",
                self.now,
                self.clients[c].session,
                node + 1,
                self.clients[c].acked
            ));
        }
        if ok {
            self.clients[c].acked = self.clients[c].acked.max(value);
        } else if let Some(id) = self.clients[c].session.clone() {
            // What SessionService does on a failed sync replication.
            if self.nodes[node].alive {
                self.nodes[node].mgr.replication_failed(&id);
            }
        }
        self.done(c, ok);
    }

    pub(super) fn done(&mut self, c: usize, ok: bool) {
        if let Some((old, acked)) = self.clients[c].replaced.take() {
            // The request failed before its write: the client keeps its session.
            self.clients[c].session = Some(old);
            self.clients[c].acked = acked;
        }
        if ok {
            self.report.acked += 1;
        } else {
            self.report.failed += 1;
        }
        let think = self.rng.gen_range(1..30);
        self.at(think, Ev::Client(c));
    }

    /// Who holds session `id` and at which version, for violation messages.
    pub(super) fn holders(&self, id: &SessionId) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let s = n.mgr.session(id)?;
                Some(format!(
                    "node{}{} v{}",
                    i + 1,
                    if n.alive { "" } else { "(dead)" },
                    s.version
                ))
            })
            .collect()
    }
}
