//! The pages of `alertresponder serve`: reports, a report, errors, sign-in. Rendered on
//! the server with askama (templates in `crates/cli/templates/`, every `{{ }}`
//! escaped for HTML), read-only (GET; only sign-in and sign-out POST), bounded (long
//! values cut with a visible marker) and self-contained: the CSS and the little
//! JavaScript (filters only; nothing needs it to be read) come from the binary.
//!
//! The pages read a [`PageStore`]: the store ports a page needs ([`ReadStore`],
//! [`BrowseStore`], [`DeliveryLog`]), so the same pages can be served over another
//! store (a deployed stack's tables) by passing another adapter to [`router`].
//!
//! - [`auth`]: sign-in with the API token, the session cookie, same-origin POSTs;
//! - `list`: the report list (filters, search, keyset paging) and the error list;
//! - `report`: a report's page and its text rendering;
//! - [`graph`]: the entity graph's layout; [`timeline`]: the report's events;
//! - [`view`]: bounding, times, badges, our own paths.
//!
//! Every response carries [`CONTENT_SECURITY_POLICY`] (no inline script or style,
//! nothing from another origin), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.

pub mod auth;
pub mod graph;
mod list;
mod report;
pub mod timeline;
pub mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use serde::Deserialize;

use alertresponder_core::ports::{BrowseStore, DeliveryLog, ReadStore};

pub use auth::WebAuth;

/// What the pages read: a store's read ports.
pub trait PageStore: ReadStore + BrowseStore + DeliveryLog {}

impl<T: ReadStore + BrowseStore + DeliveryLog + ?Sized> PageStore for T {}

/// The `Content-Security-Policy` of every page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../static/pages.css");
const JS: &str = include_str!("../../static/pages.js");
const ICON: &str = include_str!("../../static/favicon.svg");

/// What every page handler gets.
#[derive(Clone)]
pub(crate) struct Pages {
    pub(crate) store: Arc<dyn PageStore>,
    pub(crate) auth: WebAuth,
}

/// The pages over `store`, asking for `token` when one is given (as the API does).
pub fn router(store: Arc<dyn PageStore>, token: Option<&str>) -> Router {
    let auth = WebAuth::new(token);
    let state = Pages {
        store,
        auth: auth.clone(),
    };
    let pages = Router::new()
        .route("/", get(list::reports))
        .route("/reports/{id}", get(report::report))
        .route("/errors", get(list::errors))
        .route_layer(middleware::from_fn_with_state(auth, auth::require_session));
    Router::new()
        .route("/signin", get(signin_form).post(sign_in))
        .route("/signout", axum::routing::post(sign_out))
        .route("/static/pages.css", get(css))
        .route("/static/pages.js", get(js))
        .route("/static/favicon.svg", get(icon))
        // Browsers ask for it whatever the page says: the same icon, not a 404.
        .route("/favicon.ico", get(icon))
        .merge(pages)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Adds the security headers to every response of the pages.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON).into_response()
}

/// A rendered template as an HTML response with `status`.
pub(crate) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response()
        }
    }
}

/// A page that says what went wrong.
#[derive(Template)]
#[template(path = "problem.html")]
pub(crate) struct Problem {
    pub(crate) signout: bool,
    pub(crate) heading: String,
    pub(crate) message: String,
}

/// The problem page with `status`.
pub(crate) fn problem(
    status: StatusCode,
    auth: &WebAuth,
    heading: &str,
    message: &str,
) -> Response {
    html(
        status,
        &Problem {
            signout: auth.required(),
            heading: heading.to_string(),
            message: view::cut(message, view::LONG),
        },
    )
}

/// A store failure as a page (logged; the page says only that the store failed).
pub(crate) fn store_failure(auth: &WebAuth, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a page could not read the store");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        auth,
        "The store could not be read",
        "See the server's log.",
    )
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignIn {
    signout: bool,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct SignInQuery {
    next: Option<String>,
}

async fn signin_form(State(pages): State<Pages>, Query(q): Query<SignInQuery>) -> Response {
    let next = view::own_path(q.next.as_deref().unwrap_or("/"));
    if !pages.auth.required() {
        return see_other(&next);
    }
    html(
        StatusCode::OK,
        &SignIn {
            signout: false,
            next,
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
    next: Option<String>,
}

fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// The TCP peer, when the server records it (`serve` does).
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

async fn sign_in(
    State(pages): State<Pages>,
    peer: Peer,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    if !auth::same_origin(&headers) {
        return problem(
            StatusCode::FORBIDDEN,
            &pages.auth,
            "Refused",
            "sign-in is only accepted from this server's own sign-in page",
        );
    }
    let Ok(Form(form)) = form else {
        return problem(
            StatusCode::BAD_REQUEST,
            &pages.auth,
            "Bad sign-in",
            "token: missing (a form field)",
        );
    };
    let next = view::own_path(form.next.as_deref().unwrap_or("/"));
    if !pages.auth.required() {
        return see_other(&next);
    }
    if !pages.auth.is_token(&form.token) {
        tracing::warn!("a sign-in to the pages with a wrong token");
        return html(
            StatusCode::UNAUTHORIZED,
            &SignIn {
                signout: false,
                next,
                error: Some("That is not the API token.".into()),
            },
        );
    }
    let mut res = see_other(&next);
    let secure = auth::over_tls(&headers, peer.map(|Extension(ConnectInfo(a))| a));
    if let Some(cookie) = pages
        .auth
        .session_cookie(secure)
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    res
}

async fn sign_out(State(pages): State<Pages>, peer: Peer, headers: HeaderMap) -> Response {
    if !auth::same_origin(&headers) {
        return problem(
            StatusCode::FORBIDDEN,
            &pages.auth,
            "Refused",
            "sign-out is only accepted from this server's own pages",
        );
    }
    let secure = auth::over_tls(&headers, peer.map(|Extension(ConnectInfo(a))| a));
    let mut res = see_other("/signin");
    if let Ok(v) = HeaderValue::from_str(&auth::cleared_cookie(secure)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
