//! Steps 6–8, review: compile, decide a severity, publish once, follow up.

use super::*;
use crate::error::CoreError;
use crate::memory::Crash;
use crate::model::{InspectionRecord, InspectionStatus, ReportStatus, Severity};
use crate::pipeline::{compile_version, publish_version, review, review_report, ReviewOutcome};

fn reviewers(list: Vec<FixedReviewer>) -> Vec<Arc<dyn Reviewer>> {
    list.into_iter()
        .map(|r| Arc::new(r) as Arc<dyn Reviewer>)
        .collect()
}

/// A report to review: one alert received, dispatched, inspected; now at its review.
async fn ready(h: &Harness) -> String {
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.until(t0() + minutes(10) - chrono::Duration::seconds(1))
        .await;
    h.clock.advance_to(t0() + minutes(10));
    assert_eq!(
        h.rt.scheduler.take_due(h.now()),
        [(
            Job::Review {
                report_id: r.report_id.clone(),
                version: 1
            },
            t0() + minutes(10)
        )]
    );
    r.report_id
}

async fn decide(list: Vec<FixedReviewer>) -> ReportResult {
    let report = crate::fixtures::report("r", 1, Severity::Safe);
    review_report(&reviewers(list), &report).await
}

#[tokio::test]
async fn the_most_severe_result_wins_and_every_reason_is_kept() {
    let result = decide(vec![
        decides("a", Severity::Safe, "known scanner"),
        decides("b", Severity::Urgent, "malware"),
        FixedReviewer("c", Ok(None)),
        decides("d", Severity::Urgent, "c2 domain"),
    ])
    .await;
    assert_eq!(result.severity, Severity::Urgent);
    assert_eq!(
        result.reason,
        "[b: urgent] malware; [d: urgent] c2 domain; [a: safe] known scanner"
    );
    let single = decide(vec![
        decides("a", Severity::Safe, "known scanner"),
        FixedReviewer("c", Ok(None)),
    ])
    .await;
    assert_eq!(
        single,
        ReportResult {
            severity: Severity::Safe,
            reason: "known scanner".into()
        }
    );
}

#[tokio::test]
async fn a_failing_reviewer_counts_as_unclassified_never_safe() {
    let result = decide(vec![
        decides("a", Severity::Safe, "ok"),
        FixedReviewer("broken", Err(PluginError::Failed("policy error".into()))),
    ])
    .await;
    assert_eq!(result.severity, Severity::Unclassified);
    assert!(
        result
            .reason
            .contains("reviewer broken failed: policy error")
            && result.reason.contains("[a: safe] ok"),
        "{}",
        result.reason
    );
    let urgent = decide(vec![
        FixedReviewer("broken", Err(PluginError::Failed("policy error".into()))),
        decides("b", Severity::Urgent, "malware"),
    ])
    .await;
    assert_eq!(
        urgent.severity,
        Severity::Urgent,
        "a failure lowers nothing"
    );
}

#[tokio::test]
async fn every_reviewer_reason_is_bounded_alone_and_combined() {
    use crate::pipeline::MAX_DETAIL_BYTES;
    let long = "because ".repeat(100 * 1024 / 8);
    let alone = decide(vec![decides("a", Severity::Urgent, &long)]).await;
    assert_eq!(alone.severity, Severity::Urgent);
    assert!(
        alone.reason.len() <= MAX_DETAIL_BYTES + 32,
        "{} bytes",
        alone.reason.len()
    );
    assert!(alone.reason.starts_with("because because") && alone.reason.contains("bytes cut"));
    let combined = decide(vec![
        decides("a", Severity::Safe, &long),
        decides("b", Severity::Urgent, &long),
        decides("c", Severity::Safe, "short"),
    ])
    .await;
    assert!(
        combined.reason.len() <= MAX_DETAIL_BYTES + 32,
        "{} bytes",
        combined.reason.len()
    );
    for part in [
        "[b: urgent] because",
        "[a: safe] because",
        "[c: safe] short",
    ] {
        assert!(
            combined.reason.contains(part),
            "{part}: {}",
            combined.reason
        );
    }
}

#[tokio::test]
async fn without_a_decision_a_report_is_unclassified() {
    let none = decide(vec![]).await;
    assert_eq!(
        (none.severity, none.reason.as_str()),
        (Severity::Unclassified, "no reviewer configured")
    );
    let undecided = decide(vec![FixedReviewer("c", Ok(None))]).await;
    assert_eq!(
        (undecided.severity, undecided.reason.as_str()),
        (Severity::Unclassified, "no reviewer reached a decision")
    );
}

#[tokio::test]
async fn a_version_is_compiled_from_the_store_and_published_once() {
    let h = harness(Settings::default())
        .with_inspectors(vec![Arc::new(resolver())])
        .with_reviewers(reviewers(vec![decides("p", Severity::Urgent, "bad")]));
    let id = ready(&h).await;
    let outcome = review(&h.p, &id, 1, "review:1").await.unwrap();
    let ReviewOutcome::Published(report) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        (report.version, report.status, report.published_at),
        (1, ReportStatus::Published, Some(t0() + minutes(10)))
    );
    assert_eq!(report.result.severity, Severity::Urgent);
    assert_eq!((report.alerts.len(), report.attributes.len()), (1, 2));
    assert_eq!((report.sections.len(), report.inspections.len()), (2, 2));
    assert_eq!(report.alert_id, alert_id("k1"));
    assert_eq!(report.previous_result, None);
    assert_eq!(h.published(), [(*report).clone()]);
    assert_eq!(
        h.store().published_report(&id, 1).await.unwrap(),
        Some(((*report).clone(), "review:1".into()))
    );
    // Run again by its own publisher (a crash before the queue heard of the end):
    // the stored copy is handed on again, byte for byte.
    h.clock.advance(Duration::from_secs(30));
    let again = review(&h.p, &id, 1, "review:1").await.unwrap();
    assert_eq!(
        again,
        ReviewOutcome::AlreadyPublished {
            version: 1,
            republished: true
        }
    );
    assert_eq!(h.published(), [(*report).clone(), (*report).clone()]);
    // Anyone else finding it published leaves it alone.
    let other = review(&h.p, &id, 1, "someone else").await.unwrap();
    assert_eq!(
        other,
        ReviewOutcome::AlreadyPublished {
            version: 1,
            republished: false
        }
    );
    assert_eq!(h.published().len(), 2);
    assert!(h.pending().is_empty(), "nothing joined: no re-review");
}

#[tokio::test]
async fn compile_takes_the_version_after_the_last_published_and_skips_one_published() {
    let h = harness(Settings::default());
    let id = ready(&h).await;
    let c = compile_version(h.store(), &id, 1, h.now()).await.unwrap();
    let report = c.report.clone().unwrap();
    assert_eq!((c.version, report.version), (1, 1));
    assert_eq!(report.status, ReportStatus::New);
    assert_eq!(report.created_at, t0());
    assert_eq!(report.result, ReportResult::default());
    let fine = ReportResult {
        severity: Severity::Safe,
        reason: "fine".into(),
    };
    publish_version(&h.p, c, fine, "p1").await.unwrap();
    let skipped = compile_version(h.store(), &id, 1, h.now()).await.unwrap();
    assert_eq!((skipped.version, skipped.report), (1, None));
    // A later alert: version 2, `more`, with the result before it.
    h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-2").await;
    let c = compile_version(h.store(), &id, 2, h.now()).await.unwrap();
    let report = c.report.unwrap();
    assert_eq!((report.version, report.status), (2, ReportStatus::More));
    assert_eq!(report.alerts.len(), 2);
    assert_eq!(
        report.previous_result.map(|r| r.severity),
        Some(Severity::Safe)
    );
    let err = compile_version(h.store(), "nope", 1, h.now())
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn an_alert_joining_during_the_review_gets_a_re_review() {
    let h = harness(Settings::default());
    let id = ready(&h).await;
    let compiled = compile_version(h.store(), &id, 1, h.now()).await.unwrap();
    // Stored after the compile, before the publication: in no version yet.
    let mut late = raw_alert("k1", &["192.0.2.1"]);
    late["description"] = json!("late");
    h.receive(&late, "sns-2").await;
    assert!(
        h.pending().is_empty(),
        "v1 is not published: no re-review yet"
    );
    let result = review_report(&h.p.reviewers, compiled.report.as_ref().unwrap()).await;
    publish_version(&h.p, compiled, result, "review:1")
        .await
        .unwrap();
    assert_eq!(h.published()[0].alerts.len(), 1);
    assert_eq!(
        h.pending(),
        [(format!("review:{id}:2"), t0() + minutes(20))]
    );
    h.drain().await;
    let versions: Vec<(u32, usize)> = h
        .published()
        .iter()
        .map(|r| (r.version, r.alerts.len()))
        .collect();
    assert_eq!(versions, [(1, 1), (2, 2)]);
}

#[tokio::test]
async fn an_attribute_claimed_during_the_review_gets_a_re_review() {
    let h = harness(Settings::default());
    let id = ready(&h).await;
    let compiled = compile_version(h.store(), &id, 1, h.now()).await.unwrap();
    h.store()
        .claim_attribute(&id, &domain("late.example"), "inspect:x:resolver", 256)
        .await
        .unwrap();
    publish_version(&h.p, compiled, ReportResult::default(), "review:1")
        .await
        .unwrap();
    assert_eq!(
        h.pending(),
        [(format!("review:{id}:2"), t0() + minutes(20))]
    );
}

#[tokio::test]
async fn a_crash_between_the_mark_and_the_follow_up_is_healed_by_the_retry() {
    let h = harness(Settings::default());
    let id = ready(&h).await;
    let job = Job::Review {
        report_id: id.clone(),
        version: 1,
    };
    // Calls: meta, load, mark, then the follow-up's meta. An alert joins between the
    // compile and the mark, and the crash comes before the follow-up reads the meta.
    let compiled = compile_version(h.store(), &id, 1, h.now()).await.unwrap();
    h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-2").await;
    h.crash.crash_at(2, Crash::Before);
    let publisher = job.name();
    let err = publish_version(&h.p, compiled, ReportResult::default(), &publisher)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(h.published().len(), 1, "published, then the crash");
    assert!(h.pending().is_empty(), "the re-review was lost");
    // The job runs again: same publisher.
    h.p.run_job(&job, 1).await.unwrap();
    let published = h.published();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0], published[1], "the stored copy again");
    assert_eq!(
        h.pending(),
        [(format!("review:{id}:2"), t0() + minutes(20))]
    );
}

#[tokio::test]
async fn a_review_whose_answer_was_lost_after_the_mark_publishes_on_retry() {
    let h = harness(Settings::default());
    let id = ready(&h).await;
    let job = Job::Review {
        report_id: id.clone(),
        version: 1,
    };
    h.crash.crash_at(3, Crash::After);
    let err = h.p.run_job(&job, 0).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(h.published().is_empty(), "marked, never handed on");
    h.p.run_job(&job, 1).await.unwrap();
    let published = h.published();
    assert_eq!(published.len(), 1);
    assert_eq!(
        h.store().published_report(&id, 1).await.unwrap(),
        Some((published[0].clone(), job.name()))
    );
    // A review the report bus failed is healed the same way.
    h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-2").await;
    let v2 = Job::Review {
        report_id: id.clone(),
        version: 2,
    };
    h.rt.reports.fail_next(1);
    h.p.run_job(&v2, 0).await.unwrap_err();
    h.p.run_job(&v2, 1).await.unwrap();
    let versions: Vec<u32> = h.published().iter().map(|r| r.version).collect();
    assert_eq!(versions, [1, 2]);
}

#[tokio::test]
async fn a_review_of_an_unknown_report_is_not_found() {
    let h = harness(Settings::default());
    let err = review(&h.p, "nope", 1, "p").await.unwrap_err();
    assert!(
        matches!(err, CoreError::NotFound { what: "report", .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_job_that_failed_for_good_is_kept_with_its_input() {
    let h = harness(Settings::default());
    let job = Job::Review {
        report_id: "nope".into(),
        version: 1,
    };
    let err = h.p.run_job(&job, 3).await.unwrap_err();
    h.p.record_failure(&job, &err).await.unwrap();
    let kept = h
        .store()
        .get_error(&job.name(), "review")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.error, "report not found: nope");
    assert_eq!(serde_json::from_str::<Job>(&kept.input).unwrap(), job);
    assert_eq!((kept.field, kept.at), (None, t0()));
}

#[tokio::test]
async fn an_attribute_still_pending_at_the_compile_is_listed_as_timed_out() {
    let h = harness(Settings::default());
    let r = h
        .receive(&raw_alert("k1", &["192.0.2.1", "192.0.2.2"]), "sns-1")
        .await;
    let job = Job::Dispatch {
        report_id: r.report_id.clone(),
        message_id: "sns-1".into(),
    };
    h.p.run_job(&job, 0).await.unwrap();
    // One inspection finished, the other's task was lost.
    h.store()
        .put_inspection(
            &r.report_id,
            &InspectionRecord {
                inspector: "geo".into(),
                attribute: ip("192.0.2.1"),
                status: InspectionStatus::Ok,
                detail: None,
                at: h.now(),
            },
        )
        .await
        .unwrap();
    h.store()
        .mark_inspected(&r.report_id, &ip("192.0.2.1"))
        .await
        .unwrap();
    h.clock.advance_to(t0() + minutes(10));
    let compiled = compile_version(h.store(), &r.report_id, 1, h.now())
        .await
        .unwrap();
    let report = compiled.report.unwrap();
    let outcomes: Vec<(&str, &str, InspectionStatus)> = report
        .inspections
        .iter()
        .map(|i| (i.inspector.as_str(), i.attribute.value.as_str(), i.status))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("geo", "192.0.2.1", InspectionStatus::Ok),
            ("alertresponder", "192.0.2.2", InspectionStatus::TimedOut)
        ]
    );
    assert_eq!(report.inspections[1].at, t0() + minutes(10));
}
