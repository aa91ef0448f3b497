//! `TlsFiles`, the `[http.tls]` / `[admin.tls]` config table, and reading its PEM files
//! into a rustls `CertifiedKey` (the key checked against the certificate).
use crate::error::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A listener's certificate chain and private key, both PEM files. Replacing either on
/// disk takes effect without a restart (see [`crate::ReloadingCert`]).
///
/// ```toml
/// [http.tls]
/// cert = "/etc/shoal/tls/fullchain.pem"   # leaf first, then intermediates
/// key = "/etc/shoal/tls/key.pem"          # PKCS#8, PKCS#1 or SEC1
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Relative paths are taken from `dir` (the config file's directory).
    pub fn relative_to(mut self, dir: &Path) -> Self {
        if self.cert.is_relative() {
            self.cert = dir.join(&self.cert);
        }
        if self.key.is_relative() {
            self.key = dir.join(&self.key);
        }
        self
    }

    /// Reads both files and checks that the key belongs to the leaf certificate. `what`
    /// names the config table in errors (`[http.tls]`).
    pub fn load(&self, what: &str) -> Result<CertifiedKey, TlsError> {
        let chain = read_certificates(&self.cert, what)?;
        let key_pem = read(&self.key, what)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
            what: what.into(),
            file: self.key.clone(),
            reason: e.to_string(),
        })?;
        CertifiedKey::from_der(chain, key, &crate::provider()).map_err(|e| TlsError::Mismatch {
            what: what.into(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason: e.to_string(),
        })
    }
}

fn read(file: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::Read {
        what: what.into(),
        file: file.to_owned(),
        source,
    })
}

/// Every certificate of a PEM file, in order; none is an error naming the file.
pub(crate) fn read_certificates(
    file: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(file, what)?;
    let no_cert = || TlsError::NoCertificate {
        what: what.into(),
        file: file.to_owned(),
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| no_cert())?;
    if certs.is_empty() {
        return Err(no_cert());
    }
    Ok(certs)
}
