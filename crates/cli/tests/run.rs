//! End-to-end tests of `alertresponder run` with the example inspectors and policy.

// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn run(args: &[&str], stdin: Option<&str>) -> (i32, Vec<Value>, String) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(examples())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = stdin.unwrap_or("").to_string();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let reports = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        reports,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the example alerts with the example plugins; the run must succeed.
fn run_examples() -> (tempfile::TempDir, std::path::PathBuf, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("300s", "600s"), "");
    let (code, reports, stderr) = run(
        &["run", "--config", config.to_str().unwrap(), "alerts.jsonl"],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    (dir, config, reports, stderr)
}

fn by_rule<'a>(reports: &'a [Value], rule: &str) -> Vec<&'a Value> {
    reports
        .iter()
        .filter(|r| r["alerts"][0]["rule_id"] == rule)
        .collect()
}

#[test]
fn the_example_alerts_come_out_as_reviewed_reports() {
    let (dir, _config, reports, stderr) = run_examples();
    assert_eq!(
        reports.len(),
        7,
        "6 reports, one of them re-reviewed: {stderr}"
    );

    let ssh = by_rule(&reports, "UnauthorizedAccess:EC2/SSHBruteForce");
    assert_eq!(ssh.len(), 2);
    assert_eq!(ssh[0]["version"], 1);
    assert_eq!(
        ssh[0]["alerts"].as_array().unwrap().len(),
        2,
        "the 10:04 alert joined the 10:00 report"
    );
    assert_eq!(ssh[0]["result"]["severity"], "unclassified");
    assert_eq!(ssh[1]["version"], 2);
    assert_eq!(ssh[1]["id"], ssh[0]["id"]);
    assert_eq!(ssh[1]["alerts"].as_array().unwrap().len(), 3);
    assert_eq!(
        ssh[1]["result"]["severity"], "urgent",
        "203.0.113.50 is linked to Mirai"
    );
    assert_eq!(ssh[1]["previous_result"]["severity"], "unclassified");

    // The domain resolved to an address the inspector fed back: inspected in turn.
    let beacon = by_rule(&reports, "ET MALWARE Beacon 2031337")[0];
    let attrs: Vec<&str> = beacon["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["value"].as_str().unwrap())
        .collect();
    assert!(attrs.contains(&"203.0.113.50"), "{attrs:?}");
    assert!(beacon["sections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["attribute"]["value"] == "203.0.113.50"));
    assert_eq!(beacon["result"]["severity"], "urgent");

    assert_eq!(
        by_rule(&reports, "heartbeat")[0]["result"]["severity"],
        "safe"
    );
    assert_eq!(
        by_rule(&reports, "Recon:EC2/PortProbeUnprotectedPort")[0]["result"]["severity"],
        "safe"
    );
    let login = by_rule(&reports, "login.new_country")[0];
    assert_eq!(login["result"]["severity"], "unclassified");
    assert!(login["sections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["type"] == "user"));

    // The file emitter got exactly the same publications.
    assert_eq!(read_lines(&dir.path().join("reports.jsonl")).len(), 7);
    assert!(stderr.contains("8 alerts read, 8 accepted"), "{stderr}");
}

#[test]
fn rejected_alerts_are_named_the_rest_is_processed_and_the_exit_code_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("300s", "600s"), "");
    let db = dir.path().join("run.db");
    let good = r#"{"detector":"selftest","rule_id":"heartbeat","alert_key":"x","timestamp":"2026-11-20T10:00:00Z"}"#;
    let input = format!(
        "{good}\n{}",
        std::fs::read_to_string(examples().join("bad-alerts.jsonl")).unwrap()
    );
    let (code, reports, stderr) = run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--database",
            db.to_str().unwrap(),
            "-",
        ],
        Some(&input),
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(reports.len(), 1);
    assert!(
        stderr.contains("rejected stdin:2: alert_key: is required"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rejected stdin:3: attributes[0].value: expected a string"),
        "{stderr}"
    );
    assert!(stderr.contains("rejected stdin:4: timestamp"), "{stderr}");
    assert!(
        stderr.contains("rejected stdin:5: $: not valid JSON"),
        "{stderr}"
    );

    // Kept with their input, for a person to look at.
    let out = Command::new(bin())
        .args(["errors", "--json", "--database", db.to_str().unwrap()])
        .output()
        .unwrap();
    let errors: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errors.len(), 4);
    assert!(errors.iter().any(|e| e["input"] == "this line is not JSON"));
}

#[test]
fn a_json_array_input_works_like_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("300s", "600s"), "");
    let text = std::fs::read_to_string(examples().join("alerts.jsonl")).unwrap();
    let array = format!("[{}]", text.lines().collect::<Vec<_>>().join(",\n"));
    let file = dir.path().join("alerts.json");
    std::fs::write(&file, array).unwrap();
    let (code, reports, stderr) = run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(reports.len(), 7);
}

#[test]
fn report_show_renders_hostile_text_harmlessly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ("1s", "2s"), "");
    let db = dir.path().join("run.db");
    let hostile = r#"{"detector":"ids\u001b[2J\u001b[31m","rule_id":"r","alert_key":"k","description":"line\r\noverwritten","attributes":[{"type":"domain","value":"$(rm -rf /)\u202egnp.exe"}]}"#;
    let (code, reports, stderr) = run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--database",
            db.to_str().unwrap(),
            "-",
        ],
        Some(hostile),
    );
    assert_eq!(code, 0, "{stderr}");
    let id = reports[0]["id"].as_str().unwrap();
    let out = Command::new(bin())
        .args(["report", "show", id, "--database", db.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(
        !text.contains('\u{1b}') && !text.contains('\r') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(text.contains("ids\\u{1b}[2J"), "{text}");
    assert!(text.contains("$(rm -rf /)"), "shown as text, never run");
}

#[test]
fn a_policy_is_tried_on_saved_reports_and_tested_with_expect() {
    let (dir, config, reports, _) = run_examples();
    let saved = dir.path().join("saved.jsonl");
    std::fs::write(
        &saved,
        reports
            .iter()
            .map(|r| r.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();

    let strict = dir.path().join("strict");
    std::fs::create_dir(&strict).unwrap();
    std::fs::write(
        strict.join("strict.rego"),
        "package alertresponder.review\nimport rego.v1\nresult := {\"severity\": \"urgent\", \"reason\": \"strict mode\"}\n",
    )
    .unwrap();
    std::fs::write(
        strict.join("alertresponder.toml"),
        "[reviewer]\npolicy = \"strict.rego\"\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["review", "--expect", "urgent", "--config"])
        .arg(strict.join("alertresponder.toml"))
        .arg(&saved)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().count(), 7);
    assert!(text.contains("urgent (was safe)  strict mode"), "{text}");

    let out = Command::new(bin())
        .args([
            "review",
            "--expect",
            "urgent",
            "--config",
            config.to_str().unwrap(),
        ])
        .arg(&saved)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH: expected urgent"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 of 7 report(s)"));
}
