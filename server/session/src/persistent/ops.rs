//! The store as the persistent core sees it: rows, the five operations and their replies.
//!
//! This mirrors the store trait of `shoal-store` (written elsewhere); the runtime translates
//! each [`Op`] into a call on the configured store and feeds the answer back as a [`Reply`].
//! Every write is a compare-and-set on the row's `version`: a lost compare-and-set is a
//! result ([`SaveResult::Conflict`]), never an error, and a store that cannot answer says
//! [`Reply::Unavailable`].
use crate::{Millis, SessionId};

/// One stored session: the row per `(app, id)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The context (Tomcat's `app_name`): one table serves many contexts.
    pub app: String,
    pub id: SessionId,
    /// Row version, +1 on every write (1 on the first). Distinct from the session's own
    /// change counter: a write-behind save may carry several changes, an access-only save none.
    pub version: u64,
    /// False for a tombstone (the session moved to another id, see `record::Record::Moved`).
    pub valid: bool,
    /// The session's max inactive interval; 0 = never expires (the store's expiry query
    /// must skip such rows).
    pub max_inactive_s: u32,
    /// Last access the writer knew of; lags the true one by at most a quarter of the
    /// interval (see the design note, "Expiry").
    pub last_access_ms: Millis,
    /// Route (node name) of the node that wrote the row: the session's owner.
    pub owner: Option<String>,
    /// The stored form (`record::encode`).
    pub data: Vec<u8>,
}

/// The condition of a compare-and-set write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The row must not exist (a new session, or the new id of a takeover).
    Absent,
    /// The row must exist with exactly this version.
    Version(u64),
}

/// What the runtime must do against the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// The whole row, or `None`.
    Load { app: String, id: SessionId },
    /// The row's version only (cheap: no data), or `None`.
    Version { app: String, id: SessionId },
    /// Write `row` iff `expect` holds.
    Save { row: Row, expect: Expect },
    /// Delete the row iff its version is `expect_version` (never a newer row).
    Remove {
        app: String,
        id: SessionId,
        expect_version: u64,
    },
    /// Up to `limit` rows of `app` with `max_inactive_s > 0` and
    /// `last_access_ms + max_inactive_s * 1000 < now`, as `(id, version)`.
    Expired {
        app: String,
        now: Millis,
        limit: usize,
    },
}

impl OpKind {
    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Load { .. } => "load",
            OpKind::Version { .. } => "version",
            OpKind::Save { .. } => "save",
            OpKind::Remove { .. } => "remove",
            OpKind::Expired { .. } => "expired",
        }
    }
}

/// A request in flight, named by the runtime (unique among the requests it has running).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReqId(pub u64);

/// Whom a reply belongs to: a request, or the core's own background work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Token {
    Req(ReqId),
    Background(u64),
}

/// One store operation to execute; its reply goes to `PersistentCore::on_reply(op.token, ..)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub token: Token,
    pub kind: OpKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveResult {
    Done,
    /// The condition did not hold; `current` is the row's version now (`None`: no row).
    Conflict {
        current: Option<u64>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveResult {
    Done,
    /// No row, or a row of another version: nothing was removed.
    Conflict,
}

/// The store's answer to one [`Op`]. The variant must match the op's kind; a mismatch is
/// treated as the store being unavailable (and logged), never trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Loaded(Option<Row>),
    Version(Option<u64>),
    Saved(SaveResult),
    Removed(RemoveResult),
    Expired(Vec<(SessionId, u64)>),
    /// The store could not be reached or failed; the op did not take effect.
    Unavailable(String),
}
