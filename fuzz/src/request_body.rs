//! `request_body`: the body of `POST /v1/alerts` and of `POST /v1/events` (and an
//! alert file of `alertresponder run`), through the command's `input::split_alerts` and
//! `input::expand`, then validation.
//!
//! `POST /v1/alerts` is routed as `serve` does it: a UTF-8 body starting with `[` is a
//! batch (`split_alerts`), anything else one alert. `POST /v1/events` is
//! `expand(.., Eventbridge)`; a file line or document of `run` is `expand(.., Auto)`.
//!
//! Checked: each piece split off is the exact bytes of the body, in order (its message
//! ID is stable), a JSON value when the body was an array, a piece that is not blank
//! when it was taken line by line or as documents, with origins in order; each
//! validates into a bounded alert or an error naming a field. An event either
//! gives at most `MAX_FINDINGS` alerts, each JSON, or an error naming a field (and
//! then no alert); `Auto` hands anything that is not an event on unchanged.

use alertresponder::input::{expand, peek_timestamp, split_alerts, InputFormat, RawAlert};
use alertresponder_core::sources::MAX_FINDINGS;
use alertresponder_core::validate::parse_alert;
use serde_json::value::RawValue;

/// Runs one input.
pub fn check(data: &[u8]) {
    let batch = std::str::from_utf8(data)
        .ok()
        .filter(|text| text.trim_start().starts_with('['));
    match batch {
        Some(text) => check_split(text),
        None => check_alert(data),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // `run` reads any file this way, batch or not.
        check_split(text);
    }
    let raw = RawAlert {
        origin: "body".into(),
        bytes: data.to_vec(),
    };
    check_expand(&raw, InputFormat::Eventbridge);
    check_expand(&raw, InputFormat::Auto);
    let _ = peek_timestamp(data);
}

/// One alert as `receive` takes it.
fn check_alert(bytes: &[u8]) {
    match parse_alert(bytes, crate::now()) {
        Ok(alert) => crate::assert_alert_bounded(&alert),
        Err(e) => crate::assert_names_alert_field(&e),
    }
}

/// The pieces of a text: slices of it, each JSON (array) or a trimmed line, in order.
fn check_split(text: &str) {
    let pieces = split_alerts("body", text);
    let mut cursor = 0;
    let mut last_line = 0;
    for (i, piece) in pieces.iter().enumerate() {
        // The exact bytes of the body, in order (so each keeps its message ID).
        let part = std::str::from_utf8(&piece.bytes).expect("a piece of text is text");
        let at = text[cursor..]
            .find(part)
            .unwrap_or_else(|| panic!("{} is not the next part of the body", piece.origin));
        cursor += at + part.len();
        if let Some(index) = piece
            .origin
            .strip_prefix("body[")
            .and_then(|r| r.strip_suffix(']'))
        {
            assert_eq!(
                index.parse::<usize>().ok(),
                Some(i),
                "array origins in order"
            );
            assert!(
                serde_json::from_slice::<&RawValue>(&piece.bytes).is_ok(),
                "an element of an array is JSON"
            );
        } else {
            let line = piece
                .origin
                .strip_prefix("body:")
                .and_then(|n| n.parse::<usize>().ok())
                .expect("an origin is body[i] or body:line");
            // Documents one after another may share a line (`[] {..}`): not decreasing.
            assert!(line >= last_line, "line origins in order");
            last_line = line;
            assert!(!piece.bytes.is_empty(), "a blank piece at {}", piece.origin);
        }
        check_alert(&piece.bytes);
    }
}

/// One document taken as `format` says.
fn check_expand(raw: &RawAlert, format: InputFormat) {
    let expanded = expand(raw, format);
    if format == InputFormat::Eventbridge {
        assert!(expanded.event, "an event body is taken as an event");
    }
    if let Some(e) = &expanded.error {
        assert!(!e.field.is_empty() && !e.message.is_empty(), "{e:?}");
        assert!(expanded.alerts.is_empty(), "alerts from an event not taken");
        return;
    }
    if !expanded.event {
        assert_eq!(expanded.alerts.len(), 1);
        assert_eq!(expanded.alerts[0].bytes, raw.bytes, "handed on unchanged");
        return;
    }
    assert!(expanded.alerts.len() + expanded.skipped.len() <= MAX_FINDINGS);
    let many = expanded.alerts.len() > 1;
    for (k, a) in expanded.alerts.iter().enumerate() {
        let origin = if many {
            format!("body#{k}")
        } else {
            "body".to_string()
        };
        assert_eq!(a.origin, origin);
        assert!(serde_json::from_slice::<serde_json::Value>(&a.bytes).is_ok());
        check_alert(&a.bytes);
    }
}
