//! End-to-end tests of the alert sources embedded: EventBridge events (GuardDuty,
//! Security Hub) through `alertresponder run --format` and `POST /v1/events`.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// A fixture of core's (`crates/core/tests/fixtures/eventbridge/`).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/eventbridge")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn run(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(examples())
        .output()
        .unwrap();
    let reports = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        reports,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_takes_pretty_printed_events_beside_alert_lines_and_counts_skipped_findings() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("300s", "600s"), "");
    let alerts = dir.path().join("alerts.jsonl");
    std::fs::write(
        &alerts,
        r#"{"detector":"suricata","rule_id":"ET-1","alert_key":"k1","timestamp":"2026-11-20T10:01:00Z","attributes":[{"type":"ipaddr","key":"src","value":"192.0.2.1","context":["remote"]}]}"#,
    )
    .unwrap();
    let guardduty = fixture("guardduty-ssh-brute-force.json");
    let batch = fixture("securityhub-batch.json");
    let (code, reports, stderr) = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        guardduty.to_str().unwrap(),
        batch.to_str().unwrap(),
        alerts.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("2 EventBridge events read, 2 findings skipped"),
        "{stderr}"
    );
    assert!(stderr.contains("Workflow.Status is SUPPRESSED"), "{stderr}");
    assert!(stderr.contains("4 alerts read, 4 accepted"), "{stderr}");
    let detectors: std::collections::BTreeSet<_> = reports
        .iter()
        .flat_map(|r| r["alerts"].as_array().unwrap().iter())
        .map(|a| a["detector"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        detectors.into_iter().collect::<Vec<_>>(),
        ["guardduty", "securityhub", "suricata"]
    );
    let gd = reports
        .iter()
        .find(|r| r["alerts"][0]["detector"] == "guardduty")
        .unwrap();
    assert_eq!(gd["alerts"][0]["alert_key"], "i-0123456789abcdef0");
}

#[test]
fn a_forced_format_rejects_what_it_does_not_fit_and_keeps_it_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("300s", "600s"), "");
    let guardduty = fixture("guardduty-port-probe.json");
    // As an alert, an event lacks `detector`.
    let (code, _, stderr) = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "alert",
        guardduty.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("detector: is required"), "{stderr}");
    // As an event, an alert lacks `source`; an EC2 event is not a supported one.
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"detector\":\"d\",\"rule_id\":\"r\",\"alert_key\":\"k\"}\n{\"id\":\"ec2-1\",\"source\":\"aws.ec2\",\"detail-type\":\"EC2 Instance State-change Notification\",\"detail\":{}}\n",
    )
    .unwrap();
    let db = dir.path().join("kept.db");
    let (code, reports, stderr) = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--database",
        db.to_str().unwrap(),
        "--format",
        "eventbridge",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(reports.is_empty());
    assert!(
        stderr.contains("events.jsonl:1: source: is required"),
        "{stderr}"
    );
    assert!(stderr.contains("events.jsonl:2: detail-type:"), "{stderr}");
    let out = Command::new(bin())
        .args(["errors", "--json", "--database", db.to_str().unwrap()])
        .output()
        .unwrap();
    let errors = String::from_utf8(out.stdout).unwrap();
    assert!(errors.contains("eventbridge:ec2-1"), "{errors}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_posted_over_http_are_received_once_per_finding_with_auth_and_field_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("1s", "2s"), "");
    let server = Server::start(&config, &["--token", "s3cret"]);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/events", server.base);
    let post = |body: String| {
        http.post(&url)
            .bearer_auth("s3cret")
            .header("content-type", "application/json")
            .body(body)
    };

    let guardduty = fixture_text("guardduty-cnc-dns.json");
    let r = http
        .post(&url)
        .body(guardduty.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "same auth as /v1/alerts");

    for expect_dup in [false, true] {
        let r = post(guardduty.clone()).send().await.unwrap();
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["event_id"], "0b5f8e2a-6c3d-4e1f-8a9b-2c3d4e5f6a7b");
        assert_eq!(body["skipped"], 0);
        assert_eq!(body["accepted"][0]["duplicate"], expect_dup, "{body}");
        assert!(body["accepted"][0]["report_id"].is_string());
    }

    let r = post(fixture_text("securityhub-batch.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["skipped"], 2);
    assert_eq!(
        body["skipped_findings"][1]["why"],
        "RecordState is ARCHIVED"
    );

    // An Idempotency-Key stands for the event: the same key is the same delivery.
    for expect_dup in [false, true] {
        let r = post(fixture_text("securityhub-third-party.json"))
            .header("Idempotency-Key", "delivery-7")
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["accepted"][0]["duplicate"], expect_dup, "{body}");
    }

    let alert = json!({"detector": "d", "rule_id": "r", "alert_key": "k"}).to_string();
    let r = post(alert).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["field"], "source");
    let other = json!({"id": "x", "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}});
    let r = post(other.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["field"], "detail-type");
    let r = post("not json".into()).send().await.unwrap();
    assert_eq!(r.status(), 400);

    let errors = http
        .get(format!("{}/v1/errors", server.base))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(errors.contains("eventbridge:x"), "{errors}");
}
