//! EventBridge events into alerts: GuardDuty findings (`source: aws.guardduty`,
//! `detail-type: GuardDuty Finding`) become the alert JSON the receptor takes, so
//! that they go through the same validation, bounds and error path as alerts
//! published to the ingest topic.
//!
//! Mapping: detector `guardduty`; `rule_id` = the finding type; `rule_name` = its
//! title; `alert_key` = the resource (instance ID, IAM user or access key, bucket,
//! cluster, else the finding ID), so repeated findings on one resource aggregate;
//! attributes from the action (remote IP, domain, API caller) and the resource
//! (private IP, user); `body` = the finding.

use serde_json::{json, Value};

/// The longest text taken from a finding field (titles, descriptions).
const MAX_FIELD_CHARS: usize = 4096;

/// What the receptor makes of an EventBridge event.
#[derive(Debug, Clone, PartialEq)]
pub enum Converted {
    /// The alert JSON, and the event ID to identify its delivery.
    Alert {
        /// Alert JSON (validated by the receptor like any other).
        alert: Vec<u8>,
        /// EventBridge's event ID (`id`): a redelivery carries the same.
        event_id: String,
    },
    /// Not an event we know: what it is, for the error record.
    Unsupported(String),
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(|s| s.chars().take(MAX_FIELD_CHARS).collect())
        .filter(|s: &String| !s.is_empty())
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

fn attribute(attr_type: &str, key: &str, value: String, context: &[&str]) -> Value {
    json!({ "type": attr_type, "key": key, "value": value, "context": context })
}

/// Whether `event` looks like an EventBridge event (rather than an SNS event).
pub fn is_eventbridge(event: &Value) -> bool {
    event.get("detail-type").is_some() && event.get("source").is_some()
}

/// Converts an EventBridge event.
pub fn convert(event: &Value) -> Converted {
    let source = event.get("source").and_then(Value::as_str).unwrap_or("");
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if source != "aws.guardduty" || detail_type != "GuardDuty Finding" {
        return Converted::Unsupported(format!(
            "EventBridge event from source {source:?}, detail-type {detail_type:?}: only GuardDuty findings are taken"
        ));
    }
    let Some(detail) = event.get("detail") else {
        return Converted::Unsupported("GuardDuty event without detail".into());
    };
    let event_id = text(event.get("id")).unwrap_or_default();
    Converted::Alert {
        alert: guardduty_alert(detail).to_string().into_bytes(),
        event_id: format!("eventbridge:{event_id}"),
    }
}

/// The alert of a GuardDuty finding (`detail`). Fields the finding lacks are left
/// out, so the receptor's validation names what is missing.
pub fn guardduty_alert(detail: &Value) -> Value {
    let resource = detail.get("resource").unwrap_or(&Value::Null);
    let action = at(detail, &["service", "action"]).unwrap_or(&Value::Null);
    let mut attributes = Vec::new();
    let mut remote_ip = |v: Option<&Value>, key: &str| {
        if let Some(ip) =
            text(v.and_then(|r| r.get("ipAddressV4").or_else(|| r.get("ipAddressV6"))))
        {
            attributes.push(attribute("ipaddr", key, ip, &["remote"]));
        }
    };
    remote_ip(
        at(action, &["networkConnectionAction", "remoteIpDetails"]),
        "remote address",
    );
    remote_ip(
        at(action, &["awsApiCallAction", "remoteIpDetails"]),
        "API caller address",
    );
    remote_ip(
        at(action, &["kubernetesApiCallAction", "remoteIpDetails"]),
        "API caller address",
    );
    if let Some(probes) =
        at(action, &["portProbeAction", "portProbeDetails"]).and_then(Value::as_array)
    {
        for p in probes.iter().take(16) {
            remote_ip(p.get("remoteIpDetails"), "probing address");
        }
    }
    if let Some(domain) = text(at(action, &["dnsRequestAction", "domain"])) {
        attributes.push(attribute("domain", "queried domain", domain, &["remote"]));
    }
    if let Some(nics) =
        at(resource, &["instanceDetails", "networkInterfaces"]).and_then(Value::as_array)
    {
        for nic in nics.iter().take(8) {
            if let Some(ip) = text(nic.get("privateIpAddress")) {
                attributes.push(attribute(
                    "ipaddr",
                    "instance private address",
                    ip,
                    &["local"],
                ));
            }
        }
    }
    let user = text(at(resource, &["accessKeyDetails", "userName"]));
    if let Some(u) = &user {
        attributes.push(attribute("username", "IAM user", u.clone(), &["subject"]));
    }
    let alert_key = text(at(resource, &["instanceDetails", "instanceId"]))
        .or_else(|| user.clone())
        .or_else(|| text(at(resource, &["accessKeyDetails", "accessKeyId"])))
        .or_else(|| {
            at(resource, &["s3BucketDetails"])
                .and_then(Value::as_array)
                .and_then(|b| text(b.first().and_then(|b| b.get("name"))))
        })
        .or_else(|| text(at(resource, &["eksClusterDetails", "name"])))
        .or_else(|| text(detail.get("id")));
    let mut alert = json!({
        "detector": "guardduty",
        "attributes": attributes,
        "body": detail,
    });
    let fields = [
        ("rule_id", text(detail.get("type"))),
        ("rule_name", text(detail.get("title"))),
        ("alert_key", alert_key),
        ("description", text(detail.get("description"))),
        (
            "timestamp",
            text(detail.get("updatedAt")).or_else(|| text(detail.get("createdAt"))),
        ),
    ];
    if let Some(obj) = alert.as_object_mut() {
        for (k, v) in fields {
            if let Some(v) = v {
                obj.insert(k.into(), Value::String(v));
            }
        }
    }
    alert
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_sources_are_unsupported_and_named() {
        let e = json!({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported", "detail": {}});
        assert!(is_eventbridge(&e));
        match convert(&e) {
            Converted::Unsupported(why) => assert!(why.contains("aws.securityhub"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(!is_eventbridge(&json!({"Records": []})));
    }

    #[test]
    fn an_access_key_finding_is_keyed_by_its_user_and_names_the_caller() {
        let detail = json!({
            "id": "f1", "type": "Recon:IAMUser/MaliciousIPCaller", "title": "API call from a known malicious IP",
            "updatedAt": "2026-11-20T10:00:00Z",
            "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": "AKIAEXAMPLE", "userName": "deploy-bot"}},
            "service": {"action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets", "remoteIpDetails": {"ipAddressV4": "192.0.2.66"}}}}
        });
        let a = guardduty_alert(&detail);
        assert_eq!(a["alert_key"], "deploy-bot");
        assert_eq!(a["attributes"][0]["value"], "192.0.2.66");
        assert_eq!(a["attributes"][1]["type"], "username");
    }

    #[test]
    fn a_finding_without_type_leaves_rule_id_out_for_validation_to_name() {
        let a = guardduty_alert(&json!({"id": "f2"}));
        assert!(a.get("rule_id").is_none());
        let err = alertresponder_core::validate::parse_alert(
            a.to_string().as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap_err();
        assert_eq!(err.field, "rule_id");
    }
}
