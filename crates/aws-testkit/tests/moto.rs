//! The kit against moto: the servers answer, the tables are made as the template
//! declares them, and a subscriber reads what its topic delivers, filter policy and
//! attributes included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use alertresponder_aws::dynamo::{PK, SK, TTL_ATTRIBUTE};
use alertresponder_aws_testkit::{create_tables, create_topic, http, unique, Moto, Subscriber};
use aws_sdk_dynamodb::types::{KeyType, TimeToLiveStatus};
use aws_sdk_sns::types::MessageAttributeValue;

#[tokio::test]
async fn create_tables_makes_both_tables_keyed_on_pk_and_sk_with_ttl() {
    let moto = Moto::start(false);
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let (reports, errors) = (unique("reports"), unique("errors"));
    create_tables(&client, &reports, &errors).await.unwrap();
    for table in [&reports, &errors] {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let keys: Vec<(String, KeyType)> = described
            .table
            .and_then(|t| t.key_schema)
            .unwrap()
            .into_iter()
            .map(|k| (k.attribute_name, k.key_type))
            .collect();
        assert_eq!(
            keys,
            vec![
                (PK.to_string(), KeyType::Hash),
                (SK.to_string(), KeyType::Range)
            ]
        );
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(ttl.attribute_name.as_deref(), Some(TTL_ATTRIBUTE));
        assert_eq!(ttl.time_to_live_status, Some(TimeToLiveStatus::Enabled));
    }
    // A table that exists is an error, not a silent reuse of old items.
    assert!(create_tables(&client, &reports, &unique("other"))
        .await
        .is_err());
}

#[tokio::test]
async fn a_subscriber_reads_what_its_filter_lets_through_with_the_attributes() {
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let topic = create_topic(&sdk, &unique("reports")).await;
    let urgent = Subscriber::create(
        &sdk,
        &topic,
        &unique("urgent"),
        Some(r#"{"severity": ["urgent"]}"#),
    )
    .await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    for severity in ["unclassified", "urgent"] {
        sns.publish()
            .topic_arn(&topic)
            .message(format!("a report, {severity}"))
            .message_attributes(
                "severity",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(severity)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let got = urgent.drain(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body, "a report, urgent");
    assert_eq!(got[0].attributes["severity"], "urgent");
    // What was read is deleted: a second read finds nothing.
    assert!(urgent.receive(Duration::ZERO).await.unwrap().is_empty());
}

#[test]
fn a_serialized_moto_answers_and_records_requests() {
    let moto = Moto::start_serialized();
    moto.start_recording();
    let (status, _) = http(moto.port, "GET", "/moto-api/data.json", "").unwrap();
    assert_eq!(status, 200);
    let recorded = moto.recorded_requests();
    assert!(
        recorded
            .iter()
            .any(|r| r["url"].as_str().is_some_and(|u| u.contains("data.json"))),
        "{recorded:?}"
    );
}
