//! Wire compatibility with DeepAlert v1 JSON: fixtures as DeepAlert (Go) writes them
//! are read, and what we write round-trips and carries every field a DeepAlert
//! consumer reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alertresponder_core::validate::parse_alert;
use alertresponder_core::{Report, Severity, Task};
use chrono::{DateTime, Utc};
use serde_json::Value;

fn now() -> DateTime<Utc> {
    "2026-11-23T00:00:00Z".parse().unwrap()
}

#[test]
fn an_alert_as_deepalert_writes_it_is_accepted() {
    let a = parse_alert(include_bytes!("fixtures/deepalert-alert.json"), now()).unwrap();
    assert_eq!(
        a.alert_id(),
        "alert:dfdd031453304044b4ef381b50c0e7712fb1254cdf803995d0eafcbe598e8910"
    );
    assert_eq!(
        a.timestamp.to_rfc3339(),
        "2026-11-20T01:00:00.123456789+00:00",
        "nanoseconds and offsets kept"
    );
    assert!(
        a.attributes[1].context.is_empty(),
        "Go writes a nil slice as null"
    );
    assert!(a.body.is_some());
}

#[test]
fn go_nil_slices_and_zero_times_are_accepted() {
    let a = parse_alert(
        include_bytes!("fixtures/deepalert-alert-go-nils.json"),
        now(),
    )
    .unwrap();
    assert!(a.attributes.is_empty());
    assert_eq!(
        a.alert_id(),
        "alert:a22eaeb2098946bbadee107b181c26ad82f1b26f973b7df1459892f8d6a2d650"
    );
}

#[test]
fn a_deepalert_task_without_depth_reads_as_depth_zero() {
    let t: Task = serde_json::from_str(include_str!("fixtures/task.json")).unwrap();
    assert_eq!(t.depth, 0);
    assert_eq!(t.attribute.attr_type, "domain");
}

#[test]
fn a_report_round_trips_and_keeps_the_deepalert_fields() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/report.json")).unwrap();
    let report: Report = serde_json::from_value(fixture.clone()).unwrap();
    assert_eq!(report.result.severity, Severity::Urgent);
    let written = serde_json::to_value(&report).unwrap();
    assert_eq!(written, fixture, "read and written back unchanged");
    // What a DeepAlert v1 consumer reads, with the types it expects.
    for key in ["id", "status", "created_at"] {
        assert!(written[key].is_string(), "{key}");
    }
    for key in ["alerts", "attributes", "sections"] {
        assert!(written[key].is_array(), "{key}");
    }
    let section = &written["sections"][0];
    for key in ["report_id", "author", "type"] {
        assert!(section[key].is_string(), "sections[0].{key}");
    }
    assert!(section["attribute"]["context"].is_array());
    assert!(written["result"]["severity"].is_string() && written["result"]["reason"].is_string());
}
