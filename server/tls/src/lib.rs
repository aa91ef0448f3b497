//! shoal-tls: TLS for shoal's listeners and clients, with rustls and the ring provider.
//!
//! - `files`: [`TlsFiles`], the `cert` / `key` table of `[http.tls]` and `[admin.tls]`,
//!   read into a certificate whose key is checked against it.
//! - `reload`: [`ReloadingCert`], the server certificate re-read when its files change
//!   (checked on a handshake, at most once per [`RELOAD_CHECK`]).
//! - `listener`: [`Listener`] (plain or TLS) and its [`Stream`]; handshakes off the accept
//!   loop, a `400` hint for plain HTTP sent to a TLS port.
//! - `client`: [`client_config`], trusting the CAs of one PEM file (`--ca`).
//! - `error`: [`TlsError`], naming the file concerned.
#![warn(unreachable_pub)]

mod client;
mod error;
mod files;
mod listener;
mod reload;

pub use client::{client_config, client_config_without_roots};
pub use error::TlsError;
pub use files::TlsFiles;
pub use listener::{Listener, ServerTls, Stream, TlsListener};
pub use reload::{ReloadingCert, RELOAD_CHECK};
// The versions callers must build against (reqwest takes a `rustls::ClientConfig`).
pub use rustls;
pub use tokio_rustls;

/// The crypto provider of every config: ring, named explicitly so that another crate
/// enabling aws-lc-rs in rustls does not make the process default ambiguous. (rustls
/// deprecates ring's provider for lacking post-quantum key exchange; aws-lc-rs would need
/// cmake and a long C build.)
#[allow(deprecated)]
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<std::sync::Arc<rustls::crypto::CryptoProvider>> =
        std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Makes [`provider`] the process's default crypto provider, once; a provider installed
/// earlier is kept. reqwest (built without a provider of its own) takes the default when it
/// builds a client, and panics if there is none: every process that builds one calls this
/// first.
pub fn install_default_provider() {
    // Err means a default was already installed: that one stays.
    let _ = rustls::crypto::CryptoProvider::install_default(provider().as_ref().clone());
}
