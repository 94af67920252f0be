//! `reviewer_answer`: what a command reviewer prints on stdout (at most
//! `MAX_REVIEWER_OUTPUT` bytes), through `plugins::review_from_output`.
//!
//! Checked: an answer is a decision, no decision (nothing, `null`, `{}`), or
//! `InvalidOutput` naming `severity`, `reason` or `$` (or saying it is not JSON) — never
//! another failure, so that a broken reviewer never passes for a safe verdict; a
//! decision written back as `{"severity", "reason"}` reads as the same decision.

use alertresponder_core::PluginError;
use alertresponder_plugins::review_from_output;

/// Runs one input.
pub fn check(data: &[u8]) {
    match review_from_output(data) {
        Ok(None) => {}
        Ok(Some(result)) => {
            let json = serde_json::json!({
                "severity": result.severity.as_str(),
                "reason": result.reason,
            });
            let again = review_from_output(json.to_string().as_bytes())
                .expect("a decision written back parses");
            assert_eq!(again.as_ref(), Some(&result), "round trip");
        }
        Err(PluginError::InvalidOutput(m)) => assert!(
            m.starts_with("not valid JSON")
                || ["$:", "severity:", "reason:"]
                    .iter()
                    .any(|f| m.starts_with(f)),
            "the error names no field: {m}"
        ),
        Err(other) => panic!("an answer is a decision or invalid, not {other:?}"),
    }
}
