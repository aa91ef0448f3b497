//! A network cut between the balancer and one node: a TCP forwarder on its own port that
//! passes connections to the node until [`Cut::cut`], which closes its listener (new
//! connections are refused) and every connection it carries (the balancer's pooled
//! keep-alive connections break), and [`Cut::restore`], which listens again on the same
//! port. The node keeps running the whole time, with whatever it holds in memory: the
//! balancer's view of it is all that changes (seed 000's scenario (a)).
use crate::free_port;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::{AbortHandle, JoinHandle};

pub struct Cut {
    rt: Runtime,
    port: u16,
    target: String,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Cut {
    /// Forwards a fresh loopback port to `target` (`host:port`).
    pub fn open(target: &str) -> Cut {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime for the cut forwarder");
        let mut c = Cut {
            rt,
            port: free_port(),
            target: target.to_string(),
            accept: None,
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        c.restore();
        c
    }

    /// `127.0.0.1:PORT`: the address to give the balancer for this node.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Listens again (on the same port) and forwards new connections.
    pub fn restore(&mut self) {
        if self.accept.is_some() {
            return;
        }
        let addr = self.addr();
        let listener = self
            .rt
            .block_on(TcpListener::bind(&addr))
            .unwrap_or_else(|e| panic!("cut forwarder: cannot listen on {addr}: {e}"));
        let (target, conns) = (self.target.clone(), self.conns.clone());
        self.accept = Some(self.rt.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let task = tokio::spawn(async move {
                    // The node is down: close the balancer's connection before any byte.
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                if let Ok(mut v) = conns.lock() {
                    v.retain(|h| !h.is_finished());
                    v.push(task.abort_handle());
                }
            }
        }));
    }

    /// Refuses new connections and breaks every open one; returns once the port is closed.
    pub fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            // The listener is dropped with the task: wait for it, so the cut is in effect.
            let _ = self.rt.block_on(accept);
        }
        let open: Vec<AbortHandle> = self
            .conns
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for h in open {
            h.abort();
        }
    }
}
