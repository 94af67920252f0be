//! Step 3, dispatch: claim an alert's attributes, a task for each new one, and plan
//! the review.

use super::*;
use crate::error::CoreError;
use crate::model::{InspectionStatus, Job};
use crate::pipeline::dispatch;

impl Harness {
    /// Runs the dispatch of `message_id`'s alert now, returning its plan.
    async fn dispatch(
        &self,
        report_id: &str,
        message_id: &str,
    ) -> Result<Option<(Job, DateTime<Utc>)>, CoreError> {
        dispatch(
            self.store(),
            &*self.p.tasks,
            &*self.p.clock,
            &self.p.settings,
            report_id,
            message_id,
        )
        .await
    }

    /// The values of the tasks published and not taken, with their depth.
    fn tasks(&self) -> Vec<(String, u32)> {
        self.rt
            .tasks
            .take()
            .into_iter()
            .map(|t| (t.attribute.value, t.depth))
            .collect()
    }
}

fn review(report_id: &str, version: u32) -> Job {
    Job::Review {
        report_id: report_id.into(),
        version,
    }
}

#[tokio::test]
async fn a_task_is_published_for_each_attribute_new_to_the_report() {
    let h = harness(Settings::default());
    let r = h
        .receive(
            &raw_alert("k1", &["192.0.2.1", "192.0.2.2", "192.0.2.1"]),
            "sns-1",
        )
        .await;
    h.clock.advance_to(t0() + minutes(5));
    let plan = h.dispatch(&r.report_id, "sns-1").await.unwrap();
    assert_eq!(
        h.tasks(),
        [("192.0.2.1".into(), 0), ("192.0.2.2".into(), 0)],
        "an attribute named twice is one task"
    );
    assert_eq!(
        plan,
        Some((review(&r.report_id, 1), t0() + minutes(10))),
        "version 1 at review_delay after the opening"
    );
    // A joining alert: only what is new, and no review of its own before publication.
    h.receive(&raw_alert("k1", &["192.0.2.2", "192.0.2.3"]), "sns-2")
        .await;
    let plan = h.dispatch(&r.report_id, "sns-2").await.unwrap();
    assert_eq!(h.tasks(), [("192.0.2.3".into(), 0)]);
    assert_eq!(plan, None);
    let state = h.state(&r.report_id).await;
    assert_eq!(
        state.attributes,
        [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")]
    );
    let counts = h
        .store()
        .report_counts(&r.report_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((counts.alerts, counts.attributes), (2, 3));
    assert_eq!(state.pending, state.attributes, "none inspected yet");
}

#[tokio::test]
async fn the_first_review_is_never_planned_in_the_past() {
    let h = harness(Settings::default());
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.clock.advance_to(t0() + minutes(25));
    let plan = h.dispatch(&r.report_id, "sns-1").await.unwrap();
    assert_eq!(plan, Some((review(&r.report_id, 1), t0() + minutes(25))));
}

#[tokio::test]
async fn an_alert_joining_a_published_report_plans_a_re_review() {
    let h = harness(Settings::default());
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(30)).await;
    assert_eq!(h.published().len(), 1);
    h.receive(&raw_alert("k1", &["192.0.2.7"]), "sns-2").await;
    h.clock.advance_to(t0() + minutes(35));
    let plan = h.dispatch(&r.report_id, "sns-2").await.unwrap();
    assert_eq!(h.tasks(), [("192.0.2.7".into(), 0)]);
    assert_eq!(
        plan,
        Some((review(&r.report_id, 2), t0() + minutes(45))),
        "review_delay after now"
    );
}

#[tokio::test]
async fn a_retried_dispatch_publishes_its_tasks_again_and_nobody_else_does() {
    let h = harness(Settings::default());
    let raw = raw_alert("k1", &["192.0.2.1", "192.0.2.2"]);
    let r = h.receive(&raw, "sns-1").await;
    h.dispatch(&r.report_id, "sns-1").await.unwrap();
    assert_eq!(h.tasks().len(), 2);
    // The bus may have lost them with the crash: the same claimer claims them anew.
    h.dispatch(&r.report_id, "sns-1").await.unwrap();
    assert_eq!(h.tasks().len(), 2);
    h.receive(&raw, "sns-2").await;
    h.dispatch(&r.report_id, "sns-2").await.unwrap();
    assert!(h.tasks().is_empty());
    assert_eq!(h.state(&r.report_id).await.attributes.len(), 2);
}

#[tokio::test]
async fn a_dispatch_whose_task_was_lost_is_healed_by_its_retry() {
    let h = harness(Settings::default());
    let r = h
        .receive(&raw_alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
        .await;
    let job = Job::Dispatch {
        report_id: r.report_id.clone(),
        message_id: "sns-1".into(),
    };
    h.rt.tasks.fail_next(1);
    let err = h.p.run_job(&job, 0).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(h.tasks().is_empty());
    h.p.run_job(&job, 1).await.unwrap();
    assert_eq!(
        h.tasks(),
        [("192.0.2.1".into(), 0), ("192.0.2.2".into(), 0)]
    );
}

#[tokio::test]
async fn attributes_past_the_report_cap_are_recorded_as_skipped() {
    let h = harness(Settings {
        max_attributes_per_report: 2,
        ..Settings::default()
    });
    let r = h
        .receive(
            &raw_alert("k1", &["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
            "sns-1",
        )
        .await;
    h.dispatch(&r.report_id, "sns-1").await.unwrap();
    assert_eq!(h.tasks().len(), 2);
    let state = h.state(&r.report_id).await;
    assert_eq!(state.attributes.len(), 2);
    let [skipped] = &state.inspections[..] else {
        panic!("{:?}", state.inspections);
    };
    assert_eq!(
        (
            skipped.inspector.as_str(),
            skipped.status,
            skipped.attribute.value.as_str()
        ),
        ("alertresponder", InspectionStatus::Skipped, "192.0.2.3")
    );
    assert_eq!(
        skipped.detail.as_deref(),
        Some("not inspected: the report reached its cap of 2 attributes")
    );
}

#[tokio::test]
async fn a_dispatch_of_an_unknown_report_or_message_is_not_found_and_not_retried() {
    let h = harness(Settings::default());
    let err = h.dispatch("nope", "sns-1").await.unwrap_err();
    assert!(
        matches!(err, CoreError::NotFound { what: "report", .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
    let r = h.receive(&raw_alert("k1", &[]), "sns-1").await;
    let err = h.dispatch(&r.report_id, "sns-9").await.unwrap_err();
    assert!(
        matches!(err, CoreError::NotFound { what: "alert", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_dispatch_job_schedules_the_review_it_plans() {
    let h = harness(Settings::default());
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    let job = Job::Dispatch {
        report_id: r.report_id.clone(),
        message_id: "sns-1".into(),
    };
    h.rt.scheduler.take_due(t0() + minutes(5));
    h.p.run_job(&job, 0).await.unwrap();
    assert_eq!(
        h.pending(),
        [(format!("review:{}:1", r.report_id), t0() + minutes(10))]
    );
}
