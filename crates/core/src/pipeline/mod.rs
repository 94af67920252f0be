//! The pipeline handlers, one module per step: [`receive`](mod@receive),
//! [`dispatch`](mod@dispatch), [`inspect`](mod@inspect), [`review`](mod@review)
//! (compile + review + publish) and [`deliver`](mod@deliver). Each takes only the
//! ports it uses, and each is safe to retry with the same input: records are keyed
//! deterministically, claims remember their claimer, publication is marked once, and
//! scheduling is idempotent by job name. [`Pipeline`] bundles the ports for the
//! runtimes and runs a [`Job`].

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{CoreError, StoreError};
use crate::model::{Alert, ErrorRecord, Job, ReportStatus};
use crate::ports::{
    Clock, Emitter, ErrorSink, Inspector, ReportBus, Reviewer, Scheduler, Store, TaskBus,
};
use crate::settings::Settings;

pub mod deliver;
pub mod dispatch;
pub mod inspect;
pub mod receive;
pub mod review;
#[cfg(test)]
mod tests;

pub use deliver::{deliver, DeliveryOrder, DeliveryOutcome};
pub use dispatch::dispatch;
pub use inspect::inspect;
pub use receive::{admit, receive, receive_alert};
pub use review::{
    compile, compile_version, compile_when_inspected, publish_version, review, review_report,
    Compiled, ReviewOutcome,
};

/// Longest error or reason text kept in a record (an inspection's detail, a
/// reviewer's reason, an error record's error), plus a note of what was cut.
pub const MAX_DETAIL_BYTES: usize = 4096;

/// Largest input kept in an error record, counted as it is serialised (JSON-escaped,
/// so that quotes or control characters cannot make it grow): 128 KiB. An error
/// record is published whole as one SNS message (256 KiB, message attributes
/// included) and stored as one DynamoDB item (400 KB, its ID in the key and beside
/// it); it carries its error (up to [`MAX_DETAIL_BYTES`], at most six times that
/// escaped), its field and ID besides the input. An alert can be as large as
/// [`crate::validate::MAX_ALERT_BYTES`] (256 KiB, the SNS limit itself), so the input of a
/// rejected alert is cut lower than what a valid one may be, with `input_truncated`.
pub const MAX_ERROR_INPUT_BYTES: usize = 128 * 1024;

/// What receiving an alert did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// The report the alert opened or joined.
    pub report_id: String,
    /// Its alert ID.
    pub alert_id: String,
    /// `new` if it opened the report, `more` if it joined one.
    pub status: ReportStatus,
    /// The message had been received before: nothing was stored again.
    pub duplicate: bool,
}

/// Everything a runtime plugs into the handlers.
#[derive(Clone)]
pub struct Pipeline {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Where rejected inputs and failed jobs are kept (the store itself, or on AWS the
    /// table then the error topic).
    pub errors: Arc<dyn ErrorSink>,
    /// Delayed jobs.
    pub scheduler: Arc<dyn Scheduler>,
    /// Tasks to the inspectors.
    pub tasks: Arc<dyn TaskBus>,
    /// Published reports to the emitters.
    pub reports: Arc<dyn ReportBus>,
    /// The inspectors.
    pub inspectors: Vec<Arc<dyn Inspector>>,
    /// The reviewers.
    pub reviewers: Vec<Arc<dyn Reviewer>>,
    /// The emitters (run by [`Job::Deliver`]).
    pub emitters: Vec<Arc<dyn Emitter>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub settings: Settings,
}

impl Pipeline {
    /// Receives one raw alert; see [`receive()`].
    pub async fn receive(
        &self,
        raw: &[u8],
        message_id: Option<&str>,
    ) -> Result<Receipt, CoreError> {
        receive(
            &*self.store,
            &*self.errors,
            &*self.scheduler,
            &*self.clock,
            &self.settings,
            raw,
            message_id,
        )
        .await
    }

    /// Validates one raw alert; see [`admit`].
    pub async fn admit(
        &self,
        raw: &[u8],
        message_id: Option<&str>,
    ) -> Result<(Alert, String), CoreError> {
        admit(&*self.errors, self.clock.now(), raw, message_id).await
    }

    /// Receives one validated alert; see [`receive_alert`].
    pub async fn receive_admitted(
        &self,
        alert: &Alert,
        message_id: &str,
    ) -> Result<Receipt, CoreError> {
        receive_alert(
            &*self.store,
            &*self.scheduler,
            self.clock.now(),
            &self.settings,
            alert,
            message_id,
        )
        .await
    }

    /// Runs one job (`attempt` counts earlier tries); a job's follow-ups are scheduled here.
    pub async fn run_job(&self, job: &Job, attempt: u32) -> Result<(), CoreError> {
        match job {
            Job::Dispatch {
                report_id,
                message_id,
            } => {
                let plan = dispatch(
                    &*self.store,
                    &*self.tasks,
                    &*self.clock,
                    &self.settings,
                    report_id,
                    message_id,
                )
                .await?;
                if let Some((job, due)) = plan {
                    self.scheduler.schedule(&job, due).await?;
                }
                Ok(())
            }
            Job::Inspect(task) => {
                inspect(
                    &*self.store,
                    &*self.tasks,
                    &self.inspectors,
                    &*self.clock,
                    &self.settings,
                    task,
                )
                .await
            }
            Job::Review { report_id, version } => review(self, report_id, *version, &job.name())
                .await
                .map(|_| ()),
            Job::Deliver {
                report_id,
                version,
                emitter,
            } => deliver(
                &*self.store,
                &*self.store,
                &self.emitters,
                &*self.clock,
                &DeliveryOrder::job(report_id, *version, emitter, attempt),
            )
            .await
            .map(|_| ()),
        }
    }

    /// Keeps a job that failed for good, with its input.
    pub async fn record_failure(&self, job: &Job, error: &CoreError) -> Result<(), StoreError> {
        let input = serde_json::to_string(job).unwrap_or_default();
        self.errors
            .put_error(&error_record(
                job.name(),
                job.stage(),
                error.to_string(),
                None,
                input.as_bytes(),
                self.clock.now(),
            ))
            .await
    }
}

/// Builds an error record, cutting the input to [`MAX_ERROR_INPUT_BYTES`] as
/// serialised, and the error and field to [`MAX_DETAIL_BYTES`].
pub fn error_record(
    id: String,
    stage: &str,
    error: String,
    field: Option<String>,
    input: &[u8],
    at: DateTime<Utc>,
) -> ErrorRecord {
    // Every byte takes at least one byte serialised: more than the bound (and a
    // partial character) is never needed.
    let head = &input[..input.len().min(MAX_ERROR_INPUT_BYTES + 4)];
    let text = String::from_utf8_lossy(head);
    let (kept, cut) = crate::fit::json_prefix(&text, MAX_ERROR_INPUT_BYTES);
    ErrorRecord {
        id,
        stage: stage.to_string(),
        error: bound(&error),
        field: field.map(|f| bound(&f)),
        input: kept.to_string(),
        input_truncated: cut || head.len() < input.len(),
        at,
    }
}

/// Cuts text to [`MAX_DETAIL_BYTES`] on a character boundary.
pub fn bound(s: &str) -> String {
    crate::fit::cut_text(s, MAX_DETAIL_BYTES)
}
