//! A report as a person reads it in a terminal or a ticket.
//!
//! Everything in a report may come from an attacker (alert fields, inspector output),
//! so every string is passed through [`sanitize`]: control characters (ANSI escapes,
//! carriage returns that overwrite a line) are shown escaped, and long values are cut.

use std::fmt::Write as _;

use serde_json::Value;

use crate::model::{InspectionStatus, Report, Severity};

/// Longest single value shown.
pub const MAX_FIELD_CHARS: usize = 300;

/// Makes untrusted text safe to print on one terminal line: control characters are
/// escaped (`\u{1b}`), and the text is cut to `max` characters.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 16));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            let _ = write!(out, "… ({} more chars)", s.chars().count() - max);
            break;
        }
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn s(v: &str) -> String {
    sanitize(v, MAX_FIELD_CHARS)
}

fn severity_label(sev: Severity) -> &'static str {
    match sev {
        Severity::Safe => "SAFE",
        Severity::Unclassified => "UNCLASSIFIED",
        Severity::Urgent => "URGENT",
    }
}

/// One DeepAlert entity object (malware, domain, URL, activity, software) as a phrase.
fn entity_text(field: &str, v: &Value) -> String {
    let Value::Object(o) = v else {
        return match v {
            Value::String(x) => x.clone(),
            other => other.to_string(),
        };
    };
    let get = |k: &str| o.get(k).and_then(Value::as_str).filter(|x| !x.is_empty());
    match field {
        "related_malware" => {
            let names: Vec<&str> = o
                .get("scans")
                .and_then(Value::as_array)
                .map(|scans| {
                    scans
                        .iter()
                        .filter(|sc| sc.get("positive").and_then(Value::as_bool).unwrap_or(false))
                        .filter_map(|sc| sc.get("name").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            match (names.is_empty(), get("sha256")) {
                (false, _) => names.join("/"),
                (true, Some(h)) => h.to_string(),
                (true, None) => v.to_string(),
            }
        }
        "related_domains" | "software" => get("name")
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        "related_urls" => get("url")
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        "activities" => {
            let mut parts: Vec<String> = Vec::new();
            if let Some(a) = get("action") {
                parts.push(a.to_string());
            }
            if let Some(t) = get("target") {
                parts.push(t.to_string());
            }
            for (label, key) in [
                ("on", "service_name"),
                ("by", "principal"),
                ("from", "remote_addr"),
            ] {
                if let Some(x) = get(key) {
                    parts.push(format!("{label} {x}"));
                }
            }
            if parts.is_empty() {
                v.to_string()
            } else {
                parts.join(" ")
            }
        }
        _ => v.to_string(),
    }
}

/// Renders a section's content as `key=value` pairs on one line (each value through
/// [`sanitize`]): the emitters' summary of a finding too.
pub fn content_line(content: &Value) -> String {
    match content {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| {
                !matches!(v, Value::Null)
                    && v != &&Value::Array(vec![])
                    && v != &&Value::String(String::new())
            })
            .map(|(k, v)| {
                let v = match v {
                    Value::Array(items) => items
                        .iter()
                        .map(|i| entity_text(k, i))
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => entity_text(k, other),
                };
                format!("{}={}", s(k), s(&v))
            })
            .collect::<Vec<_>>()
            .join("  "),
        other => s(&other.to_string()),
    }
}

/// The report as text: verdict first, then alerts, findings and how inspection went.
pub fn render_text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Report {} (version {})  [{}]",
        s(&r.id),
        r.version,
        severity_label(r.result.severity)
    );
    if let Some(prev) = &r.previous_result {
        let _ = writeln!(
            o,
            "  previously: {} — {}",
            severity_label(prev.severity),
            s(&prev.reason)
        );
    }
    if !r.result.reason.is_empty() {
        let _ = writeln!(o, "  reason: {}", s(&r.result.reason));
    }
    let _ = writeln!(
        o,
        "  status: {}, opened {}, {} alert(s)",
        serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        r.created_at.to_rfc3339(),
        r.alerts.len()
    );
    let _ = writeln!(o, "\nAlerts");
    for (i, a) in r.alerts.iter().enumerate() {
        let name = a.rule();
        let _ = writeln!(
            o,
            "  {}. {} — {} (rule {}, key {}) at {}",
            i + 1,
            s(&a.detector),
            s(name),
            s(&a.rule_id),
            s(&a.alert_key),
            a.timestamp.to_rfc3339()
        );
        if !a.description.is_empty() {
            let _ = writeln!(o, "     {}", s(&a.description));
        }
    }
    if !r.attributes.is_empty() {
        let _ = writeln!(o, "\nAttributes");
        for a in &r.attributes {
            let ctx = if a.context.is_empty() {
                String::new()
            } else {
                format!(" ({})", s(&a.context.join(", ")))
            };
            let key = if a.key.is_empty() {
                String::new()
            } else {
                format!("  [{}]", s(&a.key))
            };
            let _ = writeln!(o, "  {:<14} {}{}{}", s(&a.attr_type), s(&a.value), ctx, key);
        }
    }
    if !r.sections.is_empty() {
        let _ = writeln!(o, "\nFindings");
        for sec in &r.sections {
            let _ = writeln!(
                o,
                "  [{}] {} {}: {}",
                s(&sec.author),
                s(&sec.section_type),
                s(&sec.attribute.value),
                content_line(&sec.content)
            );
        }
    }
    if !r.inspections.is_empty() {
        let _ = writeln!(o, "\nInspections");
        for i in &r.inspections {
            let status = match i.status {
                InspectionStatus::Ok => "ok",
                InspectionStatus::NothingFound => "nothing found",
                InspectionStatus::Failed => "FAILED",
                InspectionStatus::TimedOut => "TIMED OUT",
                InspectionStatus::Skipped => "skipped",
                InspectionStatus::RateLimited => "RATE LIMITED",
            };
            let detail = i
                .detail
                .as_deref()
                .map(|d| format!(": {}", s(d)))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {:<16} {} {} — {}{}",
                s(&i.inspector),
                s(&i.attribute.attr_type),
                s(&i.attribute.value),
                status,
                detail
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_not_printed() {
        assert_eq!(
            sanitize("a\x1b[31mred\r\nb", 100),
            "a\\u{1b}[31mred\\u{d}\\u{a}b"
        );
        assert_eq!(sanitize("x\u{202e}y", 100), "x\\u{202e}y");
    }

    #[test]
    fn deepalert_entities_read_as_phrases() {
        let content = serde_json::json!({
            "country": ["KP"],
            "related_malware": [{"sha256": "", "scans": [{"name": "Mirai", "positive": true}, {"name": "clean", "positive": false}]}],
            "related_domains": [{"name": "x.example", "source": "intel"}],
            "activities": [{"action": "login", "target": "console", "service_name": "aws", "principal": "alice", "remote_addr": ""}],
        });
        let line = content_line(&content);
        assert!(line.contains("country=KP"), "{line}");
        assert!(
            line.contains("related_malware=Mirai") && !line.contains("clean"),
            "{line}"
        );
        assert!(line.contains("related_domains=x.example"), "{line}");
        assert!(
            line.contains("activities=login console on aws by alice"),
            "{line}"
        );
    }

    #[test]
    fn long_values_are_cut_with_a_count() {
        let out = sanitize(&"é".repeat(10), 4);
        assert_eq!(out, "éééé… (6 more chars)");
    }
}
