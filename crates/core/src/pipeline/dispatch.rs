//! Step 3, dispatch: claim a received alert's attributes for its report and publish
//! a task for each one new to it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tracing::{debug, instrument};

use crate::error::CoreError;
use crate::model::{Attribute, InspectionRecord, InspectionStatus, Job, Task};
use crate::ports::{AdmitStore, Claim, ClaimStore, Clock, FindingStore, ReadStore, TaskBus};
use crate::settings::Settings;

/// Step 3: claim the alert's attributes for its report and publish a task for each new
/// one. Returns the review to schedule next, if any: version 1 at `review_delay` after
/// the report's opening for the alert that opened it, a re-review after `review_delay`
/// for an alert that joined a published report.
#[instrument(skip_all, fields(report_id = %report_id, message_id = %message_id), err(level = "debug"))]
pub async fn dispatch(
    store: &(impl ReadStore + AdmitStore + ClaimStore + FindingStore + ?Sized),
    tasks: &dyn TaskBus,
    clock: &dyn Clock,
    settings: &Settings,
    report_id: &str,
    message_id: &str,
) -> Result<Option<(Job, DateTime<Utc>)>, CoreError> {
    let now = clock.now();
    let meta = store
        .report_meta(report_id)
        .await?
        .ok_or_else(|| CoreError::NotFound {
            what: "report",
            id: report_id.to_string(),
        })?;
    let alert = store
        .get_alert(report_id, message_id)
        .await?
        .ok_or_else(|| CoreError::NotFound {
            what: "alert",
            id: format!("{report_id}/{message_id}"),
        })?;
    // When the review that will read these inspections is due: a rate-limited
    // inspector is retried until then.
    let review_at = if meta.published_version > 0 {
        now + settings.review_delay
    } else {
        (meta.created_at + settings.review_delay).max(now)
    };
    let origin = Origin {
        claimer: format!("dispatch:{message_id}"),
        depth: 0,
        review_at: Some(review_at),
    };
    let mut seen = HashSet::new();
    for attr in &alert.attributes {
        if !seen.insert(attr.hash()) {
            continue;
        }
        claim_and_publish(store, tasks, settings, now, report_id, attr, &origin).await?;
    }
    let plan = if meta.published_version > 0 {
        Some((
            Job::Review {
                report_id: report_id.to_string(),
                version: meta.published_version + 1,
            },
            now + settings.review_delay,
        ))
    } else if meta.opened_by == message_id {
        Some((
            Job::Review {
                report_id: report_id.to_string(),
                version: 1,
            },
            (meta.created_at + settings.review_delay).max(now),
        ))
    } else {
        None
    };
    debug!(?plan, "dispatched");
    Ok(plan)
}

/// Who claims an attribute, and what its task carries.
pub(super) struct Origin {
    /// The claimer (a retry by the same claimer gets its claim again).
    pub claimer: String,
    /// Rounds of discovery behind the attribute.
    pub depth: u32,
    /// When the review that reads its inspections is due.
    pub review_at: Option<DateTime<Utc>>,
}

pub(super) async fn claim_and_publish(
    store: &(impl ClaimStore + FindingStore + ?Sized),
    tasks: &dyn TaskBus,
    settings: &Settings,
    now: DateTime<Utc>,
    report_id: &str,
    attr: &Attribute,
    origin: &Origin,
) -> Result<(), CoreError> {
    match store
        .claim_attribute(
            report_id,
            attr,
            &origin.claimer,
            settings.max_attributes_per_report,
        )
        .await?
    {
        // Claimed first, published second: a crash in between is healed by the retry,
        // because a claim by the same claimer counts as new again.
        Claim::New => {
            tasks
                .publish_task(&Task {
                    report_id: report_id.to_string(),
                    attribute: attr.clone(),
                    depth: origin.depth,
                    review_at: origin.review_at,
                })
                .await
        }
        Claim::Seen => Ok(()),
        Claim::CapReached => {
            let note = format!(
                "not inspected: the report reached its cap of {} attributes",
                settings.max_attributes_per_report
            );
            store
                .put_inspection(report_id, &skipped(attr, note, now))
                .await?;
            Ok(())
        }
    }
}

pub(super) fn skipped(attr: &Attribute, note: String, at: DateTime<Utc>) -> InspectionRecord {
    InspectionRecord {
        inspector: "alertresponder".into(),
        attribute: attr.clone(),
        status: InspectionStatus::Skipped,
        detail: Some(note),
        at,
    }
}
