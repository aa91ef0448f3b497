//! Chunk bytes as one byte string (serde's `bytes`), not a sequence of `u8`: the same
//! bincode layout (length, then the bytes), but copied in one piece instead of element by
//! element — the difference between a chunk costing microseconds and milliseconds in a
//! debug build.
use serde::de::{Error, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }
    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }
    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Raw(#[serde(with = "super")] Vec<u8>);

    #[test]
    fn same_layout_as_a_sequence_of_bytes() {
        let cfg = bincode::config::standard();
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let as_seq = bincode::serde::encode_to_vec(&data, cfg).expect("seq");
        let as_raw = bincode::serde::encode_to_vec(Raw(data.clone()), cfg).expect("raw");
        assert_eq!(as_seq, as_raw, "older nodes decode the new form and back");
        let (back, _): (Raw, usize) =
            bincode::serde::decode_from_slice(&as_seq, cfg).expect("decodes");
        assert_eq!(back, Raw(data));
    }
}
