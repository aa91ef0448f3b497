//! Chunk bytes travel as one byte string (`serde_bytes`), not a sequence of `u8`: the
//! same bincode layout (length, then the bytes), copied in one piece instead of element by
//! element — the difference between a chunk costing microseconds and milliseconds in a
//! debug build. This test pins the layout, so nodes of either form understand each other.
#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Raw(#[serde(with = "serde_bytes")] Vec<u8>);

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
