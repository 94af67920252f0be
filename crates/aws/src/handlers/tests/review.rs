//! The reviewer-invoker (the Review state) and the emitter-fanout.

use super::*;

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
    let err = deliver_sns(
        &p,
        sns_event(&[("r1", &message), ("r2", "not json")]),
        &quick_budget(),
    )
    .await
    .unwrap_err();
    // The broken target's failure is retryable: the invocation fails for Lambda's
    // retry, which skips the target that got it.
    assert_eq!(err.kind, EdgeErrorKind::Retryable, "{err}");
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
