//! A history checker for session consistency under faults (issues #12 and #13).
//!
//! Clients drive logical sessions, each used by one client at a time (so a session's
//! operations are totally ordered by when its client issued them), against any node, and
//! record every operation with its outcome: [`Recorder`]. [`History::check`] then replays
//! each session's operations against the only model a counter session has: every
//! acknowledged increment is visible to every later operation, and nothing else changes the
//! value. It reports what a mode's promise rules out:
//!
//! - **lost update**: an acknowledged increment whose effect a later operation no longer
//!   sees (the later operation read an older copy and, for an increment, wrote over it);
//!   counted once per acknowledged increment lost;
//! - **stale read**: an acknowledged operation that saw a value older than one already
//!   acknowledged to its client (read-your-writes / monotonic reads broken);
//! - **lost session**: an operation that presented a session and was answered from a new one
//!   (counter back to 1 under another id);
//! - **impossible value**: a value no interleaving of the acknowledged and unknown
//!   operations explains (an increment applied twice, or a copy from a diverged branch: two
//!   sides of a partition incrementing the same session apart).
//!
//! Outcomes are three: [`Outcome::Ok`] (an answer with the value), [`Outcome::NotApplied`]
//! (the server said it did nothing: a conflict or `503` with `Retry-After`), and
//! [`Outcome::Unknown`] (timeout, reset, `5xx`: it may or may not have applied). An unknown
//! increment widens what later values may be; it is never counted as lost.
//!
//! The checker is plain code over a recorded history: its own tests below feed it
//! hand-written histories, so what it reports is checked independently of any cluster.
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What an operation did to its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `GET /app/counter`: increments and answers the new value.
    Increment,
    /// A read that changes nothing and answers the current value.
    Read,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered: the value it saw (after its own increment) and the session id that
    /// answered (`<id>` without the route).
    Ok { value: u64, session: String },
    /// The server said it did nothing (conflict, `503` + `Retry-After`).
    NotApplied,
    /// No clear answer: it may or may not have applied.
    Unknown(String),
}

/// One recorded operation.
#[derive(Clone, Debug)]
pub struct Op {
    /// The logical session (the client's own index for it).
    pub session: usize,
    pub kind: Kind,
    /// The node it was sent to.
    pub node: String,
    pub start: Instant,
    pub end: Instant,
    pub outcome: Outcome,
}

/// Thread-safe log of operations, shared by the client threads of one run.
#[derive(Clone, Default)]
pub struct Recorder {
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    pub fn record(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }

    /// How many operations were recorded so far.
    pub fn len(&self) -> usize {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The operations recorded so far, in the order they were recorded.
    pub fn history(&self) -> History {
        History {
            ops: self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// A recorded run.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
}

/// What a mode promises: the anomalies it allows (`0` = none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    pub lost_updates: usize,
    pub stale_reads: usize,
    pub lost_sessions: usize,
}

impl Promise {
    /// Nothing lost, nothing stale (sync modes; async with read-your-writes).
    pub const STRICT: Promise = Promise {
        lost_updates: 0,
        stale_reads: 0,
        lost_sessions: 0,
    };
}

/// What [`History::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub sessions: usize,
    pub ok: usize,
    pub not_applied: usize,
    pub unknown: usize,
    pub lost_updates: usize,
    pub stale_reads: usize,
    pub lost_sessions: usize,
    pub impossible: usize,
    /// The first anomalies, each naming the session, the operation and the node.
    pub examples: Vec<String>,
    /// The server-side ids (`<id>`, no route) of the sessions that lost acknowledged
    /// updates: what a reconciliation must have reported (`partition = "available"`).
    pub lost_update_ids: std::collections::BTreeSet<String>,
}

/// How many anomalies a report spells out.
const EXAMPLES: usize = 20;

impl Report {
    fn note(&mut self, what: String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(what);
        }
    }

    /// `Err` naming every count above what `promise` allows (impossible values are never
    /// allowed), with the first examples.
    pub fn holds(&self, promise: Promise) -> Result<(), String> {
        let mut broken = Vec::new();
        if self.lost_updates > promise.lost_updates {
            broken.push(format!("{} lost updates", self.lost_updates));
        }
        if self.stale_reads > promise.stale_reads {
            broken.push(format!("{} stale reads", self.stale_reads));
        }
        if self.lost_sessions > promise.lost_sessions {
            broken.push(format!("{} lost sessions", self.lost_sessions));
        }
        if self.impossible > 0 {
            broken.push(format!("{} impossible values", self.impossible));
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} (promise {promise:?}): {self}",
                broken.join(", ")
            ))
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sessions, {} ok, {} not applied, {} unknown; lost updates {}, stale reads {}, \
             lost sessions {}, impossible {}",
            self.sessions,
            self.ok,
            self.not_applied,
            self.unknown,
            self.lost_updates,
            self.stale_reads,
            self.lost_sessions,
            self.impossible
        )?;
        for e in &self.examples {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

/// One session's state while its operations are replayed.
#[derive(Default)]
struct Session {
    /// The session id of the last acknowledged answer.
    id: Option<String>,
    /// The value every later operation must see at least (the last acknowledged state).
    floor: u64,
    /// Increments with an unknown outcome since the floor was set: each may have applied.
    maybe: u64,
    /// Values answered by acknowledged increments, newest last (to count what was lost).
    acked: Vec<u64>,
}

impl History {
    /// Replays every session's operations in the order its client issued them.
    pub fn check(&self) -> Report {
        let mut by_session: BTreeMap<usize, Vec<&Op>> = BTreeMap::new();
        for op in &self.ops {
            by_session.entry(op.session).or_default().push(op);
        }
        let mut r = Report {
            sessions: by_session.len(),
            ..Report::default()
        };
        for (sid, mut ops) in by_session {
            // One client at a time per session: issue order is start order.
            ops.sort_by_key(|o| o.start);
            let mut s = Session::default();
            for (i, op) in ops.iter().enumerate() {
                let (value, id) = match &op.outcome {
                    Outcome::NotApplied => {
                        r.not_applied += 1;
                        continue;
                    }
                    Outcome::Unknown(_) => {
                        r.unknown += 1;
                        if op.kind == Kind::Increment {
                            s.maybe += 1;
                        }
                        continue;
                    }
                    Outcome::Ok { value, session } => (*value, session),
                };
                r.ok += 1;
                let at = format!("session {sid} op {i} ({:?} on {})", op.kind, op.node);
                if let Some(prev) = &s.id {
                    if prev != id {
                        r.lost_sessions += 1;
                        r.note(format!(
                            "{at}: answered from session {id}, not {prev} (value {value})"
                        ));
                        s = Session::default();
                    }
                }
                s.id = Some(id.clone());
                // The value before this operation's own increment.
                let seen = match op.kind {
                    Kind::Increment => value.saturating_sub(1),
                    Kind::Read => value,
                };
                if seen < s.floor {
                    r.stale_reads += 1;
                    let lost = if op.kind == Kind::Increment {
                        // Written over an older copy: acknowledged increments above `seen`
                        // are gone for good.
                        let gone = s.acked.iter().filter(|&&v| v > seen).count();
                        s.acked.retain(|&v| v <= seen);
                        gone
                    } else {
                        0
                    };
                    r.lost_updates += lost;
                    if lost > 0 {
                        r.lost_update_ids.insert(id.clone());
                    }
                    r.note(format!(
                        "{at}: saw {seen}, but {} was acknowledged before{}",
                        s.floor,
                        if lost > 0 {
                            format!(" ({lost} acknowledged increments lost)")
                        } else {
                            String::new()
                        }
                    ));
                } else if seen > s.floor + s.maybe {
                    r.impossible += 1;
                    r.note(format!(
                        "{at}: saw {seen}, more than {} acknowledged + {} unknown explain",
                        s.floor, s.maybe
                    ));
                }
                match op.kind {
                    Kind::Increment => {
                        s.acked.push(value);
                        s.floor = value;
                        s.maybe = 0;
                    }
                    Kind::Read => {
                        // What was seen is now acknowledged to the client; unknown
                        // increments it did not show may still land later.
                        let absorbed = seen.saturating_sub(s.floor);
                        s.maybe = s.maybe.saturating_sub(absorbed);
                        s.floor = s.floor.max(seen);
                    }
                }
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A history of one client per session, operations one after another.
    struct Script {
        t: Instant,
        ops: Vec<Op>,
    }

    impl Script {
        fn new() -> Script {
            Script {
                t: Instant::now(),
                ops: Vec::new(),
            }
        }

        fn op(&mut self, session: usize, kind: Kind, outcome: Outcome) -> &mut Script {
            self.t += Duration::from_millis(1);
            self.ops.push(Op {
                session,
                kind,
                node: format!("node{}", self.ops.len() % 3 + 1),
                start: self.t,
                end: self.t + Duration::from_micros(500),
                outcome,
            });
            self
        }

        fn inc(&mut self, session: usize, value: u64) -> &mut Script {
            self.op(session, Kind::Increment, ok(value, "a"))
        }

        fn report(&self) -> Report {
            History {
                ops: self.ops.clone(),
            }
            .check()
        }
    }

    fn ok(value: u64, session: &str) -> Outcome {
        Outcome::Ok {
            value,
            session: session.into(),
        }
    }

    #[test]
    fn a_clean_run_holds_the_strict_promise() {
        let mut s = Script::new();
        for v in 1..=5 {
            s.inc(0, v).inc(1, v);
        }
        s.op(0, Kind::Read, ok(5, "a"));
        let r = s.report();
        assert_eq!((r.sessions, r.ok), (2, 11), "{r}");
        r.holds(Promise::STRICT).expect("clean");
    }

    #[test]
    fn an_increment_on_an_older_copy_is_a_stale_read_and_loses_what_it_overwrote() {
        let mut s = Script::new();
        s.inc(0, 1).inc(0, 2).inc(0, 3).inc(0, 2).inc(0, 3);
        let r = s.report();
        assert_eq!((r.stale_reads, r.lost_updates), (1, 2), "{r}");
        assert_eq!(r.lost_update_ids.iter().collect::<Vec<_>>(), ["a"], "{r}");
        assert!(r.holds(Promise::STRICT).is_err());
        assert!(r.examples[0].contains("session 0 op 3"), "{r}");
    }

    #[test]
    fn a_stale_read_only_loses_nothing() {
        let mut s = Script::new();
        s.inc(0, 1)
            .inc(0, 2)
            .op(0, Kind::Read, ok(1, "a"))
            .inc(0, 3);
        let r = s.report();
        assert_eq!((r.stale_reads, r.lost_updates), (1, 0), "{r}");
    }

    #[test]
    fn unknown_increments_may_or_may_not_have_applied() {
        let mut s = Script::new();
        let lost = Outcome::Unknown("timeout".into());
        s.inc(0, 1).op(0, Kind::Increment, lost.clone()).inc(0, 3);
        s.inc(1, 1).op(1, Kind::Increment, lost.clone()).inc(1, 2);
        s.op(2, Kind::Increment, lost).inc(2, 1);
        let r = s.report();
        assert_eq!(r.unknown, 3);
        r.holds(Promise::STRICT).expect("both explained");
        // Beyond what the unknowns explain: an increment applied twice.
        let mut s = Script::new();
        s.inc(0, 1).inc(0, 3);
        assert_eq!(s.report().impossible, 1);
    }

    #[test]
    fn not_applied_changes_nothing() {
        let mut s = Script::new();
        s.inc(0, 1)
            .op(0, Kind::Increment, Outcome::NotApplied)
            .inc(0, 2);
        let r = s.report();
        assert_eq!(r.not_applied, 1);
        r.holds(Promise::STRICT).expect("clean");
        let mut s = Script::new();
        s.inc(0, 1)
            .op(0, Kind::Increment, Outcome::NotApplied)
            .inc(0, 3);
        assert_eq!(s.report().impossible, 1, "a refused increment applied");
    }

    #[test]
    fn an_answer_from_a_new_session_is_a_lost_session() {
        let mut s = Script::new();
        s.inc(0, 1)
            .inc(0, 2)
            .op(0, Kind::Increment, ok(1, "b"))
            .op(0, Kind::Increment, ok(2, "b"));
        let r = s.report();
        assert_eq!(r.lost_sessions, 1, "{r}");
        assert_eq!(r.stale_reads, 0, "counted once, as a lost session: {r}");
        let allowed = Promise {
            lost_sessions: 1,
            ..Promise::STRICT
        };
        r.holds(allowed).expect("allowed by the promise");
        assert!(r.holds(Promise::STRICT).is_err());
    }

    #[test]
    fn sessions_are_checked_apart_and_in_issue_order() {
        let mut s = Script::new();
        s.inc(0, 1).inc(1, 1).inc(0, 2).inc(1, 2);
        // Recorded out of order (threads finish in any order): issue order is start order.
        s.ops.swap(0, 2);
        s.report().holds(Promise::STRICT).expect("clean");
    }
}
