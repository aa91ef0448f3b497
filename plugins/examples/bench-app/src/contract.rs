//! The servlet's cases. Attribute values are bytes: the counter is stored as ASCII digits,
//! `/set` payloads are letters, so `/get` can tell them apart like the servlet's
//! `instanceof` does.
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::valve::{Request, Session};

const MAX_SET_SIZE: usize = 16 * 1024 * 1024;

pub fn serve(path: &str, req: &Request, session: &Session, node: &str) -> (u16, String) {
    match path {
        "/counter" => {
            let id = session.create();
            let n = session
                .get("counter")
                .and_then(|v| parse_int(&v))
                .unwrap_or(0)
                + 1;
            session.set("counter", n.to_string().as_bytes());
            (200, format!("counter={n} session={id} node={node}"))
        }
        "/set" => {
            let key = param(req, "key", "data");
            let size = match param(req, "size", "0").parse::<usize>() {
                Ok(size) if size <= MAX_SET_SIZE => size,
                _ => return (400, "error=bad-size".to_string()),
            };
            let id = session.create();
            session.set(&key, &payload(size));
            (
                200,
                format!("set={key} size={size} session={id} node={node}"),
            )
        }
        "/get" => get(req, session, node),
        "/invalidate" => {
            let had = session.id().is_some();
            if had {
                session.invalidate();
            }
            (200, format!("invalidated={had} node={node}"))
        }
        "/stats" => (200, stats(node)),
        other => (404, format!("error=unknown-path path={other}")),
    }
}

fn get(req: &Request, session: &Session, node: &str) -> (u16, String) {
    let key = param(req, "key", "counter");
    let Some(id) = session.id() else {
        return (404, format!("error=no-session node={node}"));
    };
    match session.get(&key) {
        None => (404, format!("error=no-attribute session={id} node={node}")),
        Some(v) => {
            match parse_int(&v) {
                Some(n) => (200, format!("key={key} value={n} session={id} node={node}")),
                None => {
                    let intact = v == payload(v.len());
                    let (size, crc) = (v.len(), crc32(&v));
                    (200, format!("key={key} size={size} crc={crc} intact={intact} session={id} node={node}"))
                }
            }
        }
    }
}

fn stats(node: &str) -> String {
    let heap = heap_bytes();
    format!(
        "node={node} activeSessions={} members={} heapUsedMiB={} heapUsedKiB={} heapCommittedMiB={}",
        host::active_sessions(),
        host::members().len(),
        heap >> 20,
        heap >> 10,
        heap >> 20
    )
}

/// The instance's linear memory: the closest thing to the servlet's heap figure.
fn heap_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

fn param(req: &Request, name: &str, default: &str) -> String {
    match req.param(name) {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => default.to_string(),
    }
}

fn parse_int(v: &[u8]) -> Option<i64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The servlet's payload: `abc…zabc…` of the given size.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// CRC-32 (IEEE), as `java.util.zip.CRC32` prints it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_java() {
        // CRC32 of "abc" (java.util.zip.CRC32 prints 891568578).
        assert_eq!(crc32(b"abc"), 891_568_578);
        assert_eq!(payload(28), b"abcdefghijklmnopqrstuvwxyzab".to_vec());
    }

    #[test]
    fn ints_and_payloads_are_told_apart() {
        assert_eq!(parse_int(b"42"), Some(42));
        assert_eq!(parse_int(&payload(3)), None);
        assert_eq!(parse_int(b""), None);
    }
}
