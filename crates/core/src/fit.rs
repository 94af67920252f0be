//! Fitting records into their stores' size bounds.
//!
//! Every record is written to a store with a size limit: a DynamoDB item holds at
//! most 400 KB, an SNS message 256 KiB, Step Functions state 256 KiB. What an
//! inspector, a reviewer or an alert's sender writes is not trusted to be small, so
//! each record is bounded once, here in core, before any store sees it:
//!
//! - a section's content: [`MAX_SECTION_BYTES`] of JSON, else it is stored cut, as a
//!   note saying what was cut and a preview ([`bound_section_content`]);
//! - an attribute an inspector discovered: [`MAX_NEW_ATTRIBUTE_VALUE_BYTES`] of value
//!   and [`MAX_NEW_ATTRIBUTE_BYTES`] in all ([`check_new_attribute`]), else it is
//!   recorded as skipped, with a cut copy ([`cut_attribute`]);
//! - an error record's input: cut by its caller (`pipeline::MAX_ERROR_INPUT_BYTES`),
//!   and by an adapter again if need be ([`fit_error_record`]);
//! - a report carried in a message: [`fit_report`]. The full alerts stay in the store:
//!   only the carried copy is cut, in this order, until it fits: alert bodies and large
//!   section contents are replaced by a note, then the last sections, inspection
//!   records and alerts are left out (the first alert is always kept). [`Report::cut`]
//!   says what was cut.

use serde_json::{json, Value};

use crate::model::{Attribute, Cut, ErrorRecord, Report};
use crate::validate;

/// Largest section content kept, as serialised JSON: 64 KiB. A section is one
/// DynamoDB item (400 KB) holding its content beside the attribute it is about, and
/// that attribute, taken from an alert, can be nearly as large as the alert
/// (`validate::MAX_ALERT_BYTES`, 256 KiB): 256 KiB + 64 KiB + keys, names and the
/// section's other fields stays under 400 KB. It also keeps a report readable: 32
/// sections of an answer at this bound are 2 MiB already.
pub const MAX_SECTION_BYTES: usize = 64 * 1024;

/// How much of a cut section's JSON is kept as its preview.
pub const SECTION_PREVIEW_BYTES: usize = 1024;

/// Longest value of an attribute an inspector discovered: 8 KiB, room for a long URL or
/// a command line. The attribute is copied into its claim, its task message, each of
/// its sections and inspection records and every version of the report, so it is
/// held much smaller than a store's item (an alert's own attributes are bounded by
/// the alert's size).
pub const MAX_NEW_ATTRIBUTE_VALUE_BYTES: usize = 8 * 1024;

/// Largest attribute an inspector discovered, serialised (its value, key, type and
/// every context): 16 KiB.
pub const MAX_NEW_ATTRIBUTE_BYTES: usize = 16 * 1024;

/// Most contexts kept in the cut copy of a skipped attribute.
const MAX_CUT_CONTEXTS: usize = 8;

/// Contents (alert body, section content) larger than this are the first to go.
const LARGE_CONTENT_BYTES: usize = 2048;

fn size<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

fn note(bytes: usize) -> Value {
    json!({ "cut": format!("{bytes} bytes left out to fit the message size; the full alert is in the store") })
}

/// `s` cut to at most `max` bytes on a character boundary, followed by a note of how
/// many bytes were cut; `s` itself when it fits.
pub fn cut_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let end = floor_char_boundary(s, max);
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Bytes `c` takes inside a JSON string as `serde_json` writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `s` that takes at most `max` bytes inside a JSON string
/// (quotes, backslashes and control characters are escaped, so text can grow up to
/// six times when serialised), and whether anything was cut.
pub fn json_prefix(s: &str, max: usize) -> (&str, bool) {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += escaped_len(c);
        if used > max {
            return (&s[..i], true);
        }
    }
    (s, false)
}

/// A section's content as it is if its JSON takes at most [`MAX_SECTION_BYTES`], else
/// a note in its place saying what was cut, with the first [`SECTION_PREVIEW_BYTES`] of
/// the JSON as a preview; the second value is the original size when it was cut.
pub fn bound_section_content(content: Value) -> (Value, Option<usize>) {
    let Ok(json) = serde_json::to_string(&content) else {
        // A `Value` always serialises; should it not, keep nothing rather than fail.
        return (
            json!({ "cut": "section content that could not be serialised" }),
            Some(0),
        );
    };
    if json.len() <= MAX_SECTION_BYTES {
        return (content, None);
    }
    let preview = &json[..floor_char_boundary(&json, SECTION_PREVIEW_BYTES)];
    let note = json!({
        "cut": format!(
            "section content of {} bytes exceeded the {MAX_SECTION_BYTES}-byte bound",
            json.len()
        ),
        "preview": preview,
    });
    (note, Some(json.len()))
}

/// Checks an attribute an inspector discovered as an alert's attribute is checked
/// (`validate::attribute_from_value`), and against [`MAX_NEW_ATTRIBUTE_VALUE_BYTES`]
/// and [`MAX_NEW_ATTRIBUTE_BYTES`]; the error says why it cannot be inspected.
pub fn check_new_attribute(attr: &Attribute) -> Result<(), String> {
    if attr.value.len() > MAX_NEW_ATTRIBUTE_VALUE_BYTES {
        return Err(format!(
            "value: {} bytes, over the limit of {MAX_NEW_ATTRIBUTE_VALUE_BYTES}",
            attr.value.len()
        ));
    }
    if attr.key.len() > validate::MAX_ID_LEN {
        return Err(format!(
            "key: {} bytes, over the limit of {}",
            attr.key.len(),
            validate::MAX_ID_LEN
        ));
    }
    let total = size(attr);
    if total > MAX_NEW_ATTRIBUTE_BYTES {
        return Err(format!(
            "{total} bytes in all, over the limit of {MAX_NEW_ATTRIBUTE_BYTES}"
        ));
    }
    let value = serde_json::to_value(attr).map_err(|e| e.to_string())?;
    validate::attribute_from_value(&value, "attribute")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A copy of `attr` small enough to record (each text cut, the first few contexts),
/// for the record that says it was skipped. The cut value names the bytes cut, so
/// that different long values seldom share a copy.
pub fn cut_attribute(attr: &Attribute) -> Attribute {
    Attribute {
        attr_type: cut_text(&attr.attr_type, validate::MAX_ID_LEN),
        key: cut_text(&attr.key, validate::MAX_ID_LEN),
        value: cut_text(&attr.value, MAX_NEW_ATTRIBUTE_VALUE_BYTES),
        context: attr
            .context
            .iter()
            .take(MAX_CUT_CONTEXTS)
            .map(|c| cut_text(c, validate::MAX_ID_LEN))
            .collect(),
        timestamp: attr.timestamp,
    }
}

/// `record` as it is if its JSON fits in `max_bytes`, else a copy with its input (then
/// its error and field) cut to fit and `input_truncated` set. For an adapter whose
/// limit is below what [`crate::pipeline::error_record`] already guarantees.
pub fn fit_error_record(record: &ErrorRecord, max_bytes: usize) -> ErrorRecord {
    let total = size(record);
    if total <= max_bytes {
        return record.clone();
    }
    let mut r = record.clone();
    let over = total - max_bytes;
    let input_len: usize = r.input.chars().map(escaped_len).sum();
    let (kept, _) = json_prefix(&record.input, input_len.saturating_sub(over));
    r.input = kept.to_string();
    r.input_truncated = true;
    if size(&r) > max_bytes {
        // The input alone did not do: the error and the field are cut too.
        r.input.clear();
        r.error = json_prefix(&record.error, max_bytes / 4).0.to_string();
        r.field = record
            .field
            .as_deref()
            .map(|f| json_prefix(f, max_bytes / 8).0.to_string());
    }
    r
}

/// `report` as it is if its JSON fits in `max_bytes`, else a cut copy (see the module doc).
/// The result may still exceed `max_bytes` when the first alert alone does.
pub fn fit_report(report: &Report, max_bytes: usize) -> Report {
    let original = size(report);
    if original <= max_bytes {
        return report.clone();
    }
    let mut r = report.clone();
    let mut cut = Cut {
        original_bytes: original,
        ..Cut::default()
    };
    // Margin for the `cut` field itself.
    let budget = max_bytes.saturating_sub(256);
    let mut total = original;
    // 1. Large bodies and contents, largest first.
    let mut large: Vec<(usize, bool, usize)> = Vec::new(); // (bytes, is_alert, index)
    for (i, a) in r.alerts.iter().enumerate() {
        if let Some(b) = &a.body {
            let n = size(b);
            if n > LARGE_CONTENT_BYTES {
                large.push((n, true, i));
            }
        }
    }
    for (i, s) in r.sections.iter().enumerate() {
        let n = size(&s.content);
        if n > LARGE_CONTENT_BYTES {
            large.push((n, false, i));
        }
    }
    large.sort_by_key(|l| std::cmp::Reverse(l.0));
    for (n, is_alert, i) in large {
        if total <= budget {
            break;
        }
        let replacement = note(n);
        total = total + size(&replacement) - n;
        if is_alert {
            r.alerts[i].body = Some(replacement);
            cut.bodies_removed += 1;
        } else {
            r.sections[i].content = replacement;
            cut.contents_removed += 1;
        }
    }
    // 2. Whole elements from the end: sections, inspections, then alerts (keep one).
    while total > budget && !r.sections.is_empty() {
        let s = r.sections.pop().map(|s| size(&s) + 1).unwrap_or(0);
        total = total.saturating_sub(s);
        cut.sections_omitted += 1;
    }
    while total > budget && !r.inspections.is_empty() {
        let s = r.inspections.pop().map(|s| size(&s) + 1).unwrap_or(0);
        total = total.saturating_sub(s);
        cut.inspections_omitted += 1;
    }
    while total > budget && r.alerts.len() > 1 {
        let s = r.alerts.pop().map(|s| size(&s) + 1).unwrap_or(0);
        total = total.saturating_sub(s);
        cut.alerts_omitted += 1;
    }
    r.cut = Some(cut);
    r
}

/// How many alerts a (possibly cut) report stands for.
pub fn alert_count(report: &Report) -> usize {
    report.alerts.len() + report.cut.as_ref().map_or(0, |c| c.alerts_omitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use chrono::TimeZone;

    fn report(alerts: usize, body_bytes: usize) -> Report {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let alert = Alert {
            detector: "d".into(),
            rule_name: "r".into(),
            rule_id: "r".into(),
            alert_key: "k".into(),
            description: String::new(),
            timestamp: t,
            attributes: vec![],
            body: Some(json!({ "blob": "x".repeat(body_bytes) })),
        };
        Report {
            id: "r1".into(),
            alerts: vec![alert; alerts],
            attributes: vec![],
            sections: vec![],
            result: ReportResult::default(),
            status: ReportStatus::New,
            created_at: t,
            version: 1,
            previous_result: None,
            inspections: vec![],
            alert_id: "alert:x".into(),
            published_at: None,
            cut: None,
        }
    }

    #[test]
    fn a_report_that_fits_is_left_alone() {
        let r = report(2, 100);
        assert_eq!(fit_report(&r, 10_000), r);
    }

    #[test]
    fn large_bodies_go_first_and_the_cut_is_recorded() {
        let r = report(3, 100_000);
        let f = fit_report(&r, 200_000);
        assert!(size(&f) <= 200_000, "{}", size(&f));
        assert_eq!(
            f.alerts.len(),
            3,
            "alerts are kept when cutting bodies suffices"
        );
        let cut = f.cut.unwrap();
        assert!(cut.bodies_removed >= 1);
        assert_eq!(cut.alerts_omitted, 0);
        assert!(cut.original_bytes > 300_000);
    }

    #[test]
    fn many_alerts_are_left_out_from_the_end_but_counted() {
        let r = report(2_000, 1_000);
        let f = fit_report(&r, 100_000);
        assert!(size(&f) <= 100_000, "{}", size(&f));
        assert!(f.alerts.len() < 2_000 && !f.alerts.is_empty());
        assert_eq!(alert_count(&f), 2_000);
    }

    #[test]
    fn json_prefix_counts_text_as_serialised() {
        assert_eq!(json_prefix("abc", 3), ("abc", false));
        assert_eq!(json_prefix("a\"bc", 3), ("a\"", true));
        assert_eq!(json_prefix("a\u{1}b", 6), ("a", true));
        assert_eq!(json_prefix("ééé", 5), ("éé", true));
        let quotes = "\"".repeat(100);
        let (kept, cut) = json_prefix(&quotes, 50);
        assert!(cut);
        assert_eq!(serde_json::to_string(kept).unwrap().len(), 52);
    }

    #[test]
    fn cut_text_cuts_on_a_character_boundary_and_says_so() {
        assert_eq!(cut_text("short", 10), "short");
        assert_eq!(cut_text("ééé", 3), "é… (4 bytes cut)");
    }

    #[test]
    fn an_error_record_is_fitted_by_cutting_its_input() {
        let record = ErrorRecord {
            id: "m1".into(),
            stage: "receive".into(),
            error: "e".into(),
            field: None,
            input: "\\".repeat(10_000),
            input_truncated: false,
            at: chrono::DateTime::UNIX_EPOCH,
        };
        assert_eq!(fit_error_record(&record, 100_000), record);
        let fitted = fit_error_record(&record, 5_000);
        assert!(
            size(&fitted) <= 5_000 && size(&fitted) > 4_900,
            "{}",
            size(&fitted)
        );
        assert!(fitted.input_truncated && record.input.starts_with(&fitted.input));
    }
}
