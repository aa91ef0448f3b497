//! A streamed upload (`PUT /api/v1/deployments/{name}`): the body is written to a staging
//! file piece by piece while its sha256 is computed, never held whole in memory. Over the
//! size limit, or cut short, it stops and leaves nothing behind.
//!
//! The request's task only receives the pieces; hashing and writing run on a thread of
//! their own at the farm's low priority (nice 10), fed through a short queue. On a busy
//! node that thread yields the CPU to serving requests, its queue fills and the upload
//! slows down (TCP pushes back on the client) instead of the requests.
use futures::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use shoal_farm::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("the artifact exceeds the upload limit of {limit} bytes ([farm] max_upload_bytes on this node); raise the limit or shrink the artifact")]
    TooLarge { limit: u64 },
    #[error("the upload was cut short after {received} bytes ({why}); nothing was deployed, send it again")]
    Truncated { received: u64, why: String },
    #[error("{0}")]
    Storage(String),
}

/// Pieces of the body waiting for the writer thread (hyper's pieces are at most a few
/// tens of KiB: the queue holds well under a MiB).
const QUEUE_PIECES: usize = 16;

/// Receives `body` into `staging/upload-*` under `dir`, then moves it to the staging file
/// of its digest (what the coordinator's `Verify` checks). Returns digest and size.
pub async fn receive<S, E>(
    dir: &Path,
    tmp: PathBuf,
    mut body: S,
    limit: u64,
) -> Result<(Digest, u64), UploadError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (pieces, rx) = mpsc::channel(QUEUE_PIECES);
    let (done_tx, done) = oneshot::channel();
    let at = tmp.clone();
    std::thread::Builder::new()
        .name("shoal-farm-upload".into())
        .spawn(move || {
            super::lower_priority();
            let _ = done_tx.send(write_and_hash(&at, rx));
        })
        .map_err(|e| UploadError::Storage(format!("cannot start the upload writer: {e}")))?;
    let mut len = 0u64;
    let received = loop {
        match body.next().await {
            None => break Ok(()),
            Some(Err(e)) => {
                break Err(UploadError::Truncated {
                    received: len,
                    why: e.to_string(),
                })
            }
            Some(Ok(piece)) => {
                len += piece.len() as u64;
                if len > limit {
                    break Err(UploadError::TooLarge { limit });
                }
                if pieces.send(piece).await.is_err() {
                    // The writer stopped on an error: it is reported below.
                    break Ok(());
                }
            }
        }
    };
    drop(pieces);
    let written = done.await.unwrap_or_else(|_| {
        Err(UploadError::Storage(format!(
            "the upload writer of {} stopped",
            tmp.display()
        )))
    });
    let result = received.and(written);
    let (digest, written_len) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    let len = written_len;
    let hex = digest.to_string();
    let content = dir.join("content").join(&hex);
    if tokio::fs::try_exists(&content).await.unwrap_or(false) {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Ok((digest, len));
    }
    let staging = dir.join("staging").join(&hex);
    tokio::fs::rename(&tmp, &staging).await.map_err(|e| {
        UploadError::Storage(format!(
            "cannot move the upload to {}: {e}",
            staging.display()
        ))
    })?;
    Ok((digest, len))
}

/// The writer thread: creates `at`, appends each piece and hashes it until the queue closes.
fn write_and_hash(
    at: &Path,
    mut rx: mpsc::Receiver<bytes::Bytes>,
) -> Result<(Digest, u64), UploadError> {
    let file = std::fs::File::create(at)
        .map_err(|e| UploadError::Storage(format!("cannot create {}: {e}", at.display())))?;
    let mut out = std::io::BufWriter::with_capacity(256 << 10, file);
    let mut hash = Sha256::new();
    let mut len = 0u64;
    let failed =
        |e: std::io::Error| UploadError::Storage(format!("cannot write {}: {e}", at.display()));
    while let Some(piece) = rx.blocking_recv() {
        hash.update(&piece);
        out.write_all(&piece).map_err(failed)?;
        len += piece.len() as u64;
    }
    out.flush().map_err(failed)?;
    Ok((Digest(hash.finalize().into()), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(
        items: Vec<Result<&'static [u8], &'static str>>,
    ) -> impl Stream<Item = Result<bytes::Bytes, String>> + Unpin {
        futures::stream::iter(
            items
                .into_iter()
                .map(|r| r.map(bytes::Bytes::from_static).map_err(String::from)),
        )
    }

    #[tokio::test]
    async fn uploads_are_hashed_limited_and_cleaned_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _store = super::super::content::ContentStore::open(dir.path()).expect("open");
        let tmp = dir.path().join("staging/upload-a");
        let (d, n) = receive(
            dir.path(),
            tmp.clone(),
            pieces(vec![Ok(b"abc"), Ok(b"def")]),
            6,
        )
        .await
        .expect("fits");
        assert_eq!((d, n), (Digest::of(b"abcdef"), 6));
        assert!(dir.path().join("staging").join(d.to_string()).exists());

        let e = receive(
            dir.path(),
            tmp.clone(),
            pieces(vec![Ok(b"abc"), Ok(b"defg")]),
            6,
        )
        .await
        .expect_err("too large");
        assert_eq!(e, UploadError::TooLarge { limit: 6 });
        assert!(!tmp.exists(), "a refused upload leaves no file");

        let e = receive(
            dir.path(),
            tmp.clone(),
            pieces(vec![Ok(b"abc"), Err("reset")]),
            6,
        )
        .await
        .expect_err("truncated");
        assert!(e.to_string().contains("after 3 bytes"), "{e}");
        assert!(!tmp.exists(), "a truncated upload leaves no file");

        let (d, n) = receive(dir.path(), tmp.clone(), pieces(vec![]), 6)
            .await
            .expect("empty");
        assert_eq!((d, n), (Digest::of(b""), 0));
    }
}
