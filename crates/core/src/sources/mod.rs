//! Alert sources: events of other systems mapped to the alert JSON that
//! [`crate::validate`] takes, so that they go through the same validation, bounds
//! and error path as alerts sent as such. Nothing here knows an AWS SDK: the input
//! is the EventBridge event as JSON, whoever delivered it (the receptor on AWS,
//! `alertresponder run --format eventbridge` or `POST /v1/events` embedded).
//!
//! - [`guardduty`]: `source: aws.guardduty`, `detail-type: GuardDuty Finding`; one
//!   finding per event, in GuardDuty's camelCase shape.
//! - [`securityhub`]: `source: aws.securityhub`, detail-type
//!   `Security Hub Findings - Imported`; one or more findings in ASFF (PascalCase)
//!   per event, each an alert. Suppressed (`Workflow.Status`) or archived
//!   (`RecordState`) findings are skipped and counted.
//!
//! Each alert carries a message ID derived from the event ID (and the finding's
//! position in the event), so a redelivered event is recognised as a duplicate.
//! Fields a finding lacks are left out of its alert, so that validation names them.

use serde_json::{json, Value};

use crate::error::ValidationError;

pub mod guardduty;
pub mod securityhub;

#[cfg(test)]
mod tests;

/// The longest text taken from a finding field (titles, descriptions, values).
pub const MAX_FIELD_CHARS: usize = 4096;
/// Most attributes one finding gives (the rest are in its `body`).
pub const MAX_SOURCE_ATTRIBUTES: usize = 64;
/// Most findings taken from one event (Security Hub's `BatchImportFindings` takes 100).
pub const MAX_FINDINGS: usize = 100;

/// One alert mapped from an event.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceAlert {
    /// The message ID its delivery is recognised by (`eventbridge:<event id>` for a
    /// GuardDuty event, `eventbridge:<event id>#<index>` for the finding at `index` of
    /// a Security Hub event); `None` when the event has no `id` (the content then
    /// identifies it).
    pub message_id: Option<String>,
    /// The alert JSON (validate it with [`crate::validate::alert_from_value`]).
    pub alert: Value,
}

/// What an event gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// One alert per finding taken.
    pub alerts: Vec<SourceAlert>,
    /// Findings not taken: (finding ID, why).
    pub skipped: Vec<(String, String)>,
}

/// Whether `event` looks like an EventBridge event (it has `detail-type` and
/// `source`), rather than an alert or an SNS event.
pub fn is_eventbridge(event: &Value) -> bool {
    event.get("detail-type").is_some() && event.get("source").is_some()
}

/// Maps an EventBridge event to its alerts. An event of another source or
/// detail-type is an error naming `detail-type`; a known event without its
/// `detail` (or `detail.findings`) names that field.
pub fn alerts_from_event(event: &Value) -> Result<Mapped, ValidationError> {
    if !event.is_object() {
        return Err(ValidationError::new(
            "$",
            "expected an EventBridge event object",
        ));
    }
    let source = event.get("source").and_then(Value::as_str).unwrap_or("");
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let event_id = text(event.get("id"));
    match (source, detail_type) {
        (guardduty::SOURCE, guardduty::DETAIL_TYPE) => {
            let detail = detail_object(event)?;
            Ok(Mapped {
                alerts: vec![SourceAlert {
                    message_id: event_id.map(|id| format!("eventbridge:{id}")),
                    alert: guardduty::alert(detail),
                }],
                skipped: Vec::new(),
            })
        }
        (securityhub::SOURCE, securityhub::DETAIL_TYPE) => {
            let detail = detail_object(event)?;
            securityhub::alerts(detail, event_id.as_deref())
        }
        _ => Err(ValidationError::new(
            "detail-type",
            format!(
                "EventBridge event from source {:?}, detail-type {:?}: only GuardDuty findings ({:?}) and Security Hub findings ({:?}) are taken",
                truncate(source, 128),
                truncate(detail_type, 128),
                guardduty::DETAIL_TYPE,
                securityhub::DETAIL_TYPE
            ),
        )),
    }
}

fn detail_object(event: &Value) -> Result<&Value, ValidationError> {
    match event.get("detail") {
        Some(d) if d.is_object() => Ok(d),
        Some(_) => Err(ValidationError::new("detail", "expected an object")),
        None => Err(ValidationError::new("detail", "is required")),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A non-empty string field, bounded to [`MAX_FIELD_CHARS`].
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| truncate(s, MAX_FIELD_CHARS))
}

/// The value at `path` (object keys) under `v`.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// The elements of the array at `path`, at most `max` (none when absent).
pub(crate) fn items<'a>(
    v: &'a Value,
    path: &[&str],
    max: usize,
) -> impl Iterator<Item = &'a Value> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .take(max)
}

/// Attributes of one finding: deduplicated (same type, value and context) and
/// bounded to [`MAX_SOURCE_ATTRIBUTES`].
#[derive(Default)]
pub(crate) struct Attributes(Vec<Value>);

impl Attributes {
    /// Adds one attribute if `value` is a non-empty string.
    pub(crate) fn add(
        &mut self,
        attr_type: &str,
        key: &str,
        value: Option<String>,
        context: &[&str],
    ) {
        let Some(value) = value else { return };
        if self.0.len() >= MAX_SOURCE_ATTRIBUTES {
            return;
        }
        let same = |a: &Value| {
            a["type"] == attr_type && a["value"] == value.as_str() && a["context"] == json!(context)
        };
        if !self.0.iter().any(same) {
            self.0
                .push(json!({ "type": attr_type, "key": key, "value": value, "context": context }));
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Value> {
        self.0
    }
}

/// Builds an alert object; fields that are `None` are left out (validation names them).
pub(crate) fn alert(
    detector: &str,
    fields: [(&str, Option<String>); 5],
    attributes: Attributes,
    body: &Value,
) -> Value {
    let mut alert = serde_json::Map::new();
    alert.insert("detector".into(), Value::String(detector.into()));
    for (k, v) in fields {
        if let Some(v) = v {
            alert.insert(k.into(), Value::String(v));
        }
    }
    alert.insert("attributes".into(), Value::Array(attributes.into_vec()));
    alert.insert("body".into(), body.clone());
    Value::Object(alert)
}
