//! Certificates for TLS tests: a throw-away CA ([`TestCa`]) issuing server certificates
//! for `localhost` and `127.0.0.1`, and one HTTPS GET that reports the certificate the
//! server presented ([`https_get`]).
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A certificate authority living for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM (what a client's `--ca` file holds).
    pub cert_pem: String,
}

/// A server certificate issued by a [`TestCa`].
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// The leaf certificate, DER: compare with [`TlsReply::peer_leaf`].
    pub cert_der: Vec<u8>,
}

impl Issued {
    /// Writes the certificate and key files (replacing them: a renewal on disk).
    pub fn write(&self, cert: &Path, key: &Path) {
        std::fs::write(cert, &self.cert_pem).expect("write the test certificate");
        std::fs::write(key, &self.key_pem).expect("write the test key");
    }
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes the CA certificate (PEM) to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.cert_pem).expect("write the test CA");
    }

    /// A server certificate for `localhost` and `127.0.0.1` with common name `cn` (each
    /// call gets a fresh key and serial).
    pub fn issue(&self, cn: &str) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().expect("dns name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }
}

/// What one HTTPS GET got.
#[derive(Debug)]
pub struct TlsReply {
    /// Status line and headers.
    pub head: String,
    pub body: String,
    /// The leaf certificate the server presented, DER.
    pub peer_leaf: Vec<u8>,
}

impl TlsReply {
    pub fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// One `GET path` over TLS to `addr` (server name `localhost`), trusting only the CA
/// certificates in the PEM text `ca_pem`; `Connection: close`, the answer read to its end.
/// A certificate the CA did not sign is an `Err` naming the TLS failure.
#[allow(deprecated)] // ring's provider, as shoal-tls (no aws-lc-rs C build)
pub async fn https_get(addr: SocketAddr, ca_pem: &str, path: &str) -> std::io::Result<TlsReply> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(c.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name =
        rustls::pki_types::ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut tls = connector.connect(name, tcp).await?;
    let peer_leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw).await {
        Ok(_) => {}
        // A server closing without close_notify after a complete answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok(TlsReply {
        head: head.to_owned(),
        body: body.to_owned(),
        peer_leaf,
    })
}
