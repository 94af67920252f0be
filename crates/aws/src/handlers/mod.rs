//! The Lambda edge: what each binary does with its event, on top of the core
//! handlers. Inputs and outputs are the state machine's contract (see
//! `template.yaml`): the dispatcher takes the execution input and answers the review
//! to wait for; the compiler answers a [`Compiled`] report (cut to fit the state);
//! the reviewer-invoker answers a result; the emitter-fanout publishes.
//!
//! Errors carry an `error_type` Step Functions and Lambda act on: `Retryable`
//! (throttling, timeouts: retried by the state machine's Retry and Lambda's async
//! retries), `Invalid`, `NotFound`, `Permanent` (not retried; caught and published
//! to the error topic with the input).

use std::sync::Arc;

use alertresponder_core::fit::fit_report;
pub use alertresponder_core::pipeline::Compiled;
use alertresponder_core::pipeline::{self, error_record, Pipeline, ReviewOutcome};
use alertresponder_core::ports::Reviewer;
use alertresponder_core::{CoreError, Job, ReportResult, Severity, Task};
use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::eventbridge;
use crate::sfn::{sfn_time, DelayInput};

/// Largest compiled report carried in the state machine's state (its limit is 256 KiB
/// for the whole state, which also holds the job and the result).
pub const MAX_STATE_REPORT_BYTES: usize = 200 * 1024;

/// Why a function failed, as Step Functions and Lambda see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdgeErrorKind {
    /// Worth a retry.
    Retryable,
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

async fn receive_one(
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
/// EventBridge event (GuardDuty findings, see [`crate::eventbridge`]). An event of
/// neither kind is kept as an error record, not retried.
pub async fn receive_event(p: &Pipeline, event: Value) -> Result<ReceiveOutput, EdgeError> {
    let mut out = ReceiveOutput::default();
    let reject = |why: String, id: String| {
        let raw = event.to_string();
        let record = error_record(id, "receive", why, None, raw.as_bytes(), p.clock.now());
        async move { p.errors.put_error(&record).await.map_err(CoreError::from) }
    };
    if eventbridge::is_eventbridge(&event) {
        match eventbridge::convert(&event) {
            eventbridge::Converted::Alert { alert, event_id } => {
                receive_one(p, &alert, Some(&event_id), &mut out).await?;
            }
            eventbridge::Converted::Unsupported(why) => {
                warn!(%why, "event rejected");
                let id = event
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("eventbridge");
                reject(why.clone(), format!("eventbridge:{id}")).await?;
                out.rejected += 1;
            }
        }
        return Ok(out);
    }
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

/// The review the state machine waits for next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewPlan {
    /// The report.
    pub report_id: String,
    /// The version to publish.
    pub version: u32,
    /// When (the second Wait's TimestampPath).
    #[serde(with = "sfn_time")]
    pub review_at: DateTime<Utc>,
}

/// What the dispatcher answers: the review to wait for, or none (an alert that
/// joined a report before its first review only adds attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchOutput {
    /// The review, or `null`.
    pub review: Option<ReviewPlan>,
}

/// Dispatcher: for a dispatch job, claims the alert's attributes and publishes their
/// tasks; a review job passes through to its review.
pub async fn dispatch(p: &Pipeline, input: DelayInput) -> Result<DispatchOutput, EdgeError> {
    let plan = match input.job {
        Job::Dispatch {
            report_id,
            message_id,
        } => {
            pipeline::dispatch(
                &*p.store,
                &*p.tasks,
                &*p.clock,
                &p.settings,
                &report_id,
                &message_id,
            )
            .await?
        }
        job @ Job::Review { .. } => {
            let due = input.review_at.unwrap_or(input.dispatch_at);
            Some((job, due))
        }
        other => {
            return Err(EdgeError::invalid(format!(
                "job: the state machine runs dispatch and review jobs, not {}",
                other.stage()
            )))
        }
    };
    let review = match plan {
        Some((Job::Review { report_id, version }, due)) => Some(ReviewPlan {
            report_id,
            version,
            review_at: due,
        }),
        Some((other, _)) => {
            return Err(EdgeError {
                kind: EdgeErrorKind::Permanent,
                message: format!("dispatch planned a {} job, not a review", other.stage()),
            })
        }
        None => None,
    };
    Ok(DispatchOutput { review })
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

/// Compiler input: the review plan (its `review_at` is not used).
pub type CompileInput = ReviewPlan;

/// Compiler: compiles the next version of the report, cut to fit the state.
pub async fn compile(p: &Pipeline, input: CompileInput) -> Result<Compiled, EdgeError> {
    let mut compiled =
        pipeline::compile_version(&*p.store, &input.report_id, input.version).await?;
    if let Some(report) = &compiled.report {
        compiled.report = Some(fit_report(report, MAX_STATE_REPORT_BYTES));
    }
    Ok(compiled)
}

/// Reviewer-invoker: the reviewers' decision on a compiled report (most severe
/// wins; none or no decision: `unclassified`). A version found published needs none.
pub async fn review(reviewers: &[Arc<dyn Reviewer>], compiled: Compiled) -> ReportResult {
    match &compiled.report {
        Some(report) => pipeline::review_report(reviewers, report).await,
        None => ReportResult {
            severity: Severity::Unclassified,
            reason: format!("version {} was published before", compiled.version),
        },
    }
}

/// Emitter-fanout input: the compiled report, the decision, and the execution name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishInput {
    /// From the compiler.
    pub compiled: Compiled,
    /// From the reviewer-invoker.
    pub result: ReportResult,
    /// The execution's name: who publishes.
    pub publisher: String,
}

/// What the emitter-fanout did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishOutput {
    /// This call published the version (else it was published before).
    pub published: bool,
    /// The version.
    pub version: u32,
    /// Built-in emitters that failed (kept in the error table and on the error topic).
    pub failed_emitters: Vec<String>,
}

/// Emitter-fanout: marks the version published exactly once, publishes it on the
/// report topic, runs the built-in emitters, and schedules a re-review if alerts
/// joined meanwhile. An emitter failure is kept as an error record and does not undo
/// or repeat the publication.
pub async fn publish(p: &Pipeline, input: PublishInput) -> Result<PublishOutput, EdgeError> {
    let version = input.compiled.version;
    let outcome =
        pipeline::publish_version(p, input.compiled, input.result, &input.publisher).await?;
    let ReviewOutcome::Published(report) = outcome else {
        return Ok(PublishOutput {
            published: false,
            version,
            failed_emitters: vec![],
        });
    };
    let mut failed = Vec::new();
    for emitter in &p.emitters {
        if let Err(e) = emitter.emit(&report, 0).await {
            warn!(emitter = emitter.name(), error = %e, "emitter failed");
            let job = Job::Deliver {
                report_id: report.id.clone(),
                version: report.version,
                emitter: emitter.name().to_string(),
            };
            p.record_failure(
                &job,
                &CoreError::Port {
                    stage: format!("emitter {}", emitter.name()),
                    message: e.to_string(),
                    retryable: false,
                },
            )
            .await
            .map_err(CoreError::from)?;
            failed.push(emitter.name().to_string());
        }
    }
    info!(report_id = %report.id, version = report.version, severity = %report.result.severity, "published");
    Ok(PublishOutput {
        published: true,
        version: report.version,
        failed_emitters: failed,
    })
}

/// Tracing for a Lambda function: JSON lines, level from `RUST_LOG` (default info).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

#[cfg(test)]
mod tests;
