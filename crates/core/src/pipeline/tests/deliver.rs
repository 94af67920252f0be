//! Delivery: one published version to one emitter; what is worth a retry; what is
//! recorded, skipped or not wanted.

use async_trait::async_trait;

use super::*;
use crate::error::CoreError;
use crate::model::Severity;
use crate::pipeline::{deliver, DeliveryOrder, DeliveryOutcome};

/// A report published as version 1; returns its ID.
async fn published(h: &Harness) -> String {
    let r = h.receive(&raw_alert("k1", &["192.0.2.1"]), "sns-1").await;
    h.drain().await;
    assert_eq!(h.published().len(), 1);
    r.report_id
}

/// Delivers as a deliver job of `attempt` does (skipping what is recorded).
async fn job(
    h: &Harness,
    emitters: &[Arc<dyn Emitter>],
    id: &str,
    version: u32,
    emitter: &str,
    attempt: u32,
) -> Result<DeliveryOutcome, CoreError> {
    deliver(
        h.store(),
        h.store(),
        emitters,
        &*h.clock,
        &DeliveryOrder::job(id, version, emitter, attempt),
    )
    .await
}

/// An emitter that wants urgent versions only, recording what it is sent.
#[derive(Default)]
struct UrgentOnly(Recorder);

#[async_trait]
impl Emitter for UrgentOnly {
    fn name(&self) -> &str {
        "recorder"
    }

    fn wants(&self, report: &Report) -> bool {
        report.result.severity == Severity::Urgent
    }

    async fn emit(&self, report: &Report, attempt: u32) -> Result<(), PluginError> {
        self.0.emit(report, attempt).await
    }
}

/// An emitter that fails with a given error every time.
struct Failing(fn() -> PluginError);

#[async_trait]
impl Emitter for Failing {
    fn name(&self) -> &str {
        "failing"
    }

    async fn emit(&self, _report: &Report, _attempt: u32) -> Result<(), PluginError> {
        Err((self.0)())
    }
}

#[tokio::test]
async fn a_published_version_goes_to_the_named_emitter_with_its_attempt() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let recorder = Arc::new(Recorder::default());
    let other = Arc::new(Recorder::failing("never called"));
    let emitters: Vec<Arc<dyn Emitter>> = vec![recorder.clone(), other];
    // Both are named "recorder": the first of the name is the one configured.
    let outcome = job(&h, &emitters, &id, 1, "recorder", 2).await.unwrap();
    assert_eq!(outcome, DeliveryOutcome::Sent);
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
    let err = job(&h, &emitters, &id, 1, "pager", 0).await.unwrap_err();
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
    let err = job(&h, &failing, &id, 1, "recorder", 0).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.to_string(),
        "emitter recorder failed: HTTP 503 from the webhook"
    );
    assert!(
        !h.store().delivered(&id, 1, "recorder").await.unwrap(),
        "a failed delivery is not recorded"
    );
}

#[tokio::test]
async fn a_version_never_published_is_not_found() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let emitters: Vec<Arc<dyn Emitter>> = vec![Arc::new(Recorder::default())];
    let err = job(&h, &emitters, &id, 2, "recorder", 0).await.unwrap_err();
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

#[tokio::test]
async fn a_sent_version_is_recorded_at_the_clock_and_a_retry_skips_it() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let recorder = Arc::new(Recorder::default());
    let emitters: Vec<Arc<dyn Emitter>> = vec![recorder.clone()];
    h.clock.advance(Duration::from_secs(30));
    let sent_at = h.now();
    assert_eq!(
        job(&h, &emitters, &id, 1, "recorder", 0).await.unwrap(),
        DeliveryOutcome::Sent
    );
    let recorded = h.store().deliveries(&id).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].version, recorded[0].emitter.as_str()),
        (1, "recorder")
    );
    assert_eq!(recorded[0].delivered_at, sent_at);
    // The same delivery run again (a job retried after a crash before it completed).
    h.clock.advance(Duration::from_secs(30));
    assert_eq!(
        job(&h, &emitters, &id, 1, "recorder", 1).await.unwrap(),
        DeliveryOutcome::AlreadyDelivered
    );
    assert_eq!(recorder.emitted().len(), 1, "not sent twice");
}

#[tokio::test]
async fn a_replay_sends_a_delivered_version_again_and_keeps_the_first_record() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let recorder = Arc::new(Recorder::default());
    let emitters: Vec<Arc<dyn Emitter>> = vec![recorder.clone()];
    job(&h, &emitters, &id, 1, "recorder", 0).await.unwrap();
    let first = h.store().deliveries(&id).await.unwrap();
    h.clock.advance(Duration::from_secs(3600));
    let outcome = deliver(
        h.store(),
        h.store(),
        &emitters,
        &*h.clock,
        &DeliveryOrder::replay(&id, 1, "recorder"),
    )
    .await
    .unwrap();
    assert_eq!(outcome, DeliveryOutcome::Sent);
    let attempts: Vec<u32> = recorder.emitted().iter().map(|(_, a)| *a).collect();
    assert_eq!(attempts, [0, 1], "a replay is never a first try");
    assert_eq!(h.store().deliveries(&id).await.unwrap(), first);
}

#[tokio::test]
async fn a_version_the_emitter_does_not_want_is_neither_sent_nor_recorded() {
    let h = harness(Settings::default());
    // No reviewer: the version is unclassified.
    let id = published(&h).await;
    let picky = Arc::new(UrgentOnly::default());
    let emitters: Vec<Arc<dyn Emitter>> = vec![picky.clone()];
    assert_eq!(
        job(&h, &emitters, &id, 1, "recorder", 0).await.unwrap(),
        DeliveryOutcome::NotWanted
    );
    assert!(picky.0.emitted().is_empty());
    assert!(h.store().deliveries(&id).await.unwrap().is_empty());
    // A replay does not override the emitter's filter either.
    let replayed = deliver(
        h.store(),
        h.store(),
        &emitters,
        &*h.clock,
        &DeliveryOrder::replay(&id, 1, "recorder"),
    )
    .await
    .unwrap();
    assert_eq!(replayed, DeliveryOutcome::NotWanted);
    assert!(picky.0.emitted().is_empty());
}

#[tokio::test]
async fn a_rejected_delivery_is_not_worth_a_retry_and_a_rate_limit_says_how_long_to_wait() {
    let h = harness(Settings::default());
    let id = published(&h).await;
    let rejected: Vec<Arc<dyn Emitter>> = vec![Arc::new(Failing(|| {
        PluginError::Rejected("HTTP 404 from the API: no such repository".into())
    }))];
    let err = job(&h, &rejected, &id, 1, "failing", 0).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), None);

    let limited: Vec<Arc<dyn Emitter>> = vec![Arc::new(Failing(|| PluginError::RateLimited {
        retry_after: Some(Duration::from_secs(42)),
    }))];
    let err = job(&h, &limited, &id, 1, "failing", 0).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(42)));
    assert!(h.store().deliveries(&id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_around_the_record_repeats_a_send_only_when_the_record_was_not_kept() {
    for (when, sends) in [
        (crate::memory::Crash::After, 1),
        (crate::memory::Crash::Before, 2),
    ] {
        let h = harness(Settings::default());
        let id = published(&h).await;
        let recorder = Arc::new(Recorder::default());
        let emitters: Vec<Arc<dyn Emitter>> = vec![recorder.clone()];
        // Store calls: delivered?, published_report, record_delivery.
        h.crash.crash_at(3, when);
        let err = job(&h, &emitters, &id, 1, "recorder", 0).await.unwrap_err();
        assert!(err.is_retryable(), "{when:?}: {err}");
        let retried = job(&h, &emitters, &id, 1, "recorder", 1).await.unwrap();
        let expected = if sends == 1 {
            // Kept, only the answer was lost: the retry finds the record.
            DeliveryOutcome::AlreadyDelivered
        } else {
            // Not kept: sent again (at least once; the target's idempotency key
            // makes it an update).
            DeliveryOutcome::Sent
        };
        assert_eq!(retried, expected, "{when:?}");
        assert_eq!(recorder.emitted().len(), sends, "{when:?}");
        assert_eq!(h.store().deliveries(&id).await.unwrap().len(), 1);
    }
}
