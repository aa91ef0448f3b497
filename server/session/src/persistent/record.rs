//! The stored form of a session: the `data` column of a row.
//!
//! ```text
//! offset 0  4 bytes  magic "SHSS" (shoal session)
//! offset 4  2 bytes  format version, big-endian (this build writes 1 and reads 1)
//! offset 6  ...      bincode 2 (standard config, serde) of `Record`
//! ```
//! `Record::Live` holds the whole [`Session`] (attributes, times, principal, version and
//! stamp; `is_new` is always stored false). `Record::Moved` is the tombstone a takeover
//! leaves under the old id (row `valid = false`): it names the new id, so a request that
//! still carries the old id follows it instead of finding nothing.
//!
//! A new format gets a new version number and a decoder here; a node that meets a version
//! it does not know refuses the row with an error naming the session (it never guesses),
//! so roll out readers before writers.
use crate::{Session, SessionId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const MAGIC: [u8; 4] = *b"SHSS";
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Live(Session),
    /// The session now lives under `new_id` (routed to `new_route`).
    Moved {
        new_id: SessionId,
        new_route: String,
    },
}

/// A row whose data cannot be read. Names the session and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("stored session {id}: {len} bytes, shorter than the 6-byte header (truncated row)")]
    Truncated { id: String, len: usize },
    #[error("stored session {id}: bad magic {found:02x?} (expected \"SHSS\"): not written by shoal, or the column holds something else")]
    BadMagic { id: String, found: [u8; 4] },
    #[error("stored session {id}: format version {found}, this node reads only version {FORMAT_VERSION} (written by a newer shoal? upgrade this node)")]
    UnknownFormat { id: String, found: u16 },
    #[error("stored session {id}: cannot decode the format {FORMAT_VERSION} body: {reason}")]
    Body { id: String, reason: String },
    #[error("stored session {id}: the row's data holds session {found} (row and data disagree)")]
    WrongId { id: String, found: String },
    #[error("cannot encode session {id}: {reason}")]
    Encode { id: String, reason: String },
}

/// Encodes `record`, stored under `id` (used only in the error).
pub fn encode(id: &SessionId, record: &Record) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    let body = bincode::serde::encode_to_vec(record, bincode::config::standard()).map_err(|e| {
        RecordError::Encode {
            id: id.to_string(),
            reason: e.to_string(),
        }
    })?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes the data of the row stored under `id`. A live session must carry that id.
pub fn decode(id: &SessionId, data: &[u8]) -> Result<Record, RecordError> {
    let name = || id.to_string();
    if data.len() < HEADER_LEN {
        return Err(RecordError::Truncated {
            id: name(),
            len: data.len(),
        });
    }
    let found = [data[0], data[1], data[2], data[3]];
    if found != MAGIC {
        return Err(RecordError::BadMagic { id: name(), found });
    }
    let version = u16::from_be_bytes([data[4], data[5]]);
    if version != FORMAT_VERSION {
        return Err(RecordError::UnknownFormat {
            id: name(),
            found: version,
        });
    }
    let (record, used): (Record, usize) =
        bincode::serde::decode_from_slice(&data[HEADER_LEN..], bincode::config::standard())
            .map_err(|e| RecordError::Body {
                id: name(),
                reason: e.to_string(),
            })?;
    if used != data.len() - HEADER_LEN {
        return Err(RecordError::Body {
            id: name(),
            reason: format!(
                "{} trailing bytes after the record",
                data.len() - HEADER_LEN - used
            ),
        });
    }
    if let Record::Live(s) = &record {
        if s.id != *id {
            return Err(RecordError::WrongId {
                id: name(),
                found: s.id.to_string(),
            });
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use shoal_cluster::MemberId;

    fn session() -> Session {
        let mut rng = StdRng::seed_from_u64(7);
        let id = SessionId::generate(&mut rng);
        let mut s = Session::new(id, "n1".into(), 1000, 1800, MemberId([1; 16]));
        s.apply_ops(&[crate::DeltaOp::Set(
            "counter".into(),
            crate::AttrValue::Json("3".into()),
        )]);
        s.is_new = false;
        s
    }

    #[test]
    fn round_trip_live_and_moved() {
        let s = session();
        let data = encode(&s.id, &Record::Live(s.clone())).expect("encode");
        assert_eq!(&data[..4], b"SHSS");
        assert_eq!(decode(&s.id, &data), Ok(Record::Live(s.clone())));
        let moved = Record::Moved {
            new_id: SessionId::generate(&mut StdRng::seed_from_u64(8)),
            new_route: "n2".into(),
        };
        let data = encode(&s.id, &moved).expect("encode");
        assert_eq!(decode(&s.id, &data), Ok(moved));
    }

    #[test]
    fn bad_magic_names_the_session() {
        let s = session();
        let mut data = encode(&s.id, &Record::Live(s.clone())).expect("encode");
        data[0] = 0xac; // a Java serialisation stream starts 0xaced
        data[1] = 0xed;
        let err = decode(&s.id, &data).expect_err("bad magic");
        assert!(matches!(err, RecordError::BadMagic { .. }));
        assert!(err.to_string().contains(s.id.as_str()), "{err}");
    }

    #[test]
    fn future_format_is_refused() {
        let s = session();
        let mut data = encode(&s.id, &Record::Live(s.clone())).expect("encode");
        data[4..6].copy_from_slice(&2u16.to_be_bytes());
        let err = decode(&s.id, &data).expect_err("future");
        assert_eq!(
            err,
            RecordError::UnknownFormat {
                id: s.id.to_string(),
                found: 2
            }
        );
        assert!(err.to_string().contains("upgrade"), "{err}");
    }

    #[test]
    fn truncated_rows_are_refused() {
        let s = session();
        let data = encode(&s.id, &Record::Live(s.clone())).expect("encode");
        for len in [0, 3, 5] {
            assert!(matches!(
                decode(&s.id, &data[..len]),
                Err(RecordError::Truncated { .. })
            ));
        }
        for len in [6, 10, data.len() - 1] {
            assert!(matches!(
                decode(&s.id, &data[..len]),
                Err(RecordError::Body { .. })
            ));
        }
        let mut long = data.clone();
        long.push(0);
        assert!(matches!(
            decode(&s.id, &long),
            Err(RecordError::Body { .. })
        ));
    }

    #[test]
    fn data_under_another_id_is_refused() {
        let s = session();
        let data = encode(&s.id, &Record::Live(s.clone())).expect("encode");
        let other = SessionId::generate(&mut StdRng::seed_from_u64(9));
        assert!(matches!(
            decode(&other, &data),
            Err(RecordError::WrongId { .. })
        ));
    }
}
