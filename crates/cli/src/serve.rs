//! `alertresponder serve`: the HTTP API and the real-time job loop, one process.
//!
//! `POST /v1/alerts` takes one alert or an array (at most [`MAX_BATCH`]) and answers
//! only after every accepted alert is committed to the database. `POST /v1/events`
//! takes one EventBridge event (GuardDuty or Security Hub findings, mapped by core's
//! [`alertresponder_core::sources`]) and receives its alerts the same way. An API
//! token is required when listening beyond loopback.
//!
//! The `/v1` routes and `/healthz` are one list ([`documented`]): each handler carries
//! its `#[utoipa::path]`, so the router and the OpenAPI document at
//! `GET /v1/openapi.json` ([`openapi_document`], schemas in [`crate::openapi`]) cannot
//! drift apart. Every 4xx answer is JSON naming the `field` at fault.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use alertresponder_core::pipeline::compile;
use alertresponder_core::ports::{ReadStore, SystemClock};
use alertresponder_core::render::render_text;
use alertresponder_core::{Alert, CoreError};
use alertresponder_embedded::{Runtime, SqliteStore};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app;
use crate::config::Config;
use crate::input::{expand, reject_event, split_alerts, InputFormat, RawAlert};
use crate::openapi;
use alertresponder_core::pipeline::Pipeline;

/// Most alerts in one request.
pub const MAX_BATCH: usize = 1000;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone)]
struct ApiState {
    runtime: Runtime,
    store: SqliteStore,
}

/// Options of `serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// API token (Bearer); required beyond loopback.
    pub token: Option<String>,
}

/// Builds the HTTP router over a runtime.
pub fn router(runtime: Runtime, store: SqliteStore, token: Option<String>) -> Router {
    // The pages (`crate::web`) over the same store, behind the same token.
    let pages = crate::web::router(Arc::new(store.clone()), token.as_deref());
    let state = ApiState { runtime, store };
    let (api, _) = documented(token.map(Arc::from)).split_for_parts();
    api.method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .merge(pages)
}

/// The API's routes, the one list that both the router and the OpenAPI document are
/// made of. `/v1` needs the token when one is set, except the document itself.
fn documented(token: Option<Arc<str>>) -> OpenApiRouter<ApiState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(post_alerts))
        .routes(routes!(post_events))
        .routes(routes!(list_reports))
        .routes(routes!(get_report))
        .routes(routes!(list_errors))
        .route_layer(middleware::from_fn_with_state(token, require_token));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .merge(v1)
}

/// A method the route does not take: 405 (with `Allow`, which axum adds) naming it.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path: String = uri.path().chars().take(128).collect();
    api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        &format!("{method} is not allowed on {path}"),
    )
}

/// The OpenAPI 3 document of the routes [`router`] serves.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented(None).into_openapi()
}

/// Runs the API and the job loop until SIGINT/SIGTERM.
pub async fn serve(config: &Config, opts: ServeOptions) -> anyhow::Result<()> {
    if !opts.listen.ip().is_loopback() && opts.token.as_deref().is_none_or(str::is_empty) {
        anyhow::bail!(
            "refusing to listen on {} without an API token: set api_token in the config or ALERTRESPONDER_API_TOKEN",
            opts.listen
        );
    }
    let store = app::open_store(&config.database, config)?;
    let plugins = app::plugins(config, Some(&store), Arc::new(SystemClock)).await?;
    let runtime = app::runtime(config, store.clone(), plugins, Arc::new(SystemClock));
    let recovered = runtime.recover().await?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "jobs interrupted by the last stop are queued again"
        );
    }
    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "alertresponder listening on http://{addr} (database {})",
        config.database.display()
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = {
        let runtime = runtime.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            runtime
                .work(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        })
    };
    let app = router(runtime, store, opts.token);
    let mut rx = stop_rx.clone();
    // The peer address lets the pages trust `X-Forwarded-Proto` from a local proxy only.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = rx.wait_for(|s| *s).await;
    });
    let signals = async move {
        shutdown_signal().await;
        eprintln!("stopping: finishing running jobs");
        let _ = stop_tx.send(true);
    };
    tokio::select! {
        r = server => r.context("HTTP server failed")?,
        _ = signals => {}
    }
    worker.await.context("job loop panicked")??;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn require_token(
    State(token): State<Option<Arc<str>>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &token {
        // A browser signed in to the pages may read (GET) the JSON they link to.
        if req.method() == axum::http::Method::GET
            && crate::web::auth::has_session(&headers, expected)
        {
            return next.run(req).await;
        }
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "Authorization",
                "missing or wrong API token (Authorization: Bearer ...)",
            );
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The job queue's counts: the service and its database answer.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses(
        (status = 200, description = "Up", body = openapi::Health),
        (status = 503, description = "The database does not answer", body = openapi::Unhealthy),
    ))]
async fn health(State(state): State<ApiState>) -> Response {
    match state.runtime.queue().stats().await {
        Ok(stats) => Json(json!({"status": "ok", "jobs": stats})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// This document (no token needed).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = serde_json::Value)))]
async fn openapi_json() -> Response {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOCUMENT.get_or_init(openapi_document)).into_response()
}

/// Receives one alert or a batch; answers once every accepted alert is committed.
#[utoipa::path(post, path = "/v1/alerts", tag = "alerts", security(("bearer" = [])),
    request_body(content = openapi::Alerts, description = "One alert, or an array of at most 1000"),
    params(openapi::IdempotencyKey),
    responses(
        (status = 202, description = "Every alert accepted and committed", body = openapi::Accepted),
        (status = 400, description = "An alert rejected, naming its field (kept as an error record); the others were still accepted", body = openapi::Rejected),
        (status = 401, description = "Missing or wrong token", body = openapi::ApiError),
        (status = 413, description = "Over 1000 alerts, or a body over 32 MiB", body = openapi::ApiError),
        (status = 500, description = "An alert could not be stored", body = openapi::Failed),
        (status = 503, description = "An alert could not be stored yet: retry", body = openapi::Failed),
    ))]
async fn post_alerts(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(e) => return *e,
    };
    // A body that is not UTF-8 is one alert: validation rejects it and keeps it.
    let batch = std::str::from_utf8(&body)
        .ok()
        .filter(|text| text.trim_start().starts_with('['));
    let is_batch = batch.is_some();
    let alerts = match batch {
        Some(text) => split_alerts("body", text),
        None => vec![crate::input::RawAlert {
            origin: "body".into(),
            bytes: body.to_vec(),
        }],
    };
    if alerts.len() > MAX_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "$",
            &format!(
                "{} alerts in one request, over the limit of {MAX_BATCH}",
                alerts.len()
            ),
        );
    }
    let items = alerts
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let message_id = key.as_ref().map(|k| {
                if is_batch {
                    format!("{k}#{i}")
                } else {
                    k.clone()
                }
            });
            (raw.bytes, message_id)
        })
        .collect();
    let received = receive_all(state.runtime.pipeline(), items).await;
    match received.failure() {
        Some(failed) => failed,
        None => received.answer(json!({})),
    }
}

/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 1024;

/// The `Idempotency-Key` header, or a 400 naming it: one that cannot be kept as
/// given (empty, not visible ASCII, too long) would silently not protect a retry.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let problem = if bytes.is_empty() {
        "must not be empty".to_string()
    } else if bytes.len() > MAX_IDEMPOTENCY_KEY {
        format!(
            "{} bytes, over the limit of {MAX_IDEMPOTENCY_KEY}",
            bytes.len()
        )
    } else if !bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
        "must be visible ASCII (and spaces)".to_string()
    } else {
        return Ok(Some(String::from_utf8_lossy(bytes).into_owned()));
    };
    Err(Box::new(api_error(
        StatusCode::BAD_REQUEST,
        "Idempotency-Key",
        &format!("Idempotency-Key: {problem}"),
    )))
}

/// What receiving a list of alerts gave, by index.
struct Received {
    accepted: Vec<serde_json::Value>,
    rejected: Vec<serde_json::Value>,
    failed: Vec<(usize, CoreError)>,
}

/// Receives alerts (bytes, message ID): each is validated once; then alerts of one
/// alert ID are received in order, different alert IDs concurrently, so that a batch
/// shares the store's group commits.
async fn receive_all(pipeline: &Pipeline, items: Vec<(Vec<u8>, Option<String>)>) -> Received {
    let mut results = Vec::with_capacity(items.len());
    let mut groups: HashMap<String, Vec<(usize, Alert, String)>> = HashMap::new();
    for (i, (bytes, message_id)) in items.iter().enumerate() {
        match pipeline.admit(bytes, message_id.as_deref()).await {
            Ok((alert, message_id)) => groups
                .entry(alert.alert_id())
                .or_default()
                .push((i, alert, message_id)),
            Err(e) => results.push((i, Err(e))),
        }
    }
    let received = futures::future::join_all(groups.into_values().map(|group| async move {
        let mut out = Vec::with_capacity(group.len());
        for (i, alert, message_id) in group {
            out.push((i, pipeline.receive_admitted(&alert, &message_id).await));
        }
        out
    }))
    .await;
    results.extend(received.into_iter().flatten());
    results.sort_by_key(|(i, _)| *i);
    let mut out = Received {
        accepted: Vec::new(),
        rejected: Vec::new(),
        failed: Vec::new(),
    };
    for (i, result) in results {
        match result {
            Ok(receipt) => out.accepted.push(json!({"index": i, "report_id": receipt.report_id, "alert_id": receipt.alert_id, "status": receipt.status, "duplicate": receipt.duplicate})),
            Err(CoreError::Invalid(e)) => out.rejected.push(json!({"index": i, "field": e.field, "error": e.to_string()})),
            Err(e) => out.failed.push((i, e)),
        }
    }
    out
}

impl Received {
    /// The answer when a receive failed (503 when worth a retry, else 500).
    fn failure(&self) -> Option<Response> {
        let (_, first) = self.failed.first()?;
        // The client retries the request; alerts already accepted are recognised as duplicates.
        let status = if first.is_retryable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let failed: Vec<_> = self
            .failed
            .iter()
            .map(|(i, e)| json!({"index": i, "error": e.to_string()}))
            .collect();
        Some((status, Json(json!({"error": first.to_string(), "accepted": self.accepted, "rejected": self.rejected, "failed": failed}))).into_response())
    }

    /// 202 with what was accepted, or 400 naming the first rejected field; `extra`
    /// fields are added to the body.
    fn answer(self, extra: serde_json::Value) -> Response {
        let status = if self.rejected.is_empty() {
            StatusCode::ACCEPTED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut body = json!({"accepted": self.accepted, "rejected": self.rejected});
        if let Some(first) = self.rejected.first() {
            body["error"] = first["error"].clone();
            body["field"] = first["field"].clone();
        }
        if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        (status, Json(body)).into_response()
    }
}

/// `POST /v1/events`: one EventBridge event; its alerts (one per finding) are received
/// like `POST /v1/alerts` receives a batch, under message IDs derived from the event ID
/// (or from the `Idempotency-Key`, which then stands for the event), so a redelivered
/// event is recognised. Suppressed or archived findings are counted in `skipped`. A
/// body that is not a supported event: 400 naming the field, kept as an error record.
#[utoipa::path(post, path = "/v1/events", tag = "alerts", security(("bearer" = [])),
    summary = "Receives one EventBridge event: GuardDuty or Security Hub findings, one alert each",
    request_body(content = openapi::Event, description = "One EventBridge event"),
    params(openapi::IdempotencyKey),
    responses(
        (status = 202, description = "Every finding accepted (or skipped) and committed", body = openapi::EventAccepted),
        (status = 400, description = "An event not taken, or a finding rejected, naming the field (kept as an error record)", body = openapi::EventRejected),
        (status = 401, description = "Missing or wrong token", body = openapi::ApiError),
        (status = 413, description = "A body over 32 MiB", body = openapi::ApiError),
        (status = 500, description = "An alert could not be stored", body = openapi::Failed),
        (status = 503, description = "An alert could not be stored yet: retry", body = openapi::Failed),
    ))]
async fn post_events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(e) => return *e,
    };
    let raw = RawAlert {
        origin: "body".into(),
        bytes: body.to_vec(),
    };
    let expanded = expand(&raw, InputFormat::Eventbridge);
    let pipeline = state.runtime.pipeline();
    if let Some(e) = expanded.error {
        if let Err(err) = reject_event(pipeline, &raw.bytes, &e).await {
            tracing::warn!(error = %err, "cannot keep the rejected event");
        }
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("invalid event: {}: {}", e.field, e.message), "field": e.field})),
        )
            .into_response();
    }
    let event_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string));
    let count = expanded.alerts.len();
    let items = expanded
        .alerts
        .into_iter()
        .enumerate()
        .map(|(k, a)| {
            let message_id = match (&key, a.message_id, &event_id) {
                (Some(key), Some(id), Some(event_id)) => {
                    Some(id.replacen(&format!("eventbridge:{event_id}"), key, 1))
                }
                (Some(key), _, _) if count > 1 => Some(format!("{key}#{k}")),
                (Some(key), _, _) => Some(key.clone()),
                (None, id, _) => id,
            };
            (a.bytes, message_id)
        })
        .collect();
    if !expanded.skipped.is_empty() {
        tracing::info!(
            skipped = expanded.skipped.len(),
            "findings skipped (suppressed or archived)"
        );
    }
    let skipped: Vec<_> = expanded
        .skipped
        .iter()
        .map(|(id, why)| json!({"finding_id": id, "why": why}))
        .collect();
    let received = receive_all(pipeline, items).await;
    match received.failure() {
        Some(failed) => failed,
        None => received.answer(json!({
            "event_id": event_id,
            "skipped": skipped.len(),
            "skipped_findings": skipped,
        })),
    }
}

fn error(status: StatusCode, field: &str, message: &str) -> Response {
    api_error(status, field, &format!("invalid alert: {field}: {message}"))
}

/// A 4xx answer: what is wrong and the field, parameter or header at fault.
fn api_error(status: StatusCode, field: &str, message: &str) -> Response {
    (status, Json(json!({"error": message, "field": field}))).into_response()
}

/// A body that could not be read (413 over [`MAX_BODY_BYTES`]).
fn body_error(e: &BytesRejection) -> Response {
    api_error(e.status(), "$", &format!("request body: {}", e.body_text()))
}

/// The query parameters, or a 400 (a query that does not decode).
type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Query parameter `name` as a count up to `i32::MAX` (the last one given; the
/// document says `int32`), or a 400 naming it.
fn count_param(query: &QueryPairs, name: &str) -> Result<Option<usize>, Box<Response>> {
    let pairs = match query {
        Ok(Query(pairs)) => pairs,
        Err(e) => {
            return Err(Box::new(api_error(
                StatusCode::BAD_REQUEST,
                name,
                &e.body_text(),
            )))
        }
    };
    let Some((_, v)) = pairs.iter().rev().find(|(k, _)| k == name) else {
        return Ok(None);
    };
    match v.parse::<i32>().ok().and_then(|n| usize::try_from(n).ok()) {
        Some(n) => Ok(Some(n)),
        None => {
            let shown: String = v.chars().take(64).collect();
            Err(Box::new(api_error(
                StatusCode::BAD_REQUEST,
                name,
                &format!(
                    "{name}: expected a whole number from 0 to {}, got {shown:?}",
                    i32::MAX
                ),
            )))
        }
    }
}

/// The most items a list answers.
const MAX_LIST: usize = 1000;

/// Newest first, paged.
#[utoipa::path(get, path = "/v1/reports", tag = "reports",
    security(("bearer" = []), ("session" = [])),
    params(openapi::PageQuery),
    responses(
        (status = 200, description = "Reports, newest first", body = openapi::ReportList),
        (status = 400, description = "A parameter that is not a whole number", body = openapi::ApiError),
        (status = 401, description = "Missing or wrong token", body = openapi::ApiError),
        (status = 500, description = "The database failed", body = openapi::ServerError),
    ))]
async fn list_reports(State(state): State<ApiState>, query: QueryPairs) -> Response {
    let (limit, offset) = match (count_param(&query, "limit"), count_param(&query, "offset")) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (Err(e), _) | (_, Err(e)) => return *e,
    };
    let limit = limit.unwrap_or(100).min(MAX_LIST);
    match state.store.list_reports(limit, offset.unwrap_or(0)).await {
        Ok(list) => Json(json!({"reports": list})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// The latest published version, or the report as it stands before the first.
#[utoipa::path(get, path = "/v1/reports/{id}", tag = "reports",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Report ID"), openapi::ReportQuery),
    responses(
        (status = 200, description = "The report", content(
            (openapi::Report = "application/json"),
            (String = "text/plain"),
        )),
        (status = 400, description = "An unknown format, or an ID that does not decode", body = openapi::ApiError),
        (status = 401, description = "Missing or wrong token", body = openapi::ApiError),
        (status = 404, description = "No such report", body = openapi::ApiError),
        (status = 500, description = "The database failed", body = openapi::ServerError),
    ))]
async fn get_report(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "id", &e.body_text()),
    };
    let text = match &query {
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "format", &e.body_text()),
        Ok(Query(pairs)) => match pairs.iter().rev().find(|(k, _)| k == "format") {
            None => false,
            Some((_, f)) if f == "json" => false,
            Some((_, f)) if f == "text" => true,
            Some((_, f)) => {
                let shown: String = f.chars().take(64).collect();
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "format",
                    &format!("format: expected json or text, got {shown:?}"),
                );
            }
        },
    };
    let report = match current_report(&state.store, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let shown: String = id.chars().take(128).collect();
            return api_error(StatusCode::NOT_FOUND, "id", &format!("no report {shown}"));
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.to_string()})),
            )
                .into_response()
        }
    };
    if text {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            render_text(&report),
        )
            .into_response();
    }
    Json(report).into_response()
}

/// Rejected inputs and failed jobs, newest first, with their input.
#[utoipa::path(get, path = "/v1/errors", tag = "reports",
    security(("bearer" = []), ("session" = [])),
    params(openapi::LimitQuery),
    responses(
        (status = 200, description = "Error records, newest first", body = openapi::ErrorList),
        (status = 400, description = "A limit that is not a whole number", body = openapi::ApiError),
        (status = 401, description = "Missing or wrong token", body = openapi::ApiError),
        (status = 500, description = "The database failed", body = openapi::ServerError),
    ))]
async fn list_errors(State(state): State<ApiState>, query: QueryPairs) -> Response {
    let limit = match count_param(&query, "limit") {
        Ok(limit) => limit.unwrap_or(100).min(MAX_LIST),
        Err(e) => return *e,
    };
    match state.store.list_errors(limit).await {
        Ok(list) => Json(json!({"errors": list})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// The latest published version of a report, or its state so far if none is published
/// (an inspection still running is shown as not finished now).
pub async fn current_report(
    store: &SqliteStore,
    id: &str,
) -> anyhow::Result<Option<alertresponder_core::Report>> {
    if let Some(r) = store.latest_published(id).await? {
        return Ok(Some(r));
    }
    Ok(store
        .load_report(id)
        .await?
        .map(|state| compile(&state, 0, chrono::Utc::now())))
}
