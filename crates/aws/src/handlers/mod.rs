//! The Lambda edge: what each binary does with its event, on top of the core
//! handlers. Inputs and outputs are the state machine's contract (see
//! `template.yaml`), identifiers only: the dispatcher takes the execution input and
//! answers the review to wait for ([`ReviewPlan`]); the reviewer-invoker compiles,
//! reviews and publishes that version ([`review`]); the emitter-fanout, subscribed to
//! the report topic, delivers each published version to the built-in emitters, each
//! (report, version, emitter) on its own, and replays one on request ([`fanout`]).
//!
//! Errors carry an `error_type` Step Functions and Lambda act on: `Retryable`
//! (throttling, timeouts: retried by the state machine's Retry and Lambda's async
//! retries), `InspectionsPending` (the review waits: retried on its own schedule),
//! `Invalid`, `NotFound`, `Permanent` (not retried; caught and published to the error
//! topic with the input).

use alertresponder_core::pipeline::{self, error_record, Pipeline, ReviewOutcome};
use alertresponder_core::{CoreError, Job, ReportResult, Severity, Task};
use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

pub mod fanout;

pub use fanout::{deliver_sns, fanout_event, replay, DeliverOutput, DeliveryBudget, ReplayRequest};

use crate::eventbridge;
use crate::execution_events;
use crate::sfn::{sfn_time, DelayInput};

/// Why a function failed, as Step Functions and Lambda see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdgeErrorKind {
    /// Worth a retry.
    Retryable,
    /// The review waits for inspections still running (retried on its own schedule).
    InspectionsPending,
    /// Malformed input.
    Invalid,
    /// The input names a report or alert the store does not have.
    NotFound,
    /// Anything else not worth a retry.
    Permanent,
}

/// A function failure with its kind (the `errorType` of the Lambda error).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EdgeError {
    /// Retry or not.
    pub kind: EdgeErrorKind,
    /// What went wrong.
    pub message: String,
}

impl EdgeError {
    /// Malformed input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: EdgeErrorKind::Invalid,
            message: message.into(),
        }
    }
}

impl From<CoreError> for EdgeError {
    fn from(e: CoreError) -> Self {
        let kind = match &e {
            CoreError::InspectionsPending { .. } => EdgeErrorKind::InspectionsPending,
            _ if e.is_retryable() => EdgeErrorKind::Retryable,
            CoreError::Invalid(_) => EdgeErrorKind::Invalid,
            CoreError::NotFound { .. } => EdgeErrorKind::NotFound,
            _ => EdgeErrorKind::Permanent,
        };
        Self {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<EdgeError> for Diagnostic {
    fn from(e: EdgeError) -> Self {
        Diagnostic {
            error_type: format!("{:?}", e.kind),
            error_message: e.message,
        }
    }
}

/// What the receptor did with an SNS event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiveOutput {
    /// Alerts stored (new to the store).
    pub received: usize,
    /// Redeliveries of messages stored before.
    pub duplicates: usize,
    /// Malformed alerts, kept in the error table and published to the error topic.
    pub rejected: usize,
    /// Executions of the delay state machine that closed without success, kept as
    /// error records (and their jobs scheduled again; see [`crate::execution_events`]).
    #[serde(default)]
    pub failed_executions: usize,
    /// Findings not taken (suppressed or archived Security Hub findings), logged.
    #[serde(default)]
    pub skipped: usize,
}

/// Receptor: every SNS record is one alert, identified by its SNS message ID (so a
/// redelivery is stored once). A malformed alert is kept and published to the error
/// topic (by the pipeline's `errors` sink) and is not retried; a transient failure
/// fails the invocation so that Lambda retries it (then its dead-letter target takes
/// it).
pub async fn receive_sns(p: &Pipeline, event: SnsEvent) -> Result<ReceiveOutput, EdgeError> {
    let mut out = ReceiveOutput::default();
    for record in event.records {
        let message_id = record.sns.message_id;
        let message_id = (!message_id.is_empty()).then_some(message_id);
        receive_one(
            p,
            record.sns.message.as_bytes(),
            message_id.as_deref(),
            &mut out,
        )
        .await?;
    }
    Ok(out)
}

pub(crate) async fn receive_one(
    p: &Pipeline,
    raw: &[u8],
    message_id: Option<&str>,
    out: &mut ReceiveOutput,
) -> Result<(), EdgeError> {
    match p.receive(raw, message_id).await {
        Ok(receipt) if receipt.duplicate => out.duplicates += 1,
        Ok(_) => out.received += 1,
        Err(CoreError::Invalid(e)) => {
            warn!(field = %e.field, error = %e.message, "alert rejected");
            out.rejected += 1;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Receptor, whatever invoked it: an SNS event from the ingest topic, or an
/// EventBridge event (GuardDuty and Security Hub findings, see [`crate::eventbridge`]; executions of
/// the delay state machine that closed without success, see
/// [`crate::execution_events`]). An event of neither kind is kept as an error record,
/// not retried.
pub async fn receive_event(p: &Pipeline, event: Value) -> Result<ReceiveOutput, EdgeError> {
    if execution_events::is_execution_status_change(&event) {
        return execution_events::receive_execution_change(p, &event).await;
    }
    if eventbridge::is_eventbridge(&event) {
        return eventbridge::receive_eventbridge(p, &event).await;
    }
    let reject = |why: String, id: String| {
        let raw = event.to_string();
        let record = error_record(id, "receive", why, None, raw.as_bytes(), p.clock.now());
        async move { p.errors.put_error(&record).await.map_err(CoreError::from) }
    };
    let mut out = ReceiveOutput::default();
    match serde_json::from_value::<SnsEvent>(event.clone()) {
        Ok(sns) => receive_sns(p, sns).await,
        Err(e) => {
            let why = format!("event: neither an SNS nor an EventBridge event: {e}");
            warn!(%why, "event rejected");
            reject(
                why,
                alertresponder_core::id::content_message_id(event.to_string().as_bytes()),
            )
            .await?;
            out.rejected += 1;
            Ok(out)
        }
    }
}

/// The review the state machine waits for next: identifiers and a time, never a
/// report (the state carries no report, so it can never pass Step Functions' 256 KiB
/// limit). Version 0: nothing to review (an alert that joined a report before its
/// first review only adds attributes); the Review state then does nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewPlan {
    /// The report.
    pub report_id: String,
    /// The version to publish (0: none).
    pub version: u32,
    /// When (the second Wait's TimestampPath).
    #[serde(with = "sfn_time")]
    pub review_at: DateTime<Utc>,
}

/// Dispatcher: for a dispatch job, claims the alert's attributes and publishes their
/// tasks; a review job passes through to its review. Always answers a plan, so that
/// the state machine needs no Choice: the data decides.
pub async fn dispatch(p: &Pipeline, input: DelayInput) -> Result<ReviewPlan, EdgeError> {
    let (report_id, plan) = match input.job {
        Job::Dispatch {
            report_id,
            message_id,
        } => {
            let plan = pipeline::dispatch(
                &*p.store,
                &*p.tasks,
                &*p.clock,
                &p.settings,
                &report_id,
                &message_id,
            )
            .await?;
            (report_id, plan)
        }
        Job::Review { report_id, version } => {
            let due = input.review_at.unwrap_or(input.dispatch_at);
            let job = Job::Review {
                report_id: report_id.clone(),
                version,
            };
            (report_id, Some((job, due)))
        }
        other => {
            return Err(EdgeError::invalid(format!(
                "job: the state machine runs dispatch and review jobs, not {}",
                other.stage()
            )))
        }
    };
    match plan {
        Some((Job::Review { report_id, version }, due)) => Ok(ReviewPlan {
            report_id,
            version,
            review_at: due,
        }),
        Some((other, _)) => Err(EdgeError {
            kind: EdgeErrorKind::Permanent,
            message: format!("dispatch planned a {} job, not a review", other.stage()),
        }),
        None => Ok(ReviewPlan {
            report_id,
            version: 0,
            review_at: p.clock.now(),
        }),
    }
}

/// Inspector harness: every SNS record is one task. A malformed task is kept as an
/// error record (not retried); a transient failure fails the invocation for a retry.
pub async fn inspect_sns(p: &Pipeline, event: SnsEvent) -> Result<usize, EdgeError> {
    let mut done = 0;
    for record in event.records {
        let task: Task = match serde_json::from_str(&record.sns.message) {
            Ok(t) => t,
            Err(e) => {
                p.errors
                    .put_error(&error_record(
                        record.sns.message_id.clone(),
                        "inspect",
                        format!("malformed task: {e}"),
                        None,
                        record.sns.message.as_bytes(),
                        p.clock.now(),
                    ))
                    .await
                    .map_err(CoreError::from)?;
                continue;
            }
        };
        pipeline::inspect(
            &*p.store,
            &*p.tasks,
            &p.inspectors,
            &*p.clock,
            &p.settings,
            &task,
        )
        .await?;
        done += 1;
    }
    Ok(done)
}

/// The Review state's input: the plan, and the execution that publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewInput {
    /// The report.
    pub report_id: String,
    /// The version planned (0: nothing to review).
    pub version: u32,
    /// When the review was due: it waits for pending inspections until this plus the
    /// stack's review wait.
    #[serde(with = "sfn_time")]
    pub review_at: DateTime<Utc>,
    /// The execution's name: who publishes.
    pub publisher: String,
}

/// What the Review state answers: bounded, whatever the report's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewOutput {
    /// This call published a version (else it was published before, or none was due).
    pub published: bool,
    /// The version published or found published (0: none was due).
    pub version: u32,
    /// The severity published.
    pub severity: Option<Severity>,
}

/// Reviewer-invoker, the Review state: compiles the next version from the table,
/// lets the reviewers decide, marks it published exactly once and publishes it on the
/// report topic (the emitter-fanout delivers it to the built-in emitters from there),
/// and schedules a re-review if alerts joined meanwhile. While inspections of the
/// report are pending and `review_at + wait` has not passed, it fails with
/// `InspectionsPending`, which the state retries; past it, the report is reviewed
/// with the pending inspections shown as timed out.
pub async fn review(
    p: &Pipeline,
    input: ReviewInput,
    wait: std::time::Duration,
) -> Result<ReviewOutput, EdgeError> {
    if input.version == 0 {
        return Ok(ReviewOutput {
            published: false,
            version: 0,
            severity: None,
        });
    }
    let until = input.review_at + wait;
    let compiled = pipeline::compile_when_inspected(
        &*p.store,
        &input.report_id,
        input.version,
        p.clock.now(),
        Some(until),
    )
    .await?;
    let result = match &compiled.report {
        Some(report) => pipeline::review_report(&p.reviewers, report).await,
        None => ReportResult::default(),
    };
    let publisher = crate::sfn::job_execution_name(&input.publisher);
    let outcome = pipeline::publish_version(p, compiled, result, publisher).await?;
    Ok(match outcome {
        ReviewOutcome::Published(report) => {
            info!(report_id = %report.id, version = report.version, severity = %report.result.severity, "published");
            ReviewOutput {
                published: true,
                version: report.version,
                severity: Some(report.result.severity),
            }
        }
        ReviewOutcome::AlreadyPublished { version, .. } => ReviewOutput {
            published: false,
            version,
            severity: None,
        },
    })
}

/// Tracing for a Lambda function: JSON lines, level from `RUST_LOG` (default info).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

#[cfg(test)]
mod tests;
