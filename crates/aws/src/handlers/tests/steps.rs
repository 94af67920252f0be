//! The dispatcher and the inspector harness: the steps before the review.

use super::*;

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
