//! `Listener`: a bound TCP listener that hands out plain or TLS streams, so the HTTP front
//! and the admin API run one accept loop whatever the config says.
//!
//! TLS handshakes run in their own tasks (a slow or silent client never holds up the
//! accept loop) and finished streams queue for `accept`. A client that speaks plain HTTP
//! to a TLS listener gets a `400` saying to use `https://`, instead of a silent close.
use crate::error::TlsError;
use crate::files::TlsFiles;
use crate::reload::ReloadingCert;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::{server, TlsStream};

/// A client has this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 256;
/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A TLS server setup: the reloading certificate and the acceptor built on it.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    cert: Arc<ReloadingCert>,
    /// The config table, for errors and the plain-HTTP hint (`[admin.tls]`).
    what: String,
}

impl ServerTls {
    /// Loads `files` (an error names the file) and builds a server config offering
    /// HTTP/1.1 over TLS 1.2 and 1.3, with the ring provider.
    pub fn load(files: &TlsFiles, what: &str) -> Result<Self, TlsError> {
        let cert = Arc::new(ReloadingCert::load(files.clone(), what)?);
        let mut config = rustls::ServerConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert,
            what: what.into(),
        })
    }

    /// The certificate in service (tests and the admin API can show it).
    pub fn certificate(&self) -> Arc<ReloadingCert> {
        self.cert.clone()
    }
}

/// A listener of the HTTP front or the admin API.
pub enum Listener {
    Plain(TcpListener),
    Tls(TlsListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Plain(l)
    }
}

impl Listener {
    /// `tls` given: every connection is a TLS one; none: plain TCP.
    pub fn new(listener: TcpListener, tls: Option<ServerTls>) -> io::Result<Self> {
        Ok(match tls {
            None => Listener::Plain(listener),
            Some(tls) => Listener::Tls(TlsListener::start(listener, tls)?),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Plain(l) => l.local_addr(),
            Listener::Tls(l) => Ok(l.local),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Listener::Tls(_))
    }

    /// The next connection, with `TCP_NODELAY` set. Accept errors (out of file
    /// descriptors and the like) are logged and retried after a pause, never returned.
    pub async fn accept(&mut self) -> (Stream, SocketAddr) {
        match self {
            Listener::Plain(l) => {
                let (s, addr) = accept_tcp(l).await;
                (Stream::Plain(s), addr)
            }
            Listener::Tls(l) => match l.accepted.recv().await {
                Some((s, addr)) => (Stream::Tls(Box::new(TlsStream::Server(s))), addr),
                // The accept task is gone (it only ends when aborted): nothing more comes.
                None => std::future::pending().await,
            },
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        Listener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Listener::local_addr(self)
    }
}

async fn accept_tcp(l: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match l.accept().await {
            Ok((s, addr)) => {
                let _ = s.set_nodelay(true);
                return (s, addr);
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The TLS side: a task accepts TCP connections and runs each handshake in its own task.
pub struct TlsListener {
    local: SocketAddr,
    accepted: mpsc::Receiver<(server::TlsStream<TcpStream>, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsListener {
    fn start(listener: TcpListener, tls: ServerTls) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, addr) = accept_tcp(&listener).await;
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tcp, &tls, local)).await
                    {
                        Ok(Some(stream)) => {
                            let _ = tx.send((stream, addr)).await;
                        }
                        Ok(None) => {}
                        Err(_) => tracing::debug!(%addr, "{}: TLS handshake timed out", tls.what),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            accepted,
            task,
        })
    }
}

/// The handshake, or the plain-HTTP hint and `None`.
async fn handshake(
    tcp: TcpStream,
    tls: &ServerTls,
    local: SocketAddr,
) -> Option<server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(1) if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() => {
            answer_plain_http(tcp, tls, local).await;
            return None;
        }
        Ok(1) => {}
        _ => return None, // closed before sending anything
    }
    let peer = tcp.peer_addr().ok();
    match tls.acceptor.accept(tcp).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::debug!(?peer, "{}: TLS handshake failed: {e}", tls.what);
            None
        }
    }
}

/// `400` to a plain HTTP request on a TLS port, then close. The request is read first so
/// that closing does not reset the connection before the client reads the answer.
async fn answer_plain_http(mut tcp: TcpStream, tls: &ServerTls, local: SocketAddr) {
    let mut buf = vec![0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut buf)).await;
    let body = format!(
        "This port serves HTTPS only ({} is set): use https://{local}/\n",
        tls.what
    );
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(answer.as_bytes()).await;
    let _ = tcp.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// A connection: plain TCP or TLS over TCP, accepted by a [`Listener`] (TLS server side)
/// or opened by a client such as the balancer (TLS client side).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
