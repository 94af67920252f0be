//! Validation of what plugins answer: by hand, so that an error names the field at fault.

use alertresponder_core::ports::{Inspection, SectionDraft};
use alertresponder_core::validate::{attribute_from_value, json_kind as kind, MAX_ID_LEN};
use alertresponder_core::{PluginError, ReportResult, Severity};
use serde_json::Value;

/// Parses an inspector's standard output; nothing, `{}` or `null` is an empty inspection.
/// Any other answer that is not the documented JSON is `InvalidOutput` naming the field.
/// Public as the entry point of the `inspector_answer` fuzz target (`fuzz/`).
pub fn inspection_from_output(out: &[u8]) -> Result<Inspection, PluginError> {
    let Some(value) = json_output(out)? else {
        return Ok(Inspection::default());
    };
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("$", format!("expected an object, got {}", kind(&value))))?;
    let sections = array(obj.get("sections"), "sections")?
        .iter()
        .enumerate()
        .map(|(i, v)| section_from_value(v, &format!("sections[{i}]")))
        .collect::<Result<_, _>>()?;
    let new_attributes = array(obj.get("new_attributes"), "new_attributes")?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            attribute_from_value(v, &format!("new_attributes[{i}]"))
                .map_err(|e| invalid(&e.field, e.message))
        })
        .collect::<Result<_, _>>()?;
    Ok(Inspection {
        sections,
        new_attributes,
    })
}

/// Parses a reviewer's standard output; nothing, `{}` or `null` is no decision.
/// Public as the entry point of the `reviewer_answer` fuzz target (`fuzz/`).
pub fn review_from_output(out: &[u8]) -> Result<Option<ReportResult>, PluginError> {
    json_output(out)?.map(|v| review_from_value(&v)).transpose()
}

/// Validates `{"severity": "safe|unclassified|urgent", "reason": "..."}`.
pub(crate) fn review_from_value(value: &Value) -> Result<ReportResult, PluginError> {
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("$", format!("expected an object, got {}", kind(value))))?;
    let severity: Severity = match obj.get("severity") {
        Some(Value::String(s)) => s.parse().map_err(|e: String| invalid("severity", e))?,
        None | Some(Value::Null) => return Err(invalid("severity", "is required")),
        Some(other) => {
            return Err(invalid(
                "severity",
                format!("expected a string, got {}", kind(other)),
            ))
        }
    };
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(invalid(
                "reason",
                format!("expected a string, got {}", kind(other)),
            ))
        }
    };
    Ok(ReportResult { severity, reason })
}

/// Parses JSON output; `None` for blank output, `null` and `{}`.
fn json_output(out: &[u8]) -> Result<Option<Value>, PluginError> {
    if out.trim_ascii().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(out)
        .map_err(|e| PluginError::InvalidOutput(format!("not valid JSON: {e}")))?;
    Ok(match &value {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => None,
        _ => Some(value),
    })
}

fn section_from_value(value: &Value, path: &str) -> Result<SectionDraft, PluginError> {
    let obj = value
        .as_object()
        .ok_or_else(|| invalid(path, format!("expected an object, got {}", kind(value))))?;
    let section_type = match obj.get("type") {
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(invalid(&format!("{path}.type"), "must not be empty"))
        }
        Some(Value::String(s)) if s.len() > MAX_ID_LEN => {
            return Err(invalid(
                &format!("{path}.type"),
                format!("{} bytes, over the limit of {MAX_ID_LEN}", s.len()),
            ))
        }
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(invalid(&format!("{path}.type"), "is required")),
        Some(other) => {
            return Err(invalid(
                &format!("{path}.type"),
                format!("expected a string, got {}", kind(other)),
            ))
        }
    };
    let content = match obj.get("content") {
        Some(c @ Value::Object(_)) => c.clone(),
        None | Some(Value::Null) => return Err(invalid(&format!("{path}.content"), "is required")),
        Some(other) => {
            return Err(invalid(
                &format!("{path}.content"),
                format!("expected an object, got {}", kind(other)),
            ))
        }
    };
    Ok(SectionDraft {
        section_type,
        content,
    })
}

fn array<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a [Value], PluginError> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(invalid(
            path,
            format!("expected an array, got {}", kind(other)),
        )),
    }
}

fn invalid(path: &str, message: impl std::fmt::Display) -> PluginError {
    PluginError::InvalidOutput(format!("{path}: {message}"))
}
