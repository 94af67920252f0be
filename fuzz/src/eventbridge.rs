//! `eventbridge`: an EventBridge event, as the receptor, `POST /v1/events` and
//! `alertresponder run --format eventbridge` hand it to `sources::alerts_from_event`
//! (GuardDuty findings, Security Hub ASFF findings).
//!
//! Checked: at most `MAX_FINDINGS` findings give alerts or are skipped; each alert has
//! the message ID of its event (`eventbridge:<id>`, `#<n>` for a Security Hub
//! finding) and at most `MAX_SOURCE_ATTRIBUTES` attributes, each text at most
//! `MAX_FIELD_CHARS` characters; it validates into a bounded alert (that round-trips)
//! or an error naming a field; a skipped finding says why. An event that is not taken
//! names `detail-type`, `detail`, `detail.findings` or `$`, in a bounded message.

use alertresponder_core::sources::{
    alerts_from_event, is_eventbridge, MAX_FIELD_CHARS, MAX_FINDINGS, MAX_SOURCE_ATTRIBUTES,
};
use alertresponder_core::validate::alert_from_value;
use serde_json::Value;

/// Runs one input.
pub fn check(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check_event(&event);
}

/// Maps one parsed event and checks what it gives.
pub fn check_event(event: &Value) {
    let _ = is_eventbridge(event);
    let mapped = match alerts_from_event(event) {
        Ok(m) => m,
        Err(e) => {
            assert!(
                ["$", "detail-type", "detail", "detail.findings"].contains(&e.field.as_str()),
                "an event not taken names {:?}",
                e.field
            );
            assert!(
                !e.message.is_empty() && e.message.len() <= 2048,
                "message of {} bytes",
                e.message.len()
            );
            return;
        }
    };
    assert!(mapped.alerts.len() + mapped.skipped.len() <= MAX_FINDINGS);
    let event_id = event.get("id").and_then(Value::as_str);
    for a in &mapped.alerts {
        if let Some(id) = &a.message_id {
            assert!(id.starts_with("eventbridge:"), "message ID {id:?}");
            assert!(event_id.is_some(), "a message ID without an event ID");
        }
        let obj = a.alert.as_object().expect("a mapped alert is an object");
        for (k, v) in obj {
            if let (false, Some(s)) = (k == "body", v.as_str()) {
                assert!(s.chars().count() <= MAX_FIELD_CHARS, "{k} not bounded");
            }
        }
        let attrs = obj
            .get("attributes")
            .and_then(Value::as_array)
            .expect("a mapped alert has its attributes");
        assert!(attrs.len() <= MAX_SOURCE_ATTRIBUTES);
        for attr in attrs {
            let value = attr["value"].as_str().expect("an attribute value is text");
            assert!(!value.is_empty() && value.chars().count() <= MAX_FIELD_CHARS);
        }
        match alert_from_value(&a.alert, crate::now()) {
            Ok(alert) => {
                crate::assert_alert_bounded(&alert);
                let input = a.alert.to_string().len();
                crate::alert::round_trip(&alert, input);
            }
            Err(e) => crate::assert_names_alert_field(&e),
        }
    }
    for (id, why) in &mapped.skipped {
        assert!(!id.is_empty() && id.chars().count() <= MAX_FIELD_CHARS + 32);
        assert!(!why.is_empty());
    }
}
