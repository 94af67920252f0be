//! Splits input into one raw document each: a JSON array, one JSON object per line,
//! or JSON documents one after another (pretty-printed events). Each keeps its exact
//! bytes, so its content message ID is stable. A document is an alert or an
//! EventBridge event (GuardDuty, Security Hub), told apart by [`InputFormat`] and
//! mapped by core's [`alertresponder_core::sources`].

use alertresponder_core::pipeline::{error_record, Pipeline};
use alertresponder_core::sources::{alerts_from_event, is_eventbridge};
use alertresponder_core::{CoreError, ValidationError};
use serde_json::value::RawValue;
use serde_json::Value;

/// What the documents of an input are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// An EventBridge event when the document has `detail-type` and `source`, else an alert.
    #[default]
    Auto,
    /// Every document is an alert.
    Alert,
    /// Every document is an EventBridge event (GuardDuty or Security Hub findings).
    Eventbridge,
}

/// One alert to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Where it came from (`file:line`, and `#n` for the n-th alert of an event).
    pub origin: String,
    /// The alert's bytes.
    pub bytes: Vec<u8>,
    /// The message ID to receive it under (an event's alerts: derived from the event
    /// ID); `None`: its content identifies it.
    pub message_id: Option<String>,
}

/// What one document gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expanded {
    /// Whether it was taken as an EventBridge event.
    pub event: bool,
    /// The alerts to receive.
    pub alerts: Vec<Incoming>,
    /// Findings not taken: (finding ID, why).
    pub skipped: Vec<(String, String)>,
    /// An event that is not a supported one (nothing to receive).
    pub error: Option<ValidationError>,
}

/// Takes one document as `format` says.
pub fn expand(raw: &RawAlert, format: InputFormat) -> Expanded {
    let as_alert = || Expanded {
        alerts: vec![Incoming {
            origin: raw.origin.clone(),
            bytes: raw.bytes.clone(),
            message_id: None,
        }],
        ..Expanded::default()
    };
    if format == InputFormat::Alert {
        return as_alert();
    }
    let value: Value = match serde_json::from_slice(&raw.bytes) {
        Ok(v) => v,
        Err(_) if format == InputFormat::Auto => return as_alert(),
        Err(e) => {
            return Expanded {
                event: true,
                error: Some(ValidationError::new("$", format!("not valid JSON: {e}"))),
                ..Expanded::default()
            }
        }
    };
    if format == InputFormat::Auto && !is_eventbridge(&value) {
        return as_alert();
    }
    let mut out = Expanded {
        event: true,
        ..Expanded::default()
    };
    if value.is_object() && value.get("source").is_none() {
        out.error = Some(ValidationError::new(
            "source",
            "is required (an EventBridge event has `source` and `detail-type`)",
        ));
        return out;
    }
    match alerts_from_event(&value) {
        Ok(mapped) => {
            let many = mapped.alerts.len() > 1;
            out.alerts = mapped
                .alerts
                .into_iter()
                .enumerate()
                .map(|(k, a)| Incoming {
                    origin: if many {
                        format!("{}#{k}", raw.origin)
                    } else {
                        raw.origin.clone()
                    },
                    bytes: a.alert.to_string().into_bytes(),
                    message_id: a.message_id,
                })
                .collect();
            out.skipped = mapped.skipped;
        }
        Err(e) => out.error = Some(e),
    }
    out
}

/// Keeps an unsupported event as an error record (the input kept), as a malformed
/// alert is; its ID is `eventbridge:<event id>`, else the content's.
pub async fn reject_event(
    pipeline: &Pipeline,
    raw: &[u8],
    error: &ValidationError,
) -> Result<(), CoreError> {
    let id = serde_json::from_slice::<Value>(raw)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
        .map(|id| format!("eventbridge:{id}"))
        .unwrap_or_else(|| alertresponder_core::id::content_message_id(raw));
    let record = error_record(
        id,
        "receive",
        format!("invalid event: {}: {}", error.field, error.message),
        None,
        raw,
        pipeline.clock.now(),
    );
    pipeline.errors.put_error(&record).await?;
    Ok(())
}

/// One alert as read, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAlert {
    /// `file:line` or `file[index]`.
    pub origin: String,
    /// The bytes of the alert.
    pub bytes: Vec<u8>,
}

/// Splits `text` read from `name`. A text that starts with `[` and parses as an array
/// gives its elements; one whose first line is not JSON but that is a sequence of JSON
/// documents (pretty-printed, as AWS shows events) gives each document; anything else
/// is taken line by line (blank lines skipped), and a line that is not JSON is still
/// handed on, so that it is rejected and kept as an error.
pub fn split_alerts(name: &str, text: &str) -> Vec<RawAlert> {
    if text.trim_start().starts_with('[') {
        if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
            return items
                .into_iter()
                .enumerate()
                .map(|(i, v)| RawAlert {
                    origin: format!("{name}[{i}]"),
                    bytes: v.get().as_bytes().to_vec(),
                })
                .collect();
        }
    }
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if serde_json::from_str::<&RawValue>(first_line).is_err() {
        if let Some(docs) = documents(name, text) {
            return docs;
        }
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| RawAlert {
            origin: format!("{name}:{}", i + 1),
            bytes: l.trim().as_bytes().to_vec(),
        })
        .collect()
}

/// The JSON documents of `text` one after another, each with the line it starts on;
/// `None` unless all of `text` parses so.
fn documents(name: &str, text: &str) -> Option<Vec<RawAlert>> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    let mut out = Vec::new();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return Some(out),
            Some(Err(_)) => return None,
            Some(Ok(v)) => {
                let skipped = text[start..].len() - text[start..].trim_start().len();
                let line = text[..start + skipped].matches('\n').count() + 1;
                out.push(RawAlert {
                    origin: format!("{name}:{line}"),
                    bytes: v.get().as_bytes().to_vec(),
                });
            }
        }
    }
}

/// The `timestamp` of an alert, if it has a valid one (used to place it in virtual time).
pub fn peek_timestamp(raw: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    #[derive(serde::Deserialize)]
    struct Peek {
        timestamp: Option<String>,
    }
    let p: Peek = serde_json::from_slice(raw).ok()?;
    chrono::DateTime::parse_from_rfc3339(p.timestamp.as_deref()?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_keep_line_numbers_and_skip_blanks() {
        let v = split_alerts("a.jsonl", "{\"x\":1}\n\n{\"x\":2}\nnot json\n");
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].origin, "a.jsonl:3");
        assert_eq!(v[2].bytes, b"not json");
    }

    #[test]
    fn a_json_array_gives_its_elements_byte_for_byte() {
        let v = split_alerts("a.json", "[ {\"x\": 1}, {\"y\":2} ]");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].bytes, b"{\"x\": 1}");
        assert_eq!(v[1].origin, "a.json[1]");
    }

    #[test]
    fn pretty_printed_documents_are_split_one_each_with_their_first_line() {
        let v = split_alerts("e.json", "{\n  \"a\": 1\n}\n\n{\n  \"b\": 2\n}\n");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].origin, "e.json:1");
        assert_eq!(v[1].origin, "e.json:5");
        assert_eq!(v[1].bytes, b"{\n  \"b\": 2\n}");
        // Not JSON through and through: line by line, so the bad lines are rejected.
        assert_eq!(split_alerts("x", "{\n oops\n").len(), 2);
    }

    const GUARDDUTY: &str =
        include_str!("../../core/tests/fixtures/eventbridge/guardduty-port-probe.json");
    const SECURITY_HUB: &str =
        include_str!("../../core/tests/fixtures/eventbridge/securityhub-batch.json");

    fn raw(text: &str) -> RawAlert {
        RawAlert {
            origin: "f:1".into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn auto_takes_events_as_events_and_alerts_as_alerts() {
        let gd = expand(&raw(GUARDDUTY), InputFormat::Auto);
        assert!(gd.event && gd.error.is_none());
        assert_eq!(gd.alerts.len(), 1);
        assert_eq!(
            gd.alerts[0].message_id.as_deref(),
            Some("eventbridge:7e3f5a41-2b1c-4d8e-9f60-1a2b3c4d5e6f")
        );
        let sh = expand(&raw(SECURITY_HUB), InputFormat::Auto);
        assert_eq!((sh.alerts.len(), sh.skipped.len()), (2, 2));
        assert_eq!(sh.alerts[1].origin, "f:1#1");
        let alert = r#"{"detector":"d","rule_id":"r","alert_key":"k"}"#;
        let a = expand(&raw(alert), InputFormat::Auto);
        assert!(!a.event);
        assert_eq!(a.alerts[0].bytes, alert.as_bytes());
        assert_eq!(a.alerts[0].message_id, None);
        // Not JSON: handed on as an alert, so validation rejects and keeps it.
        assert_eq!(expand(&raw("nope"), InputFormat::Auto).alerts.len(), 1);
    }

    #[test]
    fn a_forced_format_is_taken_at_its_word() {
        let as_alert = expand(&raw(GUARDDUTY), InputFormat::Alert);
        assert!(!as_alert.event);
        assert_eq!(as_alert.alerts[0].bytes, GUARDDUTY.as_bytes());
        let alert = r#"{"detector":"d","rule_id":"r","alert_key":"k"}"#;
        let not_event = expand(&raw(alert), InputFormat::Eventbridge);
        assert!(not_event.alerts.is_empty());
        assert_eq!(not_event.error.unwrap().field, "source");
        let other = r#"{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}"#;
        assert_eq!(
            expand(&raw(other), InputFormat::Eventbridge)
                .error
                .unwrap()
                .field,
            "detail-type"
        );
        assert_eq!(
            expand(&raw("nope"), InputFormat::Eventbridge)
                .error
                .unwrap()
                .field,
            "$"
        );
    }

    #[test]
    fn timestamps_are_peeked_only_when_valid() {
        assert!(peek_timestamp(br#"{"timestamp":"2026-11-23T10:00:00Z"}"#).is_some());
        assert!(peek_timestamp(br#"{"timestamp":"noon"}"#).is_none());
        assert!(peek_timestamp(b"[").is_none());
    }
}
