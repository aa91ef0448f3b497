//! Versioned byte form: one version byte, then the message in bincode standard encoding.
//! A frame from the network is never trusted: decoding bounds allocations and every
//! failure says what was wrong.
use super::message::Message;

/// The version this build writes and the only one it reads (2: `Failed` carries the
/// conflicting rollout, `Activated` the member's activation instant).
pub const WIRE_VERSION: u8 = 2;

/// Upper bound of one decoded message (a chunk of at most 1 MiB plus headers); bincode
/// refuses length prefixes beyond it instead of allocating.
const DECODE_LIMIT: usize = (1 << 20) + (64 << 10);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("empty farm frame")]
    Empty,
    #[error("farm frame version {found}, this node speaks version {WIRE_VERSION}: upgrade the older node")]
    Version { found: u8 },
    #[error("malformed farm frame (version {WIRE_VERSION}, {len} bytes): {detail}")]
    Malformed { len: usize, detail: String },
    #[error("farm frame has {extra} bytes after the message")]
    Trailing { extra: usize },
}

pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = vec![WIRE_VERSION];
    // Encoding into a Vec fails only for unsupported serde shapes, which Message has none of.
    let body = bincode::serde::encode_to_vec(msg, bincode::config::standard())
        .unwrap_or_else(|e| unreachable!("farm message encoding: {e}"));
    out.extend_from_slice(&body);
    out
}

pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    let (&version, body) = frame.split_first().ok_or(WireError::Empty)?;
    if version != WIRE_VERSION {
        return Err(WireError::Version { found: version });
    }
    let cfg = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let (msg, used) =
        bincode::serde::decode_from_slice(body, cfg).map_err(|e| WireError::Malformed {
            len: frame.len(),
            detail: e.to_string(),
        })?;
    if used != body.len() {
        return Err(WireError::Trailing {
            extra: body.len() - used,
        });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::Digest;

    fn chunk() -> Message {
        Message::Chunk {
            digest: Digest::of(b"x"),
            offset: 7,
            bytes: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip() {
        let m = chunk();
        assert_eq!(decode(&encode(&m)), Ok(m));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(decode(&[]), Err(WireError::Empty));
        let mut f = encode(&chunk());
        f[0] = 9;
        assert_eq!(decode(&f), Err(WireError::Version { found: 9 }));
        let f = encode(&chunk());
        let e = decode(&f[..f.len() - 2]).expect_err("truncated");
        assert!(matches!(e, WireError::Malformed { .. }), "{e}");
        let mut f = encode(&chunk());
        f.push(0);
        assert_eq!(decode(&f), Err(WireError::Trailing { extra: 1 }));
        // A variant tag beyond the enum.
        let e = decode(&[WIRE_VERSION, 200]).expect_err("bad tag");
        assert!(e.to_string().contains("malformed farm frame"), "{e}");
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating() {
        // Chunk tag, a digest, an offset, then a length prefix of u64::MAX.
        let mut f = vec![WIRE_VERSION, 8];
        f.extend_from_slice(&[0; 32]);
        f.push(0);
        f.push(253);
        f.extend_from_slice(&u64::MAX.to_le_bytes());
        let e = decode(&f).expect_err("too long");
        assert!(matches!(e, WireError::Malformed { .. }), "{e}");
    }
}
