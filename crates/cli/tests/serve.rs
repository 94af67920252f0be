//! End-to-end tests of `alertresponder serve`: the HTTP API over the real pipeline.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn alert(key: &str, ip: &str, n: u32) -> Value {
    json!({"detector": "guardduty", "rule_id": "UnauthorizedAccess:EC2/SSHBruteForce", "rule_name": "SSH brute force",
           "alert_key": key, "description": format!("attempt {n}"),
           "attributes": [{"type": "ipaddr", "key": "remote", "value": ip, "context": ["remote"]}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_posted_over_http_come_out_as_reports_readable_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("1s", "2s"), "");
    let server = Server::start(&config, &[]);
    let http = reqwest::Client::new();
    let base = &server.base;

    let r = http
        .post(format!("{base}/v1/alerts"))
        .json(&alert("i-1", "203.0.113.50", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let report_id = body["accepted"][0]["report_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(body["accepted"][0]["status"], "new");

    let batch = json!([
        alert("i-1", "198.51.100.7", 2),
        alert("i-2", "198.51.100.8", 3)
    ]);
    let r = http
        .post(format!("{base}/v1/alerts"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["accepted"][0]["report_id"],
        report_id.as_str(),
        "same key joins"
    );
    assert_eq!(body["accepted"][0]["status"], "more");

    // Redelivery with the same idempotency key is recognised.
    for expect_dup in [false, true] {
        let r = http
            .post(format!("{base}/v1/alerts"))
            .header("Idempotency-Key", "delivery-42")
            .json(&alert("i-3", "192.0.2.10", 4))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["accepted"][0]["duplicate"], expect_dup);
    }

    // Bad input: 400 naming the field; in a batch the good alerts are still taken.
    let r = http
        .post(format!("{base}/v1/alerts"))
        .json(&json!({"detector": "x", "rule_id": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["field"], "alert_key");
    let r = http
        .post(format!("{base}/v1/alerts"))
        .json(&json!([alert("i-4", "192.0.2.1", 5), {"detector": "x", "rule_id": "y", "alert_key": 3}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["field"], "alert_key");
    assert_eq!(body["accepted"].as_array().unwrap().len(), 1);
    let r = http
        .post(format!("{base}/v1/alerts"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let out = dir.path().join("reports.jsonl");
    wait_for(
        "4 published reports in the file emitter",
        Duration::from_secs(60),
        || read_lines(&out).len() >= 4,
    );

    let list: Value = get_json(&http, &format!("{base}/v1/reports")).await;
    assert_eq!(list["reports"].as_array().unwrap().len(), 4);
    let report: Value = get_json(&http, &format!("{base}/v1/reports/{report_id}")).await;
    assert_eq!(report["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(report["result"]["severity"], "urgent");
    let text = http
        .get(format!("{base}/v1/reports/{report_id}?format=text"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("[URGENT]") && text.contains("Mirai"),
        "{text}"
    );
    let missing = http
        .get(format!("{base}/v1/reports/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let errors: Value = get_json(&http, &format!("{base}/v1/errors")).await;
    assert_eq!(
        errors["errors"].as_array().unwrap().len(),
        3,
        "three rejected alerts kept"
    );
    let health: Value = get_json(&http, &format!("{base}/healthz")).await;
    assert_eq!(health["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_requires_the_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("1s", "2s"), "");
    let server = Server::start(&config, &["--token", "s3cret"]);
    let http = reqwest::Client::new();
    let base = &server.base;
    let r = http.get(format!("{base}/v1/reports")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/v1/reports"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/v1/alerts"))
        .json(&alert("k", "192.0.2.1", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no alert without the token");
    let r = http
        .get(format!("{base}/v1/reports"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "health stays open for load balancers");
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("1s", "2s"), "");
    let out = std::process::Command::new(bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--config"])
        .arg(&config)
        .env_remove("ALERTRESPONDER_API_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
}
