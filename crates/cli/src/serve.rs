//! `alertresponder serve`: the HTTP API and the real-time job loop, one process.
//!
//! `POST /v1/alerts` takes one alert or an array (at most [`MAX_BATCH`]) and answers
//! only after every accepted alert is committed to the database. `POST /v1/events`
//! takes one EventBridge event (GuardDuty or Security Hub findings, mapped by core's
//! [`alertresponder_core::sources`]) and receives its alerts the same way. An API
//! token is required when listening beyond loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use alertresponder_core::pipeline::compile;
use alertresponder_core::ports::{ReadStore, SystemClock};
use alertresponder_core::render::render_text;
use alertresponder_core::{Alert, CoreError};
use alertresponder_embedded::{Runtime, SqliteStore};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::app;
use crate::config::Config;
use crate::input::{expand, reject_event, split_alerts, InputFormat, RawAlert};
use alertresponder_core::pipeline::Pipeline;

/// Most alerts in one request.
pub const MAX_BATCH: usize = 1000;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone)]
struct ApiState {
    runtime: Runtime,
    store: SqliteStore,
    token: Option<Arc<str>>,
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
    let state = ApiState {
        runtime,
        store,
        token: token.map(Arc::from),
    };
    let api = Router::new()
        .route("/v1/alerts", post(post_alerts))
        .route("/v1/events", post(post_events))
        .route("/v1/reports", get(list_reports))
        .route("/v1/reports/{id}", get(get_report))
        .route("/v1/errors", get(list_errors))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(health))
        .merge(api)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
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
    State(state): State<ApiState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "missing or wrong API token (Authorization: Bearer ...)"})),
            )
                .into_response();
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

async fn post_alerts(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(_) => return error(StatusCode::BAD_REQUEST, "$", "body is not UTF-8"),
    };
    let is_batch = text.trim_start().starts_with('[');
    let alerts = if is_batch {
        split_alerts("body", text)
    } else {
        vec![crate::input::RawAlert {
            origin: "body".into(),
            bytes: body.to_vec(),
        }]
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
    let key = idempotency_key(&headers);
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

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
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
async fn post_events(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
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
    let key = idempotency_key(&headers);
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
    (
        status,
        Json(json!({"error": format!("invalid alert: {field}: {message}"), "field": field})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list_reports(State(state): State<ApiState>, Query(page): Query<Page>) -> Response {
    let limit = page.limit.unwrap_or(100).min(1000);
    match state
        .store
        .list_reports(limit, page.offset.unwrap_or(0))
        .await
    {
        Ok(list) => Json(json!({"reports": list})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct Format {
    format: Option<String>,
}

async fn get_report(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(f): Query<Format>,
) -> Response {
    let report = match current_report(&state.store, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": format!("no report {id}")})),
            )
                .into_response()
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.to_string()})),
            )
                .into_response()
        }
    };
    if f.format.as_deref() == Some("text") {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            render_text(&report),
        )
            .into_response();
    }
    Json(report).into_response()
}

async fn list_errors(State(state): State<ApiState>, Query(page): Query<Page>) -> Response {
    match state
        .store
        .list_errors(page.limit.unwrap_or(100).min(1000))
        .await
    {
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
