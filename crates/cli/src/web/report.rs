//! `GET /reports/{id}`: one report, as its latest published version (or as stored so
//! far, before the first), with its version history, timeline, alerts, entity graph,
//! findings and inspection outcomes; `GET /reports/{id}.txt`: the text rendering
//! (`core::render`), as a terminal shows it.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{Alert, Attribute, Report};
use alertresponder_core::pipeline::compile;
use alertresponder_core::render::render_text;

use super::graph::{self, Graph};
use super::timeline::{self, Event, Sources};
use super::view::{self, cut, maybe_time, outcome, time, Badge, LONG, SHORT};
use super::{html, problem, store_failure, PageStore, Pages};

/// Most alerts shown one by one (all are counted).
pub const MAX_ALERTS: usize = 50;
/// Most attributes shown per alert.
pub const MAX_ALERT_ATTRIBUTES: usize = 50;
/// Most arrivals read for the timeline.
pub const MAX_ARRIVALS: usize = 200;
/// Most sections shown.
pub const MAX_SECTIONS: usize = 200;
/// Most lines of one section's content.
pub const MAX_CONTENT_LINES: usize = 40;
/// Most inspection outcomes shown.
pub const MAX_INSPECTIONS: usize = 500;

/// The report as a page shows it: the latest published version, or the state so far
/// compiled now (nothing published yet; an unfinished inspection shows as timed out).
pub async fn current(store: &dyn PageStore, id: &str) -> Result<Option<Report>, StoreError> {
    let Some(meta) = store.report_meta(id).await? else {
        return Ok(None);
    };
    if meta.published_version > 0 {
        if let Some((report, _)) = store.published_report(id, meta.published_version).await? {
            return Ok(Some(report));
        }
    }
    Ok(store
        .load_report(id)
        .await?
        .map(|state| compile(&state, 0, chrono::Utc::now())))
}

/// The verdict of the version before.
struct Previous {
    badge: Badge,
    reason: String,
}

/// One version in the history.
struct VersionView {
    version: u32,
    badge: Badge,
    reason: String,
    published: String,
    current: bool,
}

/// An attribute as shown.
struct AttrView {
    attr_type: String,
    key: String,
    value: String,
    context: String,
}

impl AttrView {
    fn of(a: &Attribute) -> Self {
        Self {
            attr_type: cut(&a.attr_type, 40),
            key: cut(&a.key, SHORT),
            value: cut(&a.value, LONG),
            context: cut(&a.context.join(", "), SHORT),
        }
    }
}

struct AlertView {
    n: usize,
    title: String,
    alert_key: String,
    description: String,
    timestamp: String,
    arrived: String,
    attributes: Vec<AttrView>,
    more_attributes: usize,
    body: String,
}

struct Line {
    key: String,
    text: String,
}

struct SectionView {
    author: String,
    section_type: String,
    lines: Vec<Line>,
    more_lines: usize,
}

struct Findings {
    anchor: String,
    attribute: AttrView,
    sections: Vec<SectionView>,
}

struct InspectionView {
    attribute: String,
    inspector: String,
    label: &'static str,
    class: &'static str,
    detail: String,
    at: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    signout: bool,
    id: String,
    json_href: String,
    text_href: String,
    title: String,
    alert_id: String,
    badge: Badge,
    reason: String,
    previous: Option<Previous>,
    version: u32,
    opened: String,
    published: String,
    late_alerts: u32,
    cut_note: String,
    versions: Vec<VersionView>,
    events: Vec<Event>,
    events_left_out: usize,
    graph: Graph,
    alerts: Vec<AlertView>,
    more_alerts: usize,
    findings: Vec<Findings>,
    more_sections: usize,
    inspections: Vec<InspectionView>,
    more_inspections: usize,
}

/// One JSON value on one line: strings as they are, lists joined, objects as JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let mut parts: Vec<String> = items
                .iter()
                .take(MAX_CONTENT_LINES)
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            if items.len() > MAX_CONTENT_LINES {
                parts.push(format!("… ({} more)", items.len() - MAX_CONTENT_LINES));
            }
            parts.join(", ")
        }
        other => other.to_string(),
    }
}

/// A section's content as key/text lines, bounded.
fn content_lines(content: &Value) -> (Vec<Line>, usize) {
    match content {
        Value::Object(map) => {
            let lines = map
                .iter()
                .take(MAX_CONTENT_LINES)
                .map(|(k, v)| Line {
                    key: cut(k, 60),
                    text: cut(&value_text(v), LONG),
                })
                .collect();
            (lines, map.len().saturating_sub(MAX_CONTENT_LINES))
        }
        other => (
            vec![Line {
                key: String::new(),
                text: cut(&value_text(other), LONG),
            }],
            0,
        ),
    }
}

fn findings(report: &Report) -> (Vec<Findings>, usize) {
    let mut by_attr: Vec<Findings> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in report.sections.iter().take(MAX_SECTIONS) {
        let hash = s.attribute.hash();
        let i = *index.entry(hash.clone()).or_insert_with(|| {
            by_attr.push(Findings {
                anchor: format!("a-{hash}"),
                attribute: AttrView::of(&s.attribute),
                sections: Vec::new(),
            });
            by_attr.len() - 1
        });
        let (lines, more_lines) = content_lines(&s.content);
        by_attr[i].sections.push(SectionView {
            author: cut(&s.author, SHORT),
            section_type: cut(&s.section_type, 40),
            lines,
            more_lines,
        });
    }
    (by_attr, report.sections.len().saturating_sub(MAX_SECTIONS))
}

fn alert_view(n: usize, a: &Alert, arrived: Option<String>) -> AlertView {
    AlertView {
        n,
        title: cut(&a.title(), SHORT),
        alert_key: cut(&a.alert_key, SHORT),
        description: cut(&a.description, LONG),
        timestamp: time(a.timestamp),
        arrived: arrived.unwrap_or_else(|| "—".into()),
        attributes: a
            .attributes
            .iter()
            .take(MAX_ALERT_ATTRIBUTES)
            .map(AttrView::of)
            .collect(),
        more_attributes: a.attributes.len().saturating_sub(MAX_ALERT_ATTRIBUTES),
        body: a
            .body
            .as_ref()
            .map(|b| cut(&serde_json::to_string_pretty(b).unwrap_or_default(), LONG))
            .unwrap_or_default(),
    }
}

/// `GET /reports/{id}` (and `{id}.txt`).
pub(super) async fn report(State(pages): State<Pages>, Path(id): Path<String>) -> Response {
    if let Some(id) = id.strip_suffix(".txt") {
        return text(&pages, id).await;
    }
    let store = pages.store.as_ref();
    let report = match current(store, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&pages, &id),
        Err(e) => return store_failure(&pages.auth, &e),
    };
    let reads = tokio::try_join!(
        store.versions(&id),
        store.arrivals(&id, MAX_ARRIVALS),
        store.deliveries(&id),
        store.origins(&id),
        store.report_counts(&id),
    );
    let (versions, arrivals, deliveries, origins, counts) = match reads {
        Ok(x) => x,
        Err(e) => return store_failure(&pages.auth, &e),
    };
    let (events, events_left_out) = timeline::events(&Sources {
        report: &report,
        arrivals: &arrivals,
        versions: &versions,
        deliveries: &deliveries,
    });
    let shown_alerts = report.alerts.len() + report.cut.as_ref().map_or(0, |c| c.alerts_omitted);
    let late_alerts = counts
        .map(|c| c.alerts)
        .unwrap_or_default()
        .saturating_sub(u32::try_from(shown_alerts).unwrap_or(u32::MAX));
    let (findings, more_sections) = findings(&report);
    let published = report.version > 0;
    let body = ReportPage {
        signout: pages.auth.required(),
        json_href: format!("/v1/reports/{}", view::encode(&id)),
        text_href: format!("{}.txt", view::report_path(&id)),
        id: cut(&id, SHORT),
        title: report
            .alerts
            .first()
            .map(|a| cut(&a.title(), SHORT))
            .unwrap_or_default(),
        alert_id: cut(&report.alert_id, SHORT),
        badge: Badge::of(published.then_some(report.result.severity)),
        reason: if published {
            cut(&report.result.reason, LONG)
        } else {
            "Not reviewed yet: this is the report as stored so far.".into()
        },
        previous: report
            .previous_result
            .as_ref()
            .filter(|_| report.version > 1)
            .map(|p| Previous {
                badge: Badge::of(Some(p.severity)),
                reason: cut(&p.reason, LONG),
            }),
        version: report.version,
        opened: time(report.created_at),
        published: maybe_time(report.published_at),
        late_alerts,
        cut_note: report
            .cut
            .as_ref()
            .map(|c| {
                format!(
                    "This version was cut to fit a size bound ({} bytes): {} alerts, {} sections and {} inspection records left out, {} alert bodies and {} section contents replaced by a note.",
                    c.original_bytes, c.alerts_omitted, c.sections_omitted, c.inspections_omitted, c.bodies_removed, c.contents_removed
                )
            })
            .unwrap_or_default(),
        versions: versions
            .iter()
            .rev()
            .map(|v| VersionView {
                version: v.version,
                badge: Badge::of(Some(v.result.severity)),
                reason: cut(&v.result.reason, LONG),
                published: maybe_time(v.published_at),
                current: v.version == report.version,
            })
            .collect(),
        events,
        events_left_out,
        graph: graph::layout(&report, &origins),
        alerts: report
            .alerts
            .iter()
            .take(MAX_ALERTS)
            .enumerate()
            .map(|(i, a)| alert_view(i + 1, a, arrivals.get(i).map(|x| time(x.received_at))))
            .collect(),
        more_alerts: report.alerts.len().saturating_sub(MAX_ALERTS),
        findings,
        more_sections,
        inspections: report
            .inspections
            .iter()
            .take(MAX_INSPECTIONS)
            .map(|i| {
                let (label, class) = outcome(i.status);
                InspectionView {
                    attribute: format!(
                        "{} {}",
                        cut(&i.attribute.attr_type, 40),
                        cut(&i.attribute.value, SHORT)
                    ),
                    inspector: cut(&i.inspector, SHORT),
                    label,
                    class,
                    detail: i.detail.as_deref().map(|d| cut(d, LONG)).unwrap_or_default(),
                    at: time(i.at),
                }
            })
            .collect(),
        more_inspections: report.inspections.len().saturating_sub(MAX_INSPECTIONS),
    };
    html(StatusCode::OK, &body)
}

fn not_found(pages: &Pages, id: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        &pages.auth,
        "No such report",
        &format!("There is no report {}.", cut(id, SHORT)),
    )
}

async fn text(pages: &Pages, id: &str) -> Response {
    match current(pages.store.as_ref(), id).await {
        Ok(Some(report)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            render_text(&report),
        )
            .into_response(),
        Ok(None) => not_found(pages, id),
        Err(e) => store_failure(&pages.auth, &e),
    }
}
