//! shoal-farm: the sans-io core of the farm deployer (Tomcat's FarmWarDeployer, done
//! right). Artifacts reach every node verified, and go live everywhere or nowhere. No I/O
//! and no clock: the runtime feeds [`FarmCore`] time, messages, membership and storage
//! results through `handle_*`, and carries out the [`Action`]s it drains with
//! [`FarmCore::take_actions`].
//!
//! # Module map
//! - `artifact/` — [`Digest`] (sha256 content address), [`Manifest`] and [`SignedManifest`]
//!   (name, version, [`Kind`], sha256, size, metadata; ed25519 over
//!   [`Manifest::canonical_bytes`]), [`TrustPolicy`] (trusted keys, `require_signatures`).
//! - `catalog/` — [`Entry`] (one committed change of a name: [`Generation`], [`DeployId`],
//!   [`Target`]), [`Slot`] (current + previous) and [`Catalog`] (a node's deployed set).
//! - `transfer/` — chunk arithmetic ([`chunk_count`], [`chunk_len`]), the receiver's
//!   in-order cursor, the sender's window and its token bucket per receiver (pacing).
//! - `wire/` — [`Message`], [`Change`], and the versioned byte form ([`encode`], [`decode`],
//!   [`WireError`]).
//! - `node/` — [`FarmCore`]: `member` (Prepare → Staged/Failed), `rollout` (the coordinator),
//!   `stream` (content transfer, paced per receiver), `adopt` (making an entry current), `sync` (membership,
//!   catalog exchange, readiness), `timers`; `types` holds [`FarmConfig`], [`Action`],
//!   [`Event`], [`Outcome`], [`RolloutStatus`].
//! - `error` — [`FarmError`], why a command cannot start here. `node_id` — [`NodeId`].
//! - `settings/` — [`FarmSettings`]: `[farm]` of a node's config file and the [`FarmConfig`]
//!   it gives ([`FarmSettings::core_config`]); [`FarmFaults`], `[farm.faults]` for the fault tests.
//!
//! # The protocol in ten lines
//! 1. `deploy(manifest)` on a ready node that sees `min_members` (the coordinator):
//!    signature policy, one rollout per name, base = this node's generation of the name;
//!    then it verifies its own upload.
//! 2. It sends `Prepare{deploy, name, base, change}` to every live member.
//! 3. A member refuses (`Failed{reason}`) a bad signature, a stale base (its generation ≠
//!    base: the compare-and-set), or a name reserved by another rollout (conflict, with that
//!    rollout as `Failed{conflict}`) — unless the new rollout's id is smaller and it would
//!    otherwise accept it: then the reserved one is told it lost (and aborts), so of two
//!    deploys of one name started at once exactly one wins.
//! 4. Otherwise it reserves the name and pulls the content: `Want{digest, offset}` →
//!    `Chunk{offset, bytes}` in a window → cumulative `ChunkAck{next}` (overtaking chunks
//!    wait in a small buffer; three acks without progress resend); a stall re-asks from its
//!    cursor (resume), possibly from another holder.
//! 5. At size bytes it asks the runtime to `Verify` (size and sha256), then answers `Staged`.
//! 6. Every live member staged → the coordinator checks it still runs `base` (CAS) and sends
//!    `Activate{entry: generation base + 1}` to every other member; members apply and
//!    answer `Activated{at_ms}` (their clock), from which the coordinator reports the
//!    activation skew. The coordinator applies its own copy **last**, once every other
//!    member confirmed or left.
//! 7. Any `Failed`, or the stage deadline, before that point → `Abort`: nobody activates.
//! 8. Members that leave are excluded from the rollout; they converge when they return.
//! 9. Every node exchanges its catalog on join and periodically; an entry ahead of ours in
//!    (generation, deploy id) order is adopted once its content is fetched and verified.
//! 10. A node is ready after it heard every member's catalog and adopted what was ahead.
//!
//! # Contract for the runtime
//! - Report live peers with `handle_member_up` / `handle_member_down` (a restart of a
//!   peer is a down then an up), and `handle_joined` once start-up discovery is done;
//!   report ready (and serve the affected contexts) only when [`FarmCore::is_ready`]
//!   (emitted as [`Event::Ready`]). A node that found no peers is ready at once.
//! - Encode every [`Action::Send`] with [`encode`] and deliver best effort over the cluster
//!   channel; decode incoming frames with [`decode`] and drop (and count) those that fail.
//!   Loss, duplication and reordering are tolerated.
//! - Storage actions for one digest arrive in order: `StageBegin` (create/truncate the
//!   staging file), `WriteChunk`s at contiguous rising offsets, `Verify` (check exact size
//!   and sha256, move it under its digest durably, answer `handle_verified`). `StageDiscard`
//!   deletes the staging file of an abandoned transfer. Memory stays
//!   bounded per transfer: `window` chunks in flight, at most `2 × window` buffered ahead. On the coordinator, the upload must be
//!   stored as the staging file of its digest before `deploy`; `Verify` checks it.
//! - `ReadChunk` reads verified content and answers `handle_chunk_read` (an error makes the
//!   receiver look elsewhere).
//! - `Apply{slot}` makes `slot.current` live atomically (in-flight requests finish on the old
//!   version), keeps `slot.previous` for rollback, and persists the catalog. On restart pass
//!   the persisted [`Catalog`] and the digests of verified content to [`FarmCore::new`].
//! - Call `handle_timeout` at least every `retry_after / 2`, and at
//!   [`FarmCore::poll_timeout`] when it is `Some` (the next paced chunk, `transfer_rate`).
//! - Content no slot or reservation references ([`FarmCore::referenced`]) may be deleted.
//!
//! # Rules and their reasons
//! - **Everywhere or nowhere.** The commit point is the first Activate that reaches a
//!   member, sent only after every live member staged verified content. Before it, any
//!   failure aborts and nothing is active anywhere. After it, the change rolls *forward*:
//!   members that missed Activate (loss, coordinator death) learn the entry from a peer's
//!   catalog.
//! - **The commit window (a coordinator killed inside it).** The coordinator makes its
//!   own copy live only after every other member confirmed `Activated` (or left), so it is
//!   never the only node running a change: killed at any step, the survivors end with one
//!   outcome and its restart brings back nothing they do not run.
//!   - killed before any Activate reached a member (during transfer, or all staged):
//!     nobody runs the change, the coordinator included (it had not applied it); the
//!     members' reservations expire after `reservation_ttl`; everyone stays on the old
//!     version, and the restarted coordinator keeps it (or adopts what the survivors
//!     deployed meanwhile);
//!   - killed after Activate reached some members only: those run the change; every
//!     staged survivor, seeing its coordinator leave, sends its catalog to every member
//!     at once and adopts the entry from one that runs it (its content is already
//!     verified there): all new; the restarted coordinator adopts it from their catalogs
//!     before it reports ready;
//!   - killed after every member activated, before or after its own activation: all
//!     new; the restarted coordinator is equal or adopts it before ready.
//!
//!   The one exception is a rollout whose members stay live but silent past
//!   `2 × stage_deadline` after the commit: the coordinator then applies its own copy
//!   anyway (the decision was taken) and they converge from its catalog.
//! - **Two rollouts of one name.** A member holds one reservation per name. Of two rollouts
//!   that meet at a member, the smaller [`DeployId`] takes it over (the larger is told, with
//!   the winner as the typed reason, and aborts). The larger cannot have committed: that
//!   needs the smaller one's coordinator staged for it, and that node has held the smaller
//!   one's own reservation since it started.
//! - **At most two versions live** (old and new, during the commit window), because a
//!   rollout needs a base equal to every live member's generation and a member reserved by
//!   one rollout refuses others of the same name.
//! - **Split brain.** Without a quorum, two sides of a partition can each commit a change of
//!   one name; after the heal the higher (generation, deploy id) wins on every node.
//!   `min_members` (set it to a majority) refuses to start a rollout on a node that sees
//!   fewer members, so only the majority side deploys; the minority keeps serving the old
//!   version until the heal and the catalog exchange bring it forward.
//! - **Never unverified.** An entry becomes current only when its content's size and sha256
//!   were verified on this node and its manifest passes this node's signature policy.
//! - **Chunk edges.** A transfer completes when the receiver's cursor reaches the declared
//!   size: a 0-byte artifact needs no chunk, and a size of exactly k chunks sends k chunks
//!   (FarmWarDeployer announced k + 1 and never completed).
#![warn(unreachable_pub)]
mod artifact;
mod catalog;
mod error;
mod node;
mod node_id;
mod settings;
mod transfer;
mod wire;

pub use artifact::{Digest, Kind, Manifest, SignedManifest, TrustPolicy};
pub use catalog::{Catalog, DeployId, Entry, Generation, Holder, Slot, Target};
pub use error::FarmError;
pub use node::{
    Action, Event, FarmConfig, FarmCore, NodeProgress, NodeState, Outcome, Phase, RolloutStatus,
};
pub use node_id::NodeId;
pub use settings::{FarmFaults, FarmSettings, HoldAt, DEFAULT_TRANSFER_RATE_MIB_S, NODE_DIR};
pub use transfer::{chunk_count, chunk_len};
pub use wire::{decode, encode, Change, Message, WireError, WIRE_VERSION};
