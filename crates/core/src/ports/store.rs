//! The store ports, split by capability: a handler names only the ones it uses, and a
//! decorator (the AWS error path) implements only the one it changes.
//!
//! Every adapter (memory, SQLite, DynamoDB) passes the same contract suite
//! (`fixtures::contract`); the rules the stores share (the aggregation window, the
//! meta of a new report) live here, once.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DeliveryLog;
use crate::error::StoreError;
use crate::model::{
    Alert, Attribute, ErrorRecord, InspectionRecord, Report, ReportResult, ReportSection,
};

/// What the store knows of a report without loading its content: enough for the
/// handlers to decide (dispatch, compile or not) with one read. It holds nothing that
/// every joining alert would have to update: under a burst on one alert key, the
/// receptors write their own items only (see [`ReportCounts`] for the counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// Report ID.
    pub id: String,
    /// The alert ID it aggregates.
    pub alert_id: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// The message that opened it.
    pub opened_by: String,
    /// Last published version (0: never published).
    pub published_version: u32,
    /// When its last version was published.
    #[serde(default)]
    pub last_published_at: Option<DateTime<Utc>>,
}

impl ReportMeta {
    /// The meta of a report that `message_id` opens now: nothing stored, never published.
    pub fn opened(id: &str, alert_id: &str, created_at: DateTime<Utc>, message_id: &str) -> Self {
        Self {
            id: id.to_string(),
            alert_id: alert_id.to_string(),
            created_at,
            opened_by: message_id.to_string(),
            published_version: 0,
            last_published_at: None,
        }
    }
}

/// How much a report holds, counted when asked (after a publication, to decide a
/// re-review), so that no write has to keep a shared counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportCounts {
    /// Alerts stored for it.
    pub alerts: u32,
    /// Attributes claimed for inspection (what a compiled report lists).
    pub attributes: u32,
}

impl ReportCounts {
    /// Whether the report holds more than a version compiled with `alerts` alerts and
    /// `attributes` attributes: then that version needs a re-review of its own.
    pub fn grew_since(&self, alerts: usize, attributes: usize) -> bool {
        self.alerts as usize > alerts || self.attributes as usize > attributes
    }
}

/// The aggregation window at `now`, in epoch milliseconds: `(now, earliest opening
/// still inside)`. An open report created at or before the second bound is closed.
pub fn aggregation_bounds(now: DateTime<Utc>, window: Duration) -> (i64, i64) {
    let now_ms = now.timestamp_millis();
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (now_ms, now_ms.saturating_sub(window_ms))
}

/// Everything stored for a report, to compile it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportState {
    /// Its metadata.
    pub meta: ReportMeta,
    /// Alerts in the order received.
    pub alerts: Vec<Alert>,
    /// Attributes claimed for inspection, in claim order.
    pub attributes: Vec<Attribute>,
    /// The claimed attributes whose inspection has not finished (no
    /// [`FindingStore::mark_inspected`] yet), in claim order.
    pub pending: Vec<Attribute>,
    /// Sections written by inspectors.
    pub sections: Vec<ReportSection>,
    /// Inspector outcomes.
    pub inspections: Vec<InspectionRecord>,
    /// Result of the last published version.
    pub last_result: Option<ReportResult>,
}

/// One alert arriving at the store: what [`AdmitStore::admit`] takes.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// Its alert ID (which report it belongs to).
    pub alert_id: &'a str,
    /// The delivery that carried it (idempotency key).
    pub message_id: &'a str,
    /// The report ID to open if no report of `alert_id` is open.
    pub candidate_id: &'a str,
    /// The validated alert.
    pub alert: &'a Alert,
    /// Now.
    pub now: DateTime<Utc>,
    /// How long an opened report accepts alerts.
    pub window: Duration,
}

/// What [`AdmitStore::admit`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The report opened or joined, as it was before the alert was stored.
    pub meta: ReportMeta,
    /// The alert was stored now (`false`: its message was stored before).
    pub inserted: bool,
    /// When the alert was stored (for a redelivery: when the first delivery was).
    pub received_at: DateTime<Utc>,
    /// The report already had every attribute of the alert: claimed for inspection,
    /// or first named by an alert of another message (whose dispatch claims it). Such
    /// an alert needs no dispatch of its own. A message's own mentions never count: if
    /// its receptor died before scheduling the dispatch, the redelivery schedules it.
    pub knows_all_attributes: bool,
}

/// Outcome of claiming an attribute for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// New to the report (or claimed earlier by the same claimer: a retry): inspect it.
    New,
    /// Already claimed by someone else.
    Seen,
    /// The report's attribute cap is reached: not inspected.
    CapReached,
}

/// Outcome of marking a report version published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishMark {
    /// This call published it.
    Published,
    /// It was published before, by `publisher`.
    AlreadyPublished {
        /// The job or execution that published it.
        publisher: String,
    },
}

/// Receiving alerts (the receptor).
#[async_trait]
pub trait AdmitStore: Send + Sync {
    /// Receives an alert in one step: atomically joins the open report of the alert ID
    /// (opened less than `window` before `now`) or opens `candidate_id` for it, so that
    /// two concurrent calls never open two reports; stores the alert once per message,
    /// recording the message as the first to name each attribute the report had not
    /// seen named; and tells whether the report already knew every attribute (see
    /// [`Admission::knows_all_attributes`]). A retry of the message that opened a
    /// report gets that report back, even after others joined it.
    async fn admit(&self, arrival: &Arrival<'_>) -> Result<Admission, StoreError>;
    /// The alert a message carried.
    async fn get_alert(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<Alert>, StoreError>;
}

/// Claiming attributes for inspection (dispatch, and inspections that discover more).
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Claims an attribute for inspection, conditionally: new, or claimed before by
    /// `claimer`; past `cap` claimed attributes, [`Claim::CapReached`].
    async fn claim_attribute(
        &self,
        report_id: &str,
        attribute: &Attribute,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError>;
}

/// Keeping what inspections found.
#[async_trait]
pub trait FindingStore: Send + Sync {
    /// Stores (or replaces, keeping its place) the `index`th section of an inspector on
    /// an attribute.
    async fn put_section(&self, section: &ReportSection, index: usize) -> Result<(), StoreError>;
    /// Stores (or replaces, keeping its place) an inspector's outcome on an attribute.
    async fn put_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError>;
    /// Stores an inspector's outcome as [`FindingStore::put_inspection`] does and, in
    /// the same write, records that the attribute's inspection has finished, as
    /// [`FindingStore::mark_inspected`] does: the last outcome of an inspection costs
    /// no write of its own (on DynamoDB, one write unit per attribute).
    async fn put_last_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError>;
    /// Records that the inspection of a claimed attribute has finished (every inspector
    /// answered, failed or timed out): it is no longer pending. Idempotent; an
    /// attribute the report has not claimed is ignored.
    async fn mark_inspected(
        &self,
        report_id: &str,
        attribute: &Attribute,
    ) -> Result<(), StoreError>;
}

/// Reading reports.
#[async_trait]
pub trait ReadStore: Send + Sync {
    /// Metadata of a report: one read.
    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError>;
    /// How many alerts and claimed attributes a report holds.
    async fn report_counts(&self, report_id: &str) -> Result<Option<ReportCounts>, StoreError>;
    /// Everything stored for a report, in the order it was stored.
    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError>;
    /// A published version and the publisher that marked it.
    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError>;
}

/// Publishing report versions.
#[async_trait]
pub trait PublishStore: Send + Sync {
    /// Marks `report.version` published, only if the version before it is the last
    /// published: each version is published once, never ahead of the one before.
    async fn mark_published(
        &self,
        report: &Report,
        publisher: &str,
    ) -> Result<PublishMark, StoreError>;
}

/// Keeping rejected inputs and failed steps, so that nothing is lost silently.
#[async_trait]
pub trait ErrorSink: Send + Sync {
    /// Keeps a failed input or step; a record with the same `id` and `stage` replaces
    /// the one before (a retried bad input is kept once).
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError>;
}

/// Reading kept errors back by their key.
#[async_trait]
pub trait ErrorLog: Send + Sync {
    /// The error record kept for `id` at `stage`.
    async fn get_error(&self, id: &str, stage: &str) -> Result<Option<ErrorRecord>, StoreError>;
}

/// Every store capability: what a runtime that holds one store passes around (the
/// delivery log, [`DeliveryLog`], included: the deliver step records in the same store).
pub trait Store:
    AdmitStore
    + ClaimStore
    + FindingStore
    + ReadStore
    + PublishStore
    + ErrorSink
    + ErrorLog
    + DeliveryLog
{
}

impl<T> Store for T where
    T: AdmitStore
        + ClaimStore
        + FindingStore
        + ReadStore
        + PublishStore
        + ErrorSink
        + ErrorLog
        + DeliveryLog
        + ?Sized
{
}
