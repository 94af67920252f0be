//! The pipeline handlers: receive, dispatch, inspect, review (compile + review +
//! publish) and deliver. Each is safe to retry with the same input: records are
//! keyed deterministically, claims remember their claimer, and scheduling is
//! idempotent by job name.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tracing::{debug, info, instrument, warn};

use crate::error::{CoreError, PluginError, StoreError};
use crate::id;
use crate::model::*;
use crate::ports::*;
use crate::settings::Settings;
use crate::validate;

/// Longest error or input text kept in a record.
pub const MAX_DETAIL_BYTES: usize = 4096;

/// What receiving an alert did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// The report the alert opened or joined.
    pub report_id: String,
    /// Its alert ID.
    pub alert_id: String,
    /// `new` if it opened the report, `more` if it joined one.
    pub status: ReportStatus,
    /// The message had been received before: nothing was stored again.
    pub duplicate: bool,
}

/// Everything a runtime plugs into the handlers.
#[derive(Clone)]
pub struct Pipeline {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Delayed jobs.
    pub scheduler: Arc<dyn Scheduler>,
    /// Tasks to the inspectors.
    pub tasks: Arc<dyn TaskBus>,
    /// Published reports to the emitters.
    pub reports: Arc<dyn ReportBus>,
    /// The inspectors.
    pub inspectors: Vec<Arc<dyn Inspector>>,
    /// The reviewers.
    pub reviewers: Vec<Arc<dyn Reviewer>>,
    /// The emitters (run by [`Job::Deliver`]).
    pub emitters: Vec<Arc<dyn Emitter>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub settings: Settings,
}

impl Pipeline {
    /// Receives one raw alert; see [`receive`].
    pub async fn receive(
        &self,
        raw: &[u8],
        message_id: Option<&str>,
    ) -> Result<Receipt, CoreError> {
        receive(
            &*self.store,
            &*self.scheduler,
            &*self.clock,
            &self.settings,
            raw,
            message_id,
        )
        .await
    }

    /// Validates one raw alert; see [`admit`].
    pub async fn admit(
        &self,
        raw: &[u8],
        message_id: Option<&str>,
    ) -> Result<(Alert, String), CoreError> {
        admit(&*self.store, self.clock.now(), raw, message_id).await
    }

    /// Receives one validated alert; see [`receive_alert`].
    pub async fn receive_admitted(
        &self,
        alert: &Alert,
        message_id: &str,
    ) -> Result<Receipt, CoreError> {
        receive_alert(
            &*self.store,
            &*self.scheduler,
            self.clock.now(),
            &self.settings,
            alert,
            message_id,
        )
        .await
    }

    /// Runs one job (`attempt` counts earlier tries); a job's follow-ups are scheduled here.
    pub async fn run_job(&self, job: &Job, attempt: u32) -> Result<(), CoreError> {
        match job {
            Job::Dispatch {
                report_id,
                message_id,
            } => {
                let plan = dispatch(
                    &*self.store,
                    &*self.tasks,
                    &*self.clock,
                    &self.settings,
                    report_id,
                    message_id,
                )
                .await?;
                if let Some((job, due)) = plan {
                    self.scheduler.schedule(&job, due).await?;
                }
                Ok(())
            }
            Job::Inspect(task) => {
                inspect(
                    &*self.store,
                    &*self.tasks,
                    &self.inspectors,
                    &*self.clock,
                    &self.settings,
                    task,
                )
                .await
            }
            Job::Review { report_id, version } => review(self, report_id, *version, &job.name())
                .await
                .map(|_| ()),
            Job::Deliver {
                report_id,
                version,
                emitter,
            } => {
                deliver(
                    &*self.store,
                    &self.emitters,
                    report_id,
                    *version,
                    emitter,
                    attempt,
                )
                .await
            }
        }
    }

    /// Keeps a job that failed for good, with its input.
    pub async fn record_failure(&self, job: &Job, error: &CoreError) -> Result<(), StoreError> {
        let input = serde_json::to_string(job).unwrap_or_default();
        self.store
            .put_error(&error_record(
                job.name(),
                job.stage(),
                error.to_string(),
                None,
                input.as_bytes(),
                self.clock.now(),
            ))
            .await
    }
}

/// Builds an error record, cutting the input to [`validate::MAX_ALERT_BYTES`].
pub fn error_record(
    id: String,
    stage: &str,
    error: String,
    field: Option<String>,
    input: &[u8],
    at: DateTime<Utc>,
) -> ErrorRecord {
    let truncated = input.len() > validate::MAX_ALERT_BYTES;
    let cut = &input[..input.len().min(validate::MAX_ALERT_BYTES)];
    ErrorRecord {
        id,
        stage: stage.to_string(),
        error: bound(&error),
        field,
        input: String::from_utf8_lossy(cut).into_owned(),
        input_truncated: truncated,
        at,
    }
}

/// Step 1: parse, validate, open or join the report, store the alert, schedule dispatch.
///
/// `message_id` identifies the delivery (SNS message ID, HTTP idempotency key); without
/// one the hash of the bytes stands in, so the same bytes sent twice are stored once.
/// A malformed alert is kept as an error record and returned as [`CoreError::Invalid`].
pub async fn receive(
    store: &dyn Store,
    scheduler: &dyn Scheduler,
    clock: &dyn Clock,
    settings: &Settings,
    raw: &[u8],
    message_id: Option<&str>,
) -> Result<Receipt, CoreError> {
    let now = clock.now();
    let (alert, message_id) = admit(store, now, raw, message_id).await?;
    receive_alert(store, scheduler, now, settings, &alert, &message_id).await
}

/// Step 1, first half: validates raw bytes into an alert and its message ID; a
/// malformed alert is kept as an error record (with its input) and returned as
/// [`CoreError::Invalid`].
#[instrument(skip_all, fields(message_id), err(level = "debug"))]
pub async fn admit(
    store: &dyn Store,
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
            store
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
    store: &dyn Store,
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
        .open_join_and_put(
            &alert_id,
            message_id,
            &candidate,
            alert,
            now,
            settings.aggregation_window,
        )
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

/// Step 3: claim the alert's attributes for its report and publish a task for each new
/// one. Returns the review to schedule next, if any: version 1 at `review_delay` after
/// the report's opening for the alert that opened it, a re-review after `review_delay`
/// for an alert that joined a published report.
#[instrument(skip_all, fields(report_id = %report_id, message_id = %message_id), err(level = "debug"))]
pub async fn dispatch(
    store: &dyn Store,
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
    let claimer = format!("dispatch:{message_id}");
    let mut seen = HashSet::new();
    for attr in &alert.attributes {
        if !seen.insert(attr.hash()) {
            continue;
        }
        claim_and_publish(store, tasks, settings, now, report_id, attr, &claimer, 0).await?;
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

#[allow(clippy::too_many_arguments)]
async fn claim_and_publish(
    store: &dyn Store,
    tasks: &dyn TaskBus,
    settings: &Settings,
    now: DateTime<Utc>,
    report_id: &str,
    attr: &Attribute,
    claimer: &str,
    depth: u32,
) -> Result<(), CoreError> {
    match store
        .claim_attribute(report_id, attr, claimer, settings.max_attributes_per_report)
        .await?
    {
        // Claimed first, published second: a crash in between is healed by the retry,
        // because a claim by the same claimer counts as new again.
        Claim::New => {
            tasks
                .publish_task(&Task {
                    report_id: report_id.to_string(),
                    attribute: attr.clone(),
                    depth,
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

fn skipped(attr: &Attribute, note: String, at: DateTime<Utc>) -> InspectionRecord {
    InspectionRecord {
        inspector: "alertresponder".into(),
        attribute: attr.clone(),
        status: InspectionStatus::Skipped,
        detail: Some(note),
        at,
    }
}

/// Step 4: run a task through every inspector that takes its attribute, concurrently,
/// each bounded by its timeout. Sections are stored; discovered attributes are claimed
/// and become tasks one level deeper, up to `max_depth`. A failing inspector is
/// recorded in the report and does not stop the others.
#[instrument(skip_all, fields(report_id = %task.report_id, attribute = %task.attribute.value, depth = task.depth), err(level = "debug"))]
pub async fn inspect(
    store: &dyn Store,
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
                for attr in inspection
                    .new_attributes
                    .iter()
                    .take(settings.max_new_attributes_per_inspection)
                {
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

async fn load_state(store: &dyn Store, report_id: &str) -> Result<ReportState, CoreError> {
    store
        .load_report(report_id)
        .await?
        .ok_or_else(|| CoreError::NotFound {
            what: "report",
            id: report_id.to_string(),
        })
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
pub fn compile(state: &ReportState, version: u32) -> Report {
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
        inspections: state.inspections.clone(),
        alert_id: state.meta.alert_id.clone(),
        published_at: None,
        cut: None,
    }
}

/// Runs every reviewer; the most severe result wins and every reason is kept.
/// No reviewer, or none with a decision: `unclassified`. A failing reviewer counts
/// as `unclassified` with its error as reason: a failure never makes a report safe.
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
            Ok(Some(r)) => decided.push((name, r)),
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
        decided
            .iter()
            .map(|(n, r)| format!("[{n}: {}] {}", r.severity, r.reason))
            .collect::<Vec<_>>()
            .join("; ")
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
#[instrument(skip_all, fields(report_id = %report_id, version), err(level = "debug"))]
pub async fn compile_version(
    store: &dyn Store,
    report_id: &str,
    version: u32,
) -> Result<Compiled, CoreError> {
    let state = load_state(store, report_id).await?;
    let published = state.meta.published_version;
    if version <= published {
        return Ok(Compiled {
            report_id: report_id.to_string(),
            version,
            report: None,
        });
    }
    let version = published + 1;
    tracing::Span::current().record("version", version);
    Ok(Compiled {
        report_id: report_id.to_string(),
        version,
        report: Some(compile(&state, version)),
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
        let state = load_state(&*p.store, &report_id).await?;
        let republished = republish_own(p, &report_id, version, publisher).await?;
        follow_up(
            p,
            &report_id,
            state.meta.published_version,
            state.alerts.len(),
            state.attributes.len(),
        )
        .await?;
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
    let compiled = compile_version(&*p.store, report_id, version).await?;
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
    let state = load_state(&*p.store, report_id).await?;
    let grew = state.alerts.len() > alerts || state.attributes.len() > attributes;
    if grew && state.meta.published_version == version {
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

/// Hands a published version to one emitter.
#[instrument(skip_all, fields(report_id = %report_id, version, emitter = %emitter), err(level = "debug"))]
pub async fn deliver(
    store: &dyn Store,
    emitters: &[Arc<dyn Emitter>],
    report_id: &str,
    version: u32,
    emitter: &str,
    attempt: u32,
) -> Result<(), CoreError> {
    let (report, _) = store
        .published_report(report_id, version)
        .await?
        .ok_or_else(|| CoreError::NotFound {
            what: "published report",
            id: format!("{report_id} v{version}"),
        })?;
    let target = emitters
        .iter()
        .find(|e| e.name() == emitter)
        .ok_or_else(|| CoreError::Port {
            stage: format!("emitter {emitter}"),
            message: "no emitter of that name is configured".into(),
            retryable: false,
        })?;
    target
        .emit(&report, attempt)
        .await
        .map_err(|e| CoreError::Port {
            stage: format!("emitter {emitter}"),
            message: e.to_string(),
            retryable: true,
        })
}

/// Cuts text to [`MAX_DETAIL_BYTES`] on a character boundary.
pub fn bound(s: &str) -> String {
    if s.len() <= MAX_DETAIL_BYTES {
        return s.to_string();
    }
    let mut end = MAX_DETAIL_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}
