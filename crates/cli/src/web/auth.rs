//! Signing in to the pages with the API token, once per browser.
//!
//! When `serve` has an API token (it must beyond loopback), every page but the
//! sign-in form and the static files wants a session: `POST /signin` with the token
//! (a form field, never a URL) sets the cookie `ar_session`, `HttpOnly;
//! SameSite=Strict; Path=/`, holding an expiry and an HMAC-SHA256 of it keyed by the
//! token: not the token, nothing to replay past its expiry ([`SESSION_HOURS`]), and
//! void once the token changes. A request with the API's `Authorization: Bearer`
//! header is signed in too (scripts, the benchmark).
//!
//! `Secure` is added when the browser reached `serve` over TLS, which `serve` itself
//! does not speak: through a reverse proxy on the same machine (a loopback peer) that
//! says `X-Forwarded-Proto: https`. The header from any other peer is ignored: anyone
//! reaching `serve` directly could send it.
//!
//! Sign-in and sign-out are the only POSTs, and only from our own pages:
//! `Sec-Fetch-Site` must be `same-origin` when the browser sends it, else `Origin`
//! must be this host (the pages' `Referrer-Policy: no-referrer` makes a browser send
//! `Origin: null` on a form post, refused). A request with neither is no browser's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The session cookie's name.
pub const COOKIE: &str = "ar_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// The token the pages want, if any (none: loopback without a token, open).
#[derive(Clone, Default)]
pub struct WebAuth {
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for WebAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAuth")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

fn mac(token: &str, expires: i64) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).ok()?;
    mac.update(format!("alertresponder-web-session:v1:{expires}").as_bytes());
    Some(mac)
}

/// Whether `a` and `b` are equal, in a time that depends on their length only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in `headers`, if sent.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether `headers` carry a session cookie made with `token` that has not expired.
pub fn has_session(headers: &HeaderMap, token: &str) -> bool {
    let Some((expires, tag)) = cookie(headers, COOKIE).and_then(|v| v.split_once('.')) else {
        return false;
    };
    let (Ok(expires), Ok(tag)) = (expires.parse::<i64>(), hex::decode(tag)) else {
        return false;
    };
    expires > Utc::now().timestamp()
        && mac(token, expires).is_some_and(|m| m.verify_slice(&tag).is_ok())
}

/// Whether `headers` carry the API's `Authorization: Bearer <token>`.
fn has_bearer(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

impl WebAuth {
    /// Pages that want `token` (`None` or empty: open pages).
    pub fn new(token: Option<&str>) -> Self {
        Self {
            token: token.filter(|t| !t.is_empty()).map(Arc::from),
        }
    }

    /// Whether sign-in is needed at all.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether the request may read the pages.
    pub fn signed_in(&self, headers: &HeaderMap) -> bool {
        match &self.token {
            None => true,
            Some(t) => has_session(headers, t) || has_bearer(headers, t),
        }
    }

    /// Whether `given` is the token.
    pub fn is_token(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_some_and(|t| constant_time_eq(given.as_bytes(), t.as_bytes()))
    }

    /// The `Set-Cookie` value of a new session (`secure`: over TLS).
    pub fn session_cookie(&self, secure: bool) -> Option<String> {
        let token = self.token.as_deref()?;
        let expires = Utc::now().timestamp() + SESSION_HOURS * 3600;
        let tag = hex::encode(mac(token, expires)?.finalize().into_bytes());
        Some(format!(
            "{COOKIE}={expires}.{tag}; Max-Age={}; Path=/; HttpOnly; SameSite=Strict{}",
            SESSION_HOURS * 3600,
            if secure { "; Secure" } else { "" }
        ))
    }
}

/// The `Set-Cookie` value that ends a session.
pub fn cleared_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether the request came over TLS: a proxy on this machine says so (see the module).
pub fn over_tls(req_headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    let proxied_https = req_headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    proxied_https && peer.is_some_and(|p| p.ip().is_loopback())
}

/// Whether a POST comes from one of our own pages (see the module).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return site == "same-origin";
    }
    match (text("origin"), text("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            let origin = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            origin == Some(host)
        }
        (Some(_), None) => false,
    }
}

/// Middleware of the pages: a request without a session is sent to the sign-in form
/// (a GET, with where it was going) or refused (anything else).
pub async fn require_session(State(auth): State<WebAuth>, req: Request, next: Next) -> Response {
    if auth.signed_in(req.headers()) {
        return next.run(req).await;
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        // Back here after signing in; a query that names a token is dropped, so a
        // token someone put in a URL is not carried along.
        let uri = req.uri();
        let here = match uri.query() {
            Some(q) if !q.to_ascii_lowercase().contains("token") => {
                format!("{}?{q}", uri.path())
            }
            _ => uri.path().to_string(),
        };
        let to = format!(
            "/signin?{}",
            super::view::query(&[("next", &super::view::own_path(&here))])
        );
        let mut res = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        return res;
    }
    (StatusCode::UNAUTHORIZED, "sign in first").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={value}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_session_is_an_expiring_mac_of_the_token_never_the_token() {
        let auth = WebAuth::new(Some("s3cret-token"));
        let set = auth.session_cookie(false).unwrap();
        assert!(!set.contains("s3cret-token"));
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure"));
        assert!(auth.session_cookie(true).unwrap().ends_with("; Secure"));
        let value = set
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("ar_session=")
            .unwrap();
        assert!(auth.signed_in(&with_cookie(value)));
        // Another token's session, a forged tag, an expired one: refused.
        let other = WebAuth::new(Some("another-token"));
        assert!(!other.signed_in(&with_cookie(value)));
        let (expires, tag) = value.split_once('.').unwrap();
        let forged = format!("{}.{tag}", expires.parse::<i64>().unwrap() + 3600);
        assert!(!auth.signed_in(&with_cookie(&forged)));
        let past = Utc::now().timestamp() - 10;
        let old = format!(
            "{past}.{}",
            hex::encode(mac("s3cret-token", past).unwrap().finalize().into_bytes())
        );
        assert!(!auth.signed_in(&with_cookie(&old)));
        assert!(!auth.signed_in(&HeaderMap::new()));
        assert!(WebAuth::new(None).signed_in(&HeaderMap::new()));
    }

    #[test]
    fn forwarded_https_counts_only_from_a_loopback_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        assert!(over_tls(&h, Some(local)));
        assert!(!over_tls(&h, Some(remote)));
        assert!(!over_tls(&h, None));
        assert!(!over_tls(&HeaderMap::new(), Some(local)));
    }

    #[test]
    fn posts_must_come_from_our_own_pages() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&h(&[
            ("origin", "http://h:8080"),
            ("host", "h:8080")
        ])));
        assert!(!same_origin(&h(&[
            ("origin", "http://evil.example"),
            ("host", "h:8080")
        ])));
        assert!(!same_origin(&h(&[("origin", "null"), ("host", "h:8080")])));
        assert!(same_origin(&h(&[("host", "h:8080")])), "not a browser");
    }
}
