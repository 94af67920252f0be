//! Step 1, receive: validate an alert, open or join its report, store it, and
//! schedule what it needs (its dispatch, or only a re-review).

use chrono::{DateTime, Utc};
use tracing::{info, instrument};

use super::{error_record, Receipt};
use crate::error::CoreError;
use crate::id;
use crate::model::{Alert, Job, ReportStatus};
use crate::ports::{Admission, AdmitStore, Arrival, Clock, ErrorSink, Scheduler};
use crate::settings::Settings;
use crate::validate;

/// Step 1: parse, validate, open or join the report, store the alert, schedule dispatch.
///
/// `message_id` identifies the delivery (SNS message ID, HTTP idempotency key); without
/// one the hash of the bytes stands in, so the same bytes sent twice are stored once.
/// A malformed alert is kept as an error record and returned as [`CoreError::Invalid`].
pub async fn receive(
    store: &dyn AdmitStore,
    errors: &dyn ErrorSink,
    scheduler: &dyn Scheduler,
    clock: &dyn Clock,
    settings: &Settings,
    raw: &[u8],
    message_id: Option<&str>,
) -> Result<Receipt, CoreError> {
    let now = clock.now();
    let (alert, message_id) = admit(errors, now, raw, message_id).await?;
    receive_alert(store, scheduler, now, settings, &alert, &message_id).await
}

/// Step 1, first half: validates raw bytes into an alert and its message ID; a
/// malformed alert is kept as an error record (with its input) and returned as
/// [`CoreError::Invalid`].
#[instrument(skip_all, fields(message_id), err(level = "debug"))]
pub async fn admit(
    errors: &dyn ErrorSink,
    now: DateTime<Utc>,
    raw: &[u8],
    message_id: Option<&str>,
) -> Result<(Alert, String), CoreError> {
    let message_id = message_id
        .map(str::to_string)
        .unwrap_or_else(|| id::content_message_id(raw));
    tracing::Span::current().record("message_id", message_id.as_str());
    match validate::parse_alert(raw, now) {
        Ok(alert) => Ok((alert, message_id)),
        Err(e) => {
            errors
                .put_error(&error_record(
                    message_id,
                    "receive",
                    e.to_string(),
                    Some(e.field.clone()),
                    raw,
                    now,
                ))
                .await?;
            Err(e.into())
        }
    }
}

/// Step 1 for an alert already validated.
#[instrument(skip_all, fields(alert_id, report_id), err(level = "debug"))]
pub async fn receive_alert(
    store: &dyn AdmitStore,
    scheduler: &dyn Scheduler,
    now: DateTime<Utc>,
    settings: &Settings,
    alert: &Alert,
    message_id: &str,
) -> Result<Receipt, CoreError> {
    let alert_id = alert.alert_id();
    let candidate = id::report_id(&alert_id, message_id);
    let Admission {
        meta,
        inserted,
        received_at,
        knows_all_attributes,
    } = store
        .admit(&Arrival {
            alert_id: &alert_id,
            message_id,
            candidate_id: &candidate,
            alert,
            now,
            window: settings.aggregation_window,
        })
        .await?;
    tracing::Span::current()
        .record("alert_id", alert_id.as_str())
        .record("report_id", meta.id.as_str());
    let opened = meta.opened_by == message_id;
    let receipt = Receipt {
        report_id: meta.id.clone(),
        alert_id: alert_id.clone(),
        status: if opened {
            ReportStatus::New
        } else {
            ReportStatus::More
        },
        duplicate: !inserted,
    };
    // A redelivered message whose report was published after the message was first
    // stored is taken care of: that version included it, or (stored during the
    // review) the review scheduled the next one. Anything else is scheduled again,
    // idempotently, rather than trusting that the first try got that far (DeepAlert
    // lost reports of receptors that died in between).
    if !inserted && meta.last_published_at.is_some_and(|p| p >= received_at) {
        info!(report_id = %meta.id, alert_id, "redelivered alert: already handled");
        return Ok(receipt);
    }
    let needs_dispatch = opened || !knows_all_attributes;
    if needs_dispatch {
        let job = Job::Dispatch {
            report_id: meta.id.clone(),
            message_id: message_id.to_string(),
        };
        scheduler
            .schedule(&job, now + settings.inspection_delay)
            .await?;
    } else if meta.published_version > 0 {
        // A follow-up with nothing new to inspect: only the re-review is needed.
        let job = Job::Review {
            report_id: meta.id.clone(),
            version: meta.published_version + 1,
        };
        scheduler
            .schedule(&job, now + settings.review_delay)
            .await?;
    }
    info!(report_id = %meta.id, alert_id, opened, duplicate = !inserted, "alert received");
    Ok(receipt)
}
