//! `alert`: the bytes of one alert, as `POST /v1/alerts`, a file line or an SNS
//! message hands them to `validate::parse_alert`.
//!
//! Checked: an accepted alert came from at most `MAX_ALERT_BYTES` and is bounded
//! ([`crate::assert_alert_bounded`]); it serialises and parses back to itself, through
//! validation and through serde (as a store reads it back), and its JSON is at most a
//! few times its input (`1e15` is written `1000000000000000.0`: 4.5 times, the most
//! for one token). A rejected input gives an error naming a field of the alert, and
//! an error record within its bounds.

use alertresponder_core::validate::{alert_from_value, parse_alert, MAX_ALERT_BYTES};
use alertresponder_core::Alert;

/// Runs one input.
pub fn check(data: &[u8]) {
    match parse_alert(data, crate::now()) {
        Ok(alert) => {
            assert!(data.len() <= MAX_ALERT_BYTES);
            crate::assert_alert_bounded(&alert);
            round_trip(&alert, data.len());
        }
        Err(e) => {
            crate::assert_names_alert_field(&e);
            crate::check_error_record(data, &e);
        }
    }
}

/// A valid alert serialised parses back to the same alert, by validation and by serde.
pub fn round_trip(alert: &Alert, input_len: usize) {
    let json = serde_json::to_vec(alert).expect("an alert serialises");
    // Fields left out are written (`"rule_name":""`, `"key":""`, `"context":[]`, the
    // filled-in timestamp), numbers may grow (1e15): bounded, not unbounded.
    assert!(
        json.len() <= 5 * input_len + 128,
        "{input_len} bytes of alert serialise to {}",
        json.len()
    );
    let later = crate::now() + chrono::Duration::days(1);
    let value: serde_json::Value = serde_json::from_slice(&json).expect("its JSON parses");
    let again = alert_from_value(&value, later).expect("a serialised valid alert validates");
    assert_eq!(&again, alert, "validation round trip");
    let read: Alert = serde_json::from_slice(&json).expect("a store reads it back");
    assert_eq!(&read, alert, "serde round trip");
    assert_eq!(again.alert_id(), alert.alert_id());
}
