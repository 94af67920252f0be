//! The receptor and delay executions that closed without success.

use super::*;

// --- receptor: executions that closed without success ------------------------------

const EXECUTION_FAILED: &str =
    include_str!("../../../tests/fixtures/eventbridge-sfn-execution-failed.json");

fn execution_failed() -> Value {
    serde_json::from_str(EXECUTION_FAILED).unwrap()
}

/// The fixture's job and its review time.
fn failed_job() -> (Job, DateTime<Utc>) {
    (
        Job::Review {
            report_id: "0f6ba0d2-7a4e-4b8e-a1b1-1234567890ab".into(),
            version: 1,
        },
        "2026-11-20T10:20:41Z".parse().unwrap(),
    )
}

/// A scheduler that gives up on every job, as `SfnScheduler` does past its bound.
struct GivesUp;

#[async_trait]
impl alertresponder_core::ports::Scheduler for GivesUp {
    async fn schedule(&self, job: &Job, _due: DateTime<Utc>) -> Result<(), CoreError> {
        Err(CoreError::Port {
            stage: "scheduler".into(),
            message: format!(
                "{}: its 10 executions all ended without success; not starting another",
                job.name()
            ),
            retryable: false,
        })
    }
}

#[tokio::test]
async fn a_failed_execution_is_kept_with_its_input_and_its_job_scheduled_again() {
    let (p, rt, _) = edge();
    let event = execution_failed();
    let out = receive_event(&p, event.clone()).await.unwrap();
    assert_eq!(
        out,
        ReceiveOutput {
            failed_executions: 1,
            ..ReceiveOutput::default()
        }
    );
    let name = event["detail"]["name"].as_str().unwrap();
    let record = rt
        .store
        .get_error(name, "execution")
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.error.starts_with(&format!(
            "execution {name} ended FAILED (AlertResponder.StepFailed: a step failed"
        )),
        "{}",
        record.error
    );
    assert!(
        record.error.contains("was scheduled again"),
        "{}",
        record.error
    );
    assert_eq!(record.input, event["detail"]["input"].as_str().unwrap());
    // The job again, at its own review time (still ahead of this clock).
    let (job, review_at) = failed_job();
    assert_eq!(rt.scheduler.requests(), [(job, review_at)]);
    assert!(rt.store.report_count() == 0, "no alert was received");
}

#[tokio::test]
async fn a_job_whose_due_time_passed_is_scheduled_for_now() {
    let (p, rt, clock) = edge();
    let later: DateTime<Utc> = "2026-11-20T11:00:00Z".parse().unwrap();
    clock.advance_to(later);
    let mut event = execution_failed();
    event["detail"]["status"] = json!("TIMED_OUT");
    event["detail"]["error"] = Value::Null;
    event["detail"]["cause"] = Value::Null;
    receive_event(&p, event).await.unwrap();
    assert_eq!(rt.scheduler.requests(), [(failed_job().0, later)]);
    let record = &rt.store.errors()[0];
    assert!(
        record.error.contains("ended TIMED_OUT; its job"),
        "{}",
        record.error
    );
}

#[tokio::test]
async fn a_redelivered_execution_event_does_nothing_new() {
    let (p, rt, _) = edge();
    receive_event(&p, execution_failed()).await.unwrap();
    let first = rt.store.errors();
    receive_event(&p, execution_failed()).await.unwrap();
    // One record, keyed (execution, stage), replaced in place; one job pending (the
    // scheduler is idempotent by job: on AWS the successor's name is deterministic).
    assert_eq!(rt.store.errors(), first);
    assert_eq!(rt.scheduler.pending().len(), 1);
}

#[tokio::test]
async fn an_execution_whose_input_is_not_a_job_is_kept_and_not_retried() {
    let (p, rt, _) = edge();
    let mut event = execution_failed();
    event["detail"]["input"] = json!("{\"not\": \"a job\"}");
    let out = receive_event(&p, event).await.unwrap();
    assert_eq!(out.failed_executions, 1);
    let records = rt.store.errors();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].stage, "execution");
    assert_eq!(records[0].input, "{\"not\": \"a job\"}");
    assert!(
        records[0]
            .error
            .contains("not a job of the delay state machine"),
        "{}",
        records[0].error
    );
    assert!(rt.scheduler.requests().is_empty());
}

#[tokio::test]
async fn past_the_executions_bound_the_record_alone_keeps_the_report_visible() {
    let (mut p, rt, _) = edge();
    p.scheduler = Arc::new(GivesUp);
    let out = receive_event(&p, execution_failed()).await.unwrap();
    assert_eq!(
        out.failed_executions, 1,
        "not retried: nothing a retry would change"
    );
    let record = &rt.store.errors()[0];
    assert!(
        record.error.contains("NOT scheduled again"),
        "{}",
        record.error
    );
    assert!(record.error.contains("10 executions"), "{}", record.error);
    assert!(
        record.error.contains("keeps the report visible"),
        "{}",
        record.error
    );
    assert!(record
        .input
        .contains("0f6ba0d2-7a4e-4b8e-a1b1-1234567890ab"));
}

#[tokio::test]
async fn a_transient_scheduling_failure_is_recorded_and_retried() {
    let (p, rt, _) = edge();
    rt.scheduler.fail_next(1);
    let err = receive_event(&p, execution_failed()).await.unwrap_err();
    assert_eq!(err.kind, EdgeErrorKind::Retryable);
    let records = rt.store.errors();
    assert!(
        records[0].error.contains("failed for now"),
        "{}",
        records[0].error
    );
    // Lambda's retry: the same record, now saying the job was scheduled.
    receive_event(&p, execution_failed()).await.unwrap();
    let records = rt.store.errors();
    assert_eq!(records.len(), 1);
    assert!(
        records[0].error.contains("was scheduled again"),
        "{}",
        records[0].error
    );
    assert_eq!(rt.scheduler.pending(), [failed_job()]);
}

#[tokio::test]
async fn execution_records_go_through_the_pipelines_error_sink() {
    let (mut p, rt, _) = edge();
    let sink = Arc::new(Recorded::default());
    p.errors = sink.clone();
    receive_event(&p, execution_failed()).await.unwrap();
    let name = execution_failed()["detail"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sink.records(), [(name, "execution".to_string())]);
    assert!(
        rt.store.errors().is_empty(),
        "on AWS the sink also publishes the topic"
    );
}

#[tokio::test]
async fn a_succeeded_execution_or_a_malformed_change_is_not_a_failure() {
    let (p, rt, _) = edge();
    let mut event = execution_failed();
    event["detail"]["status"] = json!("SUCCEEDED");
    let out = receive_event(&p, event.clone()).await.unwrap();
    assert_eq!(out, ReceiveOutput::default());
    assert!(rt.store.errors().is_empty());
    assert!(rt.scheduler.requests().is_empty());
    event["detail"] = json!({"status": "FAILED"});
    let out = receive_event(&p, event).await.unwrap();
    assert_eq!(out.rejected, 1);
    let records = rt.store.errors();
    assert_eq!(
        (records[0].id.as_str(), records[0].stage.as_str()),
        (
            "eventbridge:315c1398-40ff-a850-213b-158f73e60175",
            "execution"
        )
    );
    assert!(
        records[0].error.contains("detail.name"),
        "{}",
        records[0].error
    );
}
