//! Accept loops on dedicated threads, each with its own single-threaded tokio runtime.
//!
//! A client connection and the backend connections it owns live on one thread for their
//! whole life, so forwarding a request wakes no other thread: no work-stealing hand-offs,
//! no futex calls between the client's read and the backend's write. All threads accept on
//! the same listening socket; the kernel hands each connection to one of them.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::error::BalancerError;
use crate::state::Inner;

/// A running set of accept threads; `stop` ends them (see [`Workers::stop`]).
pub(crate) struct Workers {
    stop: watch::Sender<bool>,
    done: Vec<oneshot::Receiver<()>>,
}

impl Workers {
    /// Starts `threads` accept loops on `listener`.
    pub fn start(
        inner: &Arc<Inner>,
        listener: StdListener,
        threads: usize,
        grace: Duration,
    ) -> Result<Workers, BalancerError> {
        let (stop, stop_rx) = watch::channel(false);
        let mut done = Vec::with_capacity(threads);
        for n in 0..threads {
            let listener = listener.try_clone().map_err(|e| io_error("listener", e))?;
            let (inner, stop_rx) = (inner.clone(), stop_rx.clone());
            let (done_tx, done_rx) = oneshot::channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| io_error("runtime", e))?;
            std::thread::Builder::new()
                .name(format!("shoal-lb-{n}"))
                .spawn(move || {
                    runtime.block_on(accept_loop(inner, listener, stop_rx, grace));
                    drop(runtime); // closes whatever is still open after the grace period
                    let _ = done_tx.send(());
                })
                .map_err(|e| io_error("thread", e))?;
            done.push(done_rx);
        }
        Ok(Workers { stop, done })
    }

    /// Stops accepting, lets open requests finish (idle connections close at once) and
    /// waits until every thread is gone, which is at most `grace` later.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for done in std::mem::take(&mut self.done) {
            let _ = done.await;
        }
    }
}

impl Drop for Workers {
    /// A dropped `serve` future must not leave threads accepting connections.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn io_error(what: &str, e: std::io::Error) -> BalancerError {
    BalancerError::InvalidSetting {
        key: "listen",
        reason: format!("cannot start the balancer's {what}: {e}"),
    }
}

async fn accept_loop(
    inner: Arc<Inner>,
    listener: StdListener,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("balancer listener unusable on its accept thread: {e}");
            return;
        }
    };
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        while conns.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                conns.spawn(crate::lean::run(inner.clone(), stream, peer, stop.clone()));
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!("balancer accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("balancer shutdown: connections still open after {grace:?}, closing them");
    }
}
