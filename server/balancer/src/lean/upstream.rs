//! A kept-alive connection from one client connection to one backend.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::backend::BackendState;
use crate::retry::Failure;

/// A kept-alive connection to one backend, owned by one client connection.
pub(super) struct Upstream {
    pub backend: Arc<BackendState>,
    pub stream: TcpStream,
    /// Response bytes read from the backend.
    pub buf: Vec<u8>,
}

impl Upstream {
    /// Connects to `backend` within `timeout`; a failure means nothing was sent.
    pub(super) async fn connect(
        backend: &Arc<BackendState>,
        timeout: Duration,
        buf_capacity: usize,
    ) -> Result<Upstream, Failure> {
        let connect = TcpStream::connect(backend.authority.as_str());
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
        let _ = stream.set_nodelay(true);
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
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}
