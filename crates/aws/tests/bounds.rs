//! Every record fits its store, on moto (which enforces SNS's 256 KiB message and
//! DynamoDB's 400 KB item): the error record of a large malformed alert is kept in
//! the error table and published on the error topic, and an error record too large
//! for a message is published cut rather than refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use alertresponder_aws::dynamo::DynamoStore;
use alertresponder_aws::sns::{SnsErrorTopic, MAX_MESSAGE_BYTES};
use alertresponder_aws::stack::TableThenTopic;
use alertresponder_aws_testkit::{create_topic, dynamo_store, unique, Moto, Subscriber};
use alertresponder_core::fixtures::t;
use alertresponder_core::pipeline::{admit, MAX_ERROR_INPUT_BYTES};
use alertresponder_core::ports::ErrorLog;
use alertresponder_core::{CoreError, ErrorRecord};

/// An error sink as the receptor has it (the table, then the topic), and a queue
/// subscribed to the topic.
async fn sink(moto: &Moto) -> (TableThenTopic, Arc<DynamoStore>, Subscriber) {
    let sdk = moto.sdk_config().await;
    let table = Arc::new(dynamo_store(&sdk).await);
    let topic = create_topic(&sdk, &unique("errors")).await;
    let subscriber = Subscriber::create(&sdk, &topic, &unique("all"), None).await;
    let sink = TableThenTopic {
        table: table.clone(),
        topic: SnsErrorTopic::new(aws_sdk_sns::Client::new(&sdk), &topic),
    };
    (sink, table, subscriber)
}

#[tokio::test]
async fn the_error_record_of_a_mebibyte_malformed_alert_is_kept_and_published() {
    let moto = Moto::start(false);
    let (sink, table, subscriber) = sink(&moto).await;
    let raw = format!(
        r#"{{"detector": "d", "rule_id": "r", "alert_key": "k", "description": "{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let err = admit(&sink, t(0), raw.as_bytes(), Some("big"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Invalid(e) if e.field == "$"),
        "rejected as too large, not failed to keep: {err}"
    );
    let kept = table.get_error("big", "receive").await.unwrap().unwrap();
    assert!(kept.input_truncated);
    // Its quotes count twice: the bound is on the input as serialised.
    let serialised = serde_json::to_string(&kept.input).unwrap().len() - 2;
    assert!(
        (MAX_ERROR_INPUT_BYTES - 2..=MAX_ERROR_INPUT_BYTES).contains(&serialised),
        "{serialised}"
    );
    assert!(raw.starts_with(&kept.input));

    let got = subscriber.drain(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body.len() <= MAX_MESSAGE_BYTES,
        "{}",
        got[0].body.len()
    );
    assert_eq!(
        serde_json::from_str::<ErrorRecord>(&got[0].body).unwrap(),
        kept
    );
    assert_eq!(got[0].attributes["stage"], "receive");
}

#[tokio::test]
async fn an_error_record_too_large_for_a_message_is_published_cut() {
    let moto = Moto::start(false);
    let (sink, _, subscriber) = sink(&moto).await;
    // Built by hand, past what `pipeline::error_record` would keep: quotes double
    // when serialised.
    let record = ErrorRecord {
        id: "m1".into(),
        stage: "receive".into(),
        error: "invalid alert".into(),
        field: Some("$".into()),
        input: "\"".repeat(200 * 1024),
        input_truncated: false,
        at: t(0),
    };
    sink.topic.publish_error(&record).await.unwrap();
    let got = subscriber.drain(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body.len() <= MAX_MESSAGE_BYTES,
        "{}",
        got[0].body.len()
    );
    let published: ErrorRecord = serde_json::from_str(&got[0].body).unwrap();
    assert!(published.input_truncated);
    assert!(published.input.len() > 100 * 1024 && record.input.starts_with(&published.input));
    assert_eq!(
        (published.id, published.error, published.field),
        (record.id, record.error, record.field)
    );
}
