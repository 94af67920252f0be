//! Ports: what a runtime provides to the handlers. One small trait per capability;
//! each has an embedded adapter (SQLite, local queue) and an AWS adapter.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CoreError, PluginError, StoreError};
use crate::model::*;

/// Source of the current time (injected so tests and `run` can use virtual time).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What the store knows of a report without loading its content.
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
    /// Alerts stored for it.
    pub alert_count: u32,
    /// When its last version was published.
    #[serde(default)]
    pub last_published_at: Option<DateTime<Utc>>,
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
    /// Sections written by inspectors.
    pub sections: Vec<ReportSection>,
    /// Inspector outcomes.
    pub inspections: Vec<InspectionRecord>,
    /// Result of the last published version.
    pub last_result: Option<ReportResult>,
}

/// What [`Store::open_join_and_put`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The report opened or joined, as it was before the alert was stored.
    pub meta: ReportMeta,
    /// The alert was stored now (`false`: its message was stored before).
    pub inserted: bool,
    /// When the alert was stored (for a redelivery: when the first delivery was).
    pub received_at: DateTime<Utc>,
    /// The report already had every attribute of the alert (see [`Store::knows_attributes`]).
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

/// Durable state of reports, alerts, attributes, sections and errors.
#[async_trait]
pub trait Store: Send + Sync {
    /// Atomically joins the open report of `alert_id` (opened less than `window` before
    /// `now`) or opens `candidate_id` for it; two concurrent calls never open two reports.
    async fn open_or_join(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<ReportMeta, StoreError>;
    /// Receive in one step: [`Store::open_or_join`], then [`Store::put_alert`], then
    /// [`Store::knows_attributes`] for the alert's attributes. A store that can do the
    /// three in one round trip overrides this; the result must be the same, except that
    /// this default cannot tell when a redelivered message was first stored and says
    /// `now` (the safe side: its re-review is scheduled again, never lost).
    async fn open_join_and_put(
        &self,
        alert_id: &str,
        message_id: &str,
        candidate_id: &str,
        alert: &Alert,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Admission, StoreError> {
        let meta = self
            .open_or_join(alert_id, message_id, candidate_id, now, window)
            .await?;
        let inserted = self.put_alert(&meta.id, message_id, alert, now).await?;
        let hashes: Vec<String> = alert.attributes.iter().map(Attribute::hash).collect();
        let knows_all_attributes = self.knows_attributes(&meta.id, message_id, &hashes).await?;
        Ok(Admission {
            meta,
            inserted,
            received_at: now,
            knows_all_attributes,
        })
    }
    /// Metadata of a report.
    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError>;
    /// Stores an alert of a report once per message; `false` if that message was stored
    /// before. Records the message as the first to name each attribute the report had
    /// not seen named (see [`Store::knows_attributes`]).
    async fn put_alert(
        &self,
        report_id: &str,
        message_id: &str,
        alert: &Alert,
        received_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The alert a message carried.
    async fn get_alert(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<Alert>, StoreError>;
    /// Whether the report already has every one of the attributes (by hash): claimed
    /// for inspection, or first named by an alert of another message (whose dispatch
    /// claims it). An alert whose attributes the report has needs no dispatch of its
    /// own. A message's own mentions never count: if its receptor died before
    /// scheduling the dispatch, the redelivery schedules it.
    async fn knows_attributes(
        &self,
        report_id: &str,
        message_id: &str,
        attribute_hashes: &[String],
    ) -> Result<bool, StoreError>;
    /// Claims an attribute for inspection, conditionally: new, or claimed before by `claimer`.
    async fn claim_attribute(
        &self,
        report_id: &str,
        attribute: &Attribute,
        claimer: &str,
        cap: u32,
    ) -> Result<Claim, StoreError>;
    /// Stores (or replaces) the `index`th section of an inspector on an attribute.
    async fn put_section(&self, section: &ReportSection, index: usize) -> Result<(), StoreError>;
    /// Stores (or replaces) an inspector's outcome on an attribute.
    async fn put_inspection(
        &self,
        report_id: &str,
        record: &InspectionRecord,
    ) -> Result<(), StoreError>;
    /// Everything stored for a report.
    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError>;
    /// Marks `report.version` published, only if the version before it is the last published.
    async fn mark_published(
        &self,
        report: &Report,
        publisher: &str,
    ) -> Result<PublishMark, StoreError>;
    /// A published version and the publisher that marked it.
    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError>;
    /// Keeps a failed input or step.
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError>;
}

/// Runs a job later, durably; scheduling the same [`Job::name`] twice runs it once.
#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Runs `job` at `due` or soon after.
    async fn schedule(&self, job: &Job, due: DateTime<Utc>) -> Result<(), CoreError>;
}

/// Carries tasks to the inspectors.
#[async_trait]
pub trait TaskBus: Send + Sync {
    /// Queues a task.
    async fn publish_task(&self, task: &Task) -> Result<(), CoreError>;
}

/// Carries published reports to the emitters and subscribers.
#[async_trait]
pub trait ReportBus: Send + Sync {
    /// Publishes a report version.
    async fn publish_report(&self, report: &Report) -> Result<(), CoreError>;
}

/// A section an inspector produced, before the pipeline attaches report and attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionDraft {
    /// `host`, `user` or `binary`.
    #[serde(rename = "type")]
    pub section_type: String,
    /// The findings.
    pub content: Value,
}

/// What an inspector answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inspection {
    /// What it learned.
    #[serde(default)]
    pub sections: Vec<SectionDraft>,
    /// Entities it discovered, to inspect in turn.
    #[serde(default)]
    pub new_attributes: Vec<Attribute>,
}

/// Learns about one attribute.
#[async_trait]
pub trait Inspector: Send + Sync {
    /// Its name, the `author` of its sections.
    fn name(&self) -> &str;
    /// Whether it takes this attribute (by default: every attribute).
    fn accepts(&self, _attribute: &Attribute) -> bool {
        true
    }
    /// How long the pipeline waits for it.
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    /// Inspects the task's attribute.
    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError>;
}

/// Decides a severity for a compiled report.
#[async_trait]
pub trait Reviewer: Send + Sync {
    /// Its name, kept beside its reason.
    fn name(&self) -> &str;
    /// The decision, or `None` when it has none (undefined policy result).
    async fn review(&self, report: &Report) -> Result<Option<ReportResult>, PluginError>;
}

/// Hands a published report to the outside world.
#[async_trait]
pub trait Emitter: Send + Sync {
    /// Its name.
    fn name(&self) -> &str;
    /// Emits one version; `attempt` is 0 the first time, more when retried after a failure or crash.
    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError>;
}

/// A clock moved by hand: virtual time for `alertresponder run` and for tests.
#[derive(Debug)]
pub struct ManualClock {
    millis: std::sync::atomic::AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            millis: std::sync::atomic::AtomicI64::new(start.timestamp_millis()),
        }
    }

    /// Moves the clock to `t` if `t` is later; time never goes back.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        self.millis
            .fetch_max(t.timestamp_millis(), std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.millis
            .fetch_add(d.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(std::sync::atomic::Ordering::SeqCst))
            .unwrap_or_default()
    }
}
