//! Items to records and back: attribute values, the meta item, published reports
//! (gzipped when large). A stored item without the shape we wrote is a
//! [`AwsError::Malformed`] naming the item and the attribute at fault.

use std::io::Write;

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{Report, ReportResult};
use alertresponder_core::ports::ReportMeta;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::keys::Item;
use crate::error::AwsError;

/// Largest published report kept as is; above it, gzipped (an item holds 400 KB in all).
const MAX_REPORT_BYTES: usize = 350_000;
/// A published report whose JSON is longer is stored gzipped: a write unit is 1 KB,
/// and report JSON (repeated field names, repeated alerts) shrinks several fold, so
/// publishing a version of a few KB costs one or two units instead of several.
const GZIP_ABOVE_BYTES: usize = 1024;

/// A String attribute value.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A Number attribute value.
pub(super) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A time as stored: epoch milliseconds.
pub(super) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The wall clock in nanoseconds: the order in which items are first stored.
pub(super) fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A stored item or an answer without the shape we wrote.
pub(super) fn malformed(what: &str, message: impl Into<String>) -> AwsError {
    AwsError::Malformed {
        what: what.to_string(),
        message: message.into(),
    }
}

/// A String attribute of a stored item.
pub(super) fn get_s<'a>(item: &'a Item, name: &str, what: &str) -> Result<&'a str, AwsError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(malformed(what, format!("{name} is not a string"))),
        None => Err(malformed(what, format!("{name} is missing"))),
    }
}

/// A Number attribute of a stored item, if present.
fn opt_n<T: std::str::FromStr>(item: &Item, name: &str, what: &str) -> Result<Option<T>, AwsError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| malformed(what, format!("{name} {v:?} is not a valid number here"))),
        Some(AttributeValue::Null(_)) | None => Ok(None),
        Some(_) => Err(malformed(what, format!("{name} is not a number"))),
    }
}

/// A Number attribute of a stored item.
pub(super) fn get_n<T: std::str::FromStr>(
    item: &Item,
    name: &str,
    what: &str,
) -> Result<T, AwsError> {
    opt_n(item, name, what)?.ok_or_else(|| malformed(what, format!("{name} is missing")))
}

/// A stored time (epoch milliseconds).
pub(super) fn time(ms: i64, what: &str) -> Result<DateTime<Utc>, AwsError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| malformed(what, format!("time {ms} ms is out of range")))
}

/// The time in Number attribute `name` of a stored item.
pub(super) fn get_time(item: &Item, name: &str, what: &str) -> Result<DateTime<Utc>, AwsError> {
    time(get_n(item, name, what)?, what)
}

/// The JSON document in attribute `json` of a stored item.
pub(super) fn get_json<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, AwsError> {
    serde_json::from_str(get_s(item, "json", what)?)
        .map_err(|e| malformed(what, format!("json: {e}")))
}

/// A record as the JSON its item keeps.
pub(super) fn to_json<T: Serialize>(v: &T, what: &str) -> Result<String, AwsError> {
    serde_json::to_string(v).map_err(|e| malformed(what, format!("cannot encode: {e}")))
}

/// The [`ReportMeta`] of a meta item. Its counts are not part of it: `alert_count`,
/// which items written by earlier builds carry, is ignored, and `attribute_count`
/// is the claims' own (see `claims`).
pub(super) fn meta_from(report_id: &str, item: &Item) -> Result<ReportMeta, AwsError> {
    let what = format!("meta item of report {report_id}");
    Ok(ReportMeta {
        id: report_id.to_string(),
        alert_id: get_s(item, "alert_id", &what)?.to_string(),
        created_at: get_time(item, "created_at", &what)?,
        opened_by: get_s(item, "opened_by", &what)?.to_string(),
        published_version: get_n(item, "published_version", &what)?,
        last_published_at: opt_n(item, "last_published_at", &what)?
            .map(|ms| time(ms, &what))
            .transpose()?,
    })
}

/// The attributes of a meta item holding `meta` (without its key): what
/// [`meta_from`] reads back.
pub(super) fn meta_item(meta: &ReportMeta) -> Item {
    let mut item = Item::from([
        ("alert_id".to_string(), s(&meta.alert_id)),
        ("created_at".to_string(), n(millis(meta.created_at))),
        ("opened_by".to_string(), s(&meta.opened_by)),
        ("published_version".to_string(), n(meta.published_version)),
    ]);
    if let Some(at) = meta.last_published_at {
        item.insert("last_published_at".to_string(), n(millis(at)));
    }
    item
}

/// The result of the last published version, kept on the meta item.
pub(super) fn last_result_from(
    report_id: &str,
    item: &Item,
) -> Result<Option<ReportResult>, AwsError> {
    match item.get("last_result") {
        Some(AttributeValue::S(j)) => serde_json::from_str(j).map(Some).map_err(|e| {
            malformed(
                &format!("meta item of report {report_id}"),
                format!("last_result: {e}"),
            )
        }),
        _ => Ok(None),
    }
}

/// An alert ID's open-report item.
pub(super) struct OpenReport {
    /// The report open for the alert ID.
    pub(super) report_id: String,
    /// When it was opened (epoch milliseconds): it accepts alerts for a window from then.
    pub(super) created_at: i64,
}

/// The [`OpenReport`] of an open-report item.
pub(super) fn open_from(alert_id: &str, item: &Item) -> Result<OpenReport, AwsError> {
    let what = format!("open-report item of {alert_id}");
    Ok(OpenReport {
        report_id: get_s(item, "report_id", &what)?.to_string(),
        created_at: get_n(item, "created_at", &what)?,
    })
}

/// Encodes a published report for its item: JSON when it fits one write unit, else
/// gzipped JSON (whichever is smaller).
pub(super) fn encode_report(report: &Report) -> Result<(&'static str, AttributeValue), StoreError> {
    let what = format!("report {} version {}", report.id, report.version);
    let json = to_json(report, &what)?;
    if json.len() <= GZIP_ABOVE_BYTES {
        return Ok(("report", s(json)));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zipped = gz
        .write_all(json.as_bytes())
        .and_then(|()| gz.finish())
        .map_err(|e| StoreError::Permanent(format!("cannot gzip {what}: {e}")))?;
    if zipped.len() >= json.len() && json.len() <= MAX_REPORT_BYTES {
        return Ok(("report", s(json)));
    }
    if zipped.len() > MAX_REPORT_BYTES {
        return Err(StoreError::Permanent(format!(
            "{what} is too large to store: {} bytes of JSON, {} gzipped, over the {MAX_REPORT_BYTES} bytes a DynamoDB item can take",
            json.len(),
            zipped.len()
        )));
    }
    Ok(("report_gz", AttributeValue::B(Blob::new(zipped))))
}

/// Decodes the report of a published item.
pub(super) fn decode_report(item: &Item, what: &str) -> Result<Report, AwsError> {
    let json = match (item.get("report"), item.get("report_gz")) {
        (Some(AttributeValue::S(json)), _) => json.clone(),
        (_, Some(AttributeValue::B(zipped))) => {
            let mut json = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(zipped.as_ref()),
                &mut json,
            )
            .map_err(|e| malformed(what, format!("report_gz: {e}")))?;
            json
        }
        _ => return Err(malformed(what, "neither report nor report_gz is present")),
    };
    serde_json::from_str(&json).map_err(|e| malformed(what, format!("report: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_small_report_stays_json_and_a_large_one_is_gzipped_both_decode() {
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "id": "r1", "alerts": [], "attributes": [], "sections": [],
            "result": {"severity": "safe", "reason": ""}, "status": "published",
            "created_at": "2024-01-01T00:00:00Z", "version": 1
        }))
        .unwrap();
        let (field, body) = encode_report(&report).unwrap();
        assert_eq!(field, "report");
        let item: Item = HashMap::from([(field.to_string(), body)]);
        assert_eq!(decode_report(&item, "t").unwrap(), report);

        // Past one write unit: gzipped, a fraction of the units.
        report.result.reason = "the same words again ".repeat(100);
        let (field, body) = encode_report(&report).unwrap();
        assert_eq!(field, "report_gz");
        let AttributeValue::B(zipped) = &body else {
            panic!("gzipped reports are binary")
        };
        assert!(zipped.as_ref().len() < 1024, "{}", zipped.as_ref().len());
        let item: Item = HashMap::from([(field.to_string(), body)]);
        assert_eq!(decode_report(&item, "t").unwrap(), report);

        report.result.reason = "x".repeat(500_000);
        let (field, body) = encode_report(&report).unwrap();
        assert_eq!(field, "report_gz");
        let item: Item = HashMap::from([(field.to_string(), body)]);
        assert_eq!(decode_report(&item, "t").unwrap(), report);
    }

    #[test]
    fn a_malformed_meta_item_is_told_apart_naming_the_field() {
        let item: Item = HashMap::from([("alert_id".to_string(), s("a"))]);
        let err = meta_from("r1", &item).unwrap_err();
        assert!(err.to_string().contains("created_at"), "{err}");
        assert!(matches!(StoreError::from(err), StoreError::Permanent(_)));
    }

    #[test]
    fn a_meta_item_gives_back_its_last_publication_and_an_old_alert_count_is_ignored() {
        // As an earlier build wrote it: with the alert count joins no longer keep.
        let item: Item = HashMap::from([
            ("alert_id".to_string(), s("alert:a")),
            ("created_at".to_string(), n(1_000)),
            ("opened_by".to_string(), s("m1")),
            ("published_version".to_string(), n(2)),
            ("alert_count".to_string(), n(3)),
            ("attribute_count".to_string(), n(4)),
            ("last_published_at".to_string(), n(5_000)),
        ]);
        let meta = meta_from("r1", &item).unwrap();
        assert_eq!(meta_from("r1", &meta_item(&meta)).unwrap(), meta);
        assert_eq!(meta.published_version, 2);
        assert_eq!(meta.created_at, time(1_000, "t").unwrap());
        assert_eq!(meta.last_published_at, Some(time(5_000, "t").unwrap()));
        assert!(!meta_item(&meta).contains_key("alert_count"));
        let mut without = item.clone();
        without.remove("published_version");
        let err = meta_from("r1", &without).unwrap_err();
        assert!(err.to_string().contains("published_version"), "{err}");
    }
}
