//! An emitter that POSTs each published report to an HTTP endpoint.

use std::time::Duration;

use alertresponder_core::ports::Emitter;
use alertresponder_core::{PluginError, Report};
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use reqwest::{Client, Url};

use crate::error::PluginConfigError;

/// How much of an error response's body is kept in the error.
const ERROR_BODY_BYTES: usize = 512;

/// POSTs the [`Report`] JSON with an `Idempotency-Key` of `<report id>:<version>`, so that
/// the receiver can drop the duplicates that retries produce.
#[derive(Debug, Clone)]
pub struct WebhookEmitter {
    name: String,
    url: Url,
    /// Scheme, host and port only: the path or query of a webhook URL is often its secret.
    origin: String,
    headers: HeaderMap,
    timeout: Duration,
    client: Client,
}

impl WebhookEmitter {
    /// An emitter posting to the http(s) `url` with the extra `headers` (e.g. `Authorization`).
    pub fn new(
        name: impl Into<String>,
        url: &str,
        headers: Vec<(String, String)>,
        timeout: Duration,
    ) -> Result<Self, PluginConfigError> {
        let name = name.into();
        let bad_url = |message: String| PluginConfigError::InvalidUrl {
            name: name.clone(),
            url: url.to_string(),
            message,
        };
        let parsed = Url::parse(url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(bad_url("expected an http or https URL with a host".into()));
        }
        let mut map = HeaderMap::new();
        for (header, value) in headers {
            let bad_header = |message: String| PluginConfigError::InvalidHeader {
                name: name.clone(),
                header: header.clone(),
                message,
            };
            let key =
                HeaderName::from_bytes(header.as_bytes()).map_err(|e| bad_header(e.to_string()))?;
            let mut value = HeaderValue::from_str(&value).map_err(|e| bad_header(e.to_string()))?;
            value.set_sensitive(true);
            map.append(key, value);
        }
        let client = Client::builder()
            .timeout(timeout)
            // A redirected POST turns into a GET: report it as a failure instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PluginConfigError::HttpClient {
                name: name.clone(),
                message: error_chain(&e),
            })?;
        Ok(Self {
            origin: parsed.origin().ascii_serialization(),
            url: parsed,
            name,
            headers: map,
            timeout,
            client,
        })
    }
}

#[async_trait]
impl Emitter for WebhookEmitter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        let body = serde_json::to_vec(report)
            .map_err(|e| PluginError::Failed(format!("cannot encode the report: {e}")))?;
        // Ours come last and win over a configured header of the same name.
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("alertresponder/", env!("CARGO_PKG_VERSION"))),
        );
        for (key, value) in [
            (
                "idempotency-key",
                format!("{}:{}", report.id, report.version),
            ),
            ("x-alertresponder-attempt", attempt.to_string()),
        ] {
            let value = HeaderValue::from_str(&value)
                .map_err(|e| PluginError::Failed(format!("invalid {key} header: {e}")))?;
            headers.insert(HeaderName::from_static(key), value);
        }
        let sent = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(PluginError::TimedOut(self.timeout)),
            Err(e) => {
                return Err(PluginError::Failed(format!(
                    "POST to {} failed: {}",
                    self.origin,
                    error_chain(&e.without_url())
                )))
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let mut body = Vec::new();
        // The body is only a hint: stop at the bound, and a read error ends it.
        while body.len() < ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(ERROR_BODY_BYTES);
        Err(PluginError::Failed(format!(
            "HTTP {} from {}: {}",
            status.as_u16(),
            self.origin,
            String::from_utf8_lossy(&body).trim()
        )))
    }
}

/// An error with its causes, which `reqwest` keeps out of its own message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
