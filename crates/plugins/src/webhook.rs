//! An emitter that POSTs each published report to an HTTP endpoint, signed when the
//! table has a `signing_secret`.
//!
//! The request: the [`Report`] JSON, `Content-Type: application/json`,
//! `Idempotency-Key: <report id>:<version>` (the same for every retry of a version, so a
//! receiver drops duplicates), `X-AlertResponder-Attempt`, the configured headers, and
//! with a signing secret (as Stripe and Slack sign theirs):
//!
//! ```text
//! X-AlertResponder-Timestamp: 1790000000                      (unix seconds, at sending)
//! X-AlertResponder-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```
//!
//! A receiver recomputes the HMAC over the timestamp header, a `.` and the raw body
//! bytes, compares it in constant time, and refuses a timestamp more than
//! [`WebhookEmitter::SIGNATURE_TOLERANCE`] away from its clock (a captured request
//! cannot be replayed later); [`WebhookEmitter::verify`] is that check. Each attempt
//! is signed afresh.
//!
//! The answer means what it means for the built-in emitters ([`crate::emit::http`]):
//! 2xx delivered, 429 waits for `Retry-After`, 408/5xx and network errors are retried,
//! 3xx (never followed) and other 4xx are rejected. Errors name only the URL's origin:
//! the path of a webhook URL is often its secret.

use std::fmt;
use std::time::Duration;

use alertresponder_core::ports::Emitter;
use alertresponder_core::{PluginError, Report};
use async_trait::async_trait;
use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use reqwest::{Client, Url};
use sha2::Sha256;

use crate::error::PluginConfigError;
use crate::secret::Secret;

/// POSTs the [`Report`] JSON with an `Idempotency-Key` of `<report id>:<version>`, so that
/// the receiver can drop the duplicates that retries produce; signs it when given a
/// secret (see the module doc).
#[derive(Clone)]
pub struct WebhookEmitter {
    name: String,
    url: Url,
    /// Scheme, host and port only: the path or query of a webhook URL is often its secret.
    origin: String,
    headers: HeaderMap,
    timeout: Duration,
    client: Client,
    signing_secret: Option<Secret>,
}

impl fmt::Debug for WebhookEmitter {
    /// The origin and the header names only: never the URL's path, a header's value
    /// or the signing secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEmitter")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("signed", &self.signing_secret.is_some())
            .finish()
    }
}

impl WebhookEmitter {
    /// The header with the unix time (seconds) the request was signed at.
    pub const TIMESTAMP_HEADER: &'static str = "x-alertresponder-timestamp";
    /// The header with the signature, `v1=<hex HMAC-SHA256>`.
    pub const SIGNATURE_HEADER: &'static str = "x-alertresponder-signature";
    /// The shortest signing secret accepted, in bytes (`openssl rand -hex 32` gives 64).
    pub const MIN_SIGNING_SECRET_BYTES: usize = 16;
    /// How far a receiver should let a signature's timestamp be from its clock.
    pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

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
            signing_secret: None,
        })
    }

    /// Signs every request with `secret` (its UTF-8 bytes are the HMAC key). `key` is
    /// the configuration key that named it (`emitter[1].signing_secret`), for the error
    /// when it is shorter than [`Self::MIN_SIGNING_SECRET_BYTES`]; the error never shows it.
    pub fn with_signing_secret(
        mut self,
        secret: Secret,
        key: &str,
    ) -> Result<Self, PluginConfigError> {
        if secret.expose().len() < Self::MIN_SIGNING_SECRET_BYTES {
            return Err(PluginConfigError::Invalid {
                key: key.to_string(),
                message: format!(
                    "the signing secret is shorter than {} bytes: use a random one, \
                     e.g. `openssl rand -hex 32`",
                    Self::MIN_SIGNING_SECRET_BYTES
                ),
            });
        }
        self.signing_secret = Some(secret);
        Ok(self)
    }

    /// The `X-AlertResponder-Signature` value of `body` sent at `timestamp` (unix
    /// seconds): `v1=` and the hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed by `secret`.
    pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1={}",
            hex::encode(
                mac(secret, &timestamp.to_string(), body)
                    .finalize()
                    .into_bytes()
            )
        )
    }

    /// What a receiver checks: `timestamp` (the header, unix seconds) is within
    /// `tolerance` of `now`, and `signature` (the header, `v1=<hex>`) is the HMAC of
    /// `"<timestamp>.<body>"` — compared in constant time.
    pub fn verify(
        secret: &[u8],
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: i64,
        tolerance: Duration,
    ) -> bool {
        // The HMAC covers the header as sent: digits only, no sign, no spaces.
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(at) = timestamp.parse::<i64>() else {
            return false;
        };
        let within = now
            .checked_sub(at)
            .map(i64::unsigned_abs)
            .is_some_and(|d| d <= tolerance.as_secs());
        let Some(Ok(sent)) = signature.trim().strip_prefix("v1=").map(hex::decode) else {
            return false;
        };
        within && mac(secret, timestamp, body).verify_slice(&sent).is_ok()
    }

    /// The timestamp and signature headers of `body` sent at `now`, when signing.
    fn signature_headers(
        &self,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, PluginError> {
        let Some(secret) = &self.signing_secret else {
            return Ok(Vec::new());
        };
        let bad = |e: reqwest::header::InvalidHeaderValue| {
            PluginError::Failed(format!("cannot write the signature headers: {e}"))
        };
        let timestamp = HeaderValue::from_str(&now.to_string()).map_err(bad)?;
        let mut signature =
            HeaderValue::from_str(&Self::signature(secret.expose().as_bytes(), now, body))
                .map_err(bad)?;
        // A valid signature is a credential until its timestamp expires.
        signature.set_sensitive(true);
        Ok(vec![
            (HeaderName::from_static(Self::TIMESTAMP_HEADER), timestamp),
            (HeaderName::from_static(Self::SIGNATURE_HEADER), signature),
        ])
    }
}

/// The HMAC-SHA256 of `"<timestamp>.<body>"` keyed by `secret`.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // An HMAC takes a key of any length (a long one is hashed first): this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
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
        for (key, value) in self.signature_headers(&body, Utc::now().timestamp())? {
            headers.insert(key, value);
        }
        let request = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .build()
            .map_err(|e| {
                PluginError::Failed(format!(
                    "{}: cannot build the request: {}",
                    self.origin,
                    error_chain(&e.without_url())
                ))
            })?;
        crate::emit::http::send(&self.client, request, &self.origin, self.timeout)
            .await
            .map(|_| ())
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
    use std::sync::Arc;

    use wiremock::matchers::{body_json, header, header_exists, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;
    use crate::test_support::report;

    const SIGNING: &str = "whsec_0123456789abcdef";

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

    fn signed(server: &MockServer) -> WebhookEmitter {
        emitter(server, Duration::from_secs(5))
            .with_signing_secret(Secret::new(SIGNING), "emitter[0].signing_secret")
            .unwrap()
    }

    /// A receiver's check of one request, from what it received only.
    fn receiver_verifies(request: &Request, secret: &str) -> bool {
        let text = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let timestamp = text(WebhookEmitter::TIMESTAMP_HEADER);
        let signature = text(WebhookEmitter::SIGNATURE_HEADER);
        // Recomputed here as a receiver would, not with the emitter's own code.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&request.body);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        let now = Utc::now().timestamp();
        let fresh = timestamp.parse::<i64>().is_ok_and(|t| {
            (now - t).unsigned_abs() <= WebhookEmitter::SIGNATURE_TOLERANCE.as_secs()
        });
        fresh
            && signature == expected
            && WebhookEmitter::verify(
                secret.as_bytes(),
                &timestamp,
                &signature,
                &request.body,
                now,
                WebhookEmitter::SIGNATURE_TOLERANCE,
            )
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
        // Unsigned without a secret.
        assert!(requests[0]
            .headers
            .get(WebhookEmitter::SIGNATURE_HEADER)
            .is_none());
        assert!(requests[0]
            .headers
            .get(WebhookEmitter::TIMESTAMP_HEADER)
            .is_none());
    }

    #[tokio::test]
    async fn a_signed_webhook_is_verified_by_a_receiver_from_the_request_alone() {
        let server = MockServer::start().await;
        let sent = report("rep-1", 2, "test", "192.0.2.1");
        Mock::given(method("POST"))
            .and(path("/hooks/alerts"))
            .and(header("idempotency-key", "rep-1:2"))
            .and(header_exists(WebhookEmitter::TIMESTAMP_HEADER))
            .and(header_exists(WebhookEmitter::SIGNATURE_HEADER))
            .and(body_json(&sent))
            .respond_with(ResponseTemplate::new(200))
            .expect(2)
            .mount(&server)
            .await;
        let hook = signed(&server);
        hook.emit(&sent, 0).await.unwrap();
        hook.emit(&sent, 1).await.unwrap();
        let requests = server.received_requests().await.unwrap();
        for request in &requests {
            assert!(receiver_verifies(request, SIGNING));
            // The wrong secret, a changed body or a changed timestamp fails.
            assert!(!receiver_verifies(request, "whsec_another_secret_000"));
            let mut tampered = request.clone();
            tampered.body.extend_from_slice(b" ");
            assert!(!receiver_verifies(&tampered, SIGNING));
            let ts = request.headers[WebhookEmitter::TIMESTAMP_HEADER]
                .to_str()
                .unwrap();
            let sig = request.headers[WebhookEmitter::SIGNATURE_HEADER]
                .to_str()
                .unwrap();
            let t: i64 = ts.parse().unwrap();
            let body = &request.body;
            let key = SIGNING.as_bytes();
            assert!(!WebhookEmitter::verify(
                key,
                &(t - 1).to_string(),
                sig,
                body,
                t,
                WebhookEmitter::SIGNATURE_TOLERANCE
            ));
            // Too old, or from the future, is refused however valid.
            assert!(!WebhookEmitter::verify(
                key,
                ts,
                sig,
                body,
                t + 301,
                WebhookEmitter::SIGNATURE_TOLERANCE
            ));
            assert!(!WebhookEmitter::verify(
                key,
                ts,
                sig,
                body,
                t - 301,
                WebhookEmitter::SIGNATURE_TOLERANCE
            ));
            assert!(WebhookEmitter::verify(
                key,
                ts,
                sig,
                body,
                t + 300,
                WebhookEmitter::SIGNATURE_TOLERANCE
            ));
        }
        // A retry keeps its Idempotency-Key and is signed afresh.
        assert_eq!(requests[1].headers["x-alertresponder-attempt"], "1");
    }

    #[test]
    fn the_signature_matches_one_computed_independently() {
        // python3: hmac.new(b"whsec_0123456789abcdef",
        //   b'1790000000.{"id":"rep-1","version":2}', hashlib.sha256).hexdigest()
        let body = br#"{"id":"rep-1","version":2}"#;
        let expected = "v1=9f11d5186ffe459752c9a21d178076225b8f741692aaff15e08ab75201872e01";
        assert_eq!(
            WebhookEmitter::signature(SIGNING.as_bytes(), 1_790_000_000, body),
            expected
        );
        let key = SIGNING.as_bytes();
        let tolerance = WebhookEmitter::SIGNATURE_TOLERANCE;
        assert!(WebhookEmitter::verify(
            key,
            "1790000000",
            expected,
            body,
            1_790_000_100,
            tolerance
        ));
        for (ts, sig) in [
            (
                "1790000000",
                "9f11d5186ffe459752c9a21d178076225b8f741692aaff15e08ab75201872e01",
            ),
            ("1790000000", "v1=zz"),
            ("1790000000", "v1="),
            ("soon", expected),
            ("", expected),
            ("+1790000000", expected),
            ("01790000000", expected),
            (" 1790000000", expected),
        ] {
            assert!(
                !WebhookEmitter::verify(key, ts, sig, body, 1_790_000_000, tolerance),
                "{ts} {sig}"
            );
        }
    }

    #[test]
    fn a_short_signing_secret_is_refused_and_the_secret_is_never_shown() {
        let hook = WebhookEmitter::new(
            "hook",
            "https://hooks.example.com/T000/secret-path",
            vec![("Authorization".into(), "Bearer s3cret".into())],
            Duration::from_secs(1),
        )
        .unwrap();
        let e = hook
            .clone()
            .with_signing_secret(Secret::new("short-k3y"), "emitter[2].signing_secret")
            .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("emitter[2].signing_secret: "), "{text}");
        assert!(!text.contains("short-k3y"), "{text}");
        let hook = hook
            .with_signing_secret(Secret::new(SIGNING), "emitter[2].signing_secret")
            .unwrap();
        let debug = format!("{hook:?}");
        for secret in [SIGNING, "s3cret", "secret-path", "T000"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("https://hooks.example.com") && debug.contains("signed: true"));
    }

    /// The `index`th emitter of `toml`, built as both runtimes build it.
    async fn configured(toml: &str) -> Result<Arc<dyn Emitter>, PluginConfigError> {
        use crate::config::build::{emitter, BuildEnv};
        use crate::config::{PluginsConfig, Runtime, Source};
        use alertresponder_core::ports::SystemClock;
        let path = std::path::Path::new("/etc/ar/alertresponder.toml");
        let config = PluginsConfig::from_toml(toml, &Source::new(path), Runtime::Embedded).unwrap();
        let secrets = crate::test_support::EnvSecret {
            name: "HOOK_SIGNING_KEY",
            value: SIGNING,
        };
        let env = BuildEnv {
            secrets: &secrets,
            base_dir: std::path::Path::new("/etc/ar"),
            cache: None,
            limiter: None,
            clock: Arc::new(SystemClock),
            quota_clock: Arc::new(SystemClock),
            deliveries: None,
        };
        emitter(&config.emitters[0], 0, &env).await
    }

    #[tokio::test]
    async fn the_configured_signing_secret_signs_every_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/in"))
            .and(header_exists(WebhookEmitter::SIGNATURE_HEADER))
            .respond_with(ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;
        let hook = configured(&format!(
            "[[emitter]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}/in\"\n\
             signing_secret = {{ env = \"HOOK_SIGNING_KEY\" }}",
            server.uri()
        ))
        .await
        .unwrap();
        hook.emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
            .await
            .unwrap();
        let requests = server.received_requests().await.unwrap();
        assert!(receiver_verifies(&requests[0], SIGNING));
        let missing = configured(
            "[[emitter]]\nname = \"hook\"\nurl = \"https://h.example/in\"\n\
             signing_secret = { env = \"HOOK_KEY_NOT_SET_ANYWHERE\" }",
        )
        .await
        .err()
        .unwrap();
        assert!(
            matches!(&missing, PluginConfigError::Secret { key, .. } if key == "emitter[0].signing_secret"),
            "{missing:?}"
        );
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
            PluginError::Failed(format!("{}: HTTP 500: database is down", server.uri()))
        );
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn webhook_answers_mean_what_they_mean_for_the_built_ins() {
        let cases = [
            (
                ResponseTemplate::new(429).insert_header("retry-after", "12"),
                "rate limited",
            ),
            (ResponseTemplate::new(503), "failed"),
            (ResponseTemplate::new(408), "failed"),
            (
                ResponseTemplate::new(400).set_body_string("bad"),
                "rejected",
            ),
            (ResponseTemplate::new(410), "rejected"),
            (
                ResponseTemplate::new(302).insert_header("location", "https://evil.example/x"),
                "rejected",
            ),
        ];
        for (template, outcome) in cases {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/hooks/alerts"))
                .respond_with(template)
                .expect(1)
                .mount(&server)
                .await;
            let signed = signed(&server);
            let err = signed
                .emit(&report("rep-1", 1, "test", "192.0.2.1"), 0)
                .await
                .unwrap_err();
            match outcome {
                "rate limited" => assert_eq!(
                    err,
                    PluginError::RateLimited {
                        retry_after: Some(Duration::from_secs(12))
                    }
                ),
                "failed" => assert!(matches!(err, PluginError::Failed(_)) && err.is_retryable()),
                _ => assert!(matches!(err, PluginError::Rejected(_)) && !err.is_retryable()),
            }
            let text = format!("{err} {err:?}");
            for secret in [SIGNING, "s3cret", "/hooks/alerts"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }

    #[tokio::test]
    async fn webhook_error_body_is_cut() {
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
        let cut = crate::emit::http::ERROR_BODY_CHARS;
        assert_eq!(
            message,
            format!("{}: HTTP 503: {}…", server.uri(), "e".repeat(cut))
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
            message.starts_with(&format!("http://127.0.0.1:{port}: ")),
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
