//! The simulated runtime storage of one node: staging files (lost on a crash) and verified
//! content by digest (durable), plus the persisted catalog.
use shoal_farm::{Catalog, Digest};
use std::collections::HashMap;

#[derive(Default, Clone)]
pub struct Store {
    pub partial: HashMap<Digest, Vec<u8>>,
    pub blobs: HashMap<Digest, Vec<u8>>,
    pub catalog: Catalog,
}

impl Store {
    /// What the runtime's Verify does: exact size, then sha256; moves the file to `blobs`.
    pub fn verify(&mut self, digest: Digest, size: u64) -> Result<(), String> {
        let bytes = self.partial.remove(&digest).unwrap_or_default();
        if bytes.len() as u64 != size {
            return Err(format!(
                "size is {} bytes, the manifest says {size}",
                bytes.len()
            ));
        }
        let got = Digest::of(&bytes);
        if got != digest {
            return Err(format!("sha256 is {got}, the manifest says {digest}"));
        }
        self.blobs.insert(digest, bytes);
        Ok(())
    }

    pub fn write(&mut self, digest: Digest, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let f = self.partial.entry(digest).or_default();
        if f.len() as u64 != offset {
            return Err(format!(
                "write at {offset} but the staging file of {digest:?} has {} bytes",
                f.len()
            ));
        }
        f.extend_from_slice(bytes);
        Ok(())
    }

    pub fn read(&self, digest: Digest, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        let b = self
            .blobs
            .get(&digest)
            .ok_or_else(|| format!("{digest:?} not stored"))?;
        let (s, e) = (offset as usize, (offset + len) as usize);
        b.get(s..e)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("read past the end of {digest:?}"))
    }
}
