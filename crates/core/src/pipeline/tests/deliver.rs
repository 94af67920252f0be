//! Delivery: one published version to one emitter; what is worth a retry.

use super::*;
use crate::error::CoreError;
use crate::pipeline::deliver;

/// A report published as version 1; returns its ID.
async fn published(h: &Harness) -> String {
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.drain().await;
    assert_eq!(h.published().len(), 1);
    r.report_id
}

#[tokio::test]
async fn a_published_version_goes_to_the_named_emitter_with_its_attempt() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let recorder = Arc::new(Recorder::default());
    let other = Arc::new(Recorder::failing("never called"));
    let emitters: Vec<Arc<dyn Emitter>> = vec![recorder.clone(), other];
    // Both are named "recorder": the first of the name is the one configured.
    deliver(h.store(), &emitters, &id, 1, "recorder", 2)
        .await
        .unwrap();
    let (stored, _) = h.store().published_report(&id, 1).await.unwrap().unwrap();
    assert_eq!(recorder.emitted(), [(stored, 2)]);
}

#[tokio::test]
async fn the_deliver_job_passes_its_attempt_on() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let recorder = Arc::new(Recorder::default());
    let mut p = h.p.clone();
    p.emitters = vec![recorder.clone()];
    let job = Job::Deliver {
        report_id: id,
        version: 1,
        emitter: "recorder".into(),
    };
    p.run_job(&job, 4).await.unwrap();
    let emitted = recorder.emitted();
    assert_eq!(emitted.len(), 1);
    assert_eq!((emitted[0].0.version, emitted[0].1), (1, 4));
}

#[tokio::test]
async fn an_unknown_emitter_is_not_worth_a_retry() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let emitters: Vec<Arc<dyn Emitter>> = vec![Arc::new(Recorder::default())];
    let err = deliver(h.store(), &emitters, &id, 1, "pager", 0)
        .await
        .unwrap_err();
    let CoreError::Port {
        stage, retryable, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!((stage.as_str(), *retryable), ("emitter pager", false));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_failing_emitter_is_worth_a_retry() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let failing: Vec<Arc<dyn Emitter>> =
        vec![Arc::new(Recorder::failing("HTTP 503 from the webhook"))];
    let err = deliver(h.store(), &failing, &id, 1, "recorder", 0)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.to_string(),
        "emitter recorder failed: HTTP 503 from the webhook"
    );
}

#[tokio::test]
async fn a_version_never_published_is_not_found() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let emitters: Vec<Arc<dyn Emitter>> = vec![Arc::new(Recorder::default())];
    let err = deliver(h.store(), &emitters, &id, 2, "recorder", 0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::NotFound {
                what: "published report",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable());
}
