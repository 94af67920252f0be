//! Errors as Step Functions and Lambda see them.

use super::*;

// --- errors as Step Functions and Lambda see them --------------------------------

#[test]
fn core_errors_map_to_the_error_types_the_state_machine_retries_or_catches() {
    let kind = |e: CoreError| EdgeError::from(e).kind;
    assert_eq!(
        kind(StoreError::Transient("throttled".into()).into()),
        EdgeErrorKind::Retryable
    );
    assert_eq!(
        kind(StoreError::Permanent("corrupt".into()).into()),
        EdgeErrorKind::Permanent
    );
    assert_eq!(
        kind(ValidationError::new("detector", "missing").into()),
        EdgeErrorKind::Invalid
    );
    assert_eq!(
        kind(CoreError::NotFound {
            what: "report",
            id: "r1".into()
        }),
        EdgeErrorKind::NotFound
    );
    let port = |retryable| CoreError::Port {
        stage: "scheduler".into(),
        message: "x".into(),
        retryable,
    };
    assert_eq!(kind(port(true)), EdgeErrorKind::Retryable);
    assert_eq!(kind(port(false)), EdgeErrorKind::Permanent);
    // `errorType` is what the template's Retry and Catch match on.
    let d = Diagnostic::from(EdgeError::invalid("job: bad"));
    assert_eq!(
        (d.error_type.as_str(), d.error_message.as_str()),
        ("Invalid", "job: bad")
    );
    for (k, name) in [
        (EdgeErrorKind::Retryable, "Retryable"),
        (EdgeErrorKind::Invalid, "Invalid"),
        (EdgeErrorKind::NotFound, "NotFound"),
        (EdgeErrorKind::Permanent, "Permanent"),
    ] {
        let d = Diagnostic::from(EdgeError {
            kind: k,
            message: String::new(),
        });
        assert_eq!(d.error_type, name);
    }
}

#[test]
fn the_sns_fixture_carries_one_valid_alert() {
    // Guards the fixture the tests above rely on: one record, a valid alert.
    let event = fixture_event();
    assert_eq!(event.records.len(), 1);
    let alert =
        alertresponder_core::validate::parse_alert(event.records[0].sns.message.as_bytes(), t(0))
            .unwrap();
    let ip: &Attribute = &alert.attributes[0];
    assert_eq!(ip.value, "198.51.100.7");
}
