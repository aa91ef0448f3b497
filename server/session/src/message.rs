//! Replication messages (Tomcat's SessionMessage types plus what BackupManager needs) and
//! their versioned wire form: `MAGIC` (4 bytes, the last one is the wire version) followed by
//! a bincode-encoded [`SessionEnvelope`]. The prefix lets a channel adapter route session
//! payloads apart from other traffic sharing the channel.
use crate::error::SessionError;
use crate::id::SessionId;
use crate::session::{DeltaOp, Millis, Session, Stamp};
use serde::{Deserialize, Serialize};
use shoal_cluster::MemberId;

/// `b"SHS"` + wire version 1.
pub(crate) const MAGIC: [u8; 4] = *b"SHS\x01";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEnvelope {
    /// Context path (`/app`): one manager per context on every node.
    pub context: String,
    pub msg: SessionMessage,
}

/// A change of one session from one version to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub id: SessionId,
    /// The version this delta produces; it applies on top of `version - 1` written by `prev`.
    pub version: u64,
    pub prev: Stamp,
    pub stamp: Stamp,
    pub last_access: Millis,
    pub ops: Vec<DeltaOp>,
}

/// Where a session lives under BackupManager (what Tomcat's proxies know).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub id: SessionId,
    pub version: u64,
    pub stamp: Stamp,
    pub primary: MemberId,
    pub backups: Vec<MemberId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SessionMessage {
    /// A new session, or the whole session (replicate_whole_session).
    Created(Session),
    /// Expired or invalidated at `version`; replicas at a version <= it drop the session.
    Expired {
        id: SessionId,
        version: u64,
    },
    /// Used but unchanged: keeps replicas from expiring it.
    Accessed {
        id: SessionId,
        version: u64,
        last_access: Millis,
    },
    /// A joining node asks for every session (state transfer).
    GetAllSessions {
        request: u64,
    },
    AllSessionData {
        request: u64,
        batch: u32,
        sessions: Vec<Session>,
    },
    TransferComplete {
        request: u64,
        batches: u32,
        sessions: u64,
    },
    SessionDelta(Delta),
    /// A route change (JvmRouteBinderValve); same ordering rules as a delta.
    ChangeSessionId(Delta),
    /// Answer to GetAllSessions from a node without this context.
    NoContextManager {
        request: u64,
    },
    /// BackupManager: the full session for a backup, with its placement.
    BackupPut {
        session: Session,
        primary: MemberId,
        backups: Vec<MemberId>,
    },
    /// A node without the value (proxy, or repairing a gap) asks a holder for it.
    Fetch {
        id: SessionId,
        request: u64,
    },
    Fetched {
        id: SessionId,
        request: u64,
        session: Option<Session>,
    },
    /// BackupManager: where sessions live now (to proxies).
    Locations(Vec<Location>),
    /// DeltaManager anti-entropy: a node that sees a member appear while it is ready asks
    /// it for a DIGEST (a member still in its state transfer does not answer: what it holds
    /// is a copy of the cluster's).
    DigestRequest,
    /// What the sender holds (id, version, stamp of each live session) and what it removed
    /// (id, version). The receiver fetches what it lacks or holds older, and drops what the
    /// sender removed. Closes the gaps a partial mesh at start-up or a healed partition
    /// leaves: writes made while the two could not reach each other.
    Digest {
        sessions: Vec<(SessionId, u64, Stamp)>,
        removed: Vec<(SessionId, u64)>,
    },
    /// PersistentManager: a takeover on the sender moved `old_id` to `new_id` and left a
    /// tombstone at `version`; members drop their memory copy of `old_id`. Added at the end
    /// of the enum, so wire version 1 still decodes every older kind the same way.
    Moved {
        old_id: SessionId,
        new_id: SessionId,
        version: u64,
    },
}

/// Message types, for per-type counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Created,
    Expired,
    Accessed,
    GetAllSessions,
    AllSessionData,
    TransferComplete,
    SessionDelta,
    ChangeSessionId,
    NoContextManager,
    BackupPut,
    Fetch,
    Fetched,
    Locations,
    DigestRequest,
    Digest,
    Moved,
}

impl MessageKind {
    pub const ALL: [MessageKind; 16] = [
        MessageKind::Created,
        MessageKind::Expired,
        MessageKind::Accessed,
        MessageKind::GetAllSessions,
        MessageKind::AllSessionData,
        MessageKind::TransferComplete,
        MessageKind::SessionDelta,
        MessageKind::ChangeSessionId,
        MessageKind::NoContextManager,
        MessageKind::BackupPut,
        MessageKind::Fetch,
        MessageKind::Fetched,
        MessageKind::Locations,
        MessageKind::DigestRequest,
        MessageKind::Digest,
        MessageKind::Moved,
    ];
    /// Tomcat's names (SessionMessage.EVT_*), lower-cased without the prefix.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Created => "session_created",
            MessageKind::Expired => "session_expired",
            MessageKind::Accessed => "session_accessed",
            MessageKind::GetAllSessions => "get_all_sessions",
            MessageKind::AllSessionData => "all_session_data",
            MessageKind::TransferComplete => "all_session_transfercomplete",
            MessageKind::SessionDelta => "session_delta",
            MessageKind::ChangeSessionId => "changesessionid",
            MessageKind::NoContextManager => "all_session_nocontextmanager",
            MessageKind::BackupPut => "backup_put",
            MessageKind::Fetch => "fetch",
            MessageKind::Fetched => "fetched",
            MessageKind::Locations => "locations",
            MessageKind::DigestRequest => "digest_request",
            MessageKind::Digest => "digest",
            MessageKind::Moved => "session_moved",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

impl SessionMessage {
    /// The one session this message is about, if it is about one.
    pub fn session_id(&self) -> Option<&SessionId> {
        match self {
            SessionMessage::Created(s) | SessionMessage::BackupPut { session: s, .. } => {
                Some(&s.id)
            }
            SessionMessage::SessionDelta(d) | SessionMessage::ChangeSessionId(d) => Some(&d.id),
            SessionMessage::Expired { id, .. }
            | SessionMessage::Accessed { id, .. }
            | SessionMessage::Fetch { id, .. }
            | SessionMessage::Fetched { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn kind(&self) -> MessageKind {
        match self {
            SessionMessage::Created(_) => MessageKind::Created,
            SessionMessage::Expired { .. } => MessageKind::Expired,
            SessionMessage::Accessed { .. } => MessageKind::Accessed,
            SessionMessage::GetAllSessions { .. } => MessageKind::GetAllSessions,
            SessionMessage::AllSessionData { .. } => MessageKind::AllSessionData,
            SessionMessage::TransferComplete { .. } => MessageKind::TransferComplete,
            SessionMessage::SessionDelta(_) => MessageKind::SessionDelta,
            SessionMessage::ChangeSessionId(_) => MessageKind::ChangeSessionId,
            SessionMessage::NoContextManager { .. } => MessageKind::NoContextManager,
            SessionMessage::BackupPut { .. } => MessageKind::BackupPut,
            SessionMessage::Fetch { .. } => MessageKind::Fetch,
            SessionMessage::Fetched { .. } => MessageKind::Fetched,
            SessionMessage::Locations(_) => MessageKind::Locations,
            SessionMessage::DigestRequest => MessageKind::DigestRequest,
            SessionMessage::Digest { .. } => MessageKind::Digest,
            SessionMessage::Moved { .. } => MessageKind::Moved,
        }
    }
}

/// Same wire layout as [`SessionEnvelope`], borrowed: encoding copies nothing twice.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    context: &'a str,
    msg: &'a SessionMessage,
}

pub fn encode(context: &str, msg: &SessionMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    let env = EnvelopeRef { context, msg };
    // Encoding plain data structs into a Vec cannot fail.
    let _ = bincode::serde::encode_into_std_write(&env, &mut out, bincode::config::standard());
    out
}

/// True when `payload` is a session message of any wire version (for channel demux).
pub fn is_session_payload(payload: &[u8]) -> bool {
    payload.len() >= 4 && payload[..3] == MAGIC[..3]
}

pub fn decode(payload: &[u8]) -> Result<SessionEnvelope, SessionError> {
    if !is_session_payload(payload) {
        return Err(SessionError::Decode(
            "not a session message (bad magic)".into(),
        ));
    }
    if payload[3] != MAGIC[3] {
        return Err(SessionError::Decode(format!(
            "session wire version {} from a peer; this node speaks {} (run the same shoal version on all nodes)",
            payload[3], MAGIC[3]
        )));
    }
    bincode::serde::decode_from_slice(&payload[4..], decode_config())
        .map(|(env, _)| env)
        .map_err(|e| match e {
            bincode::error::DecodeError::LimitExceeded => SessionError::Decode(
                "a length inside the session message exceeds 64 MiB: corrupt or hostile payload"
                    .into(),
            ),
            e => SessionError::Decode(e.to_string()),
        })
}

/// `standard()` (the encoding is the same) with a limit, so that a length inside a hostile
/// or corrupt payload cannot make the decoder allocate more than any real message needs
/// (without it, a 9-byte length asked for petabytes and aborted the node; found by the
/// `session_message` fuzz target).
fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 64 * 1024 * 1024 }>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::AttrValue;

    #[test]
    fn round_trip_and_reject_other_versions() {
        let node = MemberId([7; 16]);
        let mut s = Session::new(
            SessionId::parse("0123456789ABCDEF0123456789ABCDEF").unwrap_or_else(|| panic!()),
            "n1".into(),
            5,
            60,
            node,
        );
        s.attributes
            .insert("k".into(), AttrValue::json(&serde_json::json!({"a": 1})));
        s.attributes
            .insert("b".into(), AttrValue::Bytes(vec![1, 2, 3]));
        let m = SessionMessage::Created(s);
        let bytes = encode("/app", &m);
        let env = decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(env.context, "/app");
        assert_eq!(env.msg, m);
        let mut other = bytes.clone();
        other[3] = 9;
        assert!(
            matches!(decode(&other), Err(SessionError::Decode(e)) if e.contains("wire version 9"))
        );
        assert!(decode(&bytes[..10]).is_err());
        assert!(decode(b"nope").is_err());
    }

    #[test]
    fn a_huge_length_inside_a_payload_is_an_error_not_an_allocation() {
        // Fuzz crash: context "/app", Expired, then a session id whose string length is a
        // varint of 2^56 (0xfd + u64): decoding allocated that much and aborted the process.
        let mut payload = MAGIC.to_vec();
        payload.extend_from_slice(b"\x04/app\x01\xfd");
        payload.extend_from_slice(&(1u64 << 56).to_le_bytes());
        payload.extend_from_slice(b"0123");
        assert!(
            matches!(decode(&payload), Err(SessionError::Decode(e)) if e.contains("exceeds 64 MiB")),
            "{:?}",
            decode(&payload)
        );
    }
}
