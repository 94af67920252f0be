//! The receptor: SNS records and EventBridge events in, receipts and kept errors out.

use super::*;

// --- receptor ------------------------------------------------------------------

#[tokio::test]
async fn an_sns_record_is_received_under_its_message_id_and_a_redelivery_is_a_duplicate() {
    let (p, rt, _) = edge();
    let out = receive_sns(&p, fixture_event()).await.unwrap();
    assert_eq!(
        out,
        ReceiveOutput {
            received: 1,
            duplicates: 0,
            rejected: 0,
            failed_executions: 0,
            skipped: 0,
        }
    );
    let scheduled = dispatches(&rt);
    assert_eq!(scheduled.len(), 1);
    let (report_id, message_id) = &scheduled[0];
    assert_eq!(message_id, SNS_MESSAGE_ID);
    let alert = rt.store.get_alert(report_id, SNS_MESSAGE_ID).await.unwrap();
    assert_eq!(alert.unwrap().detector, "guardduty");

    // SNS delivers at least once: the same record is stored and scheduled once.
    let again = receive_event(&p, serde_json::from_str(SNS_EVENT).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (again.received, again.duplicates, again.rejected),
        (0, 1, 0)
    );
    assert_eq!(dispatches(&rt), scheduled);
    let counts = rt.store.report_counts(report_id).await.unwrap().unwrap();
    assert_eq!(counts.alerts, 1);
}

#[tokio::test]
async fn a_malformed_alert_is_kept_as_an_error_and_not_retried() {
    let (p, rt, _) = edge();
    let event = sns_event(&[
        ("m-bad", r#"{"rule_id": "r", "alert_key": "k"}"#),
        ("m-good", &alert_json(&["192.0.2.1"])),
    ]);
    // Ok, not Err: Lambda would retry the whole batch, and a malformed alert never heals.
    let out = receive_sns(&p, event).await.unwrap();
    assert_eq!((out.received, out.rejected), (1, 1));
    let record = rt
        .store
        .get_error("m-bad", "receive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.field.as_deref(), Some("detector"));
    assert!(record.input.contains("alert_key"), "{record:?}");
    assert_eq!(dispatches(&rt).len(), 1, "only the good alert goes on");
}

#[tokio::test]
async fn a_transient_failure_fails_the_invocation_and_its_retry_schedules_the_dispatch() {
    let (p, rt, _) = edge();
    rt.scheduler.fail_next(1);
    let err = receive_sns(&p, fixture_event()).await.unwrap_err();
    assert_eq!(err.kind, EdgeErrorKind::Retryable);
    assert_eq!(Diagnostic::from(err).error_type, "Retryable");
    assert!(dispatches(&rt).is_empty());
    // Lambda's retry: the alert was stored, the dispatch was not scheduled; now it is.
    let out = receive_sns(&p, fixture_event()).await.unwrap();
    assert_eq!(out.duplicates, 1);
    assert_eq!(dispatches(&rt).len(), 1);
}

#[tokio::test]
async fn a_guardduty_finding_from_eventbridge_is_received_under_its_event_id() {
    let (p, rt, _) = edge();
    let finding: Value = serde_json::from_str(GUARDDUTY_EVENT).unwrap();
    let out = receive_event(&p, finding.clone()).await.unwrap();
    assert_eq!((out.received, out.rejected), (1, 0));
    let scheduled = dispatches(&rt);
    assert_eq!(
        scheduled[0].1,
        "eventbridge:c8c4daa7-a20c-2f03-0070-b7393dd542ad"
    );
    let alert = rt
        .store
        .get_alert(&scheduled[0].0, &scheduled[0].1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert.rule_id, "UnauthorizedAccess:EC2/SSHBruteForce");
    // EventBridge delivers at least once too.
    let again = receive_event(&p, finding).await.unwrap();
    assert_eq!(again.duplicates, 1);
}

#[tokio::test]
async fn security_hub_findings_are_received_one_alert_each_and_suppressed_ones_counted() {
    let (p, rt, _) = edge();
    let event: Value = serde_json::from_str(SECURITY_HUB_BATCH).unwrap();
    let out = receive_event(&p, event.clone()).await.unwrap();
    assert_eq!(
        (out.received, out.skipped, out.rejected, out.duplicates),
        (2, 2, 0, 0)
    );
    let mut ids: Vec<String> = dispatches(&rt).into_iter().map(|(_, m)| m).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "eventbridge:6e7f8091-a2b3-44c5-d6e7-f8091a2b3c4d#1",
            "eventbridge:6e7f8091-a2b3-44c5-d6e7-f8091a2b3c4d#3"
        ]
    );
    let (report_id, message_id) = &dispatches(&rt)[0];
    let alert = rt
        .store
        .get_alert(report_id, message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert.detector, "securityhub");
    // A redelivered event: every finding a duplicate, nothing new scheduled.
    let again = receive_event(&p, event).await.unwrap();
    assert_eq!((again.received, again.duplicates, again.skipped), (0, 2, 2));
    assert_eq!(dispatches(&rt).len(), 2);
}

#[tokio::test]
async fn an_unsupported_event_is_kept_as_an_error_in_the_pipelines_error_sink() {
    let (mut p, rt, _) = edge();
    let sink = Arc::new(Recorded::default());
    p.errors = sink.clone();
    let inspector = json!({
        "version": "0", "id": "5e1f0ad5", "detail-type": "Inspector2 Finding",
        "source": "aws.inspector2", "detail": {}
    });
    let out = receive_event(&p, inspector).await.unwrap();
    assert_eq!(out.rejected, 1);
    let neither = json!({"hello": "world"});
    let out = receive_event(&p, neither.clone()).await.unwrap();
    assert_eq!(out.rejected, 1);
    let malformed = sns_event(&[("m-bad", "not json")]);
    assert_eq!(receive_sns(&p, malformed).await.unwrap().rejected, 1);
    assert_eq!(
        sink.records(),
        [
            ("eventbridge:5e1f0ad5".to_string(), "receive".to_string()),
            (
                alertresponder_core::id::content_message_id(neither.to_string().as_bytes()),
                "receive".to_string()
            ),
            ("m-bad".to_string(), "receive".to_string()),
        ]
    );
    // Through `p.errors`, not the store: on AWS that sink also publishes the topic.
    assert!(rt.store.errors().is_empty());
    assert!(rt.scheduler.pending().is_empty());
}
