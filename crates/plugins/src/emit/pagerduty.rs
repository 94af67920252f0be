//! `kind = "pagerduty"`: a report as a PagerDuty alert, through the Events API v2
//! (`POST {url}/v2/enqueue`, the routing key in the body).
//!
//! | version | event |
//! |---|---|
//! | `urgent` or `unclassified` | `trigger`, `dedup_key` = the report ID: version 2 updates the alert version 1 opened |
//! | `safe` after a version that was not | `resolve`, same `dedup_key` |
//! | `safe` with no earlier verdict that paged | nothing: not wanted, and `emit` sends nothing |
//!
//! Severities map `urgent` → `critical` and `unclassified` → `warning` unless the table's
//! `severity` says otherwise. PagerDuty shows every field as plain text, so the one
//! escaping function here, [`plain`], only bounds what the digest already made inert
//! (control and bidi characters escaped): `payload.summary` to PagerDuty's 1024
//! characters, each other field to its own bound, and `custom_details` as a whole to
//! [`MAX_DETAILS_BYTES`] (the event limit is 512 KB), listing what it left out. A link
//! in the event only ever comes from `report_url`, never from alert text.
//!
//! Answers (PagerDuty's documented ones): 202 `{"status": "success", "message": "Event
//! processed", "dedup_key": …}` is delivered; 400 `{"status": "invalid event", …}` is
//! rejected (kept, no retry helps); 429 waits for `Retry-After`; 5xx and network errors
//! are retried by the runtime ([`crate::emit::http`]).

use std::collections::BTreeMap;
use std::fmt;

use alertresponder_core::model::Severity;
use alertresponder_core::ports::Emitter;
use alertresponder_core::{PluginError, Report};
use async_trait::async_trait;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Url};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use super::digest::{self, Digest};
use super::{http, EmitContext};
use crate::config::SeverityFilter;
use crate::error::PluginConfigError;
use crate::inspect::http as inspect_http;
use crate::secret::{MaybeSecret, Secret};

/// The Events API when `url` is not set (EU accounts: `https://events.eu.pagerduty.com`).
pub const DEFAULT_URL: &str = "https://events.pagerduty.com";
/// `payload.source` when `source` is not set.
pub const DEFAULT_SOURCE: &str = "alertresponder";
/// PagerDuty's bound on `payload.summary`, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// PagerDuty's bound on `dedup_key`, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// The most bytes of `custom_details` (as JSON): far below the 512 KB an event may have.
pub const MAX_DETAILS_BYTES: usize = 64 * 1024;
/// The most characters of a configured `source`, `component`, `group` or `class`.
pub const MAX_FIELD_CHARS: usize = 255;
/// The PagerDuty severities a verdict may map to.
pub const PAGERDUTY_SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// The keys of a `pagerduty` emitter besides the common ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The integration key of an Events API v2 integration: a secret reference only.
    pub routing_key: MaybeSecret,
    /// The Events API base (default [`DEFAULT_URL`]).
    pub url: Option<String>,
    /// `payload.source` (default [`DEFAULT_SOURCE`]).
    pub source: Option<String>,
    /// Verdict → PagerDuty severity, e.g. `{ urgent = "critical", unclassified = "error" }`.
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
    /// A link to the report (`https://…/reports/{id}`), sent as the event's link.
    pub report_url: Option<String>,
    /// `payload.component`.
    pub component: Option<String>,
    /// `payload.group`.
    pub group: Option<String>,
    /// `payload.class`.
    pub class: Option<String>,
}

/// Sends reports to PagerDuty as alerts that version 2 updates and a safe verdict resolves.
pub struct PagerDutyEmitter {
    name: String,
    enqueue: Url,
    /// What an error calls the target: `PagerDuty <origin>`.
    shown: String,
    routing_key: Secret,
    source: String,
    urgent: &'static str,
    unclassified: &'static str,
    report_url: Option<String>,
    component: Option<String>,
    group: Option<String>,
    class: Option<String>,
    client: Client,
    timeout: std::time::Duration,
    /// The table's filter: a version it does not pass, after one it did, resolves.
    filter: SeverityFilter,
}

impl fmt::Debug for PagerDutyEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyEmitter")
            .field("name", &self.name)
            .field("enqueue", &self.enqueue.as_str())
            .field("routing_key", &self.routing_key)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What one version makes PagerDuty do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open or update the alert of the report.
    Trigger,
    /// Resolve it: the report was found safe after a verdict that paged.
    Resolve,
}

impl Action {
    /// The action of `report` under `filter` (the table's `min_severity`/`severities`,
    /// by default unclassified and urgent): a verdict the filter passes (never `safe`)
    /// triggers or updates the alert; a verdict below it after one that paged resolves
    /// it (urgent → unclassified with `min_severity = "urgent"`, or → safe); `None` when
    /// nothing paged before (nothing is open to resolve).
    pub fn of(report: &Report, filter: &SeverityFilter) -> Option<Action> {
        let pages = |s: Severity| s != Severity::Safe && filter.admits(s);
        if pages(report.result.severity) {
            return Some(Action::Trigger);
        }
        report
            .previous_result
            .as_ref()
            .filter(|p| pages(p.severity))
            .map(|_| Action::Resolve)
    }

    fn name(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Resolve => "resolve",
        }
    }
}

impl PagerDutyEmitter {
    /// Checks `config` and resolves the routing key; errors name `ctx.field(..)`, never
    /// the key.
    pub async fn build(ctx: &EmitContext<'_>, config: Config) -> Result<Self, PluginConfigError> {
        let reference = match &config.routing_key {
            MaybeSecret::Secret(r) => r,
            MaybeSecret::Plain(_) => {
                return Err(ctx.invalid(
                    "routing_key",
                    "a routing key is never written in the file: use { env = \"…\" }, \
                     { secret = \"…\" } or { file = \"…\" }",
                ))
            }
        };
        let base = inspect_http::api_base(&ctx.base, config.url.as_deref(), DEFAULT_URL)?;
        let enqueue = inspect_http::with_segments(&base, &["v2", "enqueue"])
            .map_err(|e| ctx.invalid("url", e.to_string()))?;
        let (mut urgent, mut unclassified) = ("critical", "warning");
        for (verdict, value) in &config.severity {
            let field = format!("severity.{verdict}");
            let Some(mapped) = PAGERDUTY_SEVERITIES.iter().find(|s| **s == value.as_str()) else {
                return Err(ctx.invalid(
                    &field,
                    format!(
                        "{:?} is not a PagerDuty severity (one of {})",
                        inspect_http::bounded(value, 40),
                        PAGERDUTY_SEVERITIES.join(", ")
                    ),
                ));
            };
            match verdict.as_str() {
                "urgent" => urgent = mapped,
                "unclassified" => unclassified = mapped,
                "safe" => return Err(ctx.invalid(
                    &field,
                    "a safe verdict never pages: it resolves the alert an earlier version opened",
                )),
                _ => {
                    return Err(ctx.invalid(
                        "severity",
                        format!(
                            "{:?} is not a verdict (urgent or unclassified)",
                            inspect_http::bounded(verdict, 40)
                        ),
                    ))
                }
            }
        }
        if let Some(template) = &config.report_url {
            digest::check_report_url(template).map_err(|m| ctx.invalid("report_url", m))?;
        }
        let source = config.source.unwrap_or_else(|| DEFAULT_SOURCE.to_string());
        check_field(ctx, "source", &source)?;
        for (field, value) in [
            ("component", &config.component),
            ("group", &config.group),
            ("class", &config.class),
        ] {
            if let Some(v) = value {
                check_field(ctx, field, v)?;
            }
        }
        let routing_key = ctx
            .secrets()
            .resolve(reference, &ctx.field("routing_key"))
            .await?;
        let trimmed = routing_key.expose().trim();
        if trimmed.is_empty() {
            return Err(ctx.invalid("routing_key", "the routing key read is empty"));
        }
        let routing_key = Secret::new(trimmed);
        Ok(Self {
            name: ctx.name().to_string(),
            shown: format!("PagerDuty {}", base.origin().ascii_serialization()),
            enqueue,
            routing_key,
            source,
            urgent,
            unclassified,
            report_url: config.report_url,
            component: config.component,
            group: config.group,
            class: config.class,
            client: inspect_http::client(&ctx.base)?,
            timeout: ctx.timeout(),
            filter: ctx.filter.clone(),
        })
    }

    /// The PagerDuty severity of a verdict that pages.
    fn severity_of(&self, severity: Severity) -> &'static str {
        match severity {
            Severity::Urgent => self.urgent,
            Severity::Unclassified | Severity::Safe => self.unclassified,
        }
    }

    /// The event `report` makes, without the routing key (`None`: nothing to send).
    pub fn event(&self, report: &Report) -> Option<Value> {
        let action = Action::of(report, &self.filter)?;
        let mut event = Map::new();
        event.insert("event_action".into(), json!(action.name()));
        event.insert("dedup_key".into(), json!(dedup_key(&report.id)));
        if action == Action::Resolve {
            return Some(Value::Object(event));
        }
        let d = Digest::of(report);
        let link = self
            .report_url
            .as_deref()
            .map(|t| digest::report_link(t, &report.id, report.version));
        let mut payload = Map::new();
        payload.insert("summary".into(), json!(summary(&d)));
        payload.insert("source".into(), json!(self.source));
        payload.insert("severity".into(), json!(self.severity_of(d.severity)));
        let at = report.published_at.unwrap_or(report.created_at);
        payload.insert(
            "timestamp".into(),
            json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
        for (key, value) in [
            ("component", &self.component),
            ("group", &self.group),
            ("class", &self.class),
        ] {
            if let Some(v) = value {
                payload.insert(key.into(), json!(v));
            }
        }
        payload.insert("custom_details".into(), custom_details(&d, link.as_deref()));
        event.insert("payload".into(), Value::Object(payload));
        event.insert("client".into(), json!("AlertResponder"));
        if let Some(link) = link {
            event.insert("client_url".into(), json!(link));
            event.insert(
                "links".into(),
                json!([{"href": link, "text": "AlertResponder report"}]),
            );
        }
        Some(Value::Object(event))
    }
}

/// A configured text field: not empty, bounded, no control characters.
fn check_field(ctx: &EmitContext<'_>, field: &str, value: &str) -> Result<(), PluginConfigError> {
    if value.trim().is_empty() {
        return Err(ctx.invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_FIELD_CHARS {
        return Err(ctx.invalid(field, format!("at most {MAX_FIELD_CHARS} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ctx.invalid(field, "must not hold control characters"));
    }
    Ok(())
}

/// The `dedup_key` of a report: its ID (a UUID), or, should one ever pass PagerDuty's
/// 255 characters, a hash of it — the same for every version either way.
pub fn dedup_key(report_id: &str) -> String {
    if !report_id.is_empty() && report_id.chars().count() <= MAX_DEDUP_KEY_CHARS {
        report_id.to_string()
    } else {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(report_id.as_bytes()))
        )
    }
}

/// Text for PagerDuty, which shows every field as plain text: at most `max` characters,
/// `…` when cut. Digest strings come here already inert (control and bidi characters
/// escaped by [`Digest::of`]); nothing here becomes a link or a mention.
pub fn plain(text: &str, max: usize) -> String {
    inspect_http::bounded(text, max.saturating_sub(1).max(1))
}

/// `payload.summary`: verdict (and the one before), rule, alert key — one line, at most
/// [`MAX_SUMMARY_CHARS`].
pub fn summary(d: &Digest) -> String {
    let verdict = match d.previous.filter(|p| *p != d.severity) {
        Some(p) => format!("{} (was {p})", d.severity.as_str().to_uppercase()),
        None => d.severity.as_str().to_uppercase(),
    };
    let mut text = format!("{verdict}: {}", d.title);
    if !d.detector.is_empty() {
        text.push_str(&format!(" [{}]", d.detector));
    }
    if !d.alert_key.is_empty() {
        text.push_str(&format!(" on {}", d.alert_key));
    }
    if d.alert_count > 1 {
        text.push_str(&format!(" ({} alerts)", d.alert_count));
    }
    plain(&text, MAX_SUMMARY_CHARS)
}

/// `payload.custom_details`: the digest as PagerDuty lists it (short strings), at most
/// [`MAX_DETAILS_BYTES`] of JSON; a list that did not fit says how much it left out.
pub fn custom_details(d: &Digest, link: Option<&str>) -> Value {
    let mut details = Map::new();
    let mut put = |k: &str, v: Value| {
        details.insert(k.to_string(), v);
    };
    put("report_id", json!(d.report_id));
    put("version", json!(d.version));
    put("verdict", json!(d.severity.as_str()));
    if let Some(p) = d.previous {
        put("previous_verdict", json!(p.as_str()));
    }
    put("reason", json!(plain(&d.reason, digest::MAX_TEXT_CHARS)));
    put("rule", json!(d.title));
    put("rule_id", json!(d.rule_id));
    put("detector", json!(d.detector));
    put("alert_key", json!(d.alert_key));
    if !d.description.is_empty() {
        put("description", json!(d.description));
    }
    put("alerts", json!(d.alert_count));
    if let Some(link) = link {
        put("report", json!(link));
    }
    let mut used = serde_json::to_vec(&details).map_or(0, |b| b.len());
    let attributes = d.attributes.iter().map(|a| {
        let mut line = format!("{} {}", a.attr_type, a.value);
        if !a.key.is_empty() {
            line.push_str(&format!(" ({})", a.key));
        }
        if !a.from_alert {
            line.push_str(" [discovered]");
        }
        line
    });
    let findings = d.findings.iter().map(|f| {
        format!(
            "{} on {} {}: {}",
            f.inspector, f.attr_type, f.value, f.summary
        )
    });
    let gaps = d
        .gaps
        .iter()
        .map(|g| format!("{} on {}: {}", g.inspector, g.value, g.outcome));
    // The verdict's grounds first: what the inspectors found, then the attributes, then
    // what could not be looked at.
    for (key, lines, already_omitted) in [
        (
            "findings",
            Box::new(findings) as Box<dyn Iterator<Item = String>>,
            d.findings_omitted,
        ),
        ("attributes", Box::new(attributes), d.attributes_omitted),
        ("not_inspected", Box::new(gaps), 0),
    ] {
        let mut kept = Vec::new();
        let mut omitted = already_omitted;
        // Room for the key, the list's brackets and its `…_omitted` count.
        let overhead = key.len() * 2 + 40;
        for line in lines {
            let cost = serde_json::to_vec(&line).map_or(usize::MAX, |b| b.len() + 1);
            if used.saturating_add(overhead).saturating_add(cost) > MAX_DETAILS_BYTES {
                omitted += 1;
                continue;
            }
            used += cost;
            kept.push(Value::String(line));
        }
        if kept.is_empty() && omitted == 0 {
            continue;
        }
        used += overhead;
        details.insert(key.to_string(), Value::Array(kept));
        if omitted > 0 {
            details.insert(format!("{key}_omitted"), json!(omitted));
        }
    }
    Value::Object(details)
}

#[async_trait]
impl Emitter for PagerDutyEmitter {
    fn name(&self) -> &str {
        &self.name
    }

    /// A safe version is wanted only to resolve what an earlier verdict opened.
    fn wants(&self, report: &Report) -> bool {
        Action::of(report, &self.filter).is_some()
    }

    async fn emit(&self, report: &Report, _attempt: u32) -> Result<(), PluginError> {
        let Some(Value::Object(mut event)) = self.event(report) else {
            tracing::debug!(
                emitter = %self.name,
                report_id = %report.id,
                "a safe version with no earlier paging verdict: nothing sent to PagerDuty"
            );
            return Ok(());
        };
        event.insert(
            "routing_key".into(),
            Value::String(self.routing_key.expose().to_string()),
        );
        let body = serde_json::to_vec(&event)
            .map_err(|e| PluginError::Failed(format!("cannot encode the event: {e}")))?;
        let request = self
            .client
            .post(self.enqueue.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(body)
            .build()
            .map_err(|e| PluginError::Failed(format!("{}: {e}", self.shown)))?;
        let answer = http::send(&self.client, request, &self.shown, self.timeout)
            .await
            .map_err(|e| self.redacted(e))?;
        let json = answer.json(&self.shown).map_err(|e| self.redacted(e))?;
        match json.get("status").and_then(Value::as_str) {
            Some("success") => Ok(()),
            other => Err(self.redacted(PluginError::InvalidOutput(format!(
                "{}: HTTP {} with status {}",
                self.shown,
                answer.status.as_u16(),
                inspect_http::bounded(&other.map_or("(none)".into(), |s| format!("{s:?}")), 100)
            )))),
        }
    }
}

impl PagerDutyEmitter {
    /// `e` with the routing key replaced, should PagerDuty or a proxy echo the body.
    fn redacted(&self, e: PluginError) -> PluginError {
        let key = self.routing_key.expose();
        let clean = |m: String| m.replace(key, "***");
        match e {
            PluginError::Failed(m) => PluginError::Failed(clean(m)),
            PluginError::Rejected(m) => PluginError::Rejected(clean(m)),
            PluginError::InvalidOutput(m) => PluginError::InvalidOutput(clean(m)),
            PluginError::Skipped(m) => PluginError::Skipped(clean(m)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
