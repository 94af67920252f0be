//! The fuzz targets' checks: one module per target, each with `check(data)`, which the
//! target of the same name in `fuzz_targets/` runs on every input libFuzzer makes.
//!
//! A check does more than look for a panic: it asserts what the code under test
//! promises of hostile input (a validated alert stays within its bounds, an error names
//! a field, what was accepted serialises and parses back to itself, an error record
//! and a cut section stay within their sizes, a secret is never shown). An assertion
//! that fails is a crash libFuzzer reports and saves under `fuzz/artifacts/<target>/`.
//!
//! | target | input | code under test |
//! |---|---|---|
//! | [`alert`] | an alert's bytes | `core::validate::parse_alert`, `pipeline::error_record`, `fit::fit_error_record` |
//! | [`eventbridge`] | an EventBridge event | `core::sources` (GuardDuty, Security Hub), then validation |
//! | [`inspector_answer`] | a command inspector's stdout | `plugins::inspection_from_output`, `fit` of sections and attributes |
//! | [`reviewer_answer`] | a command reviewer's stdout | `plugins::review_from_output` |
//! | [`emitter_answer`] | an HTTP emitter's answer (status, headers, body) | `emit::http::Answer`, `emit::github::{api, markdown}`, `inspect::http::retry_after_of` |
//! | [`config`] | `alertresponder.toml` | the command's `Config::from_toml`, `PluginsConfig::from_toml` for both runtimes |
//! | [`request_body`] | a `POST /v1/alerts` or `/v1/events` body | `cli::input::{split_alerts, expand}`, then validation |

use alertresponder_core::pipeline::{error_record, MAX_DETAIL_BYTES, MAX_ERROR_INPUT_BYTES};
use alertresponder_core::validate::{MAX_ATTRIBUTES, MAX_ID_LEN};
use alertresponder_core::{Alert, Attribute, ErrorRecord, ValidationError};
use chrono::{DateTime, Utc};

pub mod alert;
pub mod config;
pub mod emitter_answer;
pub mod eventbridge;
pub mod inspector_answer;
pub mod request_body;
pub mod reviewer_answer;

/// The clock of every check (a fixed instant: a run is reproducible).
pub fn now() -> DateTime<Utc> {
    // 2026-01-01T00:00:00Z
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

/// The top-level fields of an alert, as a validation error names them.
const ALERT_FIELDS: [&str; 8] = [
    "$",
    "detector",
    "rule_id",
    "alert_key",
    "rule_name",
    "description",
    "timestamp",
    "attributes",
];

/// An error names a field of an alert (its JSON path) and says what is wrong.
pub fn assert_names_alert_field(e: &ValidationError) {
    let head = e.field.split(['[', '.']).next().unwrap_or_default();
    assert!(
        ALERT_FIELDS.contains(&head),
        "the error names no field of an alert: {e:?}"
    );
    assert!(!e.message.is_empty(), "the error says nothing: {e:?}");
}

/// One attribute as validation promises it: a type that is not blank, the type and
/// each context within [`MAX_ID_LEN`] (the key and the value are bounded by the
/// alert's size only: `fit::check_new_attribute` bounds a discovered one's).
pub fn assert_attribute_bounded(a: &Attribute) {
    assert!(!a.attr_type.trim().is_empty(), "blank type: {a:?}");
    assert!(a.attr_type.len() <= MAX_ID_LEN, "type over the bound");
    for c in &a.context {
        assert!(c.len() <= MAX_ID_LEN, "context of {} bytes", c.len());
    }
    // The hash is what claims are keyed by: it must not fail on any attribute.
    let _ = a.hash();
}

/// An alert as validation promises it: its identifiers present, not blank and within
/// [`MAX_ID_LEN`], at most [`MAX_ATTRIBUTES`] attributes, each bounded.
pub fn assert_alert_bounded(alert: &Alert) {
    for (field, v) in [
        ("detector", &alert.detector),
        ("rule_id", &alert.rule_id),
        ("alert_key", &alert.alert_key),
    ] {
        assert!(!v.trim().is_empty(), "{field} is blank");
        assert!(v.len() <= MAX_ID_LEN, "{field} of {} bytes", v.len());
    }
    assert!(alert.attributes.len() <= MAX_ATTRIBUTES);
    alert.attributes.iter().for_each(assert_attribute_bounded);
    let _ = alert.alert_id();
}

/// The error record the pipeline keeps of a rejected `input`, checked: its error, field
/// and input within their bounds (the input measured as JSON, escapes included), and
/// the input kept whole unless it says it was cut; then cut for a small target.
pub fn check_error_record(input: &[u8], e: &ValidationError) -> ErrorRecord {
    let id = alertresponder_core::id::content_message_id(input);
    let record = error_record(
        id,
        "receive",
        e.to_string(),
        Some(e.field.clone()),
        input,
        now(),
    );
    // cut_text adds "… (N bytes cut)": at most 40 bytes.
    assert!(
        record.error.len() <= MAX_DETAIL_BYTES + 40,
        "error not bounded"
    );
    let field = record.field.as_deref().unwrap_or_default();
    assert!(field.len() <= MAX_DETAIL_BYTES + 40, "field not bounded");
    let as_json = json_len(&record.input);
    assert!(
        as_json <= MAX_ERROR_INPUT_BYTES,
        "the kept input takes {as_json} bytes as JSON, over {MAX_ERROR_INPUT_BYTES}"
    );
    if !record.input_truncated {
        assert_eq!(
            record.input,
            String::from_utf8_lossy(input),
            "the input was cut without saying so"
        );
    }
    // What an adapter with a small limit does (SNS: the message bound).
    let small = alertresponder_core::fit::fit_error_record(&record, 5_000);
    let size = serde_json::to_vec(&small).map(|v| v.len()).unwrap_or(0);
    assert!(size <= 5_000, "a record fitted to 5000 bytes takes {size}");
    record
}

/// Bytes `s` takes as a JSON string, without its quotes.
pub fn json_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(0, |j| j.len() - 2)
}
