//! The stack in a box: the state machine of `template.yaml` walked state by state
//! with the real Lambda binaries (under cargo-lambda's emulator) against moto, from
//! an alert on the ingest topic down to the report message on the report topic.
//! What a user sees from outside (aggregation, sections, severity, errors, version 2)
//! is checked by the tester's scenarios, which run on this box too
//! (`tester/tests/stack_in_a_box.rs`); here: the states, executions and retries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use alertresponder_aws_testkit::stack_box::{BoxOptions, StackInABox};
use alertresponder_aws_testkit::walker::Walk;
use alertresponder_aws_testkit::Subscriber;
use aws_lambda_events::event::sns::SnsEvent;
use serde_json::{json, Value};

const POLICY: &str = r#"package alertresponder.review
import rego.v1
result := {"severity": "urgent", "reason": "host section for a brute-forcing address"} if {
	some s in input.sections
	s.type == "host"
}
"#;

fn alert(key: &str, ip: &str) -> String {
    json!({
        "detector": "guardduty",
        "rule_id": "UnauthorizedAccess:EC2/SSHBruteForce",
        "rule_name": "SSH brute force against EC2 instance",
        "alert_key": key,
        "description": format!("{ip} is performing SSH brute force attacks"),
        "timestamp": "2026-11-20T10:00:00Z",
        "attributes": [
            {"type": "ipaddr", "key": "remote address", "value": ip, "context": ["remote", "client"]},
            {"type": "username", "key": "target user", "value": "ec2-user", "context": ["local"]}
        ]
    })
    .to_string()
}

const FULL_PATH: [&str; 7] = [
    "WaitInspectionDelay",
    "Dispatch",
    "NeedsReview",
    "WaitReviewDelay",
    "Compile",
    "Review",
    "Publish",
];

/// How long a subscriber must stay quiet before its queue counts as drained.
const QUIET: std::time::Duration = std::time::Duration::from_millis(500);

/// The one message `subscriber` got: its JSON body, its message attributes and the
/// body as sent.
async fn only_message(subscriber: &Subscriber) -> (Value, BTreeMap<String, String>, String) {
    let got = subscriber.drain(QUIET).await;
    assert_eq!(got.len(), 1, "exactly one message expected: {got:?}");
    let body = serde_json::from_str(&got[0].body).unwrap();
    (body, got[0].attributes.clone(), got[0].body.clone())
}

/// `field` of every element of the list `report[list]`.
fn list_of<'a>(report: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap())
        .collect()
}

fn assert_path(walk: &Walk, expected: &[&str]) {
    assert_eq!(
        walk.path(),
        expected,
        "states entered; output {}",
        walk.output
    );
}

#[test]
fn the_real_sns_event_fixture_parses_as_the_receptor_takes_it() {
    let event: SnsEvent = serde_json::from_str(include_str!("fixtures/sns-event.json")).unwrap();
    assert_eq!(event.records.len(), 1);
    let alert = alertresponder_core::validate::parse_alert(
        event.records[0].sns.message.as_bytes(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(alert.detector, "guardduty");
    let back = serde_json::to_value(&event).unwrap();
    assert_eq!(
        back["Records"][0]["Sns"]["MessageId"],
        "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_walks_every_state_down_to_the_report_topic() {
    let sib = StackInABox::start(BoxOptions {
        policy: Some(POLICY.into()),
        inspector_functions: vec!["tester-inspector".into()],
        ..BoxOptions::default()
    })
    .await;

    let safe_only = sib
        .subscribe_reports(Some(r#"{"severity": ["safe"]}"#))
        .await;

    // 1. Receptor: SNS event in, report opened, one execution started.
    let out = sib
        .publish_alert(&alert("i-0abc", "198.51.100.7"))
        .await
        .unwrap_or_else(|e| panic!("receptor: {e:?}\n{}", sib.emulator.log_text()));
    assert_eq!(out["received"], 1, "{out}");
    let executions = sib.executions().await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, input) = executions[0].clone();
    assert!(name.starts_with("dispatch-"), "{name}");
    assert_eq!(input["job"]["job"], "dispatch");
    assert!(input["dispatch_at"].as_str().unwrap().ends_with('Z'));

    // 2. A second alert of the same key with the same attributes, before the review:
    //    it joins the report and starts no execution (DeepAlert v1 started one per alert).
    let out = sib
        .publish_alert(&alert("i-0abc", "198.51.100.7"))
        .await
        .unwrap();
    assert_eq!(out["received"], 1, "{out}");
    assert_eq!(
        sib.executions().await.len(),
        1,
        "a follow-up with known attributes starts no execution"
    );

    // 3. Walk the execution through the template's states.
    let walk = sib.walk(&name, input).await;
    assert_path(&walk, &FULL_PATH);
    assert_eq!(
        walk.output["published"]["published"], true,
        "{}",
        walk.output
    );

    // 4. The report message, as a subscriber gets it.
    let (report, attrs, sent) = only_message(&sib.reports).await;
    assert_eq!(report["version"], 1);
    assert_eq!(report["status"], "published");
    assert_eq!(
        report["alerts"].as_array().unwrap().len(),
        2,
        "both alerts are in the report"
    );
    assert_eq!(
        report["result"]["severity"], "urgent",
        "{}",
        report["result"]
    );
    let values = list_of(&report, "attributes", "value");
    assert!(
        values.contains(&"host-198-51-100-7.tester.example"),
        "fed-back attribute: {values:?}"
    );
    let authors = list_of(&report, "sections", "author");
    assert!(authors.contains(&"tester-inspector"), "{authors:?}");
    assert_eq!(attrs.get("severity").map(String::as_str), Some("urgent"));
    assert_eq!(attrs.get("detector").map(String::as_str), Some("guardduty"));
    assert_eq!(
        attrs.get("rule_id").map(String::as_str),
        Some("UnauthorizedAccess:EC2/SSHBruteForce")
    );
    assert_eq!(attrs.get("version").map(String::as_str), Some("1"));
    let urgent = sib
        .urgent_reports
        .drain(std::time::Duration::from_millis(300))
        .await;
    assert_eq!(
        urgent.len(),
        1,
        "the severity filter lets the urgent report through"
    );
    assert!(
        safe_only
            .drain(std::time::Duration::from_millis(300))
            .await
            .is_empty(),
        "a subscriber filtering on safe gets nothing"
    );

    // 5. The Publish state retried: by the same execution it re-publishes the version
    //    it marked (a crash between marking and publishing loses nothing); by another
    //    execution, nothing.
    let publish_input = &walk
        .steps
        .iter()
        .find(|s| s.state == "Publish")
        .unwrap()
        .input;
    let retry = |publisher: &str| json!({"compiled": publish_input["compiled"], "result": publish_input["result"], "publisher": publisher});
    let same = sib
        .emulator
        .invoke("emitter-fanout", &retry(&name))
        .await
        .unwrap();
    assert_eq!(same["published"], false, "{same}");
    let (_, _, again) = only_message(&sib.reports).await;
    assert_eq!(
        again, sent,
        "the same publisher re-publishes the stored version byte for byte"
    );
    let other = sib
        .emulator
        .invoke("emitter-fanout", &retry("review-someone-else"))
        .await
        .unwrap();
    assert_eq!(other["published"], false, "{other}");
    assert!(sib.reports.drain(QUIET).await.is_empty());

    // 6. An alert after publication: a re-review execution publishes version 2.
    let out = sib
        .publish_alert(&alert("i-0abc", "198.51.100.7"))
        .await
        .unwrap();
    assert_eq!(out["received"], 1, "{out}");
    let executions = sib.executions().await;
    assert_eq!(executions.len(), 2, "{executions:?}");
    let (name, input) = executions
        .iter()
        .find(|(n, _)| n.starts_with("review-"))
        .cloned()
        .unwrap_or_else(|| panic!("no review execution: {executions:?}"));
    assert_eq!(input["job"]["version"], 2);
    let walk = sib.walk(&name, input).await;
    assert_path(&walk, &FULL_PATH);
    let (v2, _, _) = only_message(&sib.reports).await;
    assert_eq!(v2["version"], 2);
    assert!(sib
        .errors
        .drain(std::time::Duration::from_millis(300))
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardduty_findings_from_eventbridge_become_reports_and_other_events_are_kept() {
    let sib = StackInABox::start(BoxOptions::default()).await;
    let finding: Value = serde_json::from_str(include_str!(
        "fixtures/eventbridge-guardduty-ssh-brute-force.json"
    ))
    .unwrap();
    let out = sib
        .emulator
        .invoke("receptor", &finding)
        .await
        .unwrap_or_else(|e| panic!("receptor: {e:?}\n{}", sib.emulator.log_text()));
    assert_eq!(out["received"], 1, "{out}");
    // EventBridge delivers at least once: the same event ID is stored once.
    let again = sib.emulator.invoke("receptor", &finding).await.unwrap();
    assert_eq!(again["duplicates"], 1, "{again}");

    let other = json!({
        "version": "0", "id": "5e1f0ad5-0000-0000-0000-000000000000",
        "detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
        "account": "123456789012", "time": "2026-11-20T10:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"findings": []}
    });
    let out = sib.emulator.invoke("receptor", &other).await.unwrap();
    assert_eq!(out["rejected"], 1, "{out}");
    let (record, _, _) = only_message(&sib.errors).await;
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("aws.securityhub"),
        "{record}"
    );
    assert!(
        record["input"]
            .as_str()
            .unwrap()
            .contains("Security Hub Findings"),
        "the event is kept"
    );

    let executions = sib.executions().await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, input) = executions[0].clone();
    let walk = sib.walk(&name, input).await;
    assert_path(&walk, &FULL_PATH);
    let (report, attributes, _) = only_message(&sib.reports).await;
    let alert = &report["alerts"][0];
    assert_eq!(alert["detector"], "guardduty");
    assert_eq!(alert["rule_id"], "UnauthorizedAccess:EC2/SSHBruteForce");
    assert_eq!(alert["alert_key"], "i-0123456789abcdef0");
    assert_eq!(
        list_of(&report, "attributes", "value"),
        vec!["198.51.100.7", "10.0.1.23"]
    );
    assert_eq!(attributes["detector"], "guardduty");
}
