//! Security Hub findings as EventBridge delivers them: `detail.findings[]` in the
//! AWS Security Finding Format (ASFF, PascalCase), one alert per finding.
//!
//! Mapping: detector `securityhub`; `rule_id` = `GeneratorId` (else the first of
//! `Types`); `rule_name` = `Title`; `alert_key` = the first resource's `Id` (an ARN;
//! else the finding `Id`); `description`; `timestamp` = `UpdatedAt` (else
//! `CreatedAt`); `body` = the finding.
//!
//! Attributes, with their contexts:
//! - `Resources[]`, `local` / `subject`: an `AwsEc2Instance` gives its instance ID
//!   (from the ARN, `instance_id`) and `Details.AwsEc2Instance.IpV4Addresses` /
//!   `IpV6Addresses` (`ipaddr`, `local`); an `AwsIamAccessKey` its key ID (from the
//!   resource `Id`, `access_key_id`) and principal name (`username`), an `AwsIamUser`
//!   its user name (`username`), both `subject`; any other resource its `Id` as an
//!   `arn` attribute keyed by the resource type (`local`): no built-in inspector looks
//!   an ARN up, but the report and the reviewer's policy see every resource named.
//! - `Network`: `SourceIpV4`/`SourceIpV6`/`SourceDomain` and the `Destination…`
//!   counterparts (`ipaddr`, `domain`); with `Direction: IN` the source is `remote`
//!   and the destination `local`, with `OUT` the reverse; without a direction they
//!   carry `source` / `destination`.
//! - `Process`: `Name` (`process`) and `Path` (`filepath`), `local`.
//! - `Malware[]`: `Name` (`malware`) and `Path` (`filepath`), `file`.
//! - `Threats[]`: each `FilePaths[].Hash` (`filehashvalue`) and `FilePath`
//!   (`filepath`), `file`.
//! - `ThreatIntelIndicators[]`, `remote`: `IPV4_ADDRESS`/`IPV6_ADDRESS` (`ipaddr`),
//!   `DOMAIN` (`domain`), `URL` (`url`), `HASH_*` (`filehashvalue`); other types are
//!   left in the body.
//!
//! Skipped (counted, with why): findings whose `Workflow.Status` is `SUPPRESSED` or
//! whose `RecordState` is `ARCHIVED` (a finding resolved or archived upstream is
//! re-imported with that state: it is no new alert). GuardDuty findings that
//! Security Hub re-imports (`ProductName: GuardDuty`) are mapped like any other:
//! with both the GuardDuty and the Security Hub rules enabled, one GuardDuty finding
//! becomes two alerts (detectors `guardduty` and `securityhub`, keyed by instance ID
//! and by ARN), hence two reports; enable one rule or the other to avoid that.

use serde_json::Value;

use super::{at, items, text, Attributes, Mapped, SourceAlert, MAX_FINDINGS};
use crate::error::ValidationError;

/// EventBridge `source` of Security Hub findings.
pub const SOURCE: &str = "aws.securityhub";
/// EventBridge `detail-type` of imported Security Hub findings.
pub const DETAIL_TYPE: &str = "Security Hub Findings - Imported";
/// The detector name of the alerts.
pub const DETECTOR: &str = "securityhub";

/// The alerts of an event's `detail`; `event_id` makes the message IDs.
pub fn alerts(detail: &Value, event_id: Option<&str>) -> Result<Mapped, ValidationError> {
    let findings = match detail.get("findings") {
        Some(Value::Array(f)) => f,
        Some(_) => return Err(ValidationError::new("detail.findings", "expected an array")),
        None => return Err(ValidationError::new("detail.findings", "is required")),
    };
    if findings.len() > MAX_FINDINGS {
        return Err(ValidationError::new(
            "detail.findings",
            format!(
                "{} findings in one event, over the limit of {MAX_FINDINGS}",
                findings.len()
            ),
        ));
    }
    let mut mapped = Mapped::default();
    for (i, finding) in findings.iter().enumerate() {
        if let Some(why) = skip_reason(finding) {
            let id = text(finding.get("Id")).unwrap_or_else(|| format!("detail.findings[{i}]"));
            mapped.skipped.push((id, why));
            continue;
        }
        mapped.alerts.push(SourceAlert {
            message_id: event_id.map(|id| format!("eventbridge:{id}#{i}")),
            alert: alert(finding),
        });
    }
    Ok(mapped)
}

/// Why a finding is not taken, if it is not.
pub fn skip_reason(finding: &Value) -> Option<String> {
    let workflow =
        text(at(finding, &["Workflow", "Status"])).or_else(|| text(finding.get("WorkflowState")));
    if workflow.as_deref() == Some("SUPPRESSED") {
        return Some("Workflow.Status is SUPPRESSED".into());
    }
    if text(finding.get("RecordState")).as_deref() == Some("ARCHIVED") {
        return Some("RecordState is ARCHIVED".into());
    }
    None
}

/// The part of an ARN after `marker` (`instance/` in an EC2 instance ARN), else the
/// whole ARN when it already is the bare ID.
fn arn_tail(arn: &str, marker: &str) -> Option<String> {
    match arn.rsplit_once(marker) {
        Some((_, tail)) if !tail.is_empty() => Some(tail.to_string()),
        Some(_) => None,
        None if !arn.starts_with("arn:") && !arn.contains(':') => Some(arn.to_string()),
        None => None,
    }
}

fn resource_attributes(attrs: &mut Attributes, resource: &Value) {
    let id = text(resource.get("Id"));
    let kind = text(resource.get("Type")).unwrap_or_default();
    let details = resource.get("Details").unwrap_or(&Value::Null);
    match kind.as_str() {
        "AwsEc2Instance" => {
            let instance = id.as_deref().and_then(|a| arn_tail(a, "instance/"));
            attrs.add("instance_id", "EC2 instance", instance, &["local"]);
            for list in ["IpV4Addresses", "IpV6Addresses"] {
                for ip in items(details, &["AwsEc2Instance", list], 8) {
                    attrs.add("ipaddr", "instance address", text(Some(ip)), &["local"]);
                }
            }
        }
        "AwsIamAccessKey" => {
            // GuardDuty writes `AWS::IAM::AccessKey:<key id>`; others an ARN or the key.
            let key = id
                .as_deref()
                .and_then(|i| i.rsplit([':', '/']).next())
                .filter(|k| !k.is_empty())
                .map(str::to_string);
            attrs.add("access_key_id", "IAM access key", key, &["subject"]);
            let key_details = details.get("AwsIamAccessKey").unwrap_or(&Value::Null);
            attrs.add(
                "username",
                "IAM user",
                text(key_details.get("PrincipalName"))
                    .or_else(|| text(key_details.get("UserName"))),
                &["subject"],
            );
        }
        "AwsIamUser" => {
            let user = text(at(details, &["AwsIamUser", "UserName"])).or_else(|| {
                id.as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    .map(str::to_string)
            });
            attrs.add("username", "IAM user", user, &["subject"]);
        }
        _ => {
            let key = if kind.is_empty() {
                "resource".to_string()
            } else {
                format!("{kind} resource")
            };
            attrs.add("arn", &key, id, &["local"]);
        }
    }
}

fn network_attributes(attrs: &mut Attributes, network: &Value) {
    let (source, destination): (&[&str], &[&str]) = match text(network.get("Direction")).as_deref()
    {
        Some("IN") => (&["remote"], &["local"]),
        Some("OUT") => (&["local"], &["remote"]),
        _ => (&["source"], &["destination"]),
    };
    for (side, context) in [("Source", source), ("Destination", destination)] {
        let lower = side.to_lowercase();
        for v in ["IpV4", "IpV6"] {
            attrs.add(
                "ipaddr",
                &format!("{lower} address"),
                text(network.get(format!("{side}{v}").as_str())),
                context,
            );
        }
        attrs.add(
            "domain",
            &format!("{lower} domain"),
            text(network.get(format!("{side}Domain").as_str())),
            context,
        );
    }
}

fn threat_attributes(attrs: &mut Attributes, finding: &Value) {
    if let Some(process) = finding.get("Process") {
        attrs.add(
            "process",
            "process name",
            text(process.get("Name")),
            &["local"],
        );
        attrs.add(
            "filepath",
            "process path",
            text(process.get("Path")),
            &["local"],
        );
    }
    for m in items(finding, &["Malware"], 8) {
        attrs.add("malware", "malware name", text(m.get("Name")), &["file"]);
        attrs.add("filepath", "malware path", text(m.get("Path")), &["file"]);
    }
    for t in items(finding, &["Threats"], 8) {
        for f in items(t, &["FilePaths"], 8) {
            attrs.add(
                "filehashvalue",
                "threat file hash",
                text(f.get("Hash")),
                &["file"],
            );
            attrs.add(
                "filepath",
                "threat file path",
                text(f.get("FilePath")),
                &["file"],
            );
        }
    }
    for ind in items(finding, &["ThreatIntelIndicators"], 16) {
        let attr_type = match text(ind.get("Type")).as_deref() {
            Some("IPV4_ADDRESS" | "IPV6_ADDRESS") => "ipaddr",
            Some("DOMAIN") => "domain",
            Some("URL") => "url",
            Some(t) if t.starts_with("HASH_") => "filehashvalue",
            _ => continue,
        };
        attrs.add(
            attr_type,
            "threat intelligence indicator",
            text(ind.get("Value")),
            &["remote"],
        );
    }
}

/// The alert of one ASFF finding.
pub fn alert(finding: &Value) -> Value {
    let mut attrs = Attributes::default();
    for resource in items(finding, &["Resources"], 16) {
        resource_attributes(&mut attrs, resource);
    }
    if let Some(network) = finding.get("Network") {
        network_attributes(&mut attrs, network);
    }
    threat_attributes(&mut attrs, finding);
    let rule_id = text(finding.get("GeneratorId")).or_else(|| {
        items(finding, &["Types"], 1)
            .next()
            .and_then(|t| text(Some(t)))
    });
    let alert_key = items(finding, &["Resources"], 1)
        .next()
        .and_then(|r| text(r.get("Id")))
        .or_else(|| text(finding.get("Id")));
    super::alert(
        DETECTOR,
        [
            ("rule_id", rule_id),
            ("rule_name", text(finding.get("Title"))),
            ("alert_key", alert_key),
            ("description", text(finding.get("Description"))),
            (
                "timestamp",
                text(finding.get("UpdatedAt")).or_else(|| text(finding.get("CreatedAt"))),
            ),
        ],
        attrs,
        finding,
    )
}
