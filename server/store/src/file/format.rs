//! The stored form of one session file, format 1 (all integers big-endian):
//!
//! ```text
//! magic        8 bytes  "SHOALSS\0"
//! format       u16      1
//! meta_len     u32      length of the metadata that follows (readers skip what they do not know)
//! metadata:
//!   version        u64
//!   valid          u8   (1 or 0)
//!   max_inactive_s i64
//!   last_access_ms i64
//!   app            u16 length + UTF-8
//!   id             u16 length + ASCII
//!   owner          u16 length + UTF-8; length 0xFFFF = none
//! data_len     u64
//! data         data_len bytes
//! ```
//! `version` reads only the magic, format and metadata.
use crate::record::StoredSession;

pub(crate) const MAGIC: &[u8; 8] = b"SHOALSS\0";
/// The file format this shoal writes and reads.
pub const FORMAT: u16 = 1;
/// Magic + format + meta_len: what to read before the metadata.
pub(crate) const PREFIX_LEN: usize = 8 + 2 + 4;
const NO_OWNER: u16 = u16::MAX;

/// Encode a whole file.
pub(crate) fn encode(s: &StoredSession) -> Vec<u8> {
    let mut meta = Vec::with_capacity(64 + s.app.len() + s.id.len());
    meta.extend_from_slice(&s.version.to_be_bytes());
    meta.push(u8::from(s.valid));
    meta.extend_from_slice(&s.max_inactive_s.to_be_bytes());
    meta.extend_from_slice(&s.last_access_ms.to_be_bytes());
    put_str(&mut meta, &s.app);
    put_str(&mut meta, &s.id);
    match &s.owner {
        // Owner names are node names (short); longer ones are cut at a char boundary.
        Some(o) => put_str(&mut meta, o),
        None => meta.extend_from_slice(&NO_OWNER.to_be_bytes()),
    }
    let mut out = Vec::with_capacity(PREFIX_LEN + meta.len() + 8 + s.data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_be_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&(s.data.len() as u64).to_be_bytes());
    out.extend_from_slice(&s.data);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(usize::from(NO_OWNER - 1));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// Check the prefix; returns the metadata length.
pub(crate) fn decode_prefix(prefix: &[u8]) -> Result<usize, String> {
    if prefix.len() < PREFIX_LEN || &prefix[..8] != MAGIC {
        return Err("not a shoal session file (bad magic)".into());
    }
    let format = u16::from_be_bytes([prefix[8], prefix[9]]);
    if format != FORMAT {
        return Err(format!(
            "session file format {format}; this shoal reads format {FORMAT}"
        ));
    }
    Ok(u32::from_be_bytes([prefix[10], prefix[11], prefix[12], prefix[13]]) as usize)
}

/// Decode the metadata into a record without data.
pub(crate) fn decode_meta(meta: &[u8]) -> Result<StoredSession, String> {
    let mut r = Reader(meta);
    let version = r.u64()?;
    let valid = r.take(1)?[0] != 0;
    let max_inactive_s = r.u64()? as i64;
    let last_access_ms = r.u64()? as i64;
    let app = r.string()?.ok_or("app missing")?;
    let id = r.string()?.ok_or("id missing")?;
    let owner = r.string()?;
    Ok(StoredSession {
        id,
        app,
        version,
        valid,
        max_inactive_s,
        last_access_ms,
        owner,
        data: Vec::new(),
    })
}

/// Decode a whole file.
pub(crate) fn decode(bytes: &[u8]) -> Result<StoredSession, String> {
    let meta_len = decode_prefix(bytes)?;
    let mut r = Reader(&bytes[PREFIX_LEN..]);
    let mut s = decode_meta(r.take(meta_len)?)?;
    let data_len = usize::try_from(r.u64()?).map_err(|_| "data length overflows")?;
    s.data = r.take(data_len)?.to_vec();
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the data", r.0.len()));
    }
    Ok(s)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "truncated: wanted {n} more bytes, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<Option<String>, String> {
        let b = self.take(2)?;
        let len = u16::from_be_bytes([b[0], b[1]]);
        if len == NO_OWNER {
            return Ok(None);
        }
        let raw = self.take(usize::from(len))?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| "a name is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredSession {
        StoredSession {
            id: "ABC".into(),
            app: "/shop".into(),
            version: 7,
            valid: true,
            max_inactive_s: 1800,
            last_access_ms: 1_700_000_000_000,
            owner: Some("node1".into()),
            data: vec![0, 1, 2, 255],
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let s = sample();
        let bytes = encode(&s);
        assert_eq!(decode(&bytes), Ok(s.clone()));
        let none = StoredSession { owner: None, ..s };
        assert_eq!(decode(&encode(&none)), Ok(none));
        assert!(decode(&bytes[..bytes.len() - 1])
            .expect_err("damaged")
            .contains("truncated"));
        let mut future = bytes.clone();
        future[9] = 2;
        assert!(decode(&future).expect_err("damaged").contains("format 2"));
        assert!(decode(b"garbage garbage")
            .expect_err("damaged")
            .contains("magic"));
    }
}
