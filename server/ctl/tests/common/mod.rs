//! The admin API over a fresh in-memory twin on a real loopback port, for driving `shoal ctl`.
#![allow(dead_code)]

use std::sync::Arc;

use shoal_admin::{AdminConfig, MemoryBackend};

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const READ: &str = "test-read-token-0123456789";

pub fn config() -> AdminConfig {
    AdminConfig {
        admin_token: Some(ADMIN.into()),
        read_token: Some(READ.into()),
        ..AdminConfig::default()
    }
}

/// Smallest byte string the fake backend accepts as a component: `\0asm` + component layer.
pub fn component() -> Vec<u8> {
    let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
    c.extend_from_slice(&[0u8; 32]);
    c
}

/// The admin API over a fresh MemoryBackend on a real loopback port: its base URL, the
/// backend, and the sender that stops it.
pub async fn served() -> (String, Arc<MemoryBackend>, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let backend = Arc::new(MemoryBackend::new());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(shoal_admin::serve(
        listener,
        backend.clone(),
        config(),
        async move {
            let _ = rx.await;
        },
    ));
    (url, backend, tx)
}
