//! Unit tests of the pipeline steps on the in-memory adapters, in virtual time: one
//! module per step, [`crash`] for a crash between any two store calls of a step, and
//! [`flow`] for what a user relies on across steps (the behaviours the embedded
//! runtime's tests prove through SQLite, here in milliseconds).

mod crash;
mod deliver;
mod dispatch;
mod flow;
mod inspect;
mod receive;
mod review;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{Pipeline, Receipt};
use crate::error::PluginError;
use crate::memory::{self, CrashingStore, MemoryRuntime};
use crate::model::{Attribute, Job, Report, ReportResult, Task};
use crate::ports::{
    Clock, Emitter, Inspection, Inspector, ManualClock, ReportState, Reviewer, SectionDraft, Store,
};
use crate::settings::Settings;

/// The time every test starts at.
fn t0() -> DateTime<Utc> {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

fn minutes(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

/// A pipeline on the memory adapters, its store behind a [`CrashingStore`] (which
/// does nothing until armed), and a manual clock at [`t0`].
struct Harness {
    p: Pipeline,
    rt: MemoryRuntime,
    clock: Arc<ManualClock>,
    crash: Arc<CrashingStore>,
}

fn harness(settings: Settings) -> Harness {
    let clock = Arc::new(ManualClock::new(t0()));
    let (mut p, rt) = memory::pipeline(settings, clock.clone());
    let crash = Arc::new(CrashingStore::new(rt.store.clone()));
    p.store = crash.clone();
    p.errors = crash.clone();
    Harness {
        p,
        rt,
        clock,
        crash,
    }
}

impl Harness {
    fn with_inspectors(mut self, inspectors: Vec<Arc<dyn Inspector>>) -> Self {
        self.p.inspectors = inspectors;
        self
    }

    fn with_reviewers(mut self, reviewers: Vec<Arc<dyn Reviewer>>) -> Self {
        self.p.reviewers = reviewers;
        self
    }

    /// The store as the handlers see it.
    fn store(&self) -> &dyn Store {
        &*self.p.store
    }

    /// Receives `alert` (a JSON value) as message `message_id`.
    async fn receive(&self, alert: &Value, message_id: &str) -> Receipt {
        self.p
            .receive(alert.to_string().as_bytes(), Some(message_id))
            .await
            .unwrap()
    }

    /// Runs what is due until `at` (virtual), then moves the clock there.
    async fn until(&self, at: DateTime<Utc>) -> Vec<Job> {
        self.rt
            .run_until(&self.p, &self.clock, Some(at))
            .await
            .unwrap()
    }

    /// Runs everything, however far in virtual time.
    async fn drain(&self) -> Vec<Job> {
        self.rt.run_until(&self.p, &self.clock, None).await.unwrap()
    }

    /// The reports published so far.
    fn published(&self) -> Vec<Report> {
        self.rt.reports.published()
    }

    /// Everything stored for a report.
    async fn state(&self, report_id: &str) -> ReportState {
        self.store().load_report(report_id).await.unwrap().unwrap()
    }

    /// Names of the jobs waiting, in the order scheduled.
    fn pending(&self) -> Vec<(String, DateTime<Utc>)> {
        self.rt
            .scheduler
            .pending()
            .iter()
            .map(|(j, d)| (j.name(), *d))
            .collect()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// An alert of the test detector with key `key`, naming the addresses `ips`.
fn alert(key: &str, ips: &[&str]) -> Value {
    json!({
        "detector": "test", "rule_id": "r1", "rule_name": "rule one", "alert_key": key,
        "description": format!("{key} {ips:?}"),
        "attributes": ips.iter().map(|ip| json!({"type": "ipaddr", "key": "src", "value": ip, "context": ["remote"]})).collect::<Vec<_>>(),
    })
}

/// The alert ID of [`alert`]`(key, ..)`.
fn alert_id(key: &str) -> String {
    crate::id::alert_id("test", "r1", key)
}

/// The report that message `message_id` opens for [`alert`]`(key, ..)`.
fn report_of(key: &str, message_id: &str) -> String {
    crate::id::report_id(&alert_id(key), message_id)
}

/// An address attribute as [`alert`] names it.
fn ip(value: &str) -> Attribute {
    Attribute {
        attr_type: "ipaddr".into(),
        key: "src".into(),
        value: value.into(),
        context: vec!["remote".into()],
        timestamp: None,
    }
}

fn domain(value: &str) -> Attribute {
    Attribute {
        attr_type: "domain".into(),
        key: "resolved".into(),
        value: value.into(),
        context: vec!["remote".into()],
        timestamp: None,
    }
}

fn host_section(task: &Task) -> Inspection {
    Inspection {
        sections: vec![SectionDraft {
            section_type: "host".into(),
            content: json!({"ipaddr": [task.attribute.value]}),
        }],
        new_attributes: vec![],
    }
}

type InspectFn = dyn Fn(&Task) -> Result<Inspection, PluginError> + Send + Sync;

/// An inspector answering with a function, recording the values it was asked about.
struct TestInspector {
    name: String,
    types: Option<Vec<String>>,
    timeout: Duration,
    delay: Duration,
    f: Box<InspectFn>,
    calls: Mutex<Vec<String>>,
}

impl TestInspector {
    fn new(
        name: &str,
        f: impl Fn(&Task) -> Result<Inspection, PluginError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            types: None,
            timeout: Duration::from_secs(5),
            delay: Duration::ZERO,
            f: Box::new(f),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Inspector for TestInspector {
    fn name(&self) -> &str {
        &self.name
    }
    fn accepts(&self, a: &Attribute) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&a.attr_type))
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    async fn inspect(&self, task: &Task) -> Result<Inspection, PluginError> {
        self.calls
            .lock()
            .unwrap()
            .push(task.attribute.value.clone());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        (self.f)(task)
    }
}

/// Answers a host section for an address and discovers `<address>.example` from it.
fn resolver() -> TestInspector {
    TestInspector::new("resolver", |task| {
        let value = &task.attribute.value;
        let new_attributes = if task.attribute.attr_type == "ipaddr" {
            vec![domain(&format!("{value}.example"))]
        } else {
            vec![]
        };
        Ok(Inspection {
            sections: host_section(task).sections,
            new_attributes,
        })
    })
}

/// A reviewer that always answers the same.
struct FixedReviewer(&'static str, Result<Option<ReportResult>, PluginError>);

#[async_trait]
impl Reviewer for FixedReviewer {
    fn name(&self) -> &str {
        self.0
    }
    async fn review(&self, _: &Report) -> Result<Option<ReportResult>, PluginError> {
        self.1.clone()
    }
}

fn decides(name: &'static str, severity: crate::model::Severity, reason: &str) -> FixedReviewer {
    FixedReviewer(
        name,
        Ok(Some(ReportResult {
            severity,
            reason: reason.into(),
        })),
    )
}

/// An emitter recording what it emitted and on which attempt; fails while `failing`.
#[derive(Default)]
struct Recorder {
    emitted: Mutex<Vec<(Report, u32)>>,
    failing: Option<String>,
}

#[async_trait]
impl Emitter for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        if let Some(message) = &self.failing {
            return Err(PluginError::Failed(message.clone()));
        }
        self.emitted.lock().unwrap().push((report.clone(), attempt));
        Ok(())
    }
}
