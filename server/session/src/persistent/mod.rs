//! The persistent manager (Tomcat's PersistentManager and PersistentValve), as a sans-io
//! core: [`PersistentCore`] decides, the runtime executes the store operations ([`Op`]) it
//! asks for and feeds back the replies. No I/O, no clock: every method takes `now`, and
//! every decision is a function of the core's state and its inputs, so a simulation can
//! drive several cores against one store model deterministically.
//!
//! # Why Tomcat's sessions go back in time, and what changes here
//!
//! Tomcat's `findSession` serves a memory copy without looking at the store, saves are
//! DELETE + INSERT without a version, an expiry on one node deletes the row another node is
//! using, and `saveOnRestart` writes stale copies over fresh rows (seed 000: the counter
//! goes 4, 5 on node2, then 4, 5 again on node1). Here:
//!
//! 1. **Every row has a version and every write is a compare-and-set** on it ([`Expect`]):
//!    a save names the version it was derived from, a removal the version it expired. A
//!    lost compare-and-set is a *detected conflict*: counted (`PersistStats::conflicts`),
//!    logged with the session id, the memory copy dropped, and the request answered with
//!    [`PersistError::Conflict`] (503, retry at once). Nothing is overwritten silently.
//! 2. **A memory copy is served only while it is shown to be the newest** (sticky mode):
//!    each memory entry remembers `synced`, the row version it last read or wrote; with
//!    `verify_on_access` (default) a request first reads the row's version (cheap, no
//!    data) and serves memory iff it equals `synced`, else reloads. A stale copy with
//!    unsaved changes is a conflict (those changes were never acknowledged as durable).
//! 3. **Takeover changes the id** (memcached-session-manager, Hazelcast): a session loaded
//!    from a row owned by another node is continued under a *new* id with the local route;
//!    it is saved under the new id (`Absent`) and then the old row is replaced, with a
//!    compare-and-set on the version loaded, by a tombstone (`valid = false`, version + 1,
//!    data naming the new id: `record::Record::Moved`). The order matters: a crash between
//!    the two leaves the old row intact (the client never saw the new id) and an orphan
//!    new row the store sweep removes. A node still holding the old id fails its next
//!    version check or compare-and-set; [`Moved`] tells the members to drop it sooner. A
//!    request that still carries the old id follows the tombstone (at most 4 hops).
//! 4. **Expiry never deletes a newer row**: the owner (the node holding it in memory, which
//!    knows the true last access) removes an idle session with `Remove { expect_version:
//!    synced }`; if another node wrote since, the removal does nothing and the memory copy
//!    is simply dropped. The store sweep (`Expired`, any node, for rows no node holds, e.g.
//!    after a crash) loads each candidate and removes it with a compare-and-set on the
//!    version it saw, only if idle beyond the interval *plus* the touch lag below.
//! 5. **Stop saves only with compare-and-set** (`save_on_restart`): a node stopping last
//!    with a stale copy loses the compare-and-set (logged) instead of winning by order.
//!
//! # Expiry and the touch rule
//!
//! A request that only reads a session still moves its `last_access`. Writing that every
//! time would double the store traffic, so an access-only request saves the row only when
//! the stored `last_access` lags by a quarter of the interval or more (the smaller of the
//! session's and the context's `max_inactive_secs`). The stored value is thus at most a
//! quarter interval behind, and the store's expiry allows that much: a row counts as
//! expired when idle beyond 1.25 × its interval. Sessions in memory expire at exactly the
//! interval (memory knows the true last access).
//!
//! # Modes and what a request costs
//!
//! | mode | request on a session | store round trips |
//! |---|---|---|
//! | sticky, in memory, `verify_on_access` | version check, then save if changed | 1 `Version` + ≤ 1 `Save` (CAS) |
//! | sticky, in memory, `verify_on_access = false` | save if changed | ≤ 1 `Save` (CAS) |
//! | sticky, not in memory (first request, after swap-out or restart), owned here | load | 1 `Load` + ≤ 1 `Save` |
//! | sticky, takeover (row owned by another node) | load, save new id, tombstone old | 1 `Load` + 2 `Save` (+ ≤ 1 `Save`) |
//! | per-request (PersistentValve) | load, save if changed | 1 `Load` + ≤ 1 `Save` (CAS) |
//! | new session | nothing until its end | 1 `Save` (`Absent`) |
//!
//! "Save if changed" means: the request changed the session (attributes, interval,
//! principal, invalidation → `Remove` instead), or the touch rule above fired. With
//! `max_idle_backup > 0` (write-behind) a sticky request does no save at all: the session
//! joins the write queue and the background pass saves it once idle that long.
//!
//! **Guarantees.** Sticky with write-through (`max_idle_backup = 0`, the default) and per-
//! request: a request answered `Done { queued: false }` is in the store; no acknowledged
//! write is lost or overwritten by a stale copy; every read after it returns it or a newer
//! value (sticky: the version check; per-request: the load); two concurrent requests on one
//! session on two nodes: one compare-and-set wins, the other gets a retryable conflict.
//! Within one node, requests on one session run one at a time (a fair lock per id, like
//! PersistentValve's semaphore; waiting requests queue in the core), so they never conflict
//! with each other. Write-behind and store outages acknowledge with `Done { queued: true }`:
//! the change is in this node's memory and durable only once the queue drains (the lag is
//! `PersistStats::queue_lag_ms`); a crash before that loses it, and a queued write that
//! finds the row changed meanwhile is a counted conflict, never an overwrite.
//!
//! # Store outages
//!
//! Any op may answer [`Reply::Unavailable`]; the core is then `degraded` until an op
//! succeeds. Sticky: requests are served from memory without the version check (counted in
//! `served_unverified`) and without waiting for the store (a real store that is down answers
//! only after its connect timeout): one request per retry interval probes it, the others
//! do not ask it. Changes are queued (coalesced: one entry per session, the latest
//! copy is written), bounded by `write_queue_max` (a change that would exceed it is refused
//! with [`PersistError::QueueFull`], counted in `queue_full`), and retried on ticks with
//! backoff (100 ms doubling to `retry_max_ms`) until the queue drains. A session not in
//! memory cannot be loaded: the request gets [`PersistError::Unavailable`]. Per-request:
//! every request that needs the store gets [`PersistError::Unavailable`] naming the store
//! (503 + `Retry-After`). Nothing is dropped silently; the one loss is a stop while the
//! store is down, which is logged per session.
//!
//! # Interface (see [`PersistentCore`])
//!
//! `begin(req, full_id, now)` → `Step::Serve | Missing | Fail`; `create(req, now)` for a
//! new session; `end(req, RequestEnd, now)` → `Step::Done | Fail`; `abort(req, now)`;
//! `on_reply(token, Reply, now)` for each executed [`Op`]; `tick(now)` (background
//! processor); `on_moved(&Moved, now)`; `stop(now)`. Outputs (`Output::Io`, `Output::Step`,
//! `Output::Moved`) are taken with `poll()`, in order, after every call.
mod config;
mod core;
mod error;
mod ops;
pub mod record;
mod stats;

pub use config::{PersistMode, PersistentConfig};
pub use core::{CoreParams, Moved, Output, PersistentCore, Step};
pub use error::PersistError;
pub use ops::{Expect, Op, OpKind, RemoveResult, Reply, ReqId, Row, SaveResult, Token};
pub use record::{Record, RecordError};
pub use stats::{PersistStats, StoreStatus};
