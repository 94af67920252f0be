//! Helpers shared by the tests: a small report and task, and executable scripts.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use alertresponder_core::*;

use crate::error::PluginConfigError;
use crate::secret::{Secret, SecretRef, SecretResolver, Secrets};
use chrono::{DateTime, Utc};

/// A fixed time.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

/// An attribute.
pub fn attribute(attr_type: &str, value: &str) -> Attribute {
    Attribute {
        attr_type: attr_type.into(),
        key: "source address".into(),
        value: value.into(),
        context: vec!["remote".into()],
        timestamp: None,
    }
}

/// A task on an IP address.
pub fn task(value: &str) -> Task {
    Task {
        report_id: "rep-1".into(),
        attribute: attribute("ipaddr", value),
        depth: 0,
        review_at: None,
    }
}

/// A published report version of one alert from `detector` naming `ip`.
pub fn report(id: &str, version: u32, detector: &str, ip: &str) -> Report {
    let attributes = vec![attribute("ipaddr", ip)];
    Report {
        id: id.into(),
        alerts: vec![Alert {
            detector: detector.into(),
            rule_name: "Test rule".into(),
            rule_id: "rule-1".into(),
            alert_key: "key-1".into(),
            description: String::new(),
            timestamp: t0(),
            attributes: attributes.clone(),
            body: None,
        }],
        attributes,
        sections: vec![],
        result: ReportResult::default(),
        status: ReportStatus::Published,
        created_at: t0(),
        version,
        previous_result: None,
        inspections: vec![],
        alert_id: "alert:1".into(),
        published_at: Some(t0()),
        cut: None,
    }
}

/// Writes an executable `sh` script into `dir` and returns the argv that runs it.
pub fn script(dir: &Path, name: &str, body: &str) -> Vec<String> {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Run through sh rather than exec'ing the file just written: another test thread
    // forking meanwhile can hold its write descriptor and make exec fail (ETXTBSY).
    vec!["/bin/sh".to_string(), path.display().to_string()]
}

/// A resolver where `env {name}` is `value`, without touching the process's
/// environment (other tests read it); any other reference as [`Secrets::local`] reads it.
pub struct EnvSecret {
    /// The variable's name.
    pub name: &'static str,
    /// Its value.
    pub value: &'static str,
}

#[async_trait::async_trait]
impl SecretResolver for EnvSecret {
    async fn resolve(&self, r: &SecretRef, key: &str) -> Result<Secret, PluginConfigError> {
        match r {
            SecretRef::Env(name) if name == self.name => Ok(Secret::new(self.value)),
            _ => Secrets::local("/nonexistent").resolve(r, key).await,
        }
    }
}

/// The report the emitters' pictures (`docs/emitters/*`) are rendered from: a GuardDuty
/// SSH brute-force finding on an instance, two inspector findings and one inspection
/// rate limited, re-reviewed from unclassified to urgent (version 2, two alerts).
pub fn guardduty_report() -> Report {
    let remote = Attribute {
        attr_type: "ipaddr".into(),
        key: "remote address".into(),
        value: "198.51.100.23".into(),
        context: vec!["remote".into()],
        timestamp: None,
    };
    let instance = Attribute {
        attr_type: "instance_id".into(),
        key: "instance".into(),
        value: "i-0abc12345def67890".into(),
        context: vec!["local".into()],
        timestamp: None,
    };
    let private = Attribute {
        attr_type: "ipaddr".into(),
        key: "private address".into(),
        value: "10.0.1.17".into(),
        context: vec!["local".into()],
        timestamp: None,
    };
    let discovered = Attribute {
        attr_type: "domain".into(),
        key: "reverse DNS".into(),
        value: "scanner-23.hosting.example".into(),
        context: vec!["remote".into()],
        timestamp: None,
    };
    let alert = |minutes: i64| Alert {
        detector: "guardduty".into(),
        rule_name: "198.51.100.23 is performing SSH brute force attacks against \
                    i-0abc12345def67890."
            .into(),
        rule_id: "UnauthorizedAccess:EC2/SSHBruteForce".into(),
        alert_key: "i-0abc12345def67890".into(),
        description: "198.51.100.23 is performing SSH brute force attacks against \
                      i-0abc12345def67890. Brute force attacks are used to gain \
                      unauthorized access to your instance by guessing the SSH password."
            .into(),
        timestamp: t0() + chrono::Duration::minutes(minutes),
        attributes: vec![remote.clone(), instance.clone(), private.clone()],
        body: None,
    };
    let id = "7d1f5c2e-3b9a-4c8e-9f10-2a6b8c4d0e51";
    let section = |author: &str, content: serde_json::Value| ReportSection {
        report_id: id.into(),
        author: author.into(),
        attribute: remote.clone(),
        section_type: "host".into(),
        content,
    };
    Report {
        id: id.into(),
        alerts: vec![alert(0), alert(12)],
        attributes: vec![remote.clone(), instance, private, discovered],
        sections: vec![
            section(
                "abuseipdb",
                serde_json::json!({
                    "ipaddr": ["198.51.100.23"],
                    "country": ["NL"],
                    "owner": ["Example Hosting B.V."],
                }),
            ),
            section(
                "geoip",
                serde_json::json!({
                    "country": ["NL"],
                    "as_owner": ["AS64500 Example Hosting B.V."],
                }),
            ),
        ],
        result: ReportResult {
            severity: Severity::Urgent,
            reason: "SSH brute force from an address with 1,423 abuse reports; \
                     the instance accepts password logins"
                .into(),
        },
        status: ReportStatus::Published,
        created_at: t0(),
        version: 2,
        previous_result: Some(ReportResult {
            severity: Severity::Unclassified,
            reason: "no reviewer decided".into(),
        }),
        inspections: vec![InspectionRecord {
            inspector: "virustotal".into(),
            attribute: remote,
            status: InspectionStatus::RateLimited,
            detail: Some("HTTP 429".into()),
            at: t0(),
        }],
        alert_id: "alert:guardduty:ssh".into(),
        published_at: Some(t0() + chrono::Duration::minutes(15)),
        cut: None,
    }
}

/// Compares `actual` with the golden file at `path` (relative to the repository root,
/// e.g. `docs/emitters/slack.json`), failing with both when they differ; with
/// `UPDATE_GOLDEN=1` in the environment, (re)writes the file instead.
pub fn golden(path: &str, actual: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&file, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{path}: {e} (run the test with UPDATE_GOLDEN=1 to write it)"));
    assert!(
        expected == actual,
        "{path} differs from what the code renders (UPDATE_GOLDEN=1 rewrites it after review)\n\
         --- expected\n{expected}\n--- actual\n{actual}"
    );
}
