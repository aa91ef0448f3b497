//! `serve`: runs an [`HttpNode`]'s router on an already-bound listener (plain or TLS) until
//! shutdown.
use crate::node::HttpNode;
use std::future::Future;
use std::sync::Arc;

/// Serves `node` on `listener` until `shutdown` resolves, then lets open connections
/// finish their current request (at most 5 s). A `tokio::net::TcpListener` serves plain
/// HTTP; a [`shoal_tls::Listener`] made with a [`shoal_tls::ServerTls`] serves HTTPS.
///
/// HTTP/1 response headers are written in Title-Case (`Set-Cookie`), as Tomcat does: header
/// names are case-insensitive, but some clients (wrk's Lua `headers["Set-Cookie"]`, used by
/// the benchmark harness) look them up case-sensitively.
pub async fn serve(
    listener: impl Into<shoal_tls::Listener>,
    node: Arc<HttpNode>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let router = node
        .router()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut listener = listener.into();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().title_case_headers(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Accept errors are retried inside; TLS handshakes finish before a stream comes.
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("http connection ended: {e}");
            }
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}
