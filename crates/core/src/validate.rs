//! Turns untrusted bytes into an [`Alert`], or an error that names the field.
//!
//! Alert content is written by attackers: the size is bounded before parsing,
//! every field is type-checked by hand so the error can name it, and strings are
//! bounded so that a report stays readable.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::model::{Alert, Attribute};

/// Largest accepted alert, the SNS message limit.
pub const MAX_ALERT_BYTES: usize = 256 * 1024;
/// Most attributes one alert may carry.
pub const MAX_ATTRIBUTES: usize = 1024;
/// Longest identifier field: detector, rule_id, alert_key, an attribute's type and each
/// of its contexts. An attribute's key and value are bounded only by the alert's size
/// (a discovered attribute's, by `fit::check_new_attribute`).
pub const MAX_ID_LEN: usize = 1024;

/// Parses and validates one alert. `now` fills a missing timestamp.
pub fn parse_alert(raw: &[u8], now: DateTime<Utc>) -> Result<Alert, ValidationError> {
    if raw.len() > MAX_ALERT_BYTES {
        return Err(ValidationError::new(
            "$",
            format!(
                "alert is {} bytes, over the limit of {MAX_ALERT_BYTES} bytes",
                raw.len()
            ),
        ));
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| ValidationError::new("$", format!("not valid JSON: {e}")))?;
    alert_from_value(&value, now)
}

/// Validates an already parsed JSON value as an alert.
pub fn alert_from_value(value: &Value, now: DateTime<Utc>) -> Result<Alert, ValidationError> {
    let obj = value.as_object().ok_or_else(|| {
        ValidationError::new(
            "$",
            format!("expected a JSON object, got {}", json_kind(value)),
        )
    })?;
    let detector = required_id(obj, "detector")?;
    let rule_id = required_id(obj, "rule_id")?;
    let alert_key = required_id(obj, "alert_key")?;
    let rule_name = optional_string(obj, "rule_name", "rule_name")?.unwrap_or_default();
    let description = optional_string(obj, "description", "description")?.unwrap_or_default();
    let timestamp = optional_time(obj.get("timestamp"), "timestamp")?.unwrap_or(now);
    let attributes = match obj.get("attributes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_ATTRIBUTES {
                return Err(ValidationError::new(
                    "attributes",
                    format!(
                        "{} attributes, over the limit of {MAX_ATTRIBUTES}",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| attribute_from_value(v, &format!("attributes[{i}]")))
                .collect::<Result<_, _>>()?
        }
        Some(other) => {
            return Err(ValidationError::new(
                "attributes",
                format!("expected an array, got {}", json_kind(other)),
            ))
        }
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    Ok(Alert {
        detector,
        rule_name,
        rule_id,
        alert_key,
        description,
        timestamp,
        attributes,
        body,
    })
}

/// Validates one attribute at JSON path `path` (used for inspector output too).
pub fn attribute_from_value(value: &Value, path: &str) -> Result<Attribute, ValidationError> {
    let obj = value.as_object().ok_or_else(|| {
        ValidationError::new(
            path,
            format!("expected an object, got {}", json_kind(value)),
        )
    })?;
    let attr_type = match obj.get("type") {
        Some(Value::String(s)) if !s.trim().is_empty() => bounded(s, &format!("{path}.type"))?,
        Some(Value::String(_)) => {
            return Err(ValidationError::new(
                format!("{path}.type"),
                "must not be empty",
            ))
        }
        None | Some(Value::Null) => {
            return Err(ValidationError::new(format!("{path}.type"), "is required"))
        }
        Some(other) => {
            return Err(ValidationError::new(
                format!("{path}.type"),
                format!("expected a string, got {}", json_kind(other)),
            ))
        }
    };
    let value_s = match obj.get("value") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(ValidationError::new(format!("{path}.value"), "is required"))
        }
        Some(other) => {
            return Err(ValidationError::new(
                format!("{path}.value"),
                format!("expected a string, got {}", json_kind(other)),
            ))
        }
    };
    let key = optional_string(obj, "key", &format!("{path}.key"))?.unwrap_or_default();
    let context = match obj.get("context") {
        None | Some(Value::Null) => Vec::new(),
        // DeepAlert producers sometimes send a single context as a string.
        Some(Value::String(s)) => vec![bounded(s, &format!("{path}.context"))?],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(j, c)| match c {
                Value::String(s) => bounded(s, &format!("{path}.context[{j}]")),
                other => Err(ValidationError::new(
                    format!("{path}.context[{j}]"),
                    format!("expected a string, got {}", json_kind(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ValidationError::new(
                format!("{path}.context"),
                format!("expected an array of strings, got {}", json_kind(other)),
            ))
        }
    };
    let timestamp = optional_time(obj.get("timestamp"), &format!("{path}.timestamp"))?;
    Ok(Attribute {
        attr_type,
        key,
        value: value_s,
        context,
        timestamp,
    })
}

fn required_id(obj: &Map<String, Value>, field: &str) -> Result<String, ValidationError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => bounded(s, field),
        Some(Value::String(_)) => Err(ValidationError::new(field, "must not be empty")),
        None | Some(Value::Null) => Err(ValidationError::new(field, "is required")),
        Some(other) => Err(ValidationError::new(
            field,
            format!("expected a string, got {}", json_kind(other)),
        )),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, ValidationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ValidationError::new(
            path,
            format!("expected a string, got {}", json_kind(other)),
        )),
    }
}

fn optional_time(v: Option<&Value>, path: &str) -> Result<Option<DateTime<Utc>>, ValidationError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                ValidationError::new(path, format!("expected an RFC 3339 time, got {s:?}: {e}"))
            }),
        Some(other) => Err(ValidationError::new(
            path,
            format!("expected an RFC 3339 time string, got {}", json_kind(other)),
        )),
    }
}

fn bounded(s: &str, path: &str) -> Result<String, ValidationError> {
    if s.len() > MAX_ID_LEN {
        return Err(ValidationError::new(
            path,
            format!("{} bytes, over the limit of {MAX_ID_LEN}", s.len()),
        ));
    }
    Ok(s.to_string())
}

/// How a JSON value's type reads in an error message (`a number`, `an array` …).
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-23T00:00:00Z".parse().unwrap()
    }

    fn err(raw: &str) -> ValidationError {
        parse_alert(raw.as_bytes(), now()).unwrap_err()
    }

    #[test]
    fn complete_alert_parses() {
        let a = parse_alert(
            br#"{"detector":"guardduty","rule_id":"r","rule_name":"n","alert_key":"k","timestamp":"2026-11-22T10:00:00+02:00",
               "attributes":[{"type":"ipaddr","key":"src","value":"192.0.2.1","context":["remote"]}],"body":{"x":1}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(a.attributes[0].value, "192.0.2.1");
        assert_eq!(a.timestamp.to_rfc3339(), "2026-11-22T08:00:00+00:00");
        assert_eq!(a.body, Some(serde_json::json!({"x":1})));
    }

    #[test]
    fn missing_timestamp_takes_now() {
        let a = parse_alert(br#"{"detector":"d","rule_id":"r","alert_key":"k"}"#, now()).unwrap();
        assert_eq!(a.timestamp, now());
    }

    #[test]
    fn each_missing_required_field_is_named() {
        assert_eq!(err(r#"{"rule_id":"r","alert_key":"k"}"#).field, "detector");
        assert_eq!(err(r#"{"detector":"d","alert_key":"k"}"#).field, "rule_id");
        assert_eq!(err(r#"{"detector":"d","rule_id":"r"}"#).field, "alert_key");
        assert_eq!(
            err(r#"{"detector":" ","rule_id":"r","alert_key":"k"}"#).field,
            "detector"
        );
    }

    #[test]
    fn wrong_types_are_named_with_their_path() {
        assert_eq!(
            err(r#"{"detector":1,"rule_id":"r","alert_key":"k"}"#).field,
            "detector"
        );
        assert_eq!(
            err(r#"{"detector":"d","rule_id":"r","alert_key":"k","attributes":{}}"#).field,
            "attributes"
        );
        let e = err(
            r#"{"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"ipaddr","value":"x"},{"type":"ipaddr","value":3}]}"#,
        );
        assert_eq!(e.field, "attributes[1].value");
        assert!(e.message.contains("a number"), "{e}");
        let e = err(
            r#"{"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"ipaddr","value":"x","context":[1]}]}"#,
        );
        assert_eq!(e.field, "attributes[0].context[0]");
        assert_eq!(
            err(r#"{"detector":"d","rule_id":"r","alert_key":"k","timestamp":"yesterday"}"#).field,
            "timestamp"
        );
    }

    #[test]
    fn bad_json_and_non_objects_are_rejected_at_the_root() {
        assert_eq!(err("{not json").field, "$");
        assert_eq!(err("[1,2]").field, "$");
    }

    #[test]
    fn oversized_alert_is_rejected_before_parsing() {
        let big = format!(
            r#"{{"detector":"d","rule_id":"r","alert_key":"k","description":"{}"}}"#,
            "x".repeat(MAX_ALERT_BYTES)
        );
        let e = err(&big);
        assert_eq!(e.field, "$");
        assert!(e.message.contains("over the limit"));
    }

    #[test]
    fn an_alert_stored_and_read_back_is_the_alert_validated_floats_included() {
        // Found by the `alert` fuzz target: without serde_json's float_roundtrip, 1.5e-30
        // was read one bit off, and read back after storing as another number.
        let raw = br#"{"detector":"d","rule_id":"r","alert_key":"k","body":{"n":[1.5e-30,0.1,-0.0,1e15]}}"#;
        let a = parse_alert(raw, now()).unwrap();
        assert_eq!(a.body.as_ref().unwrap()["n"][0].as_f64(), Some(1.5e-30));
        let stored = serde_json::to_vec(&a).unwrap();
        assert_eq!(parse_alert(&stored, now()).unwrap(), a);
        assert_eq!(serde_json::from_slice::<Alert>(&stored).unwrap(), a);
    }

    #[test]
    fn single_string_context_is_accepted() {
        let a = parse_alert(br#"{"detector":"d","rule_id":"r","alert_key":"k","attributes":[{"type":"domain","value":"x","context":"remote"}]}"#, now()).unwrap();
        assert_eq!(a.attributes[0].context, vec!["remote"]);
    }
}
