//! Chunk arithmetic, in one place because FarmWarDeployer got it wrong: it labelled a file
//! of exactly k chunks "of k+1" (`size / chunk + 1`), so receivers waited forever, and a
//! 0-byte file sent nothing at all. Here a transfer is complete when the receiver's
//! cursor reaches the declared size, and a size of 0 needs no chunk at all.

/// Number of chunks of `size` bytes in `chunk`-byte pieces: ⌈size / chunk⌉ (0 for 0).
pub fn chunk_count(size: u64, chunk: u64) -> u64 {
    size.div_ceil(chunk.max(1))
}

/// Length of the chunk starting at `offset` (0 at or past the end).
pub fn chunk_len(size: u64, chunk: u64, offset: u64) -> u64 {
    size.saturating_sub(offset).min(chunk.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the offsets a sender produces and checks they tile [0, size) exactly.
    fn tiles(size: u64, chunk: u64) -> u64 {
        let mut off = 0;
        let mut n = 0;
        while off < size {
            let len = chunk_len(size, chunk, off);
            assert!(len > 0 && len <= chunk);
            off += len;
            n += 1;
        }
        assert_eq!(off, size);
        n
    }

    #[test]
    fn edge_sizes_tile_exactly() {
        let c = 65_536;
        for (size, want) in [
            (0, 0),
            (1, 1),
            (c - 1, 1),
            (c, 1),
            (c + 1, 2),
            (3 * c - 1, 3),
            (3 * c, 3),
            (3 * c + 1, 4),
        ] {
            assert_eq!(chunk_count(size, c), want, "size {size}");
            assert_eq!(tiles(size, c), want, "size {size}");
        }
    }

    #[test]
    fn tomcat_off_by_one_is_not_reproduced() {
        // FarmWarDeployer: 10 KiB chunks, total = size / chunk + 1.
        let c = 10_240;
        assert_eq!(chunk_count(2 * c, c), 2);
        assert_ne!(chunk_count(2 * c, c), 2 * c / c + 1);
    }
}
