//! `GET /`: the report list (filters, search, keyset paging); `GET /errors`: the
//! rejected inputs and failed jobs, newest first.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use alertresponder_core::model::Severity;
use alertresponder_core::ports::{
    Cursor, Direction, ErrorCursor, PageRequest, ReportFilter, ReportRow, Search, TimeField,
};

use super::view::{self, cut, maybe_time, time, Badge, SHORT};
use super::{html, problem, store_failure, Pages};

/// Reports on one page.
pub const PAGE_SIZE: usize = 50;
/// Errors on one page.
pub const ERROR_PAGE_SIZE: usize = 25;

/// The list's query string, as the filter form and the paging links write it.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    severity: Option<String>,
    detector: Option<String>,
    time: Option<String>,
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    prefix: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// A query parameter that is wrong, and why.
#[derive(Debug)]
struct BadParam {
    field: &'static str,
    message: String,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A time as the form sends it: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` (the browser's
/// `datetime-local`, taken as UTC) or a date (its midnight, UTC).
fn parse_time(field: &'static str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, BadParam> {
    let Some(s) = given(v) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Some(t) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(Some(t.and_utc()));
    }
    Err(BadParam {
        field,
        message: format!(
            "{:?} is not a time (2026-11-28, 2026-11-28T14:05 or RFC 3339)",
            cut(s, 40)
        ),
    })
}

impl ListParams {
    fn filter(&self) -> Result<(ReportFilter, PageRequest), BadParam> {
        let severity = given(&self.severity)
            .map(|s| {
                s.parse::<Severity>().map_err(|message| BadParam {
                    field: "severity",
                    message,
                })
            })
            .transpose()?;
        let time = match given(&self.time) {
            None | Some("opened") => TimeField::Opened,
            Some("published") => TimeField::Published,
            Some(other) => {
                return Err(BadParam {
                    field: "time",
                    message: format!("{:?} is not opened or published", cut(other, 40)),
                })
            }
        };
        let search = match given(&self.q) {
            None => None,
            Some(q) => Some(
                Search::new(q, given(&self.prefix).is_some()).ok_or(BadParam {
                    field: "q",
                    message: format!(
                        "longer than the {} bytes search looks at",
                        alertresponder_core::ports::MAX_SEARCH_BYTES
                    ),
                })?,
            ),
        };
        let cursor = |field: &'static str, v: &Option<String>| {
            given(v)
                .map(|s| {
                    Cursor::parse(s).ok_or(BadParam {
                        field,
                        message: "not a position this list gave".into(),
                    })
                })
                .transpose()
        };
        let (cursor, direction) = match (
            cursor("after", &self.after)?,
            cursor("before", &self.before)?,
        ) {
            (Some(c), _) => (Some(c), Direction::Older),
            (None, Some(c)) => (Some(c), Direction::Newer),
            (None, None) => (None, Direction::Older),
        };
        Ok((
            ReportFilter {
                severity,
                detector: given(&self.detector).map(str::to_string),
                time,
                since: parse_time("since", &self.since)?,
                until: parse_time("until", &self.until)?,
                search,
            },
            PageRequest {
                cursor,
                direction,
                limit: PAGE_SIZE,
            },
        ))
    }

    /// The filter part of the query string (paging left out), for the paging links.
    fn filter_query(&self) -> Vec<(&'static str, String)> {
        let keep = |v: &Option<String>| given(v).unwrap_or("").to_string();
        vec![
            ("severity", keep(&self.severity)),
            ("detector", keep(&self.detector)),
            ("time", keep(&self.time)),
            ("since", keep(&self.since)),
            ("until", keep(&self.until)),
            ("q", keep(&self.q)),
            ("prefix", keep(&self.prefix)),
        ]
    }
}

/// A `<select>` option.
pub struct Choice {
    /// Its value.
    pub value: String,
    /// What it says.
    pub label: String,
    /// Whether it is the one chosen.
    pub selected: bool,
}

fn choices(values: &[(&str, &str)], chosen: &str) -> Vec<Choice> {
    values
        .iter()
        .map(|(v, l)| Choice {
            value: (*v).to_string(),
            label: (*l).to_string(),
            selected: *v == chosen,
        })
        .collect()
}

/// A line of the list, bounded and ready to show.
pub struct RowView {
    id: String,
    href: String,
    title: String,
    alert_key: String,
    alert_count: u32,
    version: u32,
    badge: Badge,
    opened: String,
    published: String,
}

impl RowView {
    fn of(row: &ReportRow) -> Self {
        Self {
            id: row.id.clone(),
            href: view::report_path(&row.id),
            title: cut(&row.title(), SHORT),
            alert_key: cut(&row.alert_key, SHORT),
            alert_count: row.alert_count,
            version: row.version,
            badge: Badge::of(row.severity),
            opened: time(row.created_at),
            published: maybe_time(row.published_at),
        }
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    signout: bool,
    severities: Vec<Choice>,
    detectors: Vec<Choice>,
    times: Vec<Choice>,
    since: String,
    until: String,
    q: String,
    prefix: bool,
    filtered: bool,
    rows: Vec<RowView>,
    newer: Option<String>,
    older: Option<String>,
}

/// `GET /`.
pub(super) async fn reports(
    State(pages): State<Pages>,
    Query(params): Query<ListParams>,
) -> Response {
    let (filter, request) = match params.filter() {
        Ok(f) => f,
        Err(bad) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &pages.auth,
                "Bad filter",
                &format!("{}: {}", bad.field, bad.message),
            )
        }
    };
    let (page, detectors) = match tokio::try_join!(
        pages.store.browse_reports(&filter, &request),
        pages.store.detectors()
    ) {
        Ok(x) => x,
        Err(e) => return store_failure(&pages.auth, &e),
    };
    let base = params.filter_query();
    let link = |key: &'static str, cursor: &Cursor| {
        let mut pairs: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let c = cursor.to_string();
        pairs.push((key, &c));
        format!("/?{}", view::query(&pairs))
    };
    let chosen_detector = filter.detector.clone().unwrap_or_default();
    let mut detector_choices = vec![("", "any detector")];
    detector_choices.extend(detectors.iter().map(|d| (d.as_str(), d.as_str())));
    let mut detectors = choices(&detector_choices, &chosen_detector);
    if !chosen_detector.is_empty() && !detectors.iter().any(|c| c.selected) {
        detectors.push(Choice {
            value: chosen_detector.clone(),
            label: cut(&chosen_detector, SHORT),
            selected: true,
        });
    }
    for c in &mut detectors {
        c.label = cut(&c.label, SHORT);
    }
    let severity = filter.severity.map(|s| s.as_str()).unwrap_or("");
    let body = ReportsPage {
        signout: pages.auth.required(),
        severities: choices(
            &[
                ("", "any severity"),
                ("urgent", "urgent"),
                ("unclassified", "unclassified"),
                ("safe", "safe"),
            ],
            severity,
        ),
        detectors,
        times: choices(
            &[("opened", "opened"), ("published", "published")],
            filter.time.as_str(),
        ),
        since: given(&params.since).map(|s| cut(s, 40)).unwrap_or_default(),
        until: given(&params.until).map(|s| cut(s, 40)).unwrap_or_default(),
        q: given(&params.q).map(|s| cut(s, 300)).unwrap_or_default(),
        prefix: given(&params.prefix).is_some(),
        filtered: filter != ReportFilter::default(),
        rows: page.reports.iter().map(RowView::of).collect(),
        newer: page.newer.as_ref().map(|c| link("before", c)),
        older: page.older.as_ref().map(|c| link("after", c)),
    };
    html(StatusCode::OK, &body)
}

/// An error record, bounded and ready to show.
pub struct ErrorView {
    at: String,
    stage: String,
    id: String,
    field: String,
    error: String,
    input: String,
    truncated: bool,
}

#[derive(Template)]
#[template(path = "errors.html")]
struct ErrorsPage {
    signout: bool,
    errors: Vec<ErrorView>,
    older: Option<String>,
    paged: bool,
}

/// The error list's query string.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorParams {
    after: Option<String>,
}

/// `GET /errors`.
pub(super) async fn errors(
    State(pages): State<Pages>,
    Query(params): Query<ErrorParams>,
) -> Response {
    let cursor = match given(&params.after).map(ErrorCursor::parse) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &pages.auth,
                "Bad position",
                "after: not a position this list gave",
            )
        }
    };
    let page = match pages
        .store
        .browse_errors(cursor.as_ref(), ERROR_PAGE_SIZE)
        .await
    {
        Ok(p) => p,
        Err(e) => return store_failure(&pages.auth, &e),
    };
    let body = ErrorsPage {
        signout: pages.auth.required(),
        errors: page
            .errors
            .iter()
            .map(|e| ErrorView {
                at: time(e.at),
                stage: cut(&e.stage, 40),
                id: cut(&e.id, SHORT),
                field: e
                    .field
                    .as_deref()
                    .map(|f| cut(f, SHORT))
                    .unwrap_or_default(),
                error: cut(&e.error, view::LONG),
                input: cut(&e.input, view::INPUT),
                truncated: e.input_truncated,
            })
            .collect(),
        older: page
            .older
            .map(|c| format!("/errors?{}", view::query(&[("after", &c.to_string())]))),
        paged: cursor.is_some(),
    };
    html(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query string of `pairs` through axum's own extractor.
    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let uri: axum::http::Uri = format!("/?{}", view::query(pairs)).parse().unwrap();
        Query::<ListParams>::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn the_form_reads_as_a_filter_and_bad_fields_are_named() {
        let (f, p) = params(&[
            ("severity", "urgent"),
            ("detector", "guardduty"),
            ("time", "published"),
            ("since", "2026-11-28"),
            ("until", "2026-11-28T14:05"),
            ("q", " 10.0.0.1 "),
            ("prefix", "1"),
            ("before", "5:rep-1"),
        ])
        .filter()
        .unwrap();
        assert_eq!(f.severity, Some(Severity::Urgent));
        assert_eq!(f.time, TimeField::Published);
        assert_eq!(f.since.unwrap().to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-11-28T14:05:00+00:00");
        assert_eq!(f.search, Search::new("10.0.0.1", true));
        assert_eq!(p.direction, Direction::Newer);
        assert!(ListParams::default().filter().unwrap().0 == ReportFilter::default());
        for (field, value) in [
            ("severity", "bad"),
            ("time", "x"),
            ("since", "yesterday"),
            ("after", "nope"),
        ] {
            let err = params(&[(field, value)]).filter().unwrap_err();
            assert_eq!(err.field, field);
        }
    }
}
