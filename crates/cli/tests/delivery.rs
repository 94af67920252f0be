//! Delivery end to end through the real `alertresponder` binary: three webhook
//! targets (local servers), one failing twice, a report re-reviewed after a late
//! alert: each target takes each version exactly once. Then a delivery that fails for
//! good: `errors` lists it with its replay line, `replay` re-sends it, and says which
//! emitter, report or version it does not know.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{header, header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A config of no inspector and no reviewer, its database in `dir`, and one webhook
/// emitter per (name, server).
fn config(dir: &Path, targets: &[(&str, &MockServer)]) -> PathBuf {
    let mut text = format!(
        r#"
database = "{db}"
inspection_delay = "60s"
review_delay = "300s"
aggregation_window = "3h"
"#,
        db = dir.join("ar.db").display()
    );
    for (name, server) in targets {
        text.push_str(&format!(
            "[[emitter]]\nname = \"{name}\"\nurl = \"{}/hook\"\ntimeout = \"5s\"\n",
            server.uri()
        ));
    }
    let path = dir.join("alertresponder.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An alert of key `k1` at `at` naming `ip`.
fn alert(at: &str, ip: &str) -> String {
    json!({
        "detector": "ids", "rule_id": "scan", "alert_key": "k1", "timestamp": at,
        "attributes": [{"type": "ipaddr", "key": "src", "value": ip, "context": ["remote"]}]
    })
    .to_string()
}

/// Runs the binary with `args`; answers its exit code, stdout and stderr.
async fn alertresponder(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(bin())
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A target that takes versions 1 and 2 once each (counted by `Idempotency-Key`),
/// after answering `failing` 503s.
async fn target(failing: u64) -> MockServer {
    let server = MockServer::start().await;
    if failing > 0 {
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
            .up_to_n_times(failing)
            .with_priority(1)
            .expect(failing)
            .named("the failures")
            .mount(&server)
            .await;
    }
    for version in [1, 2] {
        Mock::given(method("POST"))
            .and(path("/hook"))
            .and(header("content-type", "application/json"))
            .and(header_regex(
                "idempotency-key",
                &format!("^[^:]+:{version}$"),
            ))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .named(format!("version {version}"))
            .mount(&server)
            .await;
    }
    server
}

/// The (version, attempt) of every request a server got.
async fn requests(server: &MockServer, report_id: &str) -> Vec<(u32, u32)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let key = r.headers["idempotency-key"].to_str().unwrap();
            let (id, version) = key.rsplit_once(':').unwrap();
            assert_eq!(id, report_id);
            let attempt = r.headers["x-alertresponder-attempt"].to_str().unwrap();
            (version.parse().unwrap(), attempt.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_targets_one_failing_twice_each_take_each_version_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, github, webhook) = (target(0).await, target(2).await, target(0).await);
    let config = config(
        dir.path(),
        &[
            ("slack", &slack),
            ("github", &github),
            ("webhook", &webhook),
        ],
    );
    // The second alert comes after version 1 (10:06): it makes version 2.
    let alerts = dir.path().join("alerts.jsonl");
    std::fs::write(
        &alerts,
        [
            alert("2026-11-20T10:00:00Z", "192.0.2.1"),
            alert("2026-11-20T10:30:00Z", "192.0.2.9"),
        ]
        .join("\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = alertresponder(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        alerts.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let reports: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let versions: Vec<&Value> = reports.iter().map(|r| &r["version"]).collect();
    assert_eq!(versions, [1, 2], "{stdout}");
    let id = reports[0]["id"].as_str().unwrap();
    assert_eq!(reports[1]["id"], id);

    // GitHub failed twice and took version 1 on its third try; then version 2.
    assert_eq!(
        requests(&github, id).await,
        [(1, 0), (1, 1), (1, 2), (2, 0)]
    );
    for server in [&slack, &webhook] {
        assert_eq!(requests(server, id).await, [(1, 0), (2, 0)]);
    }
    for server in [&slack, &github, &webhook] {
        server.verify().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failed_for_good_is_listed_with_its_replay_which_resends_it() {
    let dir = tempfile::tempdir().unwrap();
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&down)
        .await;
    let config = config(dir.path(), &[("hook", &down)]);
    let config = config.to_str().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    std::fs::write(&alerts, alert("2026-11-20T10:00:00Z", "192.0.2.1")).unwrap();
    // The run keeps its database where the config says `errors` and `replay` look.
    let db = dir.path().join("ar.db");
    let (code, stdout, stderr) = alertresponder(&[
        "run",
        "--config",
        config,
        "--database",
        db.to_str().unwrap(),
        alerts.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 1, "a job failed for good: {stderr}");
    assert!(stderr.contains("failed for good"), "{stderr}");
    let report: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let id = report["id"].as_str().unwrap().to_string();
    // Every try of the retry policy, then kept.
    assert_eq!(down.received_requests().await.unwrap().len(), 6);

    let (code, listed, stderr) = alertresponder(&["errors", "--config", config]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        listed.contains(&format!(
            "delivery: version 1 of report {id} to emitter hook, not delivered"
        )),
        "{listed}"
    );
    let replay_line = format!("alertresponder replay {id} --version 1 --emitter hook");
    assert!(
        listed.contains(&format!("replay: {replay_line}")),
        "{listed}"
    );
    let (_, as_json, _) = alertresponder(&["errors", "--config", config, "--json"]).await;
    let record: Value = serde_json::from_str(as_json.lines().next().unwrap()).unwrap();
    assert_eq!(record["stage"], "deliver");
    assert_eq!(
        record["delivery"],
        json!({"report_id": id, "version": 1, "emitter": "hook",
               "delivered_at": null, "replay": replay_line})
    );

    // The target is back: the replay sends the stored version, with the key of its
    // first delivery, as a retry.
    down.reset().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("idempotency-key", format!("{id}:1").as_str()))
        .and(header("x-alertresponder-attempt", "1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&down)
        .await;
    let (code, out, stderr) =
        alertresponder(&["replay", &id, "--emitter", "hook", "--config", config]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        out.trim(),
        format!("sent version 1 of report {id} to emitter hook")
    );
    down.verify().await;
    let (_, listed, _) = alertresponder(&["errors", "--config", config]).await;
    assert!(listed.contains(", delivered since at "), "{listed}");
    assert!(!listed.contains("replay: "), "{listed}");

    // What it does not know, it names; nothing is sent.
    for (args, says) in [
        (vec!["--emitter", "slack"], "--emitter: no emitter slack in"),
        (
            vec!["--emitter", "hook", "--version", "2"],
            "--version: report",
        ),
    ] {
        let mut all = vec!["replay", id.as_str(), "--config", config];
        all.extend(args);
        let (code, _, stderr) = alertresponder(&all).await;
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    let (code, _, stderr) =
        alertresponder(&["replay", "nope", "--emitter", "hook", "--config", config]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("REPORT_ID: no report nope in the database"),
        "{stderr}"
    );
    assert_eq!(down.received_requests().await.unwrap().len(), 1);
}
