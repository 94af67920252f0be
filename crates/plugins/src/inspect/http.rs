//! What every HTTP inspector shares: the API base (`url`, https, or http on loopback
//! only), the client (its timeout, no redirect followed), paths built from attacker-
//! written values one percent-encoded segment at a time, and how an answer becomes an
//! outcome:
//!
//! | answer | outcome |
//! |--------|---------|
//! | 2xx with JSON | `Ok(Some(json))` (204: `Ok(None)`) |
//! | 404 | `Ok(None)`: nothing found |
//! | 429, or a documented quota error body | `RateLimited { retry_after }` from `Retry-After` (seconds or HTTP date), else `X-RateLimit-Reset` |
//! | 3xx | `Failed("redirected to <host>: not followed")` |
//! | other 4xx, 5xx, network error | `Failed`, bounded, never the key or a query string |
//! | no answer within the timeout | `TimedOut(timeout)` |
//! | a body over [`MAX_ANSWER_BYTES`] | `Failed("answer over N bytes")` |
//! | 2xx that is not JSON | `InvalidOutput` |

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use alertresponder_core::PluginError;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT};
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;

use super::BuildContext;
use crate::error::PluginConfigError;
use crate::secret::Secret;
use crate::webhook::error_chain;

/// The most of an answer read: past it, the lookup fails.
pub const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;

/// The most of a vendor's error message kept in a failure.
const MESSAGE_CHARS: usize = 200;
/// The longest wait an answer may ask for (`Retry-After`, `X-RateLimit-Reset`); a longer
/// one is taken as this. Unbounded, `Retry-After: 18446744073709551615` overflowed the
/// callers' clock arithmetic (`Instant + wait`, `waited + wait`) and panicked.
pub const LONGEST_ASKED_WAIT: Duration = Duration::from_secs(86_400);

/// The API base from the `url` key, or `default`: `https://` to any host, `http://`
/// only to a loopback host (`127.0.0.0/8`, `::1`, `localhost`: tests and local
/// proxies), no user or password (the key goes in `api_key`), no query or fragment.
/// A base path is kept: `https://proxy.example/vt` puts every request under `/vt/`.
pub fn api_base(
    ctx: &BuildContext<'_>,
    url: Option<&str>,
    default: &str,
) -> Result<Url, PluginConfigError> {
    let text = url.unwrap_or(default);
    // The message never repeats the value: a mistyped URL may carry a credential.
    let parsed = Url::parse(text).map_err(|e| ctx.invalid("url", format!("not a URL: {e}")))?;
    let Some(host) = parsed.host_str() else {
        return Err(ctx.invalid("url", "expected an https URL with a host"));
    };
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(ctx.invalid(
                "url",
                "plain http is accepted only for a loopback host (127.0.0.0/8, ::1, localhost): use https",
            ))
        }
        other => {
            return Err(ctx.invalid(
                "url",
                format!("expected an https URL, not {other}:"),
            ))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ctx.invalid(
            "url",
            "a user or password in the URL is not accepted: give the key in api_key",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ctx.invalid("url", "the API base takes no query or fragment"));
    }
    Ok(parsed)
}

/// `host` as a parsed URL serializes it: IPv6 in brackets, IPv4 normalized.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip == Ipv6Addr::LOCALHOST,
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The HTTP client of one inspector: one attempt takes at most `ctx.timeout`, and a
/// redirect is never followed (it could lead the key or the lookup to another host).
pub fn client(ctx: &BuildContext<'_>) -> Result<Client, PluginConfigError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("alertresponder/", env!("CARGO_PKG_VERSION"))),
    );
    Client::builder()
        .timeout(ctx.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .map_err(|e| PluginConfigError::HttpClient {
            name: ctx.name.to_string(),
            message: error_chain(&e),
        })
}

/// The header that carries the API key, marked sensitive (never printed by the HTTP
/// stack). The error names `ctx.field("api_key")`, never the value.
pub fn auth_header(
    ctx: &BuildContext<'_>,
    name: &'static str,
    key: &Secret,
) -> Result<(HeaderName, HeaderValue), PluginConfigError> {
    let mut value = HeaderValue::from_str(key.expose())
        .map_err(|_| ctx.invalid("api_key", "the key holds characters a header cannot carry"))?;
    value.set_sensitive(true);
    Ok((HeaderName::from_static(name), value))
}

/// What a path segment keeps as is: RFC 3986's unreserved characters, and `:` (an IPv6
/// address reads as itself; harmless past the first segment). Everything else
/// (`/`, `?`, `#`, `%`, `\`, spaces, control characters, non-ASCII) is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':');

/// `base` with `segments` appended, each one percent-encoded path segment, so that no
/// value can change the request's path (and none is silently altered: the URL parser
/// would drop a tab or a line break). A segment that is empty, `.` or `..` is refused
/// (`Skipped`): the URL rules drop or resolve those, which would change the path.
pub fn with_segments(base: &Url, segments: &[&str]) -> Result<Url, PluginError> {
    let mut path = base.path().trim_end_matches('/').to_string();
    for segment in segments {
        if matches!(*segment, "" | "." | "..") {
            return Err(PluginError::Skipped(format!(
                "{segment:?} cannot be looked up (not a path segment)"
            )));
        }
        path.push('/');
        path.extend(utf8_percent_encode(segment, SEGMENT));
    }
    let mut url = base.clone();
    url.set_path(&path);
    Ok(url)
}

/// Sends a GET to `url` with `headers` (the key among them, sensitive) and reads the
/// answer as the table at the top of this module says. `timeout` is the client's, for
/// the error.
pub async fn get_json(
    client: &Client,
    url: Url,
    headers: &HeaderMap,
    timeout: Duration,
) -> Result<Option<Value>, PluginError> {
    // What an error may show: scheme, host, port and path; never the query.
    let shown = format!("{}{}", url.origin().ascii_serialization(), url.path());
    let shown = bounded(&shown, MESSAGE_CHARS);
    let sent = client
        .get(url.clone())
        .headers(headers.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err(PluginError::TimedOut(timeout)),
        Err(e) => {
            return Err(PluginError::Failed(redact(
                &format!("GET {shown} failed: {}", error_chain(&e.without_url())),
                headers,
            )))
        }
    };
    let status = response.status();
    if status.is_redirection() {
        let to = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .and_then(|u| u.host_str().map(str::to_string));
        return Err(PluginError::Failed(match to {
            Some(host) => format!("redirected to {}: not followed", bounded(&host, 100)),
            None => format!("redirected (HTTP {}): not followed", status.as_u16()),
        }));
    }
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let retry = retry_after_of(response.headers(), Utc::now());
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(PluginError::RateLimited { retry_after: retry });
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(PluginError::Failed(format!(
                        "{shown}: answer over {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(PluginError::TimedOut(timeout)),
            Err(e) => {
                return Err(PluginError::Failed(redact(
                    &format!(
                        "{shown}: reading the answer failed: {}",
                        error_chain(&e.without_url())
                    ),
                    headers,
                )))
            }
        }
    }
    if !status.is_success() {
        let json = serde_json::from_slice::<Value>(&body).ok();
        if json.as_ref().is_some_and(is_quota_error) {
            return Err(PluginError::RateLimited { retry_after: retry });
        }
        let message = json
            .as_ref()
            .and_then(vendor_message)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        return Err(PluginError::Failed(redact(
            &format!(
                "HTTP {} from {shown}: {}",
                status.as_u16(),
                excerpt(&message, headers, MESSAGE_CHARS)
            ),
            headers,
        )));
    }
    if status == StatusCode::NO_CONTENT {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| PluginError::InvalidOutput(format!("{shown}: the answer is not JSON: {e}")))
}

/// Whether an error body is a documented quota answer: VirusTotal's
/// `{"error": {"code": "QuotaExceededError" | "TooManyRequestsError"}}` or AbuseIPDB's
/// `{"errors": [{"status": 429}]}`.
pub fn is_quota_error(body: &Value) -> bool {
    let vt = body
        .pointer("/error/code")
        .and_then(Value::as_str)
        .is_some_and(|c| matches!(c, "QuotaExceededError" | "TooManyRequestsError"));
    let abuseipdb = body
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e.get("status").and_then(Value::as_u64) == Some(429))
        });
    vt || abuseipdb
}

/// The message of a vendor's JSON error body (VirusTotal `error.code`/`error.message`,
/// AbuseIPDB `errors[0].detail`).
fn vendor_message(body: &Value) -> Option<String> {
    if let Some(error) = body.get("error") {
        let code = error
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !code.is_empty() || !message.is_empty() {
            return Some(format!("{code} {message}").trim().to_string());
        }
    }
    body.pointer("/errors/0/detail")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// How long a rate-limited answer asks to wait: `Retry-After` (delta-seconds or an
/// HTTP date), else `X-RateLimit-Reset` as epoch seconds (AbuseIPDB sends both); at
/// most [`LONGEST_ASKED_WAIT`].
pub fn retry_after_of(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(d) = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, now))
    {
        return Some(d);
    }
    let reset = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()?;
    let at = DateTime::from_timestamp(reset, 0)?;
    Some(
        (at - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(LONGEST_ASKED_WAIT),
    )
}

/// A `Retry-After` value: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, a past one meaning now), at most
/// [`LONGEST_ASKED_WAIT`]. Anything else: `None`.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<u64>()
            .ok()
            .map(|s| Duration::from_secs(s).min(LONGEST_ASKED_WAIT));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(LONGEST_ASKED_WAIT),
    )
}

/// Whether `value` parses as an IP address; the `Skipped` error otherwise (never sent).
pub fn ip_address(value: &str) -> Result<IpAddr, PluginError> {
    value
        .trim()
        .parse()
        .map_err(|_| PluginError::Skipped(format!("{:?} is not an IP address", bounded(value, 64))))
}

/// A domain name, lowercased and without its final dot: labels of letters, digits,
/// `-` and `_` (non-ASCII letters allowed: IDNs), separated by dots, at most 253 bytes.
/// Anything else is `Skipped` (never sent).
pub fn domain_name(value: &str) -> Result<String, PluginError> {
    let name = value.strip_suffix('.').unwrap_or(value);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    if valid {
        Ok(name.to_lowercase())
    } else {
        Err(PluginError::Skipped(format!(
            "{:?} is not a domain name",
            bounded(value, 64)
        )))
    }
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// At most `max` characters of an answer's `text` (with `…` when cut), every sensitive
/// header value of `headers` replaced first: cut first, an echoed credential could be
/// left in part, where [`redact`] no longer finds it.
pub(crate) fn excerpt(text: &str, headers: &HeaderMap, max: usize) -> String {
    bounded(&redact(text, headers), max)
}

/// Replaces the value of every sensitive header in `message` (in case a vendor or the
/// network stack echoes it).
pub(crate) fn redact(message: &str, headers: &HeaderMap) -> String {
    let mut out = message.to_string();
    for value in headers.values().filter(|v| v.is_sensitive()) {
        if let Ok(text) = value.to_str() {
            if !text.is_empty() {
                out = out.replace(text, "***");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::secret::Secrets;

    fn with_ctx<T>(timeout: Duration, f: impl FnOnce(&BuildContext<'_>) -> T) -> T {
        let secrets = Secrets::local("/nonexistent");
        let ctx = BuildContext {
            name: "vt",
            key: "inspector[2]",
            timeout,
            secrets: &secrets,
            base_dir: Path::new("/nonexistent"),
        };
        f(&ctx)
    }

    fn base(url: Option<&str>) -> Result<Url, String> {
        with_ctx(Duration::from_secs(1), |ctx| {
            api_base(ctx, url, "https://www.virustotal.com").map_err(|e| e.to_string())
        })
    }

    #[test]
    fn the_default_base_is_used_when_no_url_is_given() {
        assert_eq!(base(None).unwrap().as_str(), "https://www.virustotal.com/");
    }

    #[test]
    fn plain_http_is_accepted_only_for_loopback_hosts() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9/",
            "http://[::1]:9000/vt",
            "http://localhost:3000",
            "http://LOCALHOST",
            "https://proxy.example",
        ] {
            assert!(base(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://www.virustotal.com",
            "http://10.0.0.1",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "ftp://127.0.0.1",
            "file:///etc/passwd",
            "/api/v3",
        ] {
            let e = base(Some(bad)).unwrap_err();
            assert!(e.starts_with("inspector[2].url: "), "{bad}: {e}");
        }
    }

    #[test]
    fn a_url_with_a_user_password_or_query_is_refused_without_repeating_it() {
        for bad in [
            "https://user:hunter2@proxy.example",
            "https://hunter2@proxy.example",
            "https://proxy.example/?key=hunter2",
            "https://proxy.example/#hunter2",
        ] {
            let e = base(Some(bad)).unwrap_err();
            assert!(e.starts_with("inspector[2].url: "), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_base_path_is_kept_and_segments_go_below_it() {
        for b in ["https://proxy.example/vt", "https://proxy.example/vt/"] {
            let url = with_segments(
                &base(Some(b)).unwrap(),
                &["api", "v3", "domains", "a.example"],
            )
            .unwrap();
            assert_eq!(
                url.as_str(),
                "https://proxy.example/vt/api/v3/domains/a.example"
            );
        }
        let url = with_segments(&base(None).unwrap(), &["api", "v3"]).unwrap();
        assert_eq!(url.as_str(), "https://www.virustotal.com/api/v3");
    }

    #[test]
    fn hostile_values_stay_one_segment() {
        let b = base(None).unwrap();
        for (value, encoded) in [
            ("../../users/me", "..%2F..%2Fusers%2Fme"),
            ("1.2.3.4?x=", "1.2.3.4%3Fx%3D"),
            ("a/b#c", "a%2Fb%23c"),
            ("%2e%2e", "%252e%252e"),
            ("a\\b", "a%5Cb"),
            ("a b\r\nHost: x", "a%20b%0D%0AHost:%20x"),
            ("bücher.example", "b%C3%BCcher.example"),
        ] {
            let url = with_segments(&b, &["api", "v3", "domains", value]).unwrap();
            assert_eq!(url.path(), format!("/api/v3/domains/{encoded}"), "{value}");
            assert_eq!(url.query(), None, "{value}");
            assert_eq!(url.fragment(), None, "{value}");
            assert_eq!(url.path_segments().map(|s| s.count()), Some(4), "{value}");
        }
        for value in ["", ".", ".."] {
            let e = with_segments(&b, &["api", value]).unwrap_err();
            assert!(matches!(e, PluginError::Skipped(_)), "{value}: {e:?}");
        }
    }

    #[test]
    fn an_echoed_key_cut_by_the_bound_leaves_no_piece_of_it() {
        let mut sent = HeaderMap::new();
        let mut key = HeaderValue::from_static("k3y-0123456789abcdef");
        key.set_sensitive(true);
        sent.insert("x-apikey", key);
        // The key straddles the bound: cut first, its first half would be shown.
        let answer = format!("{}k3y-0123456789abcdef tail", "x".repeat(10));
        let shown = excerpt(&answer, &sent, 20);
        assert_eq!(shown, "xxxxxxxxxx*** tail");
        assert_eq!(excerpt(&answer, &sent, 12), "xxxxxxxxxx**…");
        assert!(!bounded(&answer, 20).contains("***"), "the order matters");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        for bad in ["", "-5", "1.5", "soon", "99999999999999999999999"] {
            assert_eq!(retry_after(bad, now), None, "{bad}");
        }
        // An absurd wait is a day at most: the callers add it to clocks.
        for absurd in ["18446744073709551615", "Fri, 31 Dec 9999 23:59:59 GMT"] {
            assert_eq!(
                retry_after(absurd, now),
                Some(LONGEST_ASKED_WAIT),
                "{absurd}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_static("253402300799"),
        );
        assert_eq!(retry_after_of(&h, now), Some(LONGEST_ASKED_WAIT));
    }

    #[test]
    fn without_retry_after_the_rate_limit_reset_time_is_used() {
        let now = DateTime::from_timestamp(1_545_973_100, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1545973200"));
        assert_eq!(retry_after_of(&h, now), Some(Duration::from_secs(100)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("29"));
        assert_eq!(retry_after_of(&h, now), Some(Duration::from_secs(29)));
        assert_eq!(retry_after_of(&HeaderMap::new(), now), None);
    }

    #[test]
    fn an_ipaddr_that_is_no_ip_is_skipped_with_why() {
        assert_eq!(ip_address("192.0.2.1").unwrap().to_string(), "192.0.2.1");
        assert_eq!(
            ip_address("2001:db8::1").unwrap().to_string(),
            "2001:db8::1"
        );
        for bad in ["1.2.3.4?x=", "../../users/me", "1.2.3", "example.com", ""] {
            let e = ip_address(bad).unwrap_err();
            assert!(
                matches!(&e, PluginError::Skipped(why) if why.contains("is not an IP address")),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn a_domain_name_is_letters_digits_and_dots_only() {
        assert_eq!(domain_name("Example.COM.").unwrap(), "example.com");
        assert_eq!(
            domain_name("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(domain_name("bücher.example").unwrap(), "bücher.example");
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            "a/b#c",
            "../../users/me",
            "1.2.3.4?x=",
            "a b",
            "a%2e",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(domain_name(bad), Err(PluginError::Skipped(_))),
                "{bad}"
            );
        }
    }

    async fn get(server: &MockServer, timeout: Duration) -> Result<Option<Value>, PluginError> {
        let (client, mut headers) = with_ctx(timeout, |ctx| {
            let mut headers = HeaderMap::new();
            let (k, v) = auth_header(ctx, "x-apikey", &Secret::new("s3cret-key")).unwrap();
            headers.insert(k, v);
            (client(ctx).unwrap(), headers)
        });
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let url = Url::parse(&format!("{}/api/thing?token=q5ecret", server.uri())).unwrap();
        get_json(&client, url, &headers, timeout).await
    }

    async fn answering(template: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/thing"))
            .and(header("x-apikey", "s3cret-key"))
            .respond_with(template)
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn a_json_answer_is_returned_and_404_is_nothing_found() {
        let server =
            answering(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": 1})))
                .await;
        assert_eq!(
            get(&server, Duration::from_secs(5)).await.unwrap(),
            Some(serde_json::json!({"data": 1}))
        );
        let server = answering(ResponseTemplate::new(404).set_body_json(
            serde_json::json!({"error": {"code": "NotFoundError", "message": "not found"}}),
        ))
        .await;
        assert_eq!(get(&server, Duration::from_secs(5)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_429_is_rate_limited_with_its_retry_after() {
        let server = answering(ResponseTemplate::new(429).insert_header("retry-after", "42")).await;
        assert_eq!(
            get(&server, Duration::from_secs(5)).await.unwrap_err(),
            PluginError::RateLimited {
                retry_after: Some(Duration::from_secs(42))
            }
        );
    }

    #[tokio::test]
    async fn a_quota_error_body_is_rate_limited_whatever_its_status() {
        let server = answering(ResponseTemplate::new(403).set_body_json(serde_json::json!(
            {"error": {"code": "QuotaExceededError", "message": "Quota exceeded"}}
        )))
        .await;
        assert_eq!(
            get(&server, Duration::from_secs(5)).await.unwrap_err(),
            PluginError::RateLimited { retry_after: None }
        );
    }

    #[tokio::test]
    async fn a_server_error_fails_bounded_without_key_or_query() {
        let echo = format!("s3cret-key token=q5ecret {}", "x".repeat(10_000));
        let server = answering(ResponseTemplate::new(503).set_body_string(echo)).await;
        let PluginError::Failed(message) = get(&server, Duration::from_secs(5)).await.unwrap_err()
        else {
            panic!("expected a failure");
        };
        assert!(
            message.starts_with(&format!("HTTP 503 from {}/api/thing: ", server.uri())),
            "{message}"
        );
        assert!(!message.contains("s3cret-key"), "{message}");
        assert!(!message.contains("?token"), "{message}");
        assert!(message.chars().count() < 400, "{message}");
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let server = answering(
            ResponseTemplate::new(302).insert_header("location", "https://evil.example/steal?k=1"),
        )
        .await;
        assert_eq!(
            get(&server, Duration::from_secs(5)).await.unwrap_err(),
            PluginError::Failed("redirected to evil.example: not followed".into())
        );
    }

    #[tokio::test]
    async fn an_answer_over_the_bound_fails() {
        let server =
            answering(ResponseTemplate::new(200).set_body_string("x".repeat(MAX_ANSWER_BYTES + 1)))
                .await;
        let e = get(&server, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(&e, PluginError::Failed(m) if m.ends_with(&format!("answer over {MAX_ANSWER_BYTES} bytes"))),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_and_invalid_json_is_invalid_output() {
        let timeout = Duration::from_millis(200);
        let server = answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).await;
        assert_eq!(
            get(&server, timeout).await.unwrap_err(),
            PluginError::TimedOut(timeout)
        );
        let server = answering(ResponseTemplate::new(200).set_body_string("<html>")).await;
        assert!(matches!(
            get(&server, Duration::from_secs(5)).await.unwrap_err(),
            PluginError::InvalidOutput(_)
        ));
    }
}
