//! Read-your-writes in async mode: [`ReadGate`], the sans-io decision a node takes before it
//! serves a request whose client presents [`Seen`], the version of its session it saw last
//! (carried by its version token, see `token.rs`).
//!
//! Async replication answers before the replicas applied the change, so the client's next
//! request may land on a node whose copy is older. Serving that copy would break
//! read-your-writes and monotonic reads; writing on it would lose the earlier write (its
//! version would be overwritten by a concurrent-looking one). The gate serves a copy only
//! when it ranks at or above what the client saw (`(version, stamp)`, the order the managers
//! apply and resolve conflicts by, see the crate docs). Otherwise:
//!
//! 1. if the copy is on its way (the writer is a live member that replicates to this node),
//!    it waits up to `read_wait_ms`, woken by the apply, costing no CPU;
//! 2. then, or at once when nothing is on its way (the writer is gone, or this node holds no
//!    replica), it fetches the session: from its writer if alive, else from every member,
//!    and waits up to `fetch_timeout_ms` (or until every asked member answered);
//! 3. if no reachable copy is at the version seen, the write that made it died with its node
//!    before it reached anyone: the gate serves the newest copy there is, and the loss is
//!    counted (`ManagerStats::ryw_lost`) and logged with the session id.
//!
//! The gate only reads the manager and asks it for messages; whoever holds the manager (the
//! runtime under its lock, a simulation by hand) sends them and calls [`ReadGate::poll`]
//! again when messages arrived or at the deadline it names.
use crate::id::SessionId;
use crate::manager::{Lookup, Outgoing, SessionManager};
use crate::session::{Millis, Seen, Session};

/// Fetch rounds before a loss is declared: the writer, then (if it answered without the
/// version, or died) every member.
const MAX_FETCHES: u8 = 2;

/// What to do with the request now.
#[derive(Debug)]
pub enum ReadStep {
    /// Serve this copy: it holds what the client saw.
    Serve(Session),
    /// Send `out`, then call [`ReadGate::poll`] again when a message arrived or at `until`.
    Wait { out: Vec<Outgoing>, until: Millis },
    /// No reachable copy holds what the client saw (lost in a crash, counted and logged by
    /// the manager): serve the newest copy, if any is left.
    Lost(Option<Session>),
}

/// One request's wait for the version its client saw.
#[derive(Debug)]
pub struct ReadGate {
    id: SessionId,
    seen: Seen,
    began: Millis,
    wait_ms: Millis,
    fetch_ms: Millis,
    /// When the last fetch went out, and how many went out.
    fetched_at: Option<Millis>,
    fetches: u8,
    /// It had to wait (the first poll did not serve).
    waited: bool,
}

impl ReadGate {
    /// A gate for a request presenting `id` whose token says `seen`, begun at `now`; waits
    /// at most `wait_ms` for replication, then `fetch_ms` for a fetch.
    pub fn new(id: SessionId, seen: Seen, now: Millis, wait_ms: Millis, fetch_ms: Millis) -> Self {
        ReadGate {
            id,
            seen,
            began: now,
            wait_ms,
            fetch_ms,
            fetched_at: None,
            fetches: 0,
            waited: false,
        }
    }

    /// The request did not find the version at once (it waited, fetched or both).
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// The request fetched the session.
    pub fn fetched(&self) -> bool {
        self.fetched_at.is_some()
    }

    /// Looks at the manager's copy and decides.
    pub fn poll(&mut self, m: &mut dyn SessionManager, now: Millis) -> ReadStep {
        let mut out = Vec::new();
        // The manager is fetching the value itself (a BackupManager proxy).
        let mut pending = false;
        let have = match m.find(&self.id, now) {
            Lookup::Found(s) if self.seen.satisfied_by(&s) => return ReadStep::Serve(s),
            Lookup::Found(s) => Some(s),
            Lookup::Pending(o) => {
                out.extend(o);
                pending = true;
                None
            }
            Lookup::Missing => None,
        };
        self.waited = true;
        let first = self.fetched_at.is_none()
            && (now >= self.began + self.wait_ms || !m.expects_replication(&self.id, &self.seen));
        // Every member asked answered without it. Once more if that was only the writer,
        // which may have died since (the next fetch then asks every member).
        let mut settled = self.fetched_at.is_some() && m.fetch_settled(&self.id);
        if first || (settled && self.fetches < MAX_FETCHES) {
            out.extend(m.fetch_seen(&self.id, &self.seen, now));
            self.fetched_at = Some(now);
            self.fetches += 1;
            settled = false;
        }
        let until = match self.fetched_at {
            None => self.began + self.wait_ms,
            Some(at) => at + self.fetch_ms,
        };
        if out.is_empty() && (now >= until || (settled && !pending)) {
            m.note_lost(&self.id, &self.seen, have.as_ref().map(|s| s.version));
            return ReadStep::Lost(have);
        }
        ReadStep::Wait { out, until }
    }
}
