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

mod delivery;
mod errors;
mod executions;
mod receptor;
mod review;
mod steps;

const SNS_EVENT: &str = include_str!("../../../tests/fixtures/sns-event.json");
const GUARDDUTY_EVENT: &str =
    include_str!("../../../tests/fixtures/eventbridge-guardduty-ssh-brute-force.json");
/// A Security Hub event of four findings, one suppressed and one archived (core's fixture).
const SECURITY_HUB_BATCH: &str =
    include_str!("../../../../core/tests/fixtures/eventbridge/securityhub-batch.json");
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

/// A fan-out budget for tests: a minute to go, three tries a few milliseconds apart,
/// nothing kept in reserve.
fn quick_budget() -> DeliveryBudget {
    DeliveryBudget {
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        retry: fanout::FanoutRetry {
            max_attempts: 3,
            base: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            reserve: Duration::ZERO,
        },
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
