//! One HTTP request of an emitter, and what its answer means for the delivery:
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx | delivered: the [`Answer`] (body read up to [`MAX_ANSWER_BYTES`]) |
//! | 429 | [`PluginError::RateLimited`] with `Retry-After` (seconds or a date) |
//! | 408, 5xx, a network error | [`PluginError::Failed`]: worth a retry |
//! | 3xx | [`PluginError::Rejected`]: not followed (a redirected POST would lose its body, or leak it) |
//! | other 4xx | [`PluginError::Rejected`]: the target refused this request, no retry helps |
//! | no answer in time | [`PluginError::TimedOut`] |
//!
//! An error names the target as the caller shows it (`shown`: never a URL that is its
//! own secret, such as a Slack webhook's), carries at most [`ERROR_BODY_CHARS`] of the
//! answer, and has every sensitive header value of the request redacted.

use std::time::Duration;

use alertresponder_core::PluginError;
use chrono::Utc;
use reqwest::header::HeaderMap;
use reqwest::{Client, Request, StatusCode};
use serde_json::Value;

use crate::inspect::http::{excerpt, redact, retry_after_of};
use crate::webhook::error_chain;

/// The most of a successful answer read.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// The most of an error answer kept in the error.
pub const ERROR_BODY_CHARS: usize = 300;

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status (2xx).
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, at most [`MAX_ANSWER_BYTES`].
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, or an `InvalidOutput` naming `shown`.
    pub fn json(&self, shown: &str) -> Result<Value, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PluginError::InvalidOutput(format!("{shown}: the answer is not JSON: {e}"))
        })
    }
}

/// Sends `request` with `client` and reads the answer as the module's table says.
/// `timeout` is the client's, for the error.
pub async fn send(
    client: &Client,
    request: Request,
    shown: &str,
    timeout: Duration,
) -> Result<Answer, PluginError> {
    let sensitive = request.headers().clone();
    let redacted = |m: String| redact(&m, &sensitive);
    let answer = exchange(client, request, shown, timeout, MAX_ANSWER_BYTES).await?;
    let (status, headers, body) = (answer.status, &answer.headers, &answer.body);
    if status.is_success() {
        return Ok(answer);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(PluginError::RateLimited {
            retry_after: retry_after_of(headers, Utc::now()),
        });
    }
    if status.is_redirection() {
        return Err(PluginError::Rejected(format!(
            "{shown}: HTTP {} redirect, not followed",
            status.as_u16()
        )));
    }
    let message = redacted(format!(
        "{shown}: HTTP {}: {}",
        status.as_u16(),
        excerpt(
            String::from_utf8_lossy(body).trim(),
            &sensitive,
            ERROR_BODY_CHARS
        )
    ));
    if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        Err(PluginError::Failed(message))
    } else {
        Err(PluginError::Rejected(message))
    }
}

/// Sends `request` with `client` and reads its answer whatever the status (a target
/// with its own reading of statuses, e.g. GitHub's rate-limited 403, classifies it
/// itself): a success's body up to `limit` bytes (past it, `InvalidOutput`), an error
/// answer's first [`ERROR_BODY_CHARS`] × 4 bytes only (a hint). Only the network and
/// the timeout fail here; messages name `shown` and never a sensitive header value.
pub async fn exchange(
    client: &Client,
    request: Request,
    shown: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Answer, PluginError> {
    let sensitive = request.headers().clone();
    let redacted = |m: String| redact(&m, &sensitive);
    let mut response = match client.execute(request).await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err(PluginError::TimedOut(timeout)),
        Err(e) => {
            return Err(PluginError::Failed(redacted(format!(
                "{shown}: {}",
                error_chain(&e.without_url())
            ))))
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let limit = if status.is_success() {
        limit
    } else {
        ERROR_BODY_CHARS * 4
    };
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    if status.is_success() {
                        return Err(PluginError::InvalidOutput(format!(
                            "{shown}: answer over {limit} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk[..limit.saturating_sub(body.len())]);
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(PluginError::TimedOut(timeout)),
            Err(e) if status.is_success() => {
                return Err(PluginError::Failed(redacted(format!(
                    "{shown}: reading the answer failed: {}",
                    error_chain(&e.without_url())
                ))))
            }
            // An error answer's body is only a hint.
            Err(_) => break,
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    async fn answer_to(status: u16, extra: Option<(&str, &str)>) -> Result<Answer, PluginError> {
        let server = MockServer::start().await;
        let mut reply = ResponseTemplate::new(status).set_body_string("no_text Bearer tok-123");
        if let Some((k, v)) = extra {
            reply = reply.insert_header(k, v);
        }
        Mock::given(method("POST"))
            .and(path("/x"))
            .respond_with(reply)
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut auth = reqwest::header::HeaderValue::from_static("Bearer tok-123");
        auth.set_sensitive(true);
        let request = client
            .post(format!("{}/x", server.uri()))
            .header("authorization", auth)
            .body("{}")
            .build()
            .unwrap();
        send(&client, request, "the target", Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn each_status_is_read_as_its_outcome() {
        assert_eq!(answer_to(200, None).await.unwrap().status, 200);
        assert_eq!(
            answer_to(429, Some(("retry-after", "7")))
                .await
                .unwrap_err(),
            PluginError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        for retried in [500, 502, 503, 408] {
            let e = answer_to(retried, None).await.unwrap_err();
            assert!(matches!(e, PluginError::Failed(_)), "{retried}: {e:?}");
            assert!(e.is_retryable());
        }
        for refused in [400, 401, 403, 404, 410, 302] {
            let e = answer_to(refused, None).await.unwrap_err();
            assert!(matches!(e, PluginError::Rejected(_)), "{refused}: {e:?}");
            assert!(!e.is_retryable());
        }
    }

    #[tokio::test]
    async fn an_error_names_the_target_and_never_echoes_a_sensitive_header() {
        let e = answer_to(400, None).await.unwrap_err().to_string();
        assert!(e.contains("the target: HTTP 400: no_text"), "{e}");
        assert!(!e.contains("tok-123"), "{e}");
    }
}
