//! Records for tests of stores and handlers (feature `fixtures`): one set, so that
//! the SQLite and DynamoDB stores are tested on the same data.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::model::*;

/// 2023-11-14T22:13:20Z plus `secs`.
pub fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
}

/// A remote source address.
pub fn attr(value: &str) -> Attribute {
    Attribute {
        attr_type: "ipaddr".into(),
        key: "source".into(),
        value: value.into(),
        context: vec!["remote".into()],
        timestamp: None,
    }
}

/// A GuardDuty alert of rule `rule`, key `key`, naming the addresses `values`.
pub fn alert(rule: &str, values: &[&str]) -> Alert {
    Alert {
        detector: "guardduty".into(),
        rule_name: rule.into(),
        rule_id: format!("{rule}-id"),
        alert_key: "key".into(),
        description: String::new(),
        timestamp: t(0),
        attributes: values.iter().map(|v| attr(v)).collect(),
        body: Some(json!({"n": 1.5})),
    }
}

/// A host section on address `value`.
pub fn section(report_id: &str, value: &str, author: &str, country: &str) -> ReportSection {
    ReportSection {
        report_id: report_id.into(),
        author: author.into(),
        attribute: attr(value),
        section_type: "host".into(),
        content: json!({ "country": country }),
    }
}

/// An inspector's outcome on address `value`.
pub fn inspection(value: &str, inspector: &str, status: InspectionStatus) -> InspectionRecord {
    InspectionRecord {
        inspector: inspector.into(),
        attribute: attr(value),
        status,
        detail: None,
        at: t(5),
    }
}

/// A published report version with one alert.
pub fn report(id: &str, version: u32, severity: Severity) -> Report {
    Report {
        id: id.into(),
        alerts: vec![alert("r", &["10.0.0.1"])],
        attributes: vec![],
        sections: vec![],
        result: ReportResult {
            severity,
            reason: "because".into(),
        },
        status: ReportStatus::Published,
        created_at: t(0),
        version,
        previous_result: None,
        inspections: vec![],
        alert_id: "alert:a".into(),
        published_at: Some(t(600 + i64::from(version))),
        cut: None,
    }
}
