//! A minimal HTTP/1.1 client for tests: one GET per fresh connection (`Connection: close`),
//! the answer kept as sent (the head verbatim, so header spelling can be asserted), and the
//! session cookie it set.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the blocking client waits for a connection to write or read.
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(5);

/// One answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// Status line and headers as received.
    pub head: String,
    pub status: u16,
    pub body: String,
    /// The first `Set-Cookie` value, whole (`JSESSIONID=<id>.<route>; Path=/app; HttpOnly`).
    pub set_cookie: Option<String>,
    /// `JSESSIONID=<id>.<route>` of a `Set-Cookie`, ready to send back as a `Cookie`.
    pub cookie: Option<String>,
}

impl Reply {
    /// The value of token `key=` in a one-line `k=v k=v` body (the bench app's answers).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body
            .split_whitespace()
            .find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// The first header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// `<id>.<route>` of the session cookie this answer set.
    pub fn session_id(&self) -> Option<String> {
        let id = self.cookie.as_deref()?.strip_prefix("JSESSIONID=")?;
        Some(id.to_owned())
    }
}

/// `JSESSIONID=<id>.<route>` of a `Set-Cookie` value; `None` for any other cookie.
pub fn session_cookie(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    pair.starts_with("JSESSIONID=").then(|| pair.to_owned())
}

/// `GET path` on a fresh connection to `addr`, presenting `cookie` (a whole `Cookie` header
/// value, e.g. `JSESSIONID=<id>.<route>`) and `headers`.
pub async fn get(
    addr: &str,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.write_all(request(addr, path, cookie, headers).as_bytes())
        .await
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .await
        .map_err(|e| format!("read from {addr}: {e}"))?;
    parse(&raw)
}

/// [`get`] for tests without a runtime; each read and write waits at most 5 s.
pub fn get_blocking(
    addr: &str,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(BLOCKING_TIMEOUT));
    let _ = s.set_write_timeout(Some(BLOCKING_TIMEOUT));
    s.write_all(request(addr, path, cookie, headers).as_bytes())
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    parse(&raw)
}

fn request(addr: &str, path: &str, cookie: Option<&str>, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

fn parse(raw: &[u8]) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {text:?}"))?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let set_cookies = head.lines().filter_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("set-cookie").then(|| v.trim())
    });
    let (mut set_cookie, mut cookie) = (None, None);
    for v in set_cookies {
        set_cookie.get_or_insert_with(|| v.to_owned());
        if cookie.is_none() {
            cookie = session_cookie(v);
        }
    }
    Ok(Reply {
        head: head.to_owned(),
        status,
        body: body.to_owned(),
        set_cookie,
        cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_as_sent() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
                    Set-Cookie: JSESSIONID=AB12.node1; Path=/app; HttpOnly\r\n\r\n\
                    counter=1 node=node1\n";
        let r = parse(raw).expect("parses");
        assert_eq!(r.status, 200);
        assert_eq!(r.field("counter"), Some("1"));
        assert_eq!(r.field("count"), None);
        assert_eq!(r.cookie.as_deref(), Some("JSESSIONID=AB12.node1"));
        assert_eq!(r.session_id().as_deref(), Some("AB12.node1"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert!(r.head.contains("\r\nSet-Cookie: JSESSIONID="));
    }

    #[test]
    fn only_the_session_cookie_is_kept() {
        assert_eq!(session_cookie("other=1; Path=/"), None);
        assert_eq!(
            session_cookie("JSESSIONID=X.n2; Path=/app").as_deref(),
            Some("JSESSIONID=X.n2")
        );
    }

    #[test]
    fn a_truncated_answer_is_an_error() {
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
