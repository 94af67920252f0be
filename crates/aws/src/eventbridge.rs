//! EventBridge alert sources on the receptor: GuardDuty findings (`source:
//! aws.guardduty`) and Security Hub findings (`source: aws.securityhub`,
//! `detail-type: Security Hub Findings - Imported`). The mapping lives in core
//! ([`alertresponder_core::sources`]), shared with the embedded runtime; here each
//! mapped alert is received like an alert published to the ingest topic (same
//! validation, bounds and error path), under a message ID derived from the event ID
//! and the finding's place in it, so that EventBridge's redelivery is a duplicate.
//! Suppressed or archived Security Hub findings are counted (`skipped`) and logged.

use alertresponder_core::pipeline::{error_record, Pipeline};
pub use alertresponder_core::sources::{alerts_from_event, is_eventbridge, Mapped, SourceAlert};
use alertresponder_core::CoreError;
use serde_json::Value;
use tracing::{info, warn};

use crate::handlers::{receive_one, EdgeError, ReceiveOutput};

/// Receives the alerts of an EventBridge event (one for GuardDuty, one per finding for
/// Security Hub). An event of another kind is kept as an error record, not retried; a
/// transient failure fails the invocation, and its retry finds the alerts received
/// before as duplicates.
pub async fn receive_eventbridge(p: &Pipeline, event: &Value) -> Result<ReceiveOutput, EdgeError> {
    let mut out = ReceiveOutput::default();
    let event_id = event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("eventbridge");
    match alerts_from_event(event) {
        Ok(mapped) => {
            if !mapped.skipped.is_empty() {
                let findings: Vec<String> = mapped
                    .skipped
                    .iter()
                    .take(16)
                    .map(|(id, why)| format!("{id}: {why}"))
                    .collect();
                info!(
                    event_id,
                    skipped = mapped.skipped.len(),
                    ?findings,
                    "findings skipped (suppressed or archived)"
                );
                out.skipped += mapped.skipped.len();
            }
            for a in mapped.alerts {
                let raw = a.alert.to_string();
                receive_one(p, raw.as_bytes(), a.message_id.as_deref(), &mut out).await?;
            }
        }
        Err(e) => {
            let why = format!("invalid event: {}: {}", e.field, e.message);
            warn!(field = %e.field, error = %e.message, "event rejected");
            let record = error_record(
                format!("eventbridge:{event_id}"),
                "receive",
                why,
                None,
                event.to_string().as_bytes(),
                p.clock.now(),
            );
            p.errors.put_error(&record).await.map_err(CoreError::from)?;
            out.rejected += 1;
        }
    }
    Ok(out)
}
