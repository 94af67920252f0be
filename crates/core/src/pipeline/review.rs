//! Steps 6–8, review: compile the next version of a report as stored, let the
//! reviewers decide its severity, and publish it exactly once. On AWS the three are
//! states of their own ([`compile_version`], [`review_report`], [`publish_version`]);
//! embedded, [`review`] runs them in one job.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use futures::future::join_all;
use tracing::{info, instrument, warn};

use super::{bound, Pipeline, MAX_DETAIL_BYTES};
use crate::error::CoreError;
use crate::fit::cut_text;
use crate::model::{
    InspectionRecord, InspectionStatus, Job, Report, ReportResult, ReportStatus, Severity,
};
use crate::ports::{PublishMark, ReadStore, ReportMeta, ReportState, Reviewer};

async fn load_state(store: &dyn ReadStore, report_id: &str) -> Result<ReportState, CoreError> {
    store
        .load_report(report_id)
        .await?
        .ok_or_else(|| not_found(report_id))
}

async fn load_meta(store: &dyn ReadStore, report_id: &str) -> Result<ReportMeta, CoreError> {
    store
        .report_meta(report_id)
        .await?
        .ok_or_else(|| not_found(report_id))
}

fn not_found(report_id: &str) -> CoreError {
    CoreError::NotFound {
        what: "report",
        id: report_id.to_string(),
    }
}

/// What a review did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewOutcome {
    /// This call published the version.
    Published(Box<Report>),
    /// The version was published before; a retry of the same publisher published it again.
    AlreadyPublished {
        /// The version found published.
        version: u32,
        /// Whether it was handed to the report bus again.
        republished: bool,
    },
}

/// Compiles a report as stored, for `version`.
///
/// An attribute still pending at `now` (its inspection never finished: a lost task,
/// a review that stopped waiting) is listed in the report's inspections as timed out,
/// so that a reader sees what is missing rather than a clean report.
pub fn compile(state: &ReportState, version: u32, now: DateTime<Utc>) -> Report {
    let mut inspections = state.inspections.clone();
    inspections.extend(state.pending.iter().map(|attribute| InspectionRecord {
        inspector: "alertresponder".into(),
        attribute: attribute.clone(),
        status: InspectionStatus::TimedOut,
        detail: Some("its inspection had not finished when the report was reviewed".into()),
        at: now,
    }));
    Report {
        id: state.meta.id.clone(),
        alerts: state.alerts.clone(),
        attributes: state.attributes.clone(),
        sections: state.sections.clone(),
        result: ReportResult::default(),
        status: if state.alerts.len() > 1 {
            ReportStatus::More
        } else {
            ReportStatus::New
        },
        created_at: state.meta.created_at,
        version,
        previous_result: state.last_result.clone(),
        inspections,
        alert_id: state.meta.alert_id.clone(),
        published_at: None,
        cut: None,
    }
}

/// Runs every reviewer; the most severe result wins and every reason is kept.
/// No reviewer, or none with a decision: `unclassified`. A failing reviewer counts
/// as `unclassified` with its error as reason: a failure never makes a report safe.
/// Every reason is cut to [`MAX_DETAIL_BYTES`], and so is the combined one.
pub async fn review_report(reviewers: &[Arc<dyn Reviewer>], report: &Report) -> ReportResult {
    let results = join_all(
        reviewers
            .iter()
            .map(|r| async move { (r.name().to_string(), r.review(report).await) }),
    )
    .await;
    let mut decided: Vec<(String, ReportResult)> = Vec::new();
    for (name, result) in results {
        match result {
            Ok(Some(mut r)) => {
                r.reason = bound(&r.reason);
                decided.push((name, r));
            }
            Ok(None) => {}
            Err(e) => {
                warn!(reviewer = %name, error = %e, "reviewer failed");
                decided.push((
                    name.clone(),
                    ReportResult {
                        severity: Severity::Unclassified,
                        reason: bound(&format!("reviewer {name} failed: {e}")),
                    },
                ));
            }
        }
    }
    if decided.is_empty() {
        return ReportResult {
            severity: Severity::Unclassified,
            reason: if reviewers.is_empty() {
                "no reviewer configured".into()
            } else {
                "no reviewer reached a decision".into()
            },
        };
    }
    // Stable sort: most severe first, configuration order within a severity.
    decided.sort_by_key(|r| std::cmp::Reverse(r.1.severity));
    let severity = decided[0].1.severity;
    let reason = if decided.len() == 1 {
        decided.remove(0).1.reason
    } else {
        // Each reviewer gets its share of the bound, so that every one is named and
        // the whole stays bounded too.
        let share = MAX_DETAIL_BYTES / decided.len();
        bound(
            &decided
                .iter()
                .map(|(n, r)| format!("[{n}: {}] {}", r.severity, cut_text(&r.reason, share)))
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    ReportResult { severity, reason }
}

/// The outcome of the compile step: the report compiled for the next version, or
/// `None` when `version` was published already (a retried or duplicate review).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Compiled {
    /// The report.
    pub report_id: String,
    /// The version compiled (or found published).
    pub version: u32,
    /// The compiled report, without result; `None` if `version` was published before.
    pub report: Option<Report>,
}

/// Step 6: compile the next version of a report as stored. `version` is the version
/// the caller was scheduled for; if it is published already, nothing is compiled.
/// Attributes still pending are listed as timed out (see [`compile`]).
pub async fn compile_version(
    store: &dyn ReadStore,
    report_id: &str,
    version: u32,
    now: DateTime<Utc>,
) -> Result<Compiled, CoreError> {
    compile_when_inspected(store, report_id, version, now, None).await
}

/// [`compile_version`], waiting for inspections: while attributes of the report are
/// pending and `now` is before `wait_until`, it compiles nothing and answers
/// [`CoreError::InspectionsPending`] (retryable), so that the caller retries later.
/// Past `wait_until` a lost task no longer holds the report: it is compiled with the
/// pending attributes shown as timed out. The embedded runtime passes `None`: its
/// job queue already runs a review after the inspections due before it.
#[instrument(skip_all, fields(report_id = %report_id, version), err(level = "debug"))]
pub async fn compile_when_inspected(
    store: &dyn ReadStore,
    report_id: &str,
    version: u32,
    now: DateTime<Utc>,
    wait_until: Option<DateTime<Utc>>,
) -> Result<Compiled, CoreError> {
    // The meta decides (one read); only a version to compile loads the content.
    let meta = load_meta(store, report_id).await?;
    if version <= meta.published_version {
        return Ok(Compiled {
            report_id: report_id.to_string(),
            version,
            report: None,
        });
    }
    let state = load_state(store, report_id).await?;
    if let Some(until) = wait_until {
        if !state.pending.is_empty() && now < until {
            return Err(CoreError::InspectionsPending {
                report_id: report_id.to_string(),
                pending: state.pending.len(),
                until,
            });
        }
    }
    let version = state.meta.published_version + 1;
    tracing::Span::current().record("version", version);
    Ok(Compiled {
        report_id: report_id.to_string(),
        version,
        report: Some(compile(&state, version, now)),
    })
}

/// Step 8: mark the compiled version published exactly once with the reviewers'
/// `result`, hand it to the report bus, and schedule a re-review if alerts joined (or
/// attributes were claimed) after the compile. `publisher` names this attempt's job
/// or execution: a retry of the same publisher re-publishes a version it marked
/// before crashing; anyone else leaves it alone.
#[instrument(skip_all, fields(report_id = %compiled.report_id, version = compiled.version), err(level = "debug"))]
pub async fn publish_version(
    p: &Pipeline,
    compiled: Compiled,
    result: ReportResult,
    publisher: &str,
) -> Result<ReviewOutcome, CoreError> {
    let Compiled {
        report_id,
        version,
        report,
    } = compiled;
    let Some(mut report) = report else {
        // A retry of a review that crashed after marking its version: re-publish what
        // this publisher marked, and schedule the re-review the crash may have cut
        // short, deciding on the stored version's counts against the meta's.
        let stored = p.store.published_report(&report_id, version).await?;
        let mut republished = false;
        if let Some((published, by)) = &stored {
            if by == publisher {
                p.reports.publish_report(published).await?;
                republished = true;
            }
            follow_up(
                p,
                &report_id,
                version,
                crate::fit::alert_count(published),
                published.attributes.len(),
            )
            .await?;
        }
        return Ok(ReviewOutcome::AlreadyPublished {
            version,
            republished,
        });
    };
    report.result = result;
    report.status = ReportStatus::Published;
    report.published_at = Some(p.clock.now());
    match p.store.mark_published(&report, publisher).await? {
        PublishMark::Published => {
            p.reports.publish_report(&report).await?;
            info!(severity = %report.result.severity, alerts = report.alerts.len(), "report published");
        }
        PublishMark::AlreadyPublished { publisher: by } => {
            // The stored version, not this attempt's copy: subscribers get the same
            // message again, byte for byte.
            let republished =
                by == publisher && republish_own(p, &report_id, version, publisher).await?;
            return Ok(ReviewOutcome::AlreadyPublished {
                version,
                republished,
            });
        }
    }
    follow_up(
        p,
        &report_id,
        version,
        crate::fit::alert_count(&report),
        report.attributes.len(),
    )
    .await?;
    Ok(ReviewOutcome::Published(Box::new(report)))
}

/// Steps 6–8 in one call (the embedded runtime): [`compile_version`], [`review_report`],
/// [`publish_version`].
pub async fn review(
    p: &Pipeline,
    report_id: &str,
    version: u32,
    publisher: &str,
) -> Result<ReviewOutcome, CoreError> {
    let compiled = compile_version(&*p.store, report_id, version, p.clock.now()).await?;
    let result = match &compiled.report {
        Some(report) => review_report(&p.reviewers, report).await,
        None => ReportResult::default(),
    };
    publish_version(p, compiled, result, publisher).await
}

async fn republish_own(
    p: &Pipeline,
    report_id: &str,
    version: u32,
    publisher: &str,
) -> Result<bool, CoreError> {
    match p.store.published_report(report_id, version).await? {
        Some((report, by)) if by == publisher => {
            p.reports.publish_report(&report).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Alerts that joined, or attributes claimed, after the compile of `version` get a
/// re-review of their own: a late alert is never left out of every published version.
async fn follow_up(
    p: &Pipeline,
    report_id: &str,
    version: u32,
    alerts: usize,
    attributes: usize,
) -> Result<(), CoreError> {
    // Decided on the meta and the counts, never the whole report.
    let meta = load_meta(&*p.store, report_id).await?;
    if meta.published_version != version {
        // A later version exists: it took care of what joined.
        return Ok(());
    }
    let counts = p
        .store
        .report_counts(report_id)
        .await?
        .ok_or_else(|| not_found(report_id))?;
    if counts.grew_since(alerts, attributes) {
        let job = Job::Review {
            report_id: report_id.to_string(),
            version: version + 1,
        };
        p.scheduler
            .schedule(&job, p.clock.now() + p.settings.review_delay)
            .await?;
    }
    Ok(())
}
