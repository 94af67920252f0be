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
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::test_support::report;

    fn emitter(server: &MockServer, timeout: Duration) -> WebhookEmitter {
        let headers = vec![("Authorization".into(), "Bearer s3cret".into())];
        WebhookEmitter::new(
            "hook",
            &format!("{}/hooks/alerts", server.uri()),
            headers,
            timeout,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn webhook_posts_the_report_json_with_idempotency_and_configured_headers() {
        let server = MockServer::start().await;
        let sent = report("rep-1", 2, "test", "192.0.2.1");
        Mock::given(method("POST"))
            .and(path("/hooks/alerts"))
            .and(header("content-type", "application/json"))
            .and(header("idempotency-key", "rep-1:2"))
            .and(header("x-alertresponder-attempt", "1"))
            .and(header("authorization", "Bearer s3cret"))
            .and(body_json(&sent))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        emitter(&server, Duration::from_secs(5))
            .emit(&sent, 1)
            .await
            .unwrap();
        let requests = server.received_requests().await.unwrap_or_default();
        assert_eq!(requests.len(), 1);
        let user_agent = requests[0].headers.get("user-agent").unwrap();
        assert_eq!(
            user_agent,
            concat!("alertresponder/", env!("CARGO_PKG_VERSION"))
        );
        let received: Report = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(received, sent);
    }

    #[tokio::test]
    async fn webhook_answering_500_fails_with_the_status_and_body() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("database is down"))
            .mount(&server)
            .await;
        let err = emitter(&server, Duration::from_secs(5))
            .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PluginError::Failed(format!("HTTP 500 from {}: database is down", server.uri()))
        );
    }

    #[tokio::test]
    async fn webhook_error_body_is_cut_to_512_bytes() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503).set_body_string("e".repeat(100_000)))
            .mount(&server)
            .await;
        let err = emitter(&server, Duration::from_secs(5))
            .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap_err();
        let PluginError::Failed(message) = err else {
            panic!("expected a failure, got {err:?}");
        };
        assert!(message.starts_with("HTTP 503 from "), "{message}");
        assert!(
            message.ends_with(&format!(": {}", "e".repeat(512))),
            "{message}"
        );
    }

    #[tokio::test]
    async fn webhook_slower_than_its_timeout_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let timeout = Duration::from_millis(200);
        let err = emitter(&server, timeout)
            .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap_err();
        assert_eq!(err, PluginError::TimedOut(timeout));
    }

    #[tokio::test]
    async fn webhook_that_cannot_be_reached_fails_without_its_path() {
        // Bind then drop a listener: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/secret-token");
        let hook = WebhookEmitter::new("hook", &url, vec![], Duration::from_secs(5)).unwrap();
        let err = hook
            .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap_err();
        let PluginError::Failed(message) = err else {
            panic!("expected a failure, got {err:?}");
        };
        assert!(
            message.starts_with(&format!("POST to http://127.0.0.1:{port} failed")),
            "{message}"
        );
        assert!(!message.contains("secret-token"), "{message}");
    }

    #[test]
    fn invalid_url_or_header_is_a_configuration_error() {
        let timeout = Duration::from_secs(1);
        let err = WebhookEmitter::new("hook", "not a url", vec![], timeout).unwrap_err();
        assert!(
            matches!(err, PluginConfigError::InvalidUrl { .. }),
            "{err:?}"
        );
        let err = WebhookEmitter::new("hook", "file:///etc/passwd", vec![], timeout).unwrap_err();
        assert!(
            matches!(err, PluginConfigError::InvalidUrl { .. }),
            "{err:?}"
        );
        let headers = vec![("Bad Header".into(), "x".into())];
        let err =
            WebhookEmitter::new("hook", "https://example.com/", headers, timeout).unwrap_err();
        assert!(
            matches!(err, PluginConfigError::InvalidHeader { ref header, .. } if header == "Bad Header")
        );
        let headers = vec![("X-Token".into(), "line\nbreak".into())];
        let err =
            WebhookEmitter::new("hook", "https://example.com/", headers, timeout).unwrap_err();
        assert!(
            matches!(err, PluginConfigError::InvalidHeader { .. }),
            "{err:?}"
        );
    }
}
