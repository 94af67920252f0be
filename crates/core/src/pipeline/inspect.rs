//! Step 4, inspect: run a task through the inspectors, keep what they found, and
//! feed the attributes they discovered back through the dispatch's claims.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::join_all;
use tracing::{instrument, warn};

use super::bound;
use super::dispatch::{claim_and_publish, skipped};
use crate::error::{CoreError, PluginError};
use crate::model::{InspectionRecord, InspectionStatus, ReportSection, Task};
use crate::ports::{ClaimStore, Clock, FindingStore, Inspector, TaskBus};
use crate::settings::Settings;

/// Step 4: run a task through every inspector that takes its attribute, concurrently,
/// each bounded by its timeout. Sections are stored; discovered attributes are claimed
/// and become tasks one level deeper, up to `max_depth`. A failing inspector is
/// recorded in the report and does not stop the others.
#[instrument(skip_all, fields(report_id = %task.report_id, attribute = %task.attribute.value, depth = task.depth), err(level = "debug"))]
pub async fn inspect(
    store: &(impl ClaimStore + FindingStore + ?Sized),
    tasks: &dyn TaskBus,
    inspectors: &[Arc<dyn Inspector>],
    clock: &dyn Clock,
    settings: &Settings,
    task: &Task,
) -> Result<(), CoreError> {
    let matching: Vec<&Arc<dyn Inspector>> = inspectors
        .iter()
        .filter(|i| i.accepts(&task.attribute))
        .collect();
    let runs = matching.iter().map(|i| async move {
        let limit = i.timeout();
        let out = match tokio::time::timeout(limit, i.inspect(task)).await {
            Ok(r) => r,
            Err(_) => Err(PluginError::TimedOut(limit)),
        };
        (i.name().to_string(), out)
    });
    let results = join_all(runs).await;
    let now = clock.now();
    let attr_hash = task.attribute.hash();
    for (name, result) in results {
        let (status, detail) = match result {
            Ok(inspection) => {
                let n_sections = inspection.sections.len();
                for (idx, draft) in inspection
                    .sections
                    .into_iter()
                    .take(settings.max_sections_per_inspection)
                    .enumerate()
                {
                    let section = ReportSection {
                        report_id: task.report_id.clone(),
                        author: name.clone(),
                        attribute: task.attribute.clone(),
                        section_type: draft.section_type,
                        content: draft.content,
                    };
                    store.put_section(&section, idx).await?;
                }
                let n_new = inspection.new_attributes.len();
                let claimer = format!("inspect:{attr_hash}:{name}");
                // One claim per attribute: a claim by the same claimer counts as new
                // again, and a bus that does not deduplicate would carry it twice.
                let mut seen = HashSet::new();
                for attr in inspection
                    .new_attributes
                    .iter()
                    .take(settings.max_new_attributes_per_inspection)
                {
                    if !seen.insert(attr.hash()) {
                        continue;
                    }
                    if task.depth + 1 > settings.max_depth {
                        let note = format!(
                            "found by {name} at depth {}, beyond the maximum depth {}",
                            task.depth + 1,
                            settings.max_depth
                        );
                        store
                            .put_inspection(&task.report_id, &skipped(attr, note, now))
                            .await?;
                        continue;
                    }
                    claim_and_publish(
                        store,
                        tasks,
                        settings,
                        now,
                        &task.report_id,
                        attr,
                        &claimer,
                        task.depth + 1,
                    )
                    .await?;
                }
                let mut notes = Vec::new();
                if n_sections > settings.max_sections_per_inspection {
                    notes.push(format!(
                        "{n_sections} sections, kept {}",
                        settings.max_sections_per_inspection
                    ));
                }
                if n_new > settings.max_new_attributes_per_inspection {
                    notes.push(format!(
                        "{n_new} new attributes, kept {}",
                        settings.max_new_attributes_per_inspection
                    ));
                }
                let status = if n_sections == 0 && n_new == 0 {
                    InspectionStatus::NothingFound
                } else {
                    InspectionStatus::Ok
                };
                (status, (!notes.is_empty()).then(|| notes.join("; ")))
            }
            Err(PluginError::TimedOut(d)) => {
                warn!(inspector = %name, "inspector timed out");
                (
                    InspectionStatus::TimedOut,
                    Some(format!("no answer within {d:?}")),
                )
            }
            Err(e) => {
                warn!(inspector = %name, error = %e, "inspector failed");
                (InspectionStatus::Failed, Some(bound(&e.to_string())))
            }
        };
        let record = InspectionRecord {
            inspector: name,
            attribute: task.attribute.clone(),
            status,
            detail,
            at: now,
        };
        store.put_inspection(&task.report_id, &record).await?;
    }
    Ok(())
}
