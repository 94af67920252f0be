//! Crash and restart: `serve` is killed with SIGKILL at several points while alerts
//! are in flight; after the last restart every accepted alert is in exactly one
//! published version of its report, and no version is published twice.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_alert_ends_in_exactly_one_published_version_across_kills() {
    let dir = tempfile::tempdir().unwrap();
    // A slow inspector widens the window in which a kill lands mid-inspection.
    let slow = dir.path().join("slow.sh");
    std::fs::write(&slow, "#!/bin/sh\ncat >/dev/null\nsleep 0.3\necho '{\"sections\":[{\"type\":\"host\",\"content\":{\"activities\":[\"slow\"]}}]}'\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let extra = format!(
        "[[inspector]]\nname = \"slow\"\ncommand = [\"{}\"]\ntimeout = \"5s\"\n",
        slow.display()
    );
    let config = write_config(dir.path(), ("1s", "2s"), &extra);
    let out = dir.path().join("reports.jsonl");
    let http = reqwest::Client::new();

    let mut sent = Vec::new();
    let mut n = 0;
    // Kill after these pauses: during dispatch, inspection, review and delivery.
    for pause_ms in [300u64, 1200, 2300, 3100, 1700] {
        let mut server = Server::start(&config, &[]);
        let batch: Vec<Value> = (0..4)
            .map(|_| {
                n += 1;
                let a = json!({"detector": "ids", "rule_id": "r", "alert_key": format!("host-{}", n % 5),
                               "description": format!("alert {n}"),
                               "attributes": [{"type": "ipaddr", "value": format!("192.0.2.{n}")}]});
                sent.push(format!("alert {n}"));
                a
            })
            .collect();
        let r = http
            .post(format!("{}/v1/alerts", server.base))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        server.kill();
    }

    // The last restart runs until everything is done.
    let server = Server::start(&config, &[]);
    let health = format!("{}/healthz", server.base);
    let mut idle_polls = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while idle_polls < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "jobs never finished; log: {:?}",
            server.log.lock().unwrap()
        );
        let h: Value = get_json(&http, &health).await;
        if h["jobs"]["pending"] == 0 && h["jobs"]["running"] == 0 {
            idle_polls += 1;
        } else {
            idle_polls = 0;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let h: Value = get_json(&http, &health).await;
    assert_eq!(h["jobs"]["failed"], 0, "no job failed for good");

    let lines = read_lines(&out);
    let mut seen = HashSet::new();
    let mut versions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    for r in &lines {
        let id = r["id"].as_str().unwrap().to_string();
        let v = r["version"].as_u64().unwrap();
        assert!(
            seen.insert((id.clone(), v)),
            "report {id} version {v} published twice"
        );
        versions.entry(id.clone()).or_default().push(v);
        latest.insert(id, r.clone());
    }
    for (id, vs) in &versions {
        let mut sorted = vs.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (1..=vs.len() as u64).collect::<Vec<_>>(),
            "versions of {id} have a gap"
        );
    }
    assert_eq!(latest.len(), 5, "one report per key");
    let mut published: Vec<String> = latest
        .values()
        .flat_map(|r| {
            r["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["description"].as_str().unwrap().to_string())
        })
        .collect();
    published.sort();
    sent.sort();
    assert_eq!(
        published, sent,
        "every accepted alert is in the latest version of its report"
    );
}
