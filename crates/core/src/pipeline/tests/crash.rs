//! A crash at any store call of a step (before the call, or after it with its answer
//! lost), then the step's retry with the same input: the state ends as a clean run
//! of the step leaves it. Each step is tried at every one of its store calls.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::error::CoreError;
use crate::memory::Crash;
use crate::model::{ErrorRecord, Job};

/// What a step leaves behind: every report as stored, each published version (a
/// retry may hand the same copy on again), the jobs waiting, the tasks published
/// (a bus delivers at least once) and the errors kept.
#[derive(Debug, PartialEq)]
struct Snapshot {
    reports: Vec<ReportState>,
    published: BTreeMap<(String, u32), Report>,
    pending: BTreeSet<(String, DateTime<Utc>)>,
    tasks: BTreeSet<String>,
    errors: Vec<ErrorRecord>,
}

async fn snapshot(h: &Harness) -> Snapshot {
    let mut reports = Vec::new();
    for id in h.rt.store.report_ids() {
        reports.push(h.state(&id).await);
    }
    let mut published = BTreeMap::new();
    for r in h.published() {
        if let Some(before) = published.insert((r.id.clone(), r.version), r.clone()) {
            assert_eq!(before, r, "a version handed on twice is the same copy");
        }
    }
    Snapshot {
        reports,
        published,
        pending: h.pending().into_iter().collect(),
        tasks: h
            .rt
            .tasks
            .published()
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect(),
        errors: h.rt.store.errors(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// Receive of an alert that opens a report.
    Opener,
    /// Receive of an alert with nothing new, joining a published report.
    LateKnown,
    /// Receive of a malformed alert.
    Malformed,
    /// Dispatch of an alert, one attribute past the cap.
    Dispatch,
    /// Inspection with sections, a discovery fed back, one past the cap, a failure.
    Inspect,
    /// Inspection whose discovery is beyond the maximum depth.
    InspectDeep,
    /// Review of version 1.
    ReviewV1,
    /// Review of version 2 after a late alert with a new attribute.
    ReviewV2,
}

const SCENARIOS: [Scenario; 8] = [
    Scenario::Opener,
    Scenario::LateKnown,
    Scenario::Malformed,
    Scenario::Dispatch,
    Scenario::Inspect,
    Scenario::InspectDeep,
    Scenario::ReviewV1,
    Scenario::ReviewV2,
];

enum Step {
    Receive(String, &'static str),
    Job(Job),
}

fn multi() -> TestInspector {
    TestInspector::new("multi", |t| {
        let mut sections = host_section(t).sections;
        sections.push(sections[0].clone());
        Ok(Inspection {
            sections,
            new_attributes: vec![domain("a.example"), domain("b.example")],
        })
    })
}

fn failing() -> TestInspector {
    TestInspector::new("bad", |_| Err(PluginError::Failed("boom".into())))
}

/// A fresh harness brought to just before the scenario's step, and the step.
async fn prepare(s: Scenario) -> (Harness, Step) {
    let settings = Settings {
        max_attributes_per_report: 3,
        max_depth: 1,
        ..Settings::default()
    };
    let h = harness(settings)
        .with_inspectors(vec![Arc::new(multi()), Arc::new(failing())])
        .with_reviewers(vec![Arc::new(decides(
            "p",
            crate::model::Severity::Urgent,
            "bad",
        ))]);
    let opener = raw_alert("k1", &["192.0.2.1", "192.0.2.2"]);
    let id = report_of("k1", "sns-1");
    let step = match s {
        Scenario::Opener => Step::Receive(opener.to_string(), "sns-1"),
        Scenario::Malformed => Step::Receive(r#"{"detector": 7}"#.into(), "bad-1"),
        Scenario::LateKnown => {
            h.receive(&opener, "sns-1").await;
            h.until(t0() + minutes(20)).await;
            let mut late = raw_alert("k1", &["192.0.2.2"]);
            late["description"] = json!("late");
            Step::Receive(late.to_string(), "sns-2")
        }
        Scenario::Dispatch => {
            let four = raw_alert("k1", &["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]);
            h.receive(&four, "sns-1").await;
            take_job(&h, "dispatch")
        }
        Scenario::Inspect | Scenario::InspectDeep => {
            h.receive(&opener, "sns-1").await;
            let dispatch = take_job(&h, "dispatch");
            run(&h, &dispatch, 0).await.unwrap();
            let mut task = h.rt.tasks.take().remove(0);
            if matches!(s, Scenario::InspectDeep) {
                task.depth = 1;
            }
            Step::Job(Job::Inspect(task))
        }
        Scenario::ReviewV1 => {
            h.receive(&opener, "sns-1").await;
            h.until(t0() + minutes(10) - chrono::Duration::seconds(1))
                .await;
            h.clock.advance_to(t0() + minutes(10));
            take_job(&h, "review")
        }
        Scenario::ReviewV2 => {
            h.receive(&opener, "sns-1").await;
            h.until(t0() + minutes(30)).await;
            assert_eq!(h.published().len(), 1);
            h.receive(&raw_alert("k1", &["192.0.2.9"]), "sns-2").await;
            h.until(t0() + minutes(45) - chrono::Duration::seconds(1))
                .await;
            h.clock.advance_to(t0() + minutes(45));
            let step = take_job(&h, "review");
            assert!(
                matches!(&step, Step::Job(Job::Review { version: 2, report_id }) if *report_id == id)
            );
            step
        }
    };
    h.crash.disarm();
    (h, step)
}

/// Takes the next job due, of `stage`, and moves the clock to its due time.
fn take_job(h: &Harness, stage: &str) -> Step {
    let (job, due) = h.rt.scheduler.take_next(h.now() + minutes(10)).unwrap();
    assert_eq!(job.stage(), stage, "{job:?}");
    h.clock.advance_to(due);
    Step::Job(job)
}

/// Runs the step; a rejected input is the step done (kept as an error).
async fn run(h: &Harness, step: &Step, attempt: u32) -> Result<(), CoreError> {
    let out = match step {
        Step::Receive(raw, message_id) => {
            h.p.receive(raw.as_bytes(), Some(message_id))
                .await
                .map(|_| ())
        }
        Step::Job(job) => h.p.run_job(job, attempt).await,
    };
    match out {
        Err(CoreError::Invalid(_)) => Ok(()),
        other => other,
    }
}

#[tokio::test]
async fn a_step_retried_after_a_crash_at_any_store_call_ends_as_a_clean_run() {
    for s in SCENARIOS {
        let (h, step) = prepare(s).await;
        run(&h, &step, 0).await.unwrap();
        let calls = h.crash.calls();
        assert!(calls > 0, "{s:?} makes no store call");
        let clean = snapshot(&h).await;
        for n in 1..=calls {
            for when in [Crash::Before, Crash::After] {
                let (h, step) = prepare(s).await;
                h.crash.crash_at(n, when);
                let err = run(&h, &step, 0).await.unwrap_err();
                assert!(err.is_retryable(), "{s:?} at call {n} {when:?}: {err}");
                run(&h, &step, 1)
                    .await
                    .unwrap_or_else(|e| panic!("{s:?} retried after call {n} {when:?}: {e}"));
                assert_eq!(
                    snapshot(&h).await,
                    clean,
                    "{s:?} retried after a crash at call {n} {when:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_scenarios_do_what_they_are_named_for() {
    let store_calls = |s| async move {
        let (h, step) = prepare(s).await;
        run(&h, &step, 0).await.unwrap();
        (h.crash.calls(), snapshot(&h).await)
    };
    let (_, dispatch) = store_calls(Scenario::Dispatch).await;
    let skipped = |snap: &Snapshot| {
        snap.reports[0]
            .inspections
            .iter()
            .filter(|i| i.status == crate::model::InspectionStatus::Skipped)
            .count()
    };
    assert_eq!(skipped(&dispatch), 1, "one attribute past the cap");
    let (_, inspect) = store_calls(Scenario::Inspect).await;
    assert_eq!(inspect.tasks.len(), 1, "a discovery fed back");
    assert_eq!(skipped(&inspect), 1, "one discovery past the cap");
    assert_eq!(inspect.reports[0].sections.len(), 2);
    let (_, deep) = store_calls(Scenario::InspectDeep).await;
    assert_eq!(skipped(&deep), 2, "both discoveries too deep");
    let (calls, v1) = store_calls(Scenario::ReviewV1).await;
    assert_eq!(
        calls, 5,
        "meta, load, mark, the follow-up's meta and counts"
    );
    assert_eq!(v1.published.len(), 1);
    let (_, v2) = store_calls(Scenario::ReviewV2).await;
    assert_eq!(v2.published.len(), 2);
    let (_, late) = store_calls(Scenario::LateKnown).await;
    assert!(late.pending.iter().any(|(name, _)| name.ends_with(":2")));
    let (calls, malformed) = store_calls(Scenario::Malformed).await;
    assert_eq!((calls, malformed.errors.len()), (1, 1));
}
