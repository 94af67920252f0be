//! Step 4, inspect: run a task through the inspectors, keep what they found, and
//! feed the attributes they discovered back through the dispatch's claims.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tracing::{debug, instrument, warn};

use super::bound;
use super::dispatch::{claim_and_publish, skipped, Origin};
use crate::error::{CoreError, PluginError};
use crate::model::{InspectionRecord, InspectionStatus, ReportSection, Task};
use crate::ports::{ClaimStore, Clock, FindingStore, Inspection, Inspector, TaskBus};
use crate::settings::Settings;
use crate::{fit, validate};

/// Step 4: run a task through every inspector that takes its attribute, concurrently,
/// each bounded by its timeout. Sections are stored; discovered attributes are claimed
/// and become tasks one level deeper, up to `max_depth`. A failing inspector is
/// recorded in the report and does not stop the others. What is stored is bounded so
/// that it fits every store ([`crate::fit`]): a section too large is stored cut, and
/// a discovered attribute too large or invalid is recorded as skipped, each saying so.
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
    let budget = rate_limit_budget(clock, settings, task);
    let runs = matching.iter().map(|i| async move {
        (
            i.name().to_string(),
            run_inspector(i.as_ref(), task, budget).await,
        )
    });
    let results = join_all(runs).await;
    let now = clock.now();
    let attr_hash = task.attribute.hash();
    let outcomes = results.len();
    for (n, (name, result)) in results.into_iter().enumerate() {
        let (status, detail) = match result {
            Ok(inspection) => {
                let n_sections = inspection.sections.len();
                let mut notes = Vec::new();
                for (idx, draft) in inspection
                    .sections
                    .into_iter()
                    .take(settings.max_sections_per_inspection)
                    .enumerate()
                {
                    // Cut, never dropped: the section's place says the inspector found
                    // something, the note and preview say what became of it.
                    let (content, cut_from) = fit::bound_section_content(draft.content);
                    if let Some(bytes) = cut_from {
                        warn!(inspector = %name, section = idx, bytes, "section content cut");
                        notes.push(format!(
                            "section {idx} cut: its content was {bytes} bytes, over the {}-byte bound",
                            fit::MAX_SECTION_BYTES
                        ));
                    }
                    let section = ReportSection {
                        report_id: task.report_id.clone(),
                        author: name.clone(),
                        attribute: task.attribute.clone(),
                        section_type: fit::cut_text(&draft.section_type, validate::MAX_ID_LEN),
                        content,
                    };
                    store.put_section(&section, idx).await?;
                }
                let n_new = inspection.new_attributes.len();
                let claimer = format!("inspect:{attr_hash}:{name}");
                // One claim per attribute: a claim by the same claimer counts as new
                // again, and a bus that does not deduplicate would carry it twice.
                let mut seen = HashSet::new();
                let mut invalid = 0;
                for attr in inspection
                    .new_attributes
                    .iter()
                    .take(settings.max_new_attributes_per_inspection)
                {
                    if !seen.insert(attr.hash()) {
                        continue;
                    }
                    if let Err(why) = fit::check_new_attribute(attr) {
                        // Its record carries a cut copy: the attribute itself may be
                        // too large for any store.
                        invalid += 1;
                        let note = bound(&format!("found by {name}, not inspected: {why}"));
                        store
                            .put_inspection(
                                &task.report_id,
                                &skipped(&fit::cut_attribute(attr), note, now),
                            )
                            .await?;
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
                    let origin = Origin {
                        claimer: claimer.clone(),
                        depth: task.depth + 1,
                        review_at: task.review_at,
                    };
                    claim_and_publish(store, tasks, settings, now, &task.report_id, attr, &origin)
                        .await?;
                }
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
                if invalid > 0 {
                    notes.push(format!(
                        "{invalid} new attributes skipped as invalid (see their records)"
                    ));
                }
                let status = if n_sections == 0 && n_new == 0 {
                    InspectionStatus::NothingFound
                } else {
                    InspectionStatus::Ok
                };
                (
                    status,
                    (!notes.is_empty()).then(|| bound(&notes.join("; "))),
                )
            }
            Err(PluginError::TimedOut(d)) => {
                warn!(inspector = %name, "inspector timed out");
                (
                    InspectionStatus::TimedOut,
                    Some(format!("no answer within {d:?}")),
                )
            }
            Err(PluginError::RateLimited { retry_after }) => {
                warn!(inspector = %name, "inspector rate limited until the review");
                let asked = retry_after
                    .map(|d| format!(" (the last answer asked to wait {d:?})"))
                    .unwrap_or_default();
                (
                    InspectionStatus::RateLimited,
                    Some(format!(
                        "rate limited: no answer before the review, after waiting {budget:?} at most{asked}"
                    )),
                )
            }
            Err(PluginError::Skipped(why)) => (InspectionStatus::Skipped, Some(bound(&why))),
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
        // Last: the attribute is no longer pending once every outcome is kept (a
        // crash before the last leaves it pending, and the retry writes the same
        // records again). The last outcome's write says so itself.
        if n + 1 == outcomes {
            store.put_last_inspection(&task.report_id, &record).await?;
        } else {
            store.put_inspection(&task.report_id, &record).await?;
        }
    }
    if outcomes == 0 {
        // No inspector takes this attribute: nothing to wait for.
        store
            .mark_inspected(&task.report_id, &task.attribute)
            .await?;
    }
    Ok(())
}

/// How long `task`'s inspectors may wait in all for a rate limit: until the review is
/// due, and at most `max_rate_limit_wait`; nothing for a task that names no review.
fn rate_limit_budget(clock: &dyn Clock, settings: &Settings, task: &Task) -> Duration {
    let until_review = task
        .review_at
        .and_then(|at| (at - clock.now()).to_std().ok())
        .unwrap_or_default();
    until_review.min(settings.max_rate_limit_wait)
}

/// One inspector on one task: each attempt bounded by its timeout; a rate-limited
/// answer is tried again after the wait it asks for (a second when it names none) while
/// the waits fit in `budget`. Waits are counted, not read from the clock, so that
/// virtual time (which does not move while a job runs) cannot make this loop forever.
async fn run_inspector(
    inspector: &dyn Inspector,
    task: &Task,
    budget: Duration,
) -> Result<Inspection, PluginError> {
    let limit = inspector.timeout();
    let mut waited = Duration::ZERO;
    loop {
        let out = match tokio::time::timeout(limit, inspector.inspect(task)).await {
            Ok(r) => r,
            Err(_) => Err(PluginError::TimedOut(limit)),
        };
        match out {
            Err(PluginError::RateLimited { retry_after }) => {
                let wait = retry_after.unwrap_or(RATE_LIMIT_DEFAULT_WAIT);
                // Saturating: the wait is the answer's (plugins bound it, but a sum
                // that overflowed would panic the step).
                if waited.saturating_add(wait) > budget {
                    return Err(PluginError::RateLimited { retry_after });
                }
                debug!(inspector = %inspector.name(), ?wait, "rate limited; trying again");
                tokio::time::sleep(wait).await;
                waited += wait;
            }
            other => return other,
        }
    }
}

/// The wait after a rate-limited answer that names none.
const RATE_LIMIT_DEFAULT_WAIT: Duration = Duration::from_secs(1);
