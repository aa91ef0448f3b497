//! Clients (`shoal ctl`, the balancer's backend connections): a rustls client config that
//! trusts the CA certificates of one PEM file, and nothing else.
use crate::error::TlsError;
use std::path::Path;

/// A client config trusting every certificate in `ca` (PEM); `what` names the flag or key
/// in errors (`--ca`, `[tls] ca`). HTTP/1.1 is offered by ALPN.
pub fn client_config(ca: &Path, what: &str) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::files::read_certificates(ca, what)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            what: what.into(),
            file: ca.to_owned(),
            reason: e.to_string(),
        })?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client config that trusts nothing: for a client that speaks TLS only once a CA is
/// configured (the balancer's hyper client without `backend_ca`).
pub fn client_config_without_roots() -> Result<rustls::ClientConfig, TlsError> {
    Ok(
        rustls::ClientConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    )
}
