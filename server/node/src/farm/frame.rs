//! Farm messages on the cluster channel: their own magic prefix (beside session payloads
//! and `ControlOp`s, see `runtime.rs` `demultiplex`), then `shoal_farm::encode`.
use shoal_farm::{Message, WireError};

const MAGIC: &[u8; 4] = b"SHF\x01";

pub fn is_farm(payload: &[u8]) -> bool {
    payload.len() >= MAGIC.len() && &payload[..MAGIC.len()] == MAGIC
}

pub fn frame(msg: &Message) -> Vec<u8> {
    let body = shoal_farm::encode(msg);
    let mut out = Vec::with_capacity(MAGIC.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&body);
    out
}

/// The message of a payload [`is_farm`] accepted.
pub fn unframe(payload: &[u8]) -> Result<Message, WireError> {
    shoal_farm::decode(payload.get(MAGIC.len()..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_farm::Digest;

    #[test]
    fn frames_round_trip_and_are_recognised() {
        let msg = Message::ChunkAck {
            digest: Digest::of(b"x"),
            next: 7,
        };
        let f = frame(&msg);
        assert!(is_farm(&f));
        assert!(!shoal_session::is_session_payload(&f));
        assert_eq!(unframe(&f).expect("decodes"), msg);
        assert!(!is_farm(b"SHC\x01"));
        assert!(unframe(b"SHF\x01\x01").is_err());
    }
}
