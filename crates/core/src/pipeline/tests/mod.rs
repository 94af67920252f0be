//! Unit tests of the pipeline steps on the in-memory adapters, in virtual time: one
//! module per step, [`crash`] for a crash between any two store calls of a step, and
//! [`flow`] for the one run across every step that the embedded runtime's tests do
//! not make. What a user relies on across steps (aggregation, redelivery, feedback
//! depth and cycles, the attribute cap, plugin failures, re-review after publication,
//! the feedback-loop and aggregation properties) is proven once, through SQLite and
//! the job queue, in `crates/embedded/tests/pipeline.rs`. The test plugins are
//! [`crate::fixtures::plugins`], shared with those tests.

mod crash;
mod deliver;
mod dispatch;
mod flow;
mod inspect;
mod receive;
mod review;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{Pipeline, Receipt};
use crate::error::PluginError;
use crate::fixtures::plugins::{decides, host_section, FixedReviewer, Recorder, TestInspector};
use crate::fixtures::raw_alert;
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

/// The alert ID of [`raw_alert`]`(key, ..)`.
fn alert_id(key: &str) -> String {
    crate::id::alert_id("test", "r1", key)
}

/// The report that message `message_id` opens for [`raw_alert`]`(key, ..)`.
fn report_of(key: &str, message_id: &str) -> String {
    crate::id::report_id(&alert_id(key), message_id)
}

/// An address attribute as [`raw_alert`] names it.
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
