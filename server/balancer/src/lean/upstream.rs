//! A kept-alive connection from one client connection to one backend, plain or TLS
//! (`backend_ca`).

use std::io;
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use shoal_tls::tokio_rustls::{TlsConnector, TlsStream};
use shoal_tls::Stream as BackendStream;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use crate::backend::BackendState;
use crate::retry::Failure;

/// A kept-alive connection to one backend, owned by one client connection.
pub(super) struct Upstream {
    pub backend: Arc<BackendState>,
    pub stream: BackendStream,
    /// Response bytes read from the backend.
    pub buf: Vec<u8>,
}

impl Upstream {
    /// Connects to `backend` within `timeout`; a failure means nothing was sent.
    /// With `tls` (the backend is HTTPS), the handshake counts in the same `timeout`.
    pub(super) async fn connect(
        backend: &Arc<BackendState>,
        tls: Option<&TlsConnector>,
        timeout: Duration,
        buf_capacity: usize,
    ) -> Result<Upstream, Failure> {
        let connect = async {
            let tcp = TcpStream::connect(backend.authority.as_str()).await?;
            let _ = tcp.set_nodelay(true);
            match tls.filter(|_| backend.tls) {
                None => Ok::<_, io::Error>(BackendStream::Plain(tcp)),
                Some(tls) => {
                    let host = backend
                        .authority
                        .host()
                        .trim_matches(|c| c == '[' || c == ']');
                    let name = shoal_tls::rustls::pki_types::ServerName::try_from(host.to_owned())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                    let s = tls.connect(name, tcp).await?;
                    Ok(BackendStream::Tls(Box::new(TlsStream::Client(s))))
                }
            }
        };
        let stream = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let addr = &backend.authority;
                return Err(Failure::NotSent(format!("cannot connect to {addr}: {e}")));
            }
            Err(_) => {
                let ms = timeout.as_millis();
                let why = format!("no connection to {} within {ms} ms", backend.authority);
                return Err(Failure::NotSent(why));
            }
        };
        Ok(Upstream {
            backend: backend.clone(),
            stream,
            buf: Vec::with_capacity(buf_capacity),
        })
    }

    /// False if the backend closed the connection (or sent stray bytes) while it was idle.
    /// Costs no system call unless the socket became readable, which an idle one is not.
    pub(super) fn alive(&self) -> bool {
        let mut probe = [0u8; 1];
        match &self.stream {
            BackendStream::Plain(s) => {
                matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            // Peeked, not read: the bytes (a close_notify) belong to the TLS session.
            BackendStream::Tls(s) => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let mut buf = ReadBuf::new(&mut probe);
                s.get_ref().0.poll_peek(&mut cx, &mut buf).is_pending()
            }
        }
    }
}
