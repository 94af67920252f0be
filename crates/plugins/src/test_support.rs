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
