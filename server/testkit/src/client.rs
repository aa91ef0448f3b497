//! The HTTP client of tests: reqwest, after installing the ring provider as the process's
//! default (reqwest is built without a provider of its own and panics without one).

/// A `reqwest::Client` usable in any test process.
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("reqwest client with the ring provider installed")
}

/// The builder behind [`http_client`], for tests that set timeouts or pools.
#[allow(clippy::disallowed_methods)]
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Err means a default was already installed: that one stays.
    #[allow(deprecated)]
    let _ =
        rustls::crypto::CryptoProvider::install_default(rustls::crypto::ring::default_provider());
    reqwest::Client::builder()
}
