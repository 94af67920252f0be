//! The read side a person browses (the pages of `serve`): what the other ports do not
//! answer. The report list with its filters, search and keyset paging; a report's
//! version history, its alerts' arrival times and where each claimed attribute came
//! from; the error list, paged.
//!
//! A page reads the rest through the ports that already answer it: [`ReadStore`]
//! (meta, the published version's JSON, whose inspections carry their time),
//! [`DeliveryLog::deliveries`] (each emitter's delivery).
//!
//! Paging is by key, never by offset: a [`Cursor`] is the (time, report ID) position
//! of the last row shown, so the next page starts with one index seek however deep it
//! is. An adapter keeps an index behind each filter (SQLite: `store/browse.rs`; a
//! DynamoDB adapter: a sparse index per filter, keyed by the same time and ID).
//!
//! [`ReadStore`]: super::ReadStore
//! [`DeliveryLog::deliveries`]: super::DeliveryLog::deliveries

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{ErrorRecord, ReportResult, Severity};

/// Most rows one page of reports or errors holds; a larger request is cut to it.
pub const MAX_PAGE: usize = 200;
/// Longest attribute value or alert key that search finds, in bytes once normalised
/// ([`Search::normalise`]): longer values (a JSON document as attribute) are not indexed.
pub const MAX_SEARCH_BYTES: usize = 256;
/// Most detectors [`BrowseStore::detectors`] lists.
pub const MAX_DETECTORS: usize = 100;

/// Which time orders and ranges the report list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeField {
    /// When the report was opened: every report, newest opened first.
    #[default]
    Opened,
    /// When its latest version was published: published reports only, newest first.
    Published,
}

impl TimeField {
    /// The name used in a query string (`opened`, `published`).
    pub fn as_str(self) -> &'static str {
        match self {
            TimeField::Opened => "opened",
            TimeField::Published => "published",
        }
    }
}

/// A search for reports by alert key or attribute value, normalised: trimmed, ASCII
/// letters lower-cased (so `Evil.Example` finds `evil.example`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    text: String,
    prefix: bool,
}

impl Search {
    /// The search for `text`, exact or by prefix; `None` when there is nothing to look
    /// for or the text is longer than anything indexed ([`MAX_SEARCH_BYTES`]).
    pub fn new(text: &str, prefix: bool) -> Option<Self> {
        let text = Self::normalise(text);
        (!text.is_empty() && text.len() <= MAX_SEARCH_BYTES).then_some(Self { text, prefix })
    }

    /// How an indexed value is kept and a search compared: trimmed, ASCII lower case.
    pub fn normalise(value: &str) -> String {
        value.trim().to_ascii_lowercase()
    }

    /// The normalised text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a value that starts with the text matches too.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// Whether `value` (not yet normalised) matches; a value longer than
    /// [`MAX_SEARCH_BYTES`] once normalised never does (it is not indexed).
    pub fn matches(&self, value: &str) -> bool {
        let value = Self::normalise(value);
        if value.len() > MAX_SEARCH_BYTES {
            return false;
        }
        if self.prefix {
            value.starts_with(&self.text)
        } else {
            value == self.text
        }
    }
}

/// What the report list shows: every filter set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// Severity of the latest published version (an unpublished report has none and
    /// never matches).
    pub severity: Option<Severity>,
    /// The detector of the report's alerts, exactly.
    pub detector: Option<String>,
    /// Which time orders the list and the range below applies to.
    pub time: TimeField,
    /// Only reports whose time is at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only reports whose time is before this.
    pub until: Option<DateTime<Utc>>,
    /// Only reports whose alert key, or an attribute value of one of whose alerts or
    /// claimed attributes, matches.
    pub search: Option<Search>,
}

/// A position in the report list: the time (as [`ReportFilter::time`] orders) and ID
/// of a report. Its text form, `<epoch ms>:<report ID>`, goes in a page's links.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// The report's time, in epoch milliseconds.
    pub at_ms: i64,
    /// The report's ID.
    pub id: String,
}

impl Cursor {
    /// The cursor of text `s` made by [`Cursor`]'s `Display`; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once(':')?;
        let at_ms = ms.parse().ok()?;
        (!id.is_empty()).then(|| Self {
            at_ms,
            id: id.to_string(),
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.at_ms, self.id)
    }
}

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// The rows after the cursor, going back in time (the next page).
    #[default]
    Older,
    /// The rows before the cursor, going forward in time (the previous page); still
    /// returned newest first.
    Newer,
}

/// One page to read: from where, which way, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this position (`None`: the newest rows).
    pub cursor: Option<Cursor>,
    /// Which way from the cursor.
    pub direction: Direction,
    /// How many rows, at most [`MAX_PAGE`] (and at least one).
    pub limit: usize,
}

impl PageRequest {
    /// The first page of `limit` rows.
    pub fn first(limit: usize) -> Self {
        Self {
            cursor: None,
            direction: Direction::Older,
            limit,
        }
    }

    /// The limit an adapter applies: between 1 and [`MAX_PAGE`].
    pub fn bounded_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// A line of the report list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// Report ID.
    pub id: String,
    /// The alert ID it aggregates.
    pub alert_id: String,
    /// Detector of its alerts.
    pub detector: String,
    /// The rule's name (its ID when the detector gave none).
    pub rule: String,
    /// The alert key.
    pub alert_key: String,
    /// Alerts stored for it.
    pub alert_count: u32,
    /// Latest published version (0: never published).
    pub version: u32,
    /// Severity of the latest published version.
    pub severity: Option<Severity>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When its latest version was published.
    pub published_at: Option<DateTime<Utc>>,
}

impl ReportRow {
    /// `detector: rule`, as [`crate::model::Alert::title`] titles a report.
    pub fn title(&self) -> String {
        format!("{}: {}", self.detector, self.rule)
    }

    /// The row's position in a list ordered by `time` (`None`: it has no such time).
    pub fn cursor(&self, time: TimeField) -> Option<Cursor> {
        let at = match time {
            TimeField::Opened => Some(self.created_at),
            TimeField::Published => self.published_at,
        }?;
        Some(Cursor {
            at_ms: at.timestamp_millis(),
            id: self.id.clone(),
        })
    }
}

/// One page of the report list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportPage {
    /// The reports, newest first.
    pub reports: Vec<ReportRow>,
    /// Where the next (older) page starts, if there are older rows.
    pub older: Option<Cursor>,
    /// Where the previous (newer) page starts, if there are newer rows.
    pub newer: Option<Cursor>,
}

/// One published version, as the version history lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRecord {
    /// The version number.
    pub version: u32,
    /// The reviewers' decision.
    pub result: ReportResult,
    /// When it was published.
    pub published_at: Option<DateTime<Utc>>,
}

/// When one alert of a report arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertArrival {
    /// The message that carried it.
    pub message_id: String,
    /// When the store received it.
    pub received_at: DateTime<Utc>,
}

/// Who claimed an attribute for inspection: the alert that named it, or the inspector
/// that discovered it on another attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum FoundBy {
    /// Named by the alert of this message (its dispatch claimed it).
    Alert {
        /// The message.
        message_id: String,
    },
    /// Discovered by `inspector` while inspecting the attribute of hash `parent`.
    Inspector {
        /// Hash of the attribute inspected.
        parent: String,
        /// The inspector's name.
        inspector: String,
    },
    /// A claimer of another form, kept as is.
    Other(String),
}

impl FoundBy {
    /// Reads a claimer as the pipeline writes it: `dispatch:<message ID>` (dispatch)
    /// or `inspect:<attribute hash>:<inspector>` (inspect).
    pub fn from_claimer(claimer: &str) -> Self {
        if let Some(message_id) = claimer.strip_prefix("dispatch:") {
            return FoundBy::Alert {
                message_id: message_id.to_string(),
            };
        }
        if let Some((parent, inspector)) = claimer
            .strip_prefix("inspect:")
            .and_then(|rest| rest.split_once(':'))
        {
            return FoundBy::Inspector {
                parent: parent.to_string(),
                inspector: inspector.to_string(),
            };
        }
        FoundBy::Other(claimer.to_string())
    }
}

/// Where one claimed attribute came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeOrigin {
    /// The attribute's hash ([`crate::model::Attribute::hash`]).
    pub hash: String,
    /// Who claimed it first.
    pub found_by: FoundBy,
}

/// A position in the error list: time, stage and ID of a record. Text form
/// `<epoch ms>:<stage>:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ErrorCursor {
    /// When the record was kept, epoch milliseconds.
    pub at_ms: i64,
    /// Its stage.
    pub stage: String,
    /// Its ID.
    pub id: String,
}

impl ErrorCursor {
    /// The position of `record`.
    pub fn of(record: &ErrorRecord) -> Self {
        Self {
            at_ms: record.at.timestamp_millis(),
            stage: record.stage.clone(),
            id: record.id.clone(),
        }
    }

    /// The cursor of text `s` made by `Display`; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, ':');
        let at_ms = parts.next()?.parse().ok()?;
        let stage = parts.next()?.to_string();
        let id = parts.next()?.to_string();
        Some(Self { at_ms, stage, id })
    }
}

impl fmt::Display for ErrorCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.at_ms, self.stage, self.id)
    }
}

/// One page of the error list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorPage {
    /// The records, newest first (by time, then stage, then ID, all descending).
    pub errors: Vec<ErrorRecord>,
    /// Where the next (older) page starts, if there are older records.
    pub older: Option<ErrorCursor>,
}

/// The read side of the pages: what [`super::ReadStore`], [`super::ErrorLog`] and
/// [`super::DeliveryLog`] do not answer. Every adapter passes the browse contract
/// (`fixtures::contract`, [`browse_contract_tests!`](crate::browse_contract_tests)).
#[async_trait]
pub trait BrowseStore: Send + Sync {
    /// One page of the reports that match `filter`, newest first by `filter.time`
    /// (ties: the greater report ID first), from `page.cursor` on.
    async fn browse_reports(
        &self,
        filter: &ReportFilter,
        page: &PageRequest,
    ) -> Result<ReportPage, StoreError>;
    /// The detectors of the stored reports, sorted, at most [`MAX_DETECTORS`].
    async fn detectors(&self) -> Result<Vec<String>, StoreError>;
    /// Every published version of a report, oldest first (none: never published, or
    /// no such report).
    async fn versions(&self, report_id: &str) -> Result<Vec<VersionRecord>, StoreError>;
    /// When the report's alerts arrived, in the order stored (that of
    /// [`super::ReportState::alerts`]), the first `limit` of them.
    async fn arrivals(
        &self,
        report_id: &str,
        limit: usize,
    ) -> Result<Vec<AlertArrival>, StoreError>;
    /// Who claimed each of the report's claimed attributes, in claim order.
    async fn origins(&self, report_id: &str) -> Result<Vec<AttributeOrigin>, StoreError>;
    /// One page of the error records, newest first, after `cursor` (`None`: the newest).
    async fn browse_errors(
        &self,
        cursor: Option<&ErrorCursor>,
        limit: usize,
    ) -> Result<ErrorPage, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_their_text() {
        let c = Cursor {
            at_ms: 1_700_000_000_123,
            id: "rep:with:colons".into(),
        };
        assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        assert_eq!(Cursor::parse("x:1"), None);
        assert_eq!(Cursor::parse("12:"), None);
        let e = ErrorCursor {
            at_ms: 5,
            stage: "review".into(),
            id: "review:r1:2".into(),
        };
        assert_eq!(ErrorCursor::parse(&e.to_string()), Some(e));
        assert_eq!(ErrorCursor::parse("5:review"), None);
    }

    #[test]
    fn search_is_trimmed_and_case_blind_on_ascii_only() {
        let s = Search::new("  Evil.EXAMPLE ", false).unwrap();
        assert!(s.matches("evil.example"));
        assert!(!s.matches("evil.example.net"));
        let p = Search::new("10.0.", true).unwrap();
        assert!(p.matches("10.0.0.1"));
        assert!(!p.matches("110.0.0.1"));
        assert!(Search::new("   ", false).is_none());
        assert!(Search::new(&"a".repeat(MAX_SEARCH_BYTES + 1), false).is_none());
        assert!(!Search::new("a", true)
            .unwrap()
            .matches(&"a".repeat(MAX_SEARCH_BYTES + 1)));
    }

    #[test]
    fn claimers_read_as_the_pipeline_writes_them() {
        assert_eq!(
            FoundBy::from_claimer("dispatch:m-1"),
            FoundBy::Alert {
                message_id: "m-1".into()
            }
        );
        assert_eq!(
            FoundBy::from_claimer("inspect:abc123:threat:intel"),
            FoundBy::Inspector {
                parent: "abc123".into(),
                inspector: "threat:intel".into()
            }
        );
        assert_eq!(FoundBy::from_claimer("x"), FoundBy::Other("x".into()));
    }
}
