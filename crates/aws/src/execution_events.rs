//! Executions of the delay state machine that end without success: EventBridge's
//! "Step Functions Execution Status Change" events (`source: aws.states`), which the
//! template's `FailedExecutionsRule` sends to the receptor for the delay state
//! machine's executions that end `FAILED`, `TIMED_OUT` or `ABORTED`.
//!
//! A step that fails for good is caught by the state machine, published to the error
//! topic with its input, and ends the execution `FAILED`; what no Catch sees (an
//! execution that times out or is stopped, a runtime error of the state machine
//! itself, a `PublishError` state that fails) would end it with nothing said and its
//! report lost. Both kinds come here, and each such execution:
//!
//! 1. is scheduled again: its input is a [`DelayInput`], whose job the pipeline's
//!    scheduler schedules at its own due time (or now, if that has passed). The
//!    [`crate::sfn::SfnScheduler`] finds the execution closed without success and
//!    starts the job's next execution (`<name>-2`, `-3` …) up to
//!    [`crate::sfn::MAX_EXECUTIONS_PER_JOB`]; past that bound it gives up with an
//!    error that is not retryable;
//! 2. becomes an error record through the pipeline's error sink (on AWS the error
//!    table, then the error topic): ID the execution name, stage [`STAGE`], the
//!    execution's input (bounded as every error record's is), and an error that names
//!    the status, the execution's own error and cause (bounded), and what was done.
//!    When the job was not scheduled again (the bound was passed, or the input is not
//!    a job), the record says so: it is what keeps the report visible.
//!
//! A scheduling failure worth a retry (throttling) is recorded too, then fails the
//! invocation, so that Lambda retries it (and its dead-letter path keeps it).
//!
//! Idempotent: EventBridge delivers at least once. The record is keyed (execution name,
//! [`STAGE`]), so a redelivery replaces it (the error topic carries it again, under
//! the same key, as for any retried error); scheduling the job again finds the
//! successor the first delivery started (running or succeeded) and starts nothing,
//! since successors' names are deterministic. A successor that fails in turn has its
//! own event, its own record, and the next successor, so a job that fails every time
//! costs at most [`crate::sfn::MAX_EXECUTIONS_PER_JOB`] executions and as many
//! records. An execution stopped by hand (`ABORTED`) is started again like the
//! others, as the scheduler would on the report's next alert.

use alertresponder_core::fit::cut_text;
use alertresponder_core::pipeline::{error_record, Pipeline};
use alertresponder_core::{CoreError, ErrorRecord, Job};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{info, warn};

use crate::handlers::{EdgeError, ReceiveOutput};
use crate::sfn::DelayInput;

/// The event's `source`.
pub const SOURCE: &str = "aws.states";
/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";
/// The statuses of an execution that closed without success: the ones the template's
/// rule sends, and the only ones acted on.
pub const CLOSED_WITHOUT_SUCCESS: [&str; 3] = ["FAILED", "TIMED_OUT", "ABORTED"];
/// The stage of the error records of failed executions.
pub const STAGE: &str = "execution";

/// Longest `error` of the execution kept in the record's error text.
const MAX_ERROR_BYTES: usize = 256;
/// Longest `cause` of the execution kept in the record's error text (what the record
/// says was done comes before it, so the record's own bound never cuts that).
const MAX_CAUSE_BYTES: usize = 2048;

/// Whether `event` is a Step Functions execution status change.
pub fn is_execution_status_change(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some(SOURCE)
        && event.get("detail-type").and_then(Value::as_str) == Some(DETAIL_TYPE)
}

/// One execution's status change, from the event's `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionChange {
    /// The execution's name (`detail.name`).
    pub name: String,
    /// Its ARN (`detail.executionArn`).
    pub execution_arn: String,
    /// `FAILED`, `TIMED_OUT`, `ABORTED` (or, from a wider rule, another status).
    pub status: String,
    /// The execution's error (`detail.error`), if any.
    pub error: Option<String>,
    /// Its cause (`detail.cause`), if any.
    pub cause: Option<String>,
    /// Its input as the event carries it (a JSON string), `None` when the event left it
    /// out (`inputDetails.included: false`: too large for an event).
    pub input: Option<String>,
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl ExecutionChange {
    /// The change an execution status change event carries; what is missing, named.
    pub fn from_event(event: &Value) -> Result<Self, String> {
        let detail = event
            .get("detail")
            .ok_or("execution status change without detail")?;
        let name = text(detail.get("name")).ok_or("execution status change without detail.name")?;
        let status =
            text(detail.get("status")).ok_or("execution status change without detail.status")?;
        Ok(Self {
            name,
            execution_arn: text(detail.get("executionArn")).unwrap_or_default(),
            status,
            error: text(detail.get("error")),
            cause: text(detail.get("cause")),
            input: text(detail.get("input")),
        })
    }

    /// Whether the execution closed without success (and so needs an error record).
    pub fn closed_without_success(&self) -> bool {
        CLOSED_WITHOUT_SUCCESS.contains(&self.status.as_str())
    }

    /// The execution's input as the delay state machine's input.
    pub fn delay_input(&self) -> Result<DelayInput, NotRetried> {
        let input = self.input.as_deref().ok_or(NotRetried::NoInput)?;
        serde_json::from_str(input).map_err(|e| NotRetried::NotAJob(e.to_string()))
    }

    /// What happened to the execution: its status, error and cause (bounded).
    pub fn summary(&self) -> String {
        let mut s = format!("execution {} ended {}", self.name, self.status);
        match (&self.error, &self.cause) {
            (None, None) => {}
            (error, cause) => {
                s.push_str(" (");
                if let Some(e) = error {
                    s.push_str(&cut_text(e, MAX_ERROR_BYTES));
                }
                if let Some(c) = cause {
                    if error.is_some() {
                        s.push_str(": ");
                    }
                    s.push_str(&cut_text(c, MAX_CAUSE_BYTES));
                }
                s.push(')');
            }
        }
        s
    }
}

/// Why an execution's job is not scheduled again from its event alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRetried {
    /// The event does not carry the input.
    NoInput,
    /// The input is not a delay state machine input: why.
    NotAJob(String),
}

/// What the receptor did about a closed execution: the end of its error record's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The job was scheduled again (its next execution, unless one is running or
    /// succeeded already).
    Rescheduled {
        /// The job's name.
        job: String,
    },
    /// Scheduling the job again failed for now: the invocation is retried.
    RetryLater {
        /// The job's name.
        job: String,
        /// The scheduler's error.
        error: String,
    },
    /// The scheduler gave up on the job (its executions' bound is passed, or it is not
    /// a job the delay state machine runs).
    GaveUp {
        /// The job's name.
        job: String,
        /// The scheduler's error.
        error: String,
    },
    /// There is no job to schedule again.
    NotRetried(NotRetried),
}

impl Outcome {
    /// The outcome in a person's terms.
    pub fn text(&self, change: &ExecutionChange) -> String {
        match self {
            Outcome::Rescheduled { job } => {
                format!("its job {job} was scheduled again (its next execution runs it)")
            }
            Outcome::RetryLater { job, error } => format!(
                "scheduling its job {job} again failed for now ({error}); the receptor is retried"
            ),
            Outcome::GaveUp { job, error } => format!(
                "its job {job} was NOT scheduled again ({error}); this record is what keeps \
                 the report visible"
            ),
            Outcome::NotRetried(NotRetried::NoInput) => format!(
                "the event does not carry the execution's input (too large for an event; \
                 DescribeExecution of {} shows it), so it was NOT retried; this record keeps it",
                change.execution_arn
            ),
            Outcome::NotRetried(NotRetried::NotAJob(why)) => format!(
                "its input is not a job of the delay state machine ({why}), so it was NOT \
                 retried; this record keeps it"
            ),
        }
    }
}

/// The error record of a closed execution: ID its name, stage [`STAGE`], the error
/// saying what happened and what was done, the input the execution's (else the event).
pub fn record(
    change: &ExecutionChange,
    outcome: &Outcome,
    event: &Value,
    at: DateTime<Utc>,
) -> ErrorRecord {
    let error = format!("{}; {}", change.summary(), outcome.text(change));
    let field = matches!(outcome, Outcome::NotRetried(_)).then(|| "detail.input".to_string());
    let whole_event;
    let input: &[u8] = match &change.input {
        Some(input) => input.as_bytes(),
        None => {
            whole_event = event.to_string();
            whole_event.as_bytes()
        }
    };
    error_record(change.name.clone(), STAGE, error, field, input, at)
}

/// Receptor, for an execution status change: schedules the execution's job again and
/// keeps the execution as an error record (see the module's documentation).
pub async fn receive_execution_change(
    p: &Pipeline,
    event: &Value,
) -> Result<ReceiveOutput, EdgeError> {
    let mut out = ReceiveOutput::default();
    let now = p.clock.now();
    let change = match ExecutionChange::from_event(event) {
        Ok(c) => c,
        Err(why) => {
            warn!(%why, "execution status change rejected");
            let id = event.get("id").and_then(Value::as_str).unwrap_or("");
            let raw = event.to_string();
            let record = error_record(
                format!("eventbridge:{id}"),
                STAGE,
                why,
                None,
                raw.as_bytes(),
                now,
            );
            p.errors.put_error(&record).await.map_err(CoreError::from)?;
            out.rejected += 1;
            return Ok(out);
        }
    };
    if !change.closed_without_success() {
        info!(execution = %change.name, status = %change.status, "execution status change: nothing to do");
        return Ok(out);
    }
    let (outcome, retry) = match change.delay_input() {
        Err(not) => (Outcome::NotRetried(not), None),
        Ok(input) => {
            let due = input.review_at.unwrap_or(input.dispatch_at).max(now);
            let job: &Job = &input.job;
            match p.scheduler.schedule(job, due).await {
                Ok(()) => (Outcome::Rescheduled { job: job.name() }, None),
                Err(e) if e.is_retryable() => (
                    Outcome::RetryLater {
                        job: job.name(),
                        error: e.to_string(),
                    },
                    Some(e),
                ),
                Err(e) => (
                    Outcome::GaveUp {
                        job: job.name(),
                        error: e.to_string(),
                    },
                    None,
                ),
            }
        }
    };
    warn!(
        execution = %change.name,
        status = %change.status,
        outcome = %outcome.text(&change),
        "execution closed without success"
    );
    p.errors
        .put_error(&record(&change, &outcome, event, now))
        .await
        .map_err(CoreError::from)?;
    if let Some(e) = retry {
        return Err(e.into());
    }
    out.failed_executions += 1;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alertresponder_core::pipeline::MAX_DETAIL_BYTES;
    use serde_json::json;

    const FAILED: &str = include_str!("../tests/fixtures/eventbridge-sfn-execution-failed.json");

    fn fixture() -> Value {
        serde_json::from_str(FAILED).unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_170_042, 0).unwrap()
    }

    #[test]
    fn the_fixture_is_a_failed_review_execution_with_its_input() {
        let event = fixture();
        assert!(is_execution_status_change(&event));
        let change = ExecutionChange::from_event(&event).unwrap();
        assert_eq!(
            change.name,
            "review-05e04a6cb139cc2389a40bf096824da1d26b33f4c09b81c33921c6179e34c63b"
        );
        assert_eq!(change.status, "FAILED");
        assert!(change.closed_without_success());
        assert_eq!(change.error.as_deref(), Some("AlertResponder.StepFailed"));
        let input = change.delay_input().unwrap();
        let job = Job::Review {
            report_id: "0f6ba0d2-7a4e-4b8e-a1b1-1234567890ab".into(),
            version: 1,
        };
        assert_eq!(input.job, job);
        // The name is the one the scheduler gives the job's first execution.
        assert_eq!(change.name, crate::sfn::execution_name(&job));
        assert!(change.execution_arn.ends_with(&format!(
            ":execution:alertresponder-delay-0123abcd-4567-89ef-0123-456789abcdef:{}",
            change.name
        )));
    }

    #[test]
    fn other_events_are_not_execution_changes() {
        let guardduty: Value = serde_json::from_str(include_str!(
            "../tests/fixtures/eventbridge-guardduty-ssh-brute-force.json"
        ))
        .unwrap();
        assert!(!is_execution_status_change(&guardduty));
        let mut state_change = fixture();
        state_change["detail-type"] = json!("Step Functions State Machine Status Change");
        assert!(!is_execution_status_change(&state_change));
    }

    #[test]
    fn the_record_names_the_status_the_cause_and_the_retry_and_keeps_the_input() {
        let event = fixture();
        let change = ExecutionChange::from_event(&event).unwrap();
        let outcome = Outcome::Rescheduled {
            job: "review:r:1".into(),
        };
        let r = record(&change, &outcome, &event, at());
        assert_eq!(
            (r.id.as_str(), r.stage.as_str()),
            (change.name.as_str(), "execution")
        );
        assert!(
            r.error
                .contains("ended FAILED (AlertResponder.StepFailed: a step failed"),
            "{}",
            r.error
        );
        assert!(
            r.error.contains("review:r:1 was scheduled again"),
            "{}",
            r.error
        );
        assert_eq!(r.input, change.input.clone().unwrap());
        assert!(!r.input_truncated);
        assert_eq!(r.field, None);
    }

    #[test]
    fn a_record_that_gives_up_says_it_keeps_the_report_visible() {
        let event = fixture();
        let change = ExecutionChange::from_event(&event).unwrap();
        let r = record(
            &change,
            &Outcome::GaveUp {
                job: "review:r:1".into(),
                error: "its 10 executions all ended without success".into(),
            },
            &event,
            at(),
        );
        assert!(
            r.error.contains("NOT scheduled again (its 10 executions"),
            "{}",
            r.error
        );
        assert!(r.error.contains("keeps the report visible"), "{}", r.error);
        assert_eq!(r.input, change.input.unwrap());
    }

    #[test]
    fn a_long_cause_is_cut_before_what_was_done() {
        let mut event = fixture();
        event["detail"]["cause"] = json!("x".repeat(100_000));
        event["detail"]["error"] = json!("E".repeat(10_000));
        let change = ExecutionChange::from_event(&event).unwrap();
        let r = record(
            &change,
            &Outcome::Rescheduled {
                job: "review:r:1".into(),
            },
            &event,
            at(),
        );
        assert!(r.error.len() <= MAX_DETAIL_BYTES, "{}", r.error.len());
        assert!(
            r.error.ends_with("(its next execution runs it)"),
            "{}",
            &r.error[r.error.len() - 80..]
        );
    }

    #[test]
    fn a_large_input_is_bounded_as_every_error_records_input() {
        let mut event = fixture();
        let big = json!({"job": {"job": "review", "report_id": "r", "version": 1}, "pad": "y".repeat(300_000)});
        event["detail"]["input"] = json!(big.to_string());
        let change = ExecutionChange::from_event(&event).unwrap();
        let r = record(
            &change,
            &Outcome::Rescheduled {
                job: "review:r:1".into(),
            },
            &event,
            at(),
        );
        assert!(r.input_truncated);
        assert!(r.input.len() <= alertresponder_core::pipeline::MAX_ERROR_INPUT_BYTES);
    }

    #[test]
    fn an_input_that_is_not_a_job_or_is_left_out_is_not_retried_and_says_so() {
        let mut event = fixture();
        event["detail"]["input"] = json!("{\"hello\": \"world\"}");
        let change = ExecutionChange::from_event(&event).unwrap();
        let not = change.delay_input().unwrap_err();
        assert!(matches!(not, NotRetried::NotAJob(_)));
        let r = record(&change, &Outcome::NotRetried(not), &event, at());
        assert!(
            r.error.contains("not a job of the delay state machine"),
            "{}",
            r.error
        );
        assert_eq!(r.input, "{\"hello\": \"world\"}");
        assert_eq!(r.field.as_deref(), Some("detail.input"));

        event["detail"]["input"] = Value::Null;
        event["detail"]["inputDetails"] = json!({"included": false});
        let change = ExecutionChange::from_event(&event).unwrap();
        assert_eq!(change.delay_input().unwrap_err(), NotRetried::NoInput);
        let r = record(
            &change,
            &Outcome::NotRetried(NotRetried::NoInput),
            &event,
            at(),
        );
        assert!(r.error.contains("DescribeExecution of arn:"), "{}", r.error);
        assert!(
            r.input.contains("Step Functions Execution Status Change"),
            "the event is kept"
        );
    }

    #[test]
    fn statuses_other_than_closed_without_success_are_not_acted_on() {
        let mut event = fixture();
        for (status, acted) in [
            ("FAILED", true),
            ("TIMED_OUT", true),
            ("ABORTED", true),
            ("RUNNING", false),
            ("SUCCEEDED", false),
            ("PENDING_REDRIVE", false),
        ] {
            event["detail"]["status"] = json!(status);
            let change = ExecutionChange::from_event(&event).unwrap();
            assert_eq!(change.closed_without_success(), acted, "{status}");
        }
        event["detail"] = json!({"status": "FAILED"});
        assert!(ExecutionChange::from_event(&event)
            .unwrap_err()
            .contains("detail.name"));
    }
}
