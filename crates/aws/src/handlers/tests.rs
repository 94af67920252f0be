//! The Lambda-edge handlers on the in-memory adapters (`alertresponder_core::memory`):
//! each function's input and output as the state machine and Lambda see them, the
//! retryable / invalid classification, and the error path, in milliseconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alertresponder_core::fixtures::t;
use alertresponder_core::memory::{self, MemoryRuntime};
use alertresponder_core::ports::{
    AdmitStore, Clock, Emitter, ErrorLog, ErrorSink, Inspection, Inspector, ManualClock, ReadStore,
    SectionDraft,
};
use alertresponder_core::{
    Attribute, ErrorRecord, PluginError, Report, Settings, StoreError, ValidationError,
};
use async_trait::async_trait;
use serde_json::json;

use super::*;

const SNS_EVENT: &str = include_str!("../../tests/fixtures/sns-event.json");
const GUARDDUTY_EVENT: &str =
    include_str!("../../tests/fixtures/eventbridge-guardduty-ssh-brute-force.json");
/// The message ID of the fixture's one SNS record.
const SNS_MESSAGE_ID: &str = "95df01b4-ee98-5cb9-9903-4c221d41eb5e";

/// A pipeline on memory adapters at [`t`]`(0)`, with an inspector that names a host.
fn edge() -> (Pipeline, MemoryRuntime, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t(0)));
    let (mut p, rt) = memory::pipeline(Settings::default(), clock.clone());
    p.inspectors = vec![Arc::new(Host)];
    (p, rt, clock)
}

/// An SNS event of the fixture's shape carrying `messages` as (message ID, body).
fn sns_event(messages: &[(&str, &str)]) -> SnsEvent {
    let fixture: Value = serde_json::from_str(SNS_EVENT).unwrap();
    let template = fixture["Records"][0].clone();
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            let mut r = template.clone();
            r["Sns"]["MessageId"] = json!(id);
            r["Sns"]["Message"] = json!(body);
            r
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn fixture_event() -> SnsEvent {
    serde_json::from_str(SNS_EVENT).unwrap()
}

fn alert_json(ips: &[&str]) -> String {
    json!({
        "detector": "suricata", "rule_id": "ET SCAN 1", "rule_name": "scan", "alert_key": "k1",
        "attributes": ips.iter().map(|ip| json!({
            "type": "ipaddr", "key": "src", "value": ip, "context": ["remote"]
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

/// The dispatch jobs waiting, as (report ID, message ID).
fn dispatches(rt: &MemoryRuntime) -> Vec<(String, String)> {
    rt.scheduler
        .pending()
        .into_iter()
        .filter_map(|(job, _)| match job {
            Job::Dispatch {
                report_id,
                message_id,
            } => Some((report_id, message_id)),
            _ => None,
        })
        .collect()
}

/// The execution input the receptor's scheduling starts the state machine with.
fn delay_input(job: Job, dispatch_at: DateTime<Utc>) -> DelayInput {
    DelayInput {
        job,
        dispatch_at,
        review_at: None,
    }
}

/// Answers a host section for every attribute.
struct Host;

#[async_trait]
impl Inspector for Host {
    fn name(&self) -> &str {
        "host"
    }

    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        Ok(Inspection {
            sections: vec![SectionDraft {
                section_type: "host".into(),
                content: json!({ "ipaddr": [task.attribute.value] }),
            }],
            new_attributes: vec![],
        })
    }
}

/// An error sink that only records: shows which sink a handler writes to.
#[derive(Default)]
struct Recorded(Mutex<Vec<ErrorRecord>>);

#[async_trait]
impl ErrorSink for Recorded {
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        self.0.lock().unwrap().push(record.clone());
        Ok(())
    }
}

impl Recorded {
    fn records(&self) -> Vec<(String, String)> {
        let records = self.0.lock().unwrap();
        records
            .iter()
            .map(|r| (r.id.clone(), r.stage.clone()))
            .collect()
    }
}

/// An emitter that always fails.
struct Broken;

#[async_trait]
impl Emitter for Broken {
    fn name(&self) -> &str {
        "broken"
    }

    async fn emit(&self, _report: &Report, _attempt: u32) -> Result<(), PluginError> {
        Err(PluginError::Failed("webhook answered 500".into()))
    }
}

/// Runs what the receptor scheduled through the dispatcher and the harness (tasks
/// carried as SNS records, as the task topic does), and answers the review plan.
async fn dispatch_and_inspect(p: &Pipeline, rt: &MemoryRuntime) -> ReviewPlan {
    let (job, due) = rt.scheduler.take_next(DateTime::<Utc>::MAX_UTC).unwrap();
    let out = dispatch(p, delay_input(job, due)).await.unwrap();
    let tasks: Vec<String> = rt
        .tasks
        .take()
        .iter()
        .map(|task| serde_json::to_string(task).unwrap())
        .collect();
    let records: Vec<(&str, &str)> = tasks.iter().map(|t| ("task", t.as_str())).collect();
    assert_eq!(
        inspect_sns(p, sns_event(&records)).await.unwrap(),
        tasks.len()
    );
    out
}

// --- receptor ------------------------------------------------------------------

#[tokio::test]
async fn an_sns_record_is_received_under_its_message_id_and_a_redelivery_is_a_duplicate() {
    let (p, rt, _) = edge();
    let out = receive_sns(&p, fixture_event()).await.unwrap();
    assert_eq!(
        out,
        ReceiveOutput {
            received: 1,
            duplicates: 0,
            rejected: 0,
            failed_executions: 0,
        }
    );
    let scheduled = dispatches(&rt);
    assert_eq!(scheduled.len(), 1);
    let (report_id, message_id) = &scheduled[0];
    assert_eq!(message_id, SNS_MESSAGE_ID);
    let alert = rt.store.get_alert(report_id, SNS_MESSAGE_ID).await.unwrap();
    assert_eq!(alert.unwrap().detector, "guardduty");

    // SNS delivers at least once: the same record is stored and scheduled once.
    let again = receive_event(&p, serde_json::from_str(SNS_EVENT).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (again.received, again.duplicates, again.rejected),
        (0, 1, 0)
    );
    assert_eq!(dispatches(&rt), scheduled);
    let counts = rt.store.report_counts(report_id).await.unwrap().unwrap();
    assert_eq!(counts.alerts, 1);
}

#[tokio::test]
async fn a_malformed_alert_is_kept_as_an_error_and_not_retried() {
    let (p, rt, _) = edge();
    let event = sns_event(&[
        ("m-bad", r#"{"rule_id": "r", "alert_key": "k"}"#),
        ("m-good", &alert_json(&["192.0.2.1"])),
    ]);
    // Ok, not Err: Lambda would retry the whole batch, and a malformed alert never heals.
    let out = receive_sns(&p, event).await.unwrap();
    assert_eq!((out.received, out.rejected), (1, 1));
    let record = rt
        .store
        .get_error("m-bad", "receive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.field.as_deref(), Some("detector"));
    assert!(record.input.contains("alert_key"), "{record:?}");
    assert_eq!(dispatches(&rt).len(), 1, "only the good alert goes on");
}

#[tokio::test]
async fn a_transient_failure_fails_the_invocation_and_its_retry_schedules_the_dispatch() {
    let (p, rt, _) = edge();
    rt.scheduler.fail_next(1);
    let err = receive_sns(&p, fixture_event()).await.unwrap_err();
    assert_eq!(err.kind, EdgeErrorKind::Retryable);
    assert_eq!(Diagnostic::from(err).error_type, "Retryable");
    assert!(dispatches(&rt).is_empty());
    // Lambda's retry: the alert was stored, the dispatch was not scheduled; now it is.
    let out = receive_sns(&p, fixture_event()).await.unwrap();
    assert_eq!(out.duplicates, 1);
    assert_eq!(dispatches(&rt).len(), 1);
}

#[tokio::test]
async fn a_guardduty_finding_from_eventbridge_is_received_under_its_event_id() {
    let (p, rt, _) = edge();
    let finding: Value = serde_json::from_str(GUARDDUTY_EVENT).unwrap();
    let out = receive_event(&p, finding.clone()).await.unwrap();
    assert_eq!((out.received, out.rejected), (1, 0));
    let scheduled = dispatches(&rt);
    assert_eq!(
        scheduled[0].1,
        "eventbridge:c8c4daa7-a20c-2f03-0070-b7393dd542ad"
    );
    let alert = rt
        .store
        .get_alert(&scheduled[0].0, &scheduled[0].1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert.rule_id, "UnauthorizedAccess:EC2/SSHBruteForce");
    // EventBridge delivers at least once too.
    let again = receive_event(&p, finding).await.unwrap();
    assert_eq!(again.duplicates, 1);
}

#[tokio::test]
async fn an_unsupported_event_is_kept_as_an_error_in_the_pipelines_error_sink() {
    let (mut p, rt, _) = edge();
    let sink = Arc::new(Recorded::default());
    p.errors = sink.clone();
    let security_hub = json!({
        "version": "0", "id": "5e1f0ad5", "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub", "detail": {"findings": []}
    });
    let out = receive_event(&p, security_hub).await.unwrap();
    assert_eq!(out.rejected, 1);
    let neither = json!({"hello": "world"});
    let out = receive_event(&p, neither.clone()).await.unwrap();
    assert_eq!(out.rejected, 1);
    let malformed = sns_event(&[("m-bad", "not json")]);
    assert_eq!(receive_sns(&p, malformed).await.unwrap().rejected, 1);
    assert_eq!(
        sink.records(),
        [
            ("eventbridge:5e1f0ad5".to_string(), "receive".to_string()),
            (
                alertresponder_core::id::content_message_id(neither.to_string().as_bytes()),
                "receive".to_string()
            ),
            ("m-bad".to_string(), "receive".to_string()),
        ]
    );
    // Through `p.errors`, not the store: on AWS that sink also publishes the topic.
    assert!(rt.store.errors().is_empty());
    assert!(rt.scheduler.pending().is_empty());
}

// --- dispatcher ------------------------------------------------------------------

#[tokio::test]
async fn the_dispatcher_publishes_the_tasks_and_answers_the_first_review() {
    let (p, rt, clock) = edge();
    receive_sns(
        &p,
        sns_event(&[("m1", &alert_json(&["192.0.2.1", "192.0.2.2"]))]),
    )
    .await
    .unwrap();
    let (job, due) = rt.scheduler.take_next(DateTime::<Utc>::MAX_UTC).unwrap();
    assert_eq!(due, t(0) + p.settings.inspection_delay);
    clock.advance_to(due);
    let report_id = job.report_id().to_string();
    let out = dispatch(&p, delay_input(job.clone(), due)).await.unwrap();
    let review_at = t(0) + p.settings.review_delay;
    assert_eq!(
        out,
        ReviewPlan {
            report_id: report_id.clone(),
            version: 1,
            review_at,
        }
    );
    // The state's output, as the second Wait and the Review state read it:
    // identifiers and a time, whatever the report's size.
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"report_id": report_id, "version": 1,
            "review_at": crate::sfn::sfn_time::format(&review_at)})
    );
    let values: Vec<String> = rt
        .tasks
        .take()
        .into_iter()
        .map(|t| t.attribute.value)
        .collect();
    assert_eq!(values, ["192.0.2.1", "192.0.2.2"]);
    // A retried dispatch publishes again (claims remember their claimer), same plan.
    assert_eq!(dispatch(&p, delay_input(job, due)).await.unwrap(), out);
    assert_eq!(rt.tasks.take().len(), 2);
}

#[tokio::test]
async fn an_alert_that_joins_before_the_first_review_plans_version_zero_now() {
    let (p, rt, clock) = edge();
    receive_sns(&p, sns_event(&[("m1", &alert_json(&["192.0.2.1"]))]))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    receive_sns(&p, sns_event(&[("m2", &alert_json(&["192.0.2.9"]))]))
        .await
        .unwrap();
    let second = rt
        .scheduler
        .pending()
        .into_iter()
        .find(|(j, _)| j.name().ends_with(":m2"))
        .unwrap();
    let report_id = second.0.report_id().to_string();
    let out = dispatch(&p, delay_input(second.0, second.1)).await.unwrap();
    // No Choice in the state machine: the plan says "nothing", due at once.
    assert_eq!(
        out,
        ReviewPlan {
            report_id: report_id.clone(),
            version: 0,
            review_at: clock.now(),
        }
    );
    let reviewed = review(
        &p,
        ReviewInput {
            report_id,
            version: 0,
            review_at: out.review_at,
            publisher: "exec".into(),
        },
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    assert_eq!(
        reviewed,
        ReviewOutput {
            published: false,
            version: 0,
            severity: None
        }
    );
    assert!(rt.reports.take().is_empty());
}

#[tokio::test]
async fn a_review_job_passes_the_dispatcher_and_other_jobs_are_invalid() {
    let (p, _, _) = edge();
    let review = Job::Review {
        report_id: "r1".into(),
        version: 2,
    };
    let input = DelayInput {
        job: review,
        dispatch_at: t(0),
        review_at: Some(t(600)),
    };
    let out = dispatch(&p, input.clone()).await.unwrap();
    assert_eq!(
        out,
        ReviewPlan {
            report_id: "r1".into(),
            version: 2,
            review_at: t(600)
        }
    );
    let at_once = dispatch(
        &p,
        DelayInput {
            review_at: None,
            ..input
        },
    )
    .await
    .unwrap();
    assert_eq!(at_once.review_at, t(0));

    let deliver = Job::Deliver {
        report_id: "r1".into(),
        version: 1,
        emitter: "webhook".into(),
    };
    let err = dispatch(&p, delay_input(deliver, t(0))).await.unwrap_err();
    assert_eq!(err.kind, EdgeErrorKind::Invalid);
    let missing = Job::Dispatch {
        report_id: "nope".into(),
        message_id: "m1".into(),
    };
    let err = dispatch(&p, delay_input(missing, t(0))).await.unwrap_err();
    assert_eq!(err.kind, EdgeErrorKind::NotFound);
}

// --- inspector harness -----------------------------------------------------------

#[tokio::test]
async fn the_harness_stores_sections_and_keeps_a_malformed_task_as_an_error() {
    let (mut p, rt, _) = edge();
    let sink = Arc::new(Recorded::default());
    p.errors = sink.clone();
    receive_sns(&p, sns_event(&[("m1", &alert_json(&["192.0.2.1"]))]))
        .await
        .unwrap();
    let (job, due) = rt.scheduler.take_next(DateTime::<Utc>::MAX_UTC).unwrap();
    let report_id = job.report_id().to_string();
    dispatch(&p, delay_input(job, due)).await.unwrap();
    let task = serde_json::to_string(&rt.tasks.take()[0]).unwrap();
    let done = inspect_sns(
        &p,
        sns_event(&[("t1", &task), ("t2", "{\"report_id\": 1}")]),
    )
    .await
    .unwrap();
    assert_eq!(done, 1);
    assert_eq!(sink.records(), [("t2".to_string(), "inspect".to_string())]);
    let state = rt.store.load_report(&report_id).await.unwrap().unwrap();
    assert_eq!(state.sections.len(), 1);
    assert_eq!(state.sections[0].author, "host");
}

// --- reviewer-invoker (the Review state) and emitter-fanout -----------------------

/// The review wait the tests give the Review state.
const WAIT: Duration = Duration::from_secs(300);

fn review_input(plan: &ReviewPlan, publisher: &str) -> ReviewInput {
    ReviewInput {
        report_id: plan.report_id.clone(),
        version: plan.version,
        review_at: plan.review_at,
        publisher: publisher.into(),
    }
}

#[tokio::test]
async fn the_review_state_compiles_decides_and_publishes_once_and_a_retry_republishes() {
    let (p, rt, clock) = edge();
    receive_sns(&p, sns_event(&[("m1", &alert_json(&["192.0.2.1"]))]))
        .await
        .unwrap();
    let plan = dispatch_and_inspect(&p, &rt).await;
    clock.advance_to(plan.review_at);

    // The state machine hands the state the JSON the Parameters build.
    let input: ReviewInput =
        serde_json::from_value(serde_json::to_value(review_input(&plan, "exec-1")).unwrap())
            .unwrap();
    let out = review(&p, input.clone(), WAIT).await.unwrap();
    assert_eq!(
        out,
        ReviewOutput {
            published: true,
            version: 1,
            severity: Some(Severity::Unclassified)
        }
    );
    let published = rt.reports.take();
    assert_eq!(published.len(), 1);
    assert_eq!(
        (published[0].alerts.len(), published[0].sections.len()),
        (1, 1)
    );

    // Step Functions retries the state after a timeout: same execution, published
    // again on the topic (the first answer may have been lost), never marked twice.
    let retried = review(&p, input.clone(), WAIT).await.unwrap();
    assert!(!retried.published);
    assert_eq!(rt.reports.take().len(), 1, "the stored version again");
    // Another execution of the same version publishes nothing.
    let other = ReviewInput {
        publisher: "exec-2".into(),
        ..input.clone()
    };
    assert!(!review(&p, other, WAIT).await.unwrap().published);
    assert!(rt.reports.take().is_empty());
}

#[tokio::test]
async fn a_successor_execution_publishes_what_its_failed_predecessor_marked() {
    let (p, rt, clock) = edge();
    receive_sns(&p, sns_event(&[("m1", &alert_json(&["192.0.2.1"]))]))
        .await
        .unwrap();
    let plan = dispatch_and_inspect(&p, &rt).await;
    clock.advance_to(plan.review_at);
    let job = Job::Review {
        report_id: plan.report_id.clone(),
        version: 1,
    };
    let first = crate::sfn::execution_name_at(&job, 1);
    review(&p, review_input(&plan, &first), WAIT).await.unwrap();
    // Say the first execution's message was lost and the execution failed: its
    // successor, `<name>-2`, is the same publisher and sends the stored version.
    rt.reports.take();
    let successor = crate::sfn::execution_name_at(&job, 2);
    let out = review(&p, review_input(&plan, &successor), WAIT)
        .await
        .unwrap();
    assert!(!out.published);
    assert_eq!(rt.reports.take().len(), 1, "re-published by the successor");
}

#[tokio::test]
async fn the_review_waits_for_pending_inspections_up_to_its_bound() {
    let (p, rt, clock) = edge();
    receive_sns(&p, sns_event(&[("m1", &alert_json(&["192.0.2.1"]))]))
        .await
        .unwrap();
    let (job, due) = rt.scheduler.take_next(DateTime::<Utc>::MAX_UTC).unwrap();
    clock.advance_to(due);
    let plan = dispatch(&p, delay_input(job, due)).await.unwrap();
    // The task is lost: the harness never runs it.
    assert_eq!(rt.tasks.take().len(), 1);
    clock.advance_to(plan.review_at);
    let input = review_input(&plan, "exec-1");
    let err = review(&p, input.clone(), WAIT).await.unwrap_err();
    assert_eq!(err.kind, EdgeErrorKind::InspectionsPending);
    assert_eq!(
        Diagnostic::from(err).error_type,
        "InspectionsPending",
        "what the Review state's Retry matches"
    );
    assert!(
        rt.reports.take().is_empty(),
        "nothing published while waiting"
    );

    // Past the bound, a lost task no longer holds the report: reviewed, with the
    // pending inspection shown as timed out.
    clock.advance_to(plan.review_at + WAIT);
    let out = review(&p, input, WAIT).await.unwrap();
    assert!(out.published);
    let report = rt.reports.take().remove(0);
    let pending: Vec<_> = report
        .inspections
        .iter()
        .filter(|r| r.status == alertresponder_core::InspectionStatus::TimedOut)
        .map(|r| (r.inspector.as_str(), r.attribute.value.as_str()))
        .collect();
    assert_eq!(pending, [("alertresponder", "192.0.2.1")]);
}

#[tokio::test]
async fn the_review_state_answers_identifiers_only_whatever_the_reports_size() {
    let (p, rt, clock) = edge();
    // Eight alerts of ~100 KB: far over what a state carries.
    for i in 0..8 {
        let mut alert: Value = serde_json::from_str(&alert_json(&["192.0.2.1"])).unwrap();
        alert["body"] = json!({ "log": "x".repeat(100_000) });
        receive_sns(&p, sns_event(&[(&format!("m{i}"), &alert.to_string())]))
            .await
            .unwrap();
    }
    let plan = dispatch_and_inspect(&p, &rt).await;
    assert!(serde_json::to_vec(&plan).unwrap().len() < 512);
    clock.advance_to(plan.review_at);
    let out = review(&p, review_input(&plan, "exec-1"), WAIT)
        .await
        .unwrap();
    assert!(out.published);
    assert!(serde_json::to_vec(&out).unwrap().len() < 512);
    assert_eq!(
        rt.reports.take()[0].alerts.len(),
        8,
        "the report itself is whole"
    );
}

/// A reviewer that lets the test act while it decides (an alert joining during
/// the review).
struct Gate {
    started: tokio::sync::Notify,
    proceed: tokio::sync::Notify,
}

#[async_trait]
impl alertresponder_core::ports::Reviewer for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    async fn review(&self, _: &Report) -> Result<Option<ReportResult>, PluginError> {
        self.started.notify_one();
        self.proceed.notified().await;
        Ok(None)
    }
}

#[tokio::test]
async fn an_alert_that_joins_during_the_review_gets_a_version_of_its_own() {
    let (mut p, rt, clock) = edge();
    let gate = Arc::new(Gate {
        started: tokio::sync::Notify::new(),
        proceed: tokio::sync::Notify::new(),
    });
    p.reviewers = vec![gate.clone()];
    receive_sns(&p, sns_event(&[("m1", &alert_json(&["192.0.2.1"]))]))
        .await
        .unwrap();
    let plan = dispatch_and_inspect(&p, &rt).await;
    clock.advance_to(plan.review_at);
    let reviewing = review(&p, review_input(&plan, "exec-1"), WAIT);
    let joining = async {
        gate.started.notified().await;
        // Joins after the compile, before the publish: version 1 does not hold it.
        receive_sns(&p, sns_event(&[("m2", &alert_json(&["192.0.2.1"]))]))
            .await
            .unwrap();
        gate.proceed.notify_one();
    };
    let (out, ()) = tokio::join!(reviewing, joining);
    assert!(out.unwrap().published);
    let reviews: Vec<Job> = rt
        .scheduler
        .pending()
        .into_iter()
        .map(|(j, _)| j)
        .filter(|j| matches!(j, Job::Review { .. }))
        .collect();
    assert!(
        reviews
            .iter()
            .any(|j| matches!(j, Job::Review { version: 2, .. })),
        "{reviews:?}"
    );
}

#[tokio::test]
async fn the_fanout_delivers_the_stored_version_and_keeps_a_failed_delivery() {
    let (mut p, rt, clock) = edge();
    let sink = Arc::new(Recorded::default());
    receive_sns(&p, sns_event(&[("m1", &alert_json(&["192.0.2.1"]))]))
        .await
        .unwrap();
    let plan = dispatch_and_inspect(&p, &rt).await;
    clock.advance_to(plan.review_at);
    review(&p, review_input(&plan, "exec-1"), WAIT)
        .await
        .unwrap();
    let message = serde_json::to_string(&rt.reports.take()[0]).unwrap();

    let good = Arc::new(Kept::default());
    p.emitters = vec![Arc::new(Broken), good.clone()];
    p.errors = sink.clone();
    let out = deliver_sns(&p, sns_event(&[("r1", &message), ("r2", "not json")]))
        .await
        .unwrap();
    assert_eq!(
        out,
        DeliverOutput {
            delivered: 1,
            failed: 2
        }
    );
    assert_eq!(good.versions(), [(plan.report_id.clone(), 1)]);
    let job = Job::Deliver {
        report_id: plan.report_id.clone(),
        version: 1,
        emitter: "broken".into(),
    };
    assert_eq!(
        sink.records(),
        [
            (job.name(), "deliver".to_string()),
            ("r2".to_string(), "deliver".to_string())
        ]
    );
    // The publication stands.
    let meta = rt
        .store
        .report_meta(&plan.report_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.published_version, 1);
}

/// An emitter that keeps which versions it was given.
#[derive(Default)]
struct Kept(Mutex<Vec<(String, u32)>>);

#[async_trait]
impl Emitter for Kept {
    fn name(&self) -> &str {
        "kept"
    }
    async fn emit(&self, report: &Report, _attempt: u32) -> Result<(), PluginError> {
        self.0
            .lock()
            .unwrap()
            .push((report.id.clone(), report.version));
        Ok(())
    }
}

impl Kept {
    fn versions(&self) -> Vec<(String, u32)> {
        self.0.lock().unwrap().clone()
    }
}

// --- errors as Step Functions and Lambda see them --------------------------------

#[test]
fn core_errors_map_to_the_error_types_the_state_machine_retries_or_catches() {
    let kind = |e: CoreError| EdgeError::from(e).kind;
    assert_eq!(
        kind(StoreError::Transient("throttled".into()).into()),
        EdgeErrorKind::Retryable
    );
    assert_eq!(
        kind(StoreError::Permanent("corrupt".into()).into()),
        EdgeErrorKind::Permanent
    );
    assert_eq!(
        kind(ValidationError::new("detector", "missing").into()),
        EdgeErrorKind::Invalid
    );
    assert_eq!(
        kind(CoreError::NotFound {
            what: "report",
            id: "r1".into()
        }),
        EdgeErrorKind::NotFound
    );
    let port = |retryable| CoreError::Port {
        stage: "scheduler".into(),
        message: "x".into(),
        retryable,
    };
    assert_eq!(kind(port(true)), EdgeErrorKind::Retryable);
    assert_eq!(kind(port(false)), EdgeErrorKind::Permanent);
    // `errorType` is what the template's Retry and Catch match on.
    let d = Diagnostic::from(EdgeError::invalid("job: bad"));
    assert_eq!(
        (d.error_type.as_str(), d.error_message.as_str()),
        ("Invalid", "job: bad")
    );
    for (k, name) in [
        (EdgeErrorKind::Retryable, "Retryable"),
        (EdgeErrorKind::Invalid, "Invalid"),
        (EdgeErrorKind::NotFound, "NotFound"),
        (EdgeErrorKind::Permanent, "Permanent"),
    ] {
        let d = Diagnostic::from(EdgeError {
            kind: k,
            message: String::new(),
        });
        assert_eq!(d.error_type, name);
    }
}

#[test]
fn the_sns_fixture_carries_one_valid_alert() {
    // Guards the fixture the tests above rely on: one record, a valid alert.
    let event = fixture_event();
    assert_eq!(event.records.len(), 1);
    let alert =
        alertresponder_core::validate::parse_alert(event.records[0].sns.message.as_bytes(), t(0))
            .unwrap();
    let ip: &Attribute = &alert.attributes[0];
    assert_eq!(ip.value, "198.51.100.7");
}

// --- receptor: executions that closed without success ------------------------------

const EXECUTION_FAILED: &str =
    include_str!("../../tests/fixtures/eventbridge-sfn-execution-failed.json");

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
