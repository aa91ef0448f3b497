//! A small typed client of the admin API: bearer token, problem+json errors turned into
//! messages, uploads with a progress bar.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use futures::stream;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;

use shoal_admin::{dto::Event, ApiError};

/// What one poll of a node that may be going away got.
pub enum Polled<T> {
    Answer(T),
    /// No HTTP answer (refused, reset, timed out): why.
    Unreachable(String),
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// An error and its causes on one line (reqwest's own message hides the TLS reason).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Percent-encodes one path segment.
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// `ca`: the PEM file the admin API's certificate must chain to (`--ca`); without it,
    /// an `https://` base is checked against the system's trusted roots.
    pub fn new(base: &str, token: Option<String>, ca: Option<&Path>) -> anyhow::Result<Self> {
        // reqwest's own TLS setup (system roots) takes the process's default provider.
        shoal_tls::install_default_provider();
        #[allow(clippy::disallowed_methods)] // the provider is installed just above
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(ca) = ca {
            let tls = shoal_tls::client_config(ca, "--ca")?;
            builder = builder.tls_backend_preconfigured(tls);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn execute(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Response> {
        let res = req.send().await.map_err(|e| {
            let why = causes(&e);
            let hint = if why.contains("certificate") || why.contains("Certificate") {
                "; pass --ca FILE with the CA that signed the admin API's certificate"
            } else {
                "; is the node running and is --url right?"
            };
            anyhow!("cannot reach the admin API at {} ({why}){hint}", self.base)
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        Err(self.problem(res).await)
    }

    /// A problem+json answer as an error: the status, the text and, for a 409 on a
    /// deployment, its typed reason and the competing rollout.
    async fn problem(&self, res: Response) -> anyhow::Error {
        let status = res.status();
        let body = res.bytes().await.unwrap_or_default();
        let detail = serde_json::from_slice::<ApiError>(&body)
            .map(|p| describe(&p))
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
        let hint = match (status, &self.token) {
            (StatusCode::UNAUTHORIZED, None) => " (pass --token or set SHOAL_ADMIN_TOKEN)",
            _ => "",
        };
        anyhow!("{status}: {detail}{hint}")
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let res = self
            .execute(self.request(Method::GET, path).query(query))
            .await?;
        res.json()
            .await
            .with_context(|| format!("GET {path}: unexpected answer"))
    }

    /// GET whose body is meaningful whatever the status (readiness answers 503 with a body).
    pub async fn get_any_status<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let res = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {} ({e})", self.base))?;
        res.json()
            .await
            .with_context(|| format!("GET {path}: unexpected answer"))
    }

    /// GET that tells "no answer at all" (the node is gone) apart from an HTTP error.
    pub async fn poll<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Polled<T>> {
        let req = self
            .request(Method::GET, path)
            .timeout(Duration::from_secs(2));
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => return Ok(Polled::Unreachable(e.to_string())),
        };
        if !res.status().is_success() {
            return Err(self.problem(res).await);
        }
        match res.json().await {
            Ok(v) => Ok(Polled::Answer(v)),
            // The body broke off: the node closed the connection as it went away.
            Err(e) => Ok(Polled::Unreachable(e.to_string())),
        }
    }

    /// A call without body whose answer is JSON.
    pub async fn call<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        let res = self.execute(self.request(method.clone(), path)).await?;
        res.json()
            .await
            .with_context(|| format!("{method} {path}: unexpected answer"))
    }

    /// PUT with a JSON body whose answer is JSON.
    pub async fn put_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let bytes = serde_json::to_vec(body)?;
        let req = self
            .request(Method::PUT, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        let res = self.execute(req).await?;
        res.json()
            .await
            .with_context(|| format!("PUT {path}: unexpected answer"))
    }

    /// A call without body whose answer is empty (204).
    pub async fn send(&self, method: Method, path: &str) -> anyhow::Result<()> {
        self.execute(self.request(method, path)).await.map(drop)
    }

    /// Reads `/api/v1/events` and calls `on_event` per event, until `count` events or the end.
    pub async fn follow_events(
        &self,
        count: Option<u64>,
        mut on_event: impl FnMut(&Event),
    ) -> anyhow::Result<()> {
        let mut res = self
            .execute(self.request(Method::GET, "/api/v1/events"))
            .await?;
        let (mut buf, mut seen) = (String::new(), 0u64);
        while let Some(chunk) = res.chunk().await.context("the event stream broke off")? {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(event) = serde_json::from_str::<Event>(&data.join("\n")) {
                    on_event(&event);
                    seen += 1;
                    if count.is_some_and(|c| seen >= c) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Uploads `bytes` in 64 KiB chunks, showing a progress bar on stderr.
    pub async fn upload<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        bytes: Vec<u8>,
    ) -> anyhow::Result<T> {
        let total = bytes.len() as u64;
        let bar = ProgressBar::new(total);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("uploading");
        let chunks: Vec<Vec<u8>> = bytes.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
        let progress = bar.clone();
        let body = stream::iter(chunks.into_iter().map(move |c| {
            progress.inc(c.len() as u64);
            Ok::<_, std::io::Error>(c)
        }));
        let req = self
            .request(method.clone(), path)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(body));
        let result = self.execute(req).await;
        bar.finish_and_clear();
        let res = result?;
        res.json()
            .await
            .with_context(|| format!("{method} {path}: unexpected answer"))
    }

    /// PUTs a body stream of `len` bytes (the caller shows the progress) and reads the JSON
    /// answer.
    pub async fn put_stream<T, S>(
        &self,
        path: &str,
        query: &[(&str, String)],
        len: u64,
        body: S,
    ) -> anyhow::Result<T>
    where
        T: DeserializeOwned,
        S: futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static,
    {
        let req = self
            .request(Method::PUT, path)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body));
        let res = self.execute(req).await?;
        res.json()
            .await
            .with_context(|| format!("PUT {path}: unexpected answer"))
    }
}

/// The problem's text, then its typed reason if any (`[reason: deploy-in-progress;
/// competing rollout node1/…3, version 2, on node node1]`).
fn describe(p: &ApiError) -> String {
    let Some(reason) = p.reason else {
        return p.detail.clone();
    };
    let reason = serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{reason:?}"));
    let competing = p
        .competing
        .as_ref()
        .map(|c| {
            format!(
                "; competing rollout {}, version {}, on node {}",
                c.deploy,
                c.version.as_deref().unwrap_or("none (an undeploy)"),
                c.node
            )
        })
        .unwrap_or_default();
    format!("{} [reason: {reason}{competing}]", p.detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_admin::dto::{CompetingDeploy, ConflictReason};

    #[test]
    fn a_typed_conflict_is_printed_with_its_reason_and_competitor() {
        let mut p = ApiError::new(StatusCode::CONFLICT, "conflict", "app is being changed");
        assert_eq!(describe(&p), "app is being changed");
        p.reason = Some(ConflictReason::DeployInProgress);
        p.competing = Some(CompetingDeploy {
            deploy: "n1/7.3".into(),
            node: "n1".into(),
            version: Some("2".into()),
        });
        assert_eq!(
            describe(&p),
            "app is being changed [reason: deploy-in-progress; competing rollout n1/7.3, version 2, on node n1]"
        );
    }
}
