//! `TlsError`: what can go wrong loading certificates, keys and CAs; every variant names
//! the file and says what to do.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: cannot read {file}: {source}; check the path and the file's permissions")]
    Read {
        what: String,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {file} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); give the certificate chain, leaf first")]
    NoCertificate { what: String, file: PathBuf },
    #[error("{what}: {file} is not a PEM private key ({reason}); give the key as PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM")]
    BadKey {
        what: String,
        file: PathBuf,
        reason: String,
    },
    #[error("{what}: the key {key} does not match the certificate {cert} ({reason}); give the key the certificate was issued for")]
    Mismatch {
        what: String,
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("{what}: {file} holds a certificate that cannot be used as a trust anchor ({reason})")]
    BadCa {
        what: String,
        file: PathBuf,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}
