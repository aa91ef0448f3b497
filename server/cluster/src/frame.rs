//! The versioned envelope and the length-prefixed frame codec.
//!
//! Wire format of one frame: `u32 BE length` (of what follows) · `u16 BE protocol version` ·
//! `bincode(Envelope)`. The version sits outside bincode so that a peer speaking another
//! version is told so precisely instead of failing to decode.
use crate::member::{Member, MemberId};
use crate::options::SendOptions;
use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u16 = 1;
/// Bytes before the bincode body: length prefix and version.
const HEADER_LEN: usize = 6;
/// Default largest frame accepted or sent (Fragmentation splits larger messages).
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// Unique per sender incarnation; assigned by the sending node, strictly increasing.
pub type MsgId = u64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: MsgId,
    pub sender: MemberId,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// First frame on an accepted connection: the acceptor's nonce.
    Challenge {
        nonce: [u8; 16],
    },
    /// Connector → acceptor: who I am, proven with the cluster secret over both nonces.
    Hello {
        member: Member,
        nonce: [u8; 16],
        proof: [u8; 32],
    },
    /// Acceptor → connector: who I am, proven likewise. The connection is then open both ways.
    HelloAck {
        member: Member,
        proof: [u8; 32],
    },
    /// Handshake refused (wrong secret, wrong domain, ...): the reason, then the connection closes.
    Refused {
        reason: String,
    },
    /// An application message that went through the sender's interceptor stack.
    Data {
        options: SendOptions,
        // Same wire bytes as a plain Vec<u8> (length + bytes), copied in one go.
        #[serde(with = "payload_bytes")]
        payload: Vec<u8>,
    },
    /// Acknowledges message `of`.
    Ack {
        of: MsgId,
        status: AckStatus,
    },
    /// Liveness probe (TcpPing / TcpFailureDetector verification) and its answer.
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// Graceful leave: the member is going away; drop it without suspicion.
    Leave,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckStatus {
    /// use_ack: the message reached the receiver.
    Received,
    /// synchronized_ack: the receiver processed the message.
    Processed,
    /// The receiver could not process it (e.g. an interceptor refused it); the reason.
    Failed(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes (raise channel.max_frame or enable the Fragmentation interceptor)")]
    TooLarge { len: usize, max: usize },
    #[error(
        "peer speaks protocol version {got}, this node speaks {expected}: upgrade the older node"
    )]
    WrongVersion { got: u16, expected: u16 },
    #[error("frame of {len} bytes is shorter than its header")]
    TooShort { len: usize },
    #[error("malformed frame body: {0}")]
    Malformed(String),
    #[error("could not encode frame: {0}")]
    Encode(String),
}

/// Serde's `Vec<u8>` goes byte by byte; as bytes it is one copy (about 10x faster for
/// 1 KiB). bincode writes both as a varint length followed by the bytes.
mod payload_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a byte array")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

fn bincode_config() -> impl bincode::config::Config {
    // Fixed-int little endian would be faster to decode but larger; varint keeps acks small.
    // The limit stops a hostile length inside the body from allocating more than the frame.
    bincode::config::standard().with_limit::<{ 64 * 1024 * 1024 }>()
}

/// Encodes and decodes frames; holds the size limit.
#[derive(Clone, Debug)]
pub struct FrameCodec {
    pub max_frame: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl FrameCodec {
    pub fn new(max_frame: usize) -> Self {
        FrameCodec { max_frame }
    }

    /// Appends one frame to `out`. Refuses frames over the limit (nothing is appended then).
    pub fn encode(&self, env: &Envelope, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let start = out.len();
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        if let Err(e) = bincode::serde::encode_into_std_write(env, out, bincode_config()) {
            out.truncate(start);
            return Err(FrameError::Encode(e.to_string()));
        }
        let len = out.len() - start - 4;
        if len + 4 > self.max_frame {
            out.truncate(start);
            return Err(FrameError::TooLarge {
                len: len + 4,
                max: self.max_frame,
            });
        }
        out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    /// Tries to decode one frame from the front of `buf`.
    /// `Ok(None)`: more bytes are needed. `Ok(Some((env, n)))`: one frame, `n` bytes consumed.
    /// An error means the stream is unusable: close the connection and log the reason.
    pub fn decode(&self, buf: &[u8]) -> Result<Option<(Envelope, usize)>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len + 4 > self.max_frame {
            return Err(FrameError::TooLarge {
                len: len + 4,
                max: self.max_frame,
            });
        }
        if len < 2 {
            return Err(FrameError::TooShort { len });
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let version = u16::from_be_bytes([buf[4], buf[5]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::WrongVersion {
                got: version,
                expected: PROTOCOL_VERSION,
            });
        }
        let body = &buf[HEADER_LEN..4 + len];
        let (env, used): (Envelope, usize) =
            bincode::serde::decode_from_slice(body, bincode_config())
                .map_err(|e| FrameError::Malformed(e.to_string()))?;
        if used != body.len() {
            return Err(FrameError::Malformed(format!(
                "{} trailing bytes after the envelope",
                body.len() - used
            )));
        }
        Ok(Some((env, 4 + len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(payload: Vec<u8>) -> Envelope {
        Envelope {
            id: 7,
            sender: MemberId([3; 16]),
            body: Body::Data {
                options: SendOptions(SendOptions::USE_ACK),
                payload,
            },
        }
    }

    #[test]
    fn payload_wire_format_is_a_plain_byte_vector() {
        #[derive(Serialize)]
        struct Plain {
            options: SendOptions,
            payload: Vec<u8>,
        }
        let payload = vec![1, 2, 250, 255];
        let fast = bincode::serde::encode_to_vec(
            Body::Data {
                options: SendOptions(6),
                payload: payload.clone(),
            },
            bincode_config(),
        )
        .expect("encode");
        let plain = bincode::serde::encode_to_vec(
            Plain {
                options: SendOptions(6),
                payload,
            },
            bincode_config(),
        )
        .expect("encode");
        assert_eq!(
            &fast[fast.len() - plain.len()..],
            &plain[..],
            "same bytes after the variant tag"
        );
    }

    #[test]
    fn roundtrip_and_partial_input() {
        let c = FrameCodec::default();
        let mut buf = Vec::new();
        c.encode(&env(vec![1, 2, 3]), &mut buf).expect("encode");
        c.encode(&env(vec![4; 1000]), &mut buf).expect("encode");
        for cut in 0..buf.len() {
            // Every prefix shorter than the first frame asks for more; none errors.
            let r = c.decode(&buf[..cut]).expect("prefix decodes");
            if let Some((e, n)) = r {
                assert_eq!(e, env(vec![1, 2, 3]));
                assert!(n <= cut);
            }
        }
        let (first, n) = c.decode(&buf).expect("ok").expect("frame");
        assert_eq!(first, env(vec![1, 2, 3]));
        let (second, m) = c.decode(&buf[n..]).expect("ok").expect("frame");
        assert_eq!(second, env(vec![4; 1000]));
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn oversized_wrong_version_and_garbage_are_errors() {
        let c = FrameCodec::new(128);
        let mut buf = Vec::new();
        assert!(matches!(
            c.encode(&env(vec![0; 500]), &mut buf),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(buf.is_empty(), "a refused frame leaves nothing behind");
        assert!(matches!(
            c.decode(&[0, 0, 1, 0, 0, 1]),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            c.decode(&[0, 0, 0, 3, 0, 9, 0]),
            Err(FrameError::WrongVersion { got: 9, .. })
        ));
        assert!(matches!(
            c.decode(&[0, 0, 0, 5, 0, 1, 0xff, 0xff, 0xff]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            c.decode(&[0, 0, 0, 1, 0]),
            Err(FrameError::TooShort { .. })
        ));
    }
}
