//! `StaticFiles`: a directory of files served under a context path, in front of its
//! pipeline. Only the files found when it was scanned are served (a fixed index, so a path
//! can never reach outside the directory and a file added later is not served); each has an
//! ETag made of its sha256, so a client revalidating an unchanged file gets `304 Not
//! Modified`, on any node (the digest is the same everywhere) and across redeploys that
//! did not change the file. GET and HEAD of an indexed file are answered here (content type
//! by extension, ranges and `If-Modified-Since` by `tower_http`'s `ServeFile`); every other
//! request, and a path the index does not hold, goes to the pipeline (the application).
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::future::BoxFuture;
use http::header::{ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Service, ServiceExt};
use tower_http::services::ServeFile;

/// The files of a directory with their ETags (cheap to clone).
#[derive(Clone, Debug)]
pub struct StaticFiles {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    /// Relative path with `/` separators (`css/site.css`) → quoted ETag.
    files: HashMap<String, HeaderValue>,
}

/// Files a directory request (`/`, `/docs/`) answers with.
const INDEX: &str = "index.html";

impl StaticFiles {
    /// Indexes every regular file under `root` (recursively) with the sha256 of its bytes
    /// as its ETag. Symbolic links are not followed (neither served nor listed). The error
    /// names the file or directory that could not be read.
    pub fn scan(root: &Path) -> Result<StaticFiles, String> {
        let meta = std::fs::metadata(root).map_err(|e| {
            format!(
                "static files directory {}: {e} (it must exist and be a directory)",
                root.display()
            )
        })?;
        if !meta.is_dir() {
            return Err(format!(
                "static files directory {} is not a directory",
                root.display()
            ));
        }
        let mut files = HashMap::new();
        let mut dirs = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, prefix)) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue; // not UTF-8: no URL path names it
                };
                let kind = entry
                    .file_type()
                    .map_err(|e| format!("cannot stat {}: {e}", entry.path().display()))?;
                let rel = format!("{prefix}{name}");
                if kind.is_dir() {
                    dirs.push((entry.path(), format!("{rel}/")));
                } else if kind.is_file() {
                    let etag = etag_of(&entry.path())?;
                    files.insert(rel, etag);
                }
            }
        }
        Ok(StaticFiles {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                files,
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// How many files are served.
    pub fn len(&self) -> usize {
        self.inner.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.files.is_empty()
    }

    /// The ETag of the file at `rel` (`css/site.css`), if it is served.
    pub fn etag(&self, rel: &str) -> Option<&str> {
        self.inner.files.get(rel).and_then(|v| v.to_str().ok())
    }

    /// The indexed file a request path (relative to the context, `/css/site.css`, percent-
    /// encoded) names: the file itself, or `index.html` under a path ending in `/`.
    fn lookup(&self, path: &str) -> Option<(String, &HeaderValue)> {
        let decoded = percent_decode(path.trim_start_matches('/'))?;
        let rel = if decoded.is_empty() || decoded.ends_with('/') {
            format!("{decoded}{INDEX}")
        } else {
            decoded
        };
        self.inner.files.get(&rel).map(|etag| (rel, etag))
    }

    /// A service answering GET and HEAD of the indexed files, everything else by `fallback`.
    pub(crate) fn in_front_of(&self, fallback: Router) -> ServeStatic {
        ServeStatic {
            files: self.clone(),
            fallback,
        }
    }
}

/// `"<sha256 hex>"` of the file's bytes, read in bounded pieces.
fn etag_of(path: &Path) -> Result<HeaderValue, String> {
    let fail = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(fail)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\""))
        .map_err(|e| format!("ETag of {}: {e}", path.display()))
}

/// `%XX` decoding of a URL path; `None` for a bad escape, non-UTF-8 bytes, or a path with
/// an empty, `.` or `..` segment (never in the index, so never served).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    let mut segments = s.split('/').collect::<Vec<_>>();
    if s.ends_with('/') {
        segments.pop();
    }
    if segments.iter().any(|p| matches!(*p, "." | "..")) {
        return None;
    }
    if !s.is_empty() && segments.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(s)
}

/// True when `If-None-Match` lists `etag` (weak comparison) or is `*`.
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(ours) = etag.to_str() else {
        return false;
    };
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == ours)
}

/// [`StaticFiles`] in front of a context's pipeline.
#[derive(Clone)]
pub(crate) struct ServeStatic {
    files: StaticFiles,
    fallback: Router,
}

impl Service<Request<Body>> for ServeStatic {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let fallback = self.fallback.clone();
        let read = matches!(*req.method(), Method::GET | Method::HEAD);
        let hit = match read {
            true => self.files.lookup(req.uri().path()),
            false => None,
        }
        .map(|(rel, etag)| (self.files.root().join(rel), etag.clone()));
        Box::pin(async move {
            let Some((path, etag)) = hit else {
                return fallback.oneshot(req).await;
            };
            if not_modified(req.headers(), &etag) {
                let mut res = StatusCode::NOT_MODIFIED.into_response();
                res.headers_mut().insert(ETAG, etag);
                return Ok(res);
            }
            // ServeFile answers I/O errors itself (404, 500); its error type is Infallible.
            let Ok(res) = ServeFile::new(&path).oneshot(req).await;
            let mut res = res.map(Body::new);
            if res.status().is_success() {
                res.headers_mut().insert(ETAG, etag);
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_to_index_keys_and_never_climb() {
        assert_eq!(
            percent_decode("css/site.css").as_deref(),
            Some("css/site.css")
        );
        assert_eq!(percent_decode("a%20b.txt").as_deref(), Some("a b.txt"));
        assert_eq!(percent_decode("docs/").as_deref(), Some("docs/"));
        assert_eq!(percent_decode("").as_deref(), Some(""));
        assert_eq!(percent_decode("%2e%2e/etc/passwd"), None);
        assert_eq!(percent_decode("a/../b"), None);
        assert_eq!(percent_decode("a//b"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let etag = HeaderValue::from_static("\"abc\"");
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &etag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(not_modified(&h, &etag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!not_modified(&h, &etag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, &etag));
    }

    #[test]
    fn a_scan_indexes_regular_files_with_their_sha256() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("css")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("css/site.css"), "body{}").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("index.html"), "hi").unwrap_or_else(|e| panic!("{e}"));
        let s = StaticFiles::scan(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.len(), 2);
        let want: String = Sha256::digest(b"body{}")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(s.etag("css/site.css"), Some(format!("\"{want}\"").as_str()));
        assert_eq!(s.lookup("/").map(|(r, _)| r).as_deref(), Some("index.html"));
        assert!(s.lookup("/css").is_none());
        let e = StaticFiles::scan(&dir.path().join("nope"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("nope"), "{e}");
    }
}
