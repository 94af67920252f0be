//! End-to-end tests of the built-in inspectors embedded: the real `alertresponder`
//! binary, a configuration naming `kind = "virustotal"` with its key in the
//! environment, and a local server answering as VirusTotal's API v3 does.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "vt-test-key-0123456789";

/// A config with the VirusTotal built-in pointed at `server`, the example policy and
/// no emitter (reports are read from `run`'s stdout).
fn config(dir: &Path, server: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
inspection_delay = "300s"
review_delay = "600s"
[[inspector]]
name = "virustotal"
kind = "virustotal"
url = "{server}"
api_key = {{ env = "AR_TEST_VT_KEY", secret = "alertresponder/virustotal" }}
timeout = "5s"
[reviewer]
policy = "{policy}"
"#,
        policy = examples().join("policy.rego").display()
    );
    let path = dir.join("alertresponder.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `n` alerts of different keys (so `n` reports) naming one address.
fn alerts(dir: &Path, n: usize) -> std::path::PathBuf {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            json!({
                "detector": "ids", "rule_id": "scan", "alert_key": format!("host-{i}"),
                "timestamp": "2026-11-20T10:00:00Z",
                "attributes": [{"type": "ipaddr", "key": "src", "value": "192.0.2.1", "context": ["remote"]}]
            })
            .to_string()
        })
        .collect();
    let path = dir.join("alerts.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

async fn run(config: &Path, alerts: &Path) -> (i32, Vec<Value>, String) {
    let out = tokio::process::Command::new(bin())
        .args(["run", "--config"])
        .arg(config)
        .arg(alerts)
        .env("AR_TEST_VT_KEY", KEY)
        .output()
        .await
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

#[tokio::test]
async fn a_hundred_reports_naming_one_address_make_one_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v3/ip_addresses/192.0.2.1"))
        .and(header("x-apikey", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"id": "192.0.2.1", "type": "ip_address", "attributes": {
                "last_analysis_stats": {"malicious": 7, "suspicious": 1, "harmless": 60, "undetected": 20, "timeout": 0},
                "as_owner": "Example Transit", "asn": 64500, "country": "NL", "reputation": -12}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (code, reports, stderr) =
        run(&config(dir.path(), &server.uri()), &alerts(dir.path(), 100)).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(reports.len(), 100, "{stderr}");
    for r in &reports {
        let section = r["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["author"] == "virustotal")
            .unwrap_or_else(|| panic!("no virustotal section in {r}"));
        assert_eq!(section["type"], "host");
        assert_eq!(section["content"]["detections"]["malicious"], 7);
        assert_eq!(section["content"]["as_owner"], json!(["Example Transit"]));
    }
    assert!(!stderr.contains(KEY), "the key never shows: {stderr}");
    // `expect(1)` is checked when the server drops.
}

#[tokio::test]
async fn a_quota_spent_until_the_review_is_recorded_as_rate_limited_not_clean() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3600")
                .set_body_json(
                    json!({"error": {"code": "QuotaExceededError", "message": "Quota exceeded"}}),
                ),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (code, reports, stderr) =
        run(&config(dir.path(), &server.uri()), &alerts(dir.path(), 1)).await;
    assert_eq!(code, 0, "{stderr}");
    let inspections = reports[0]["inspections"].as_array().unwrap();
    let vt = inspections
        .iter()
        .find(|i| i["inspector"] == "virustotal")
        .unwrap();
    assert_eq!(vt["status"], "rate_limited", "{vt}");
}

#[test]
fn check_names_the_key_of_a_missing_secret_and_never_prints_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "https://www.virustotal.com");
    let out = std::process::Command::new(bin())
        .args(["check", "--config"])
        .arg(&config)
        .env_remove("AR_TEST_VT_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("inspector[0].api_key") && stderr.contains("AR_TEST_VT_KEY"),
        "{stderr}"
    );
    let out = std::process::Command::new(bin())
        .args(["check", "--config"])
        .arg(&config)
        .env("AR_TEST_VT_KEY", KEY)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("1 inspector(s)") && !all.contains(KEY),
        "{all}"
    );
}

#[test]
fn check_refuses_plain_http_to_a_host_that_is_not_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "http://vt.example.com");
    let out = std::process::Command::new(bin())
        .args(["check", "--config"])
        .arg(&config)
        .env("AR_TEST_VT_KEY", KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("inspector[0].url"), "{stderr}");
}
